"""Canonical YAML: YAML 1.1 traps stay strings, one byte sequence per content, a strict reader."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg import canonical
from modelreg.canonical import CanonicalError, dump, load
from modelreg.errors import UsageError

TRAPS = ["1.10", "yes", "Yes", "YES", "on", "off", "no", "y", "n", "true", "False", "2024-01-02",
         "2024-01-02T03:04:05Z", "0755", "1e3", "null", "Null", "~", "0x1F", ".inf", "-.inf", ".nan",
         "1_000", "+1", "0o17", "12:30:00", "", " lead", "trail ", "a: b", "- x", "#c", "x\ny", "<<", "=",
         "!tag", "&anchor", "*alias", "{}", "[]", "'q'", '"dq"', "é", "%x", "@x", "`x", "?", "|", ">"]


@pytest.mark.parametrize("value", TRAPS, ids=repr)
def test_yaml_traps_round_trip_as_strings(value):
    data = {"k": value, "l": [value], value or "empty": 1}
    out = dump(data)
    assert load(out) == data
    # PyYAML's plain YAML 1.1 safe loader agrees (no reader-specific luck)
    assert yaml.safe_load(out) == data


@pytest.mark.parametrize("value", ["1.10", "yes", "on", "no", "2024-01-02", "0755", "1e3", "null", "~", "0x1F", ".inf"])
def test_traps_are_quoted(value):
    assert dump({"k": value}) == f'k: "{value}"\n'.encode()


def test_plain_strings_stay_plain():
    assert dump({"name": "faq-bot", "path": "models/v1/model.bin"}) == b"name: faq-bot\npath: models/v1/model.bin\n"


@pytest.mark.parametrize("value", [1e-05, 1e20, 0.1, -0.0, 1e16, 5e-324, 1.7976931348623157e308, 2.5, -3.0, 1 / 3])
def test_floats_round_trip(value):
    out = dump({"f": value})
    back = load(out)["f"]
    assert isinstance(back, float) and back == value and math.copysign(1, back) == math.copysign(1, value)
    assert isinstance(yaml.safe_load(out)["f"], float)  # a YAML 1.1 reader sees a float too


def test_float_spelling():
    assert dump({"a": 1e-05, "b": 1e20, "c": 0.1}) == b"a: 1.0e-05\nb: 1.0e+20\nc: 0.1\n"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_floats_refused(value):
    with pytest.raises(CanonicalError):
        dump({"f": value})


def test_ints_bools_none():
    data = {"i": 10**30, "neg": -7, "z": 0, "t": True, "f": False, "n": None}
    out = dump(data)
    back = load(out)
    assert back == data and back["t"] is True and back["n"] is None and type(back["i"]) is int


def test_key_order_does_not_matter():
    a = {"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": "s"}, "c": []}
    b = {"c": [], "a": {"x": "s", "y": [1, {"p": 2, "q": 1}]}, "b": 1}
    assert dump(a) == dump(b)


def test_ordered_keys_lead():
    assert dump({"z": 1, "version": "1", "name": "m"}, ordered=("name", "version")) == b"name: m\nversion: \"1\"\nz: 1\n"


def test_block_style_no_aliases():
    shared = {"x": [1, 2]}
    data = {"a": shared, "b": shared, "c": [shared, shared], "e": {}, "f": []}
    text = dump(data).decode()
    assert "&" not in text and "*" not in text  # repeated objects are written out, not aliased
    for line in text.splitlines():
        stripped = line.lstrip(" -")
        assert not stripped.startswith(("{", "[")) or stripped in ("{}", "[]")
        assert ": {" not in line or line.endswith(": {}")
        assert ": [" not in line or line.endswith(": []")
    assert text.endswith("\n") and "\r" not in text and "\t" not in text
    assert load(dump(data)) == data


def test_nested_lists_and_empty_containers():
    data = {"l": [[1, [2, []]], [{"a": 1, "b": {}}], {"c": []}, {}, []], "e": {}}
    assert load(dump(data)) == data


@pytest.mark.parametrize("bad", [{1: "x"}, {"a": {2: 1}}, {"a": b"bytes"}, {"a": {1, 2}}, {"a": object()}])
def test_dump_refuses_non_json_data(bad):
    with pytest.raises(CanonicalError):
        dump(bad)


# --------------------------------------------------------------------------- strict reader
@pytest.mark.parametrize(
    "text, needle",
    [
        ("a: &x 1\nb: *x\n", "anchors and aliases"),
        ("a: &x [1]\n", "anchors and aliases"),
        ("a: 1\na: 2\n", "duplicate key"),
        ("a:\n  b: 1\n  b: 1\n", "duplicate key"),
        ("<<: {a: 1}\nb: 2\n", "merge keys"),
        ("x: !!python/object/apply:os.system [\"echo hi\"]\n", "python/object"),
        ("x: !!python/name:os.system\n", "python/name"),
        ("x: !custom 1\n", "custom"),
        ("a: [1\n", "not valid YAML"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ],
    ids=["alias", "anchor", "dup", "nested-dup", "merge", "python-apply", "python-name", "custom-tag",
         "syntax", "two-docs"],
)
def test_loader_refusals(text, needle):
    with pytest.raises(CanonicalError) as info:
        load(text.encode(), what="m.yaml")
    assert needle in info.value.message and info.value.message.startswith("m.yaml")
    assert isinstance(info.value, UsageError)


def test_loader_refuses_non_utf8():
    with pytest.raises(CanonicalError, match="UTF-8"):
        load(b"a: \xff\xfe\n")
    with pytest.raises(CanonicalError, match="UTF-8"):
        load("a: é\n".encode("latin-1"))


def test_loader_refuses_oversized():
    big = b"a: " + b"x" * canonical.MAX_BYTES + b"\n"
    with pytest.raises(CanonicalError, match="larger than"):
        load(big)
    ok = b"a: " + b"x" * (canonical.MAX_BYTES - 10) + b"\n"
    assert len(load(ok)["a"]) == canonical.MAX_BYTES - 10


def test_loader_handles_moderate_nesting_and_refuses_deeper():
    from modelreg.canonical import MAX_DEPTH

    depth = MAX_DEPTH
    assert load(b"a: " + b"[" * depth + b"]" * depth + b"\n")["a"] is not None
    with pytest.raises(CanonicalError, match="nested more than"):
        load(b"a: " + b"[" * (depth + 1) + b"]" * (depth + 1) + b"\n")


def test_deep_nesting_is_a_usage_error_not_a_crash(tmp_path):
    import subprocess
    import sys

    from conftest import subprocess_env

    depth = 50_000
    (tmp_path / "deep.yaml").write_bytes(b'name: m\nversion: "1"\nparams:\n  a: ' + b"[" * depth + b"]" * depth + b"\n")
    from modelreg.registry import Registry

    Registry.init(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "modelreg", "register", "--from-file", "deep.yaml"],
                          cwd=tmp_path, env=subprocess_env(MODELREG_ACTOR="t"), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-300:])
    assert proc.stderr.startswith("modelreg: error:")


@pytest.mark.parametrize("text", ["x: !!binary aGk=\n", "x: !!set {a: null}\n", "x: !!omap [a: 1]\n",
                                  "x: 2024-01-02\n"])
def test_loader_refuses_non_core_types(text):
    with pytest.raises(CanonicalError):
        load(text.encode())


# --------------------------------------------------------------------------- writer bugs
# The writer escapes strings with json.dumps(ensure_ascii=False), which leaves characters raw that
# YAML's reader refuses (U+007F-U+009F except NEL, U+FFFE/U+FFFF), folds (NEL U+0085 in values) or
# treats as a line break (U+0085/U+2028/U+2029 in keys). dump() accepts them, so a registration
# with such a string stores an object that can never be read back (fsck error) or reads back changed.
WRITER_BAD = [("value", "a\x7fb"), ("value", "a\x85b"), ("value", "a\x9fb"), ("value", "a\ufffeb"),
              ("key", "a\u2028b"), ("key", "a\x85b")]


@pytest.mark.parametrize("where, s", WRITER_BAD, ids=[f"{w}-{s!r}" for w, s in WRITER_BAD])
def test_writer_escapes_yaml_unsafe_characters(where, s):
    data = {"k": s} if where == "value" else {s: 1}
    assert load(dump(data)) == data


def test_empty_top_level_mapping_round_trips():
    assert load(dump({})) == {}


# --------------------------------------------------------------------------- property
# Text without the characters the writer escapes (tested separately above).
_UNSAFE = {chr(c) for c in range(0x7F, 0xA0)} | {"\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff"}
text = st.text(st.characters(codec="utf-8", exclude_characters="".join(_UNSAFE)), max_size=20)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
                         max_leaves=25)
documents = st.dictionaries(text, json_like, min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_round_trip_property(doc):
    out = dump(doc)
    assert load(out) == doc
    assert dump(load(out)) == out  # deterministic: re-dumping the loaded data gives the same bytes
    assert dump(doc) == out


@settings(max_examples=60, deadline=None)
@given(documents, st.randoms())
def test_key_order_property(doc, rnd):
    items = list(doc.items())
    rnd.shuffle(items)
    assert dump(dict(items)) == dump(doc)


def test_register_with_control_character_stays_readable(reg):
    from modelreg.fsck import fsck

    try:
        reg.register("m", "1", description="bad\x7fchar")
    except UsageError:
        return  # refusing the input up front is fine too
    assert reg.show("m@1").manifest["description"] == "bad\x7fchar"
    assert fsck(reg).ok
