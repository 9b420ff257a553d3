"""One rule for typed K=V values: what is stored, and how check, search --where and show --json see it.

The rule (modelreg/values.py, docs/format.md "Typed values"): a JSON number literal is a
number, true/false/null are JSON's, a quoted value or anything else is a string; names
are never coerced.
"""

from __future__ import annotations

import json

import pytest

from _policy_support import Cli, make_registry
from modelreg import values
from modelreg.errors import UsageError
from modelreg.fsck import fsck

GATES = """\
policy:
  require_previous_stage: {}
  gates:
    production:
      thresholds: {"core-v1.score": ">= 0.85"}
"""

# input typed after score= | stored value | threshold ">= 0.85" passes | message of check | search matches
TABLE = [
    ("0.90", 0.9, True, "0.9 >= 0.85", True),
    ("0.85", 0.85, True, "0.85 >= 0.85", True),
    ("3e-4", 0.0003, False, "0.0003 >= 0.85 is false", False),
    ("1e3", 1000.0, True, "1000 >= 0.85", True),
    ("1E3", 1000.0, True, "1000 >= 0.85", True),
    ("-2", -2, False, "-2 >= 0.85 is false", False),
    ("0", 0, False, "0 >= 0.85 is false", False),
    ("true", True, False, "key score of suite core-v1 is a boolean (true), not a number", False),
    ("null", None, False, "key score of suite core-v1 is null, not a number", False),
    ('"0.90"', "0.90", False, 'key score of suite core-v1 is the string "0.90", not a number; record it as a '
                              "number: modelreg metrics set m@{v} --suite core-v1 score=0.9", False),
    ("'0.90'", "0.90", False, 'the string "0.90", not a number; record it as a number', False),
    ("+1", "+1", False, 'key score of suite core-v1 is the string "+1", not a number', False),
    (".5", ".5", False, 'the string ".5", not a number', False),
    ("1.", "1.", False, 'the string "1.", not a number', False),
    ("0755", "0755", False, 'the string "0755", not a number', False),
    ("1_000", "1_000", False, 'the string "1_000", not a number', False),
    ("NaN", "NaN", False, 'the string "NaN", not a number', False),
    ("True", "True", False, 'the string "True", not a number', False),
    ("yes", "yes", False, 'the string "yes", not a number', False),
    ("1.2.3", "1.2.3", False, 'the string "1.2.3", not a number', False),
    ("fast", "fast", False, 'the string "fast", not a number', False),
    ("", "", False, 'the string "", not a number', False),
]


@pytest.fixture
def table_reg(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODELREG_ACTOR", "alice")
    reg = make_registry(tmp_path, GATES)
    cli = Cli(reg, capsys)
    for i, (text, *_rest) in enumerate(TABLE):
        assert cli("register", "m", str(i))[0] == 0
        code, _, err = cli("metrics", "set", f"m@{i}", "--suite", "core-v1", f"score={text}")
        assert code == 0, err
    return reg, cli


def test_the_table_through_the_cli(table_reg):
    reg, cli = table_reg
    code, out, err = cli("search", "--where", "metrics.core-v1.score >= 0.85", "--json")
    assert code == 0, err
    matched = {r["version"] for r in json.loads(out)}
    for i, (text, stored, passes, message, in_search) in enumerate(TABLE):
        v = str(i)
        shown = cli.json("show", f"m@{v}")["metrics"]["core-v1"]["score"]
        assert shown == stored and type(shown) is type(stored), (text, shown)
        assert reg.metrics(f"m@{v}", "core-v1")["score"] == stored  # the library sees the same value
        code, out, _ = cli("check", f"m@{v}", "production", "--json")
        result = next(r for r in json.loads(out)["results"] if r["gate"] == "thresholds")
        assert (code == 0, result["passed"]) == (passes, passes), text
        assert result["actual"] == stored and type(result["actual"]) is type(stored)
        assert message.format(v=v) in result["message"], (text, result["message"])
        assert (v in matched) is in_search, text


def test_check_text_names_key_suite_and_the_fix(table_reg):
    _reg, cli = table_reg
    v = str(next(i for i, row in enumerate(TABLE) if row[0] == '"0.90"'))
    code, out, err = cli("check", f"m@{v}", "production")
    assert code == 5
    assert "key score of suite core-v1" in err  # the error line names key and suite; the table says the fix
    assert f"record it as a number: modelreg metrics set m@{v} --suite core-v1 score=0.9" in out
    assert '"0.90"' in out  # the table shows the string quoted, so it does not look like the number


def test_search_says_when_strings_met_a_number(table_reg):
    _reg, cli = table_reg
    code, out, err = cli("search", "--where", "metrics.core-v1.score >= 0.85")
    assert code == 0
    assert "could not be compared with the number 0.85" in err and "quote VALUE to compare text" in err
    code, out, err = cli("search", "--where", "metrics.core-v1.score == '0.90'", "--json")
    assert sorted(r["version"] for r in json.loads(out)) == sorted(
        str(i) for i, row in enumerate(TABLE) if row[1] == "0.90")


def test_metrics_show_and_log_display_types_apart(table_reg):
    _reg, cli = table_reg
    num = str(next(i for i, row in enumerate(TABLE) if row[0] == "0.90"))
    text = str(next(i for i, row in enumerate(TABLE) if row[0] == '"0.90"'))
    assert cli("metrics", "show", f"m@{num}")[1].split() == ["core-v1", "score", "0.9"]
    assert cli("metrics", "show", f"m@{text}")[1].split() == ["core-v1", "score", '"0.90"']
    assert "core-v1: score=0.9\n" in cli("show", f"m@{num}")[1]
    assert 'core-v1: score="0.90"\n' in cli("show", f"m@{text}")[1]
    assert 'score="0.90"' in cli("log", "m")[1]


# ------------------------------------------------------------------ params, meta, fingerprints, diff
def test_params_and_meta_are_typed_and_search_agrees(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODELREG_ACTOR", "alice")
    reg = make_registry(tmp_path)
    cli = Cli(reg, capsys)
    assert cli("register", "m", "1.0", "-p", "lr=3e-4", "-p", "epochs=3", "-m", "release=1.10",
               "-m", "commit=0755", "-m", "ok=true")[0] == 0
    assert cli("register", "m", "2.0", "-p", 'lr="3e-4"', "-m", 'release="1.10"')[0] == 0
    m1 = cli.json("show", "m@1.0")["manifest"]
    assert m1["params"] == {"lr": 0.0003, "epochs": 3}
    assert m1["meta"] == {"release": 1.1, "commit": "0755", "ok": True}
    assert cli.json("show", "m@2.0")["manifest"]["params"] == {"lr": "3e-4"}
    assert [r["version"] for r in cli.json("search", "--where", "params.lr < 0.001")] == ["1.0"]
    assert [r["version"] for r in cli.json("search", "--where", "params.lr == '3e-4'")] == ["2.0"]
    assert [r["version"] for r in cli.json("search", "--where", "meta.release == '1.10'")] == ["2.0"]
    assert [r["version"] for r in cli.json("search", "--where", "meta.ok == true")] == ["1.0"]
    # the stored manifest spells the number as a number and the string quoted
    assert "lr: 0.0003\n" in cli("show", "m@1.0")[1] and 'lr: "3e-4"\n' in cli("show", "m@2.0")[1]
    # diff shows the two apart
    code, out, _ = cli("diff", "m@1.0", "m@2.0")
    assert '- params.lr: 0.0003\n+ params.lr: "3e-4"' in out
    diff = cli.json("diff", "m@1.0", "m@2.0")
    assert {"path": "params.lr", "kind": "changed", "old": 0.0003, "new": "3e-4"} in diff["changes"]
    # fingerprints see typed values: 3e-4 and 0.0003 are the same number
    code, out, err = cli("register", "m", "3.0", "-p", "lr=0.0003", "-p", "epochs=3.0")
    assert code == 0 and "same params fingerprint" not in err  # 3.0 is a float, 3 an int: other params
    code, out, err = cli("register", "m", "4.0", "-p", "epochs=3", "-p", "lr=0.00030")
    assert code == 0 and "same params fingerprint as m@1.0" in err


def test_bind_params_are_typed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODELREG_ACTOR", "alice")
    reg = make_registry(tmp_path)
    reg.register("m", "1")
    cli = Cli(reg, capsys)
    assert cli("bind", "m@1", "--provider", "vllm", "--id", "m-1", "-p", "max_tokens=512",
               "-p", "temperature=0.70", "-p", 'tag="0.70"')[0] == 0
    assert cli.json("show", "m@1")["bindings"]["vllm"]["params"] == {"max_tokens": 512, "temperature": 0.7,
                                                                      "tag": "0.70"}


@pytest.mark.parametrize("pair, needle", [
    ("x=1e400", "too large for a number"),
    ('x="a\\q"', "not a valid double-quoted JSON string"),
    ("=1", "expected KEY=VALUE"),
    ("a..b=1", "empty part in key"),
])
def test_bad_values_are_one_line_usage_errors(tmp_path, monkeypatch, capsys, pair, needle):
    monkeypatch.setenv("MODELREG_ACTOR", "alice")
    reg = make_registry(tmp_path)
    reg.register("m", "1")
    code, out, err = Cli(reg, capsys)("metrics", "set", "m@1", "--suite", "s", pair)
    assert code == 2 and needle in err and err.count("\n") == 1 and err.startswith("modelreg: error: ")


# ------------------------------------------------------------------ --from-file
def test_from_file_yaml_and_json_follow_the_same_rule(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODELREG_ACTOR", "alice")
    reg = make_registry(tmp_path)
    cli = Cli(reg, capsys)
    (tmp_path / "m.yaml").write_text(
        "name: m\nversion: 1.10\ndescription: 2024-01-02\ntags: [1.0]\n"
        "params:\n  lr: 3e-4\n  n: 1e3\n  score: 0.90\n  quoted: \"0.90\"\n  single: '0.90'\n"
        "  flag: yes\n  mode: 0755\n  ok: true\n  none: null\n  empty:\n  date: 2024-01-02\n"
        "  list: [1, \"2\", x]\n"
    )
    code, out, err = cli("register", "--from-file", str(tmp_path / "m.yaml"), "--json")
    assert code == 0, err
    m = cli.json("show", "m@1.10")["manifest"]
    assert m["version"] == "1.10" and m["description"] == "2024-01-02" and m["tags"] == ["1.0"]
    assert m["params"] == {"lr": 0.0003, "n": 1000.0, "score": 0.9, "quoted": "0.90", "single": "0.90",
                           "flag": "yes", "mode": "0755", "ok": True, "none": None, "empty": None,
                           "date": "2024-01-02", "list": [1, "2", "x"]}
    (tmp_path / "m.json").write_text(json.dumps({"name": "m", "version": "2", "params": {"lr": 3e-4}})
                                     .replace("0.0003", "3e-4"))
    assert cli("register", "--from-file", str(tmp_path / "m.json"))[0] == 0
    assert cli.json("show", "m@2")["manifest"]["params"] == {"lr": 0.0003}


# ------------------------------------------------------------------ written before the change
def test_a_registry_written_before_typed_values(tmp_path, monkeypatch, capsys):
    """Before, the CLI stored ``-p lr=3e-4`` and ``score=0.90`` as strings. Such manifests and
    events stay valid (fsck ok, digests unchanged); registering the same text again is identical;
    a gate names the string and how to record a number."""
    monkeypatch.setenv("MODELREG_ACTOR", "alice")
    reg = make_registry(tmp_path, GATES)
    old = reg.register("m", "1.0", params={"lr": "3e-4", "epochs": 3}, meta={"release": "1.10"})
    reg.set_metrics("m@1.0", "core-v1", {"score": "0.90"})
    assert fsck(reg).ok and not fsck(reg).problems
    cli = Cli(reg, capsys)
    code, out, err = cli("fsck")
    assert code == 0, out + err
    code, out, err = cli("register", "m", "1.0", "-p", "lr=3e-4", "-p", "epochs=3", "-m", "release=1.10", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["created"] is False and res["digest"] == old.version.digest
    code, out, err = cli("register", "m", "1.0", "-p", "lr=4e-4", "-p", "epochs=3", "-m", "release=1.10")
    assert code == 4 and "params.lr" in err
    code, out, err = cli("check", "m@1.0", "production")
    assert code == 5
    assert 'key score of suite core-v1 is the string "0.90", not a number' in err
    assert ('key score of suite core-v1 is the string "0.90", not a number; record it as a number: '
            "modelreg metrics set m@1.0 --suite core-v1 score=0.9") in out
    assert cli("metrics", "set", "m@1.0", "--suite", "core-v1", "score=0.90")[0] == 0
    assert cli("check", "m@1.0", "production")[0] == 0


# ------------------------------------------------------------------ the module itself
@pytest.mark.parametrize("text, value", [
    ("0.90", 0.9), ("3e-4", 0.0003), ("1e3", 1000.0), ("-2", -2), ("-0", 0), ("10", 10), ("1.5E-2", 0.015),
    ("true", True), ("false", False), ("null", None),
    ('"0.90"', "0.90"), ("'0.90'", "0.90"), ('"a\\"b"', 'a"b'), ('""', ""), ("''", ""), ('"', '"'),
    ("+1", "+1"), (".5", ".5"), ("1.", "1."), ("01", "01"), ("0x10", "0x10"), ("1_000", "1_000"),
    ("NaN", "NaN"), ("Infinity", "Infinity"), ("-inf", "-inf"), ("TRUE", "TRUE"), ("None", "None"),
    ("0.90 ", "0.90 "), (" 1", " 1"), ("1.10.0", "1.10.0"), ("[1, 2]", "[1, 2]"), ('{"a": 1}', '{"a": 1}'),
    ("a=b", "a=b"), ("", ""),
])
def test_parse_value(text, value):
    got = values.parse_value(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("value, shown", [
    (0.9, "0.9"), (0.0003, "0.0003"), (1000.0, "1000.0"), (3, "3"), (True, "true"), (None, "null"),
    ("torch", "torch"), ("0.90", '"0.90"'), ("true", '"true"'), ("", '""'), ("a b", "a b"), (" a", '" a"'),
    ("1.2.3", "1.2.3"), ('"x"', '"\\"x\\""'), ("line\nbreak", '"line\\nbreak"'), ([1, "a"], '[1, "a"]'),
])
def test_display_types_back_to_the_same_value(value, shown):
    assert values.display(value) == shown
    if not isinstance(value, list):
        back = values.parse_value(shown)
        assert back == value and type(back) is type(value)


def test_parse_pairs_nests_dotted_keys_and_refuses_twice():
    assert values.parse_pairs(["a.b=1", "a.c=x", "d=0.90"], "-p") == {"a": {"b": 1, "c": "x"}, "d": 0.9}
    with pytest.raises(UsageError, match="key given twice"):
        values.parse_pairs(["a=1", "a=2"], "-p")
    with pytest.raises(UsageError, match="is already a value"):
        values.parse_pairs(["a=1", "a.b=2"], "-p")


def test_legacy_equal():
    assert values.legacy_equal({"lr": "3e-4", "n": [1, "0.90"]}, {"lr": 0.0003, "n": [1, 0.9]})
    assert not values.legacy_equal({"lr": "3e-4"}, {"lr": 0.0004})
    assert not values.legacy_equal({"lr": "abc"}, {"lr": 1})
    assert not values.legacy_equal({"n": 1}, {"n": True})
    assert not values.legacy_equal({"n": 0.0003}, {"n": "3e-4"})  # only old strings become numbers
