import pytest

from modelreg.errors import UsageError
from modelreg.query import Condition, parse_where, sort_key, version_key


def record(**overrides):
    r = {
        "name": "faq-bot",
        "version": "1.10.0",
        "digest": "sha256:" + "ab" * 32,
        "stages": ["staging", "production"],
        "archived": False,
        "tags": ["nlp", "chat"],
        "meta": {"framework": "torch", "base_version": "2.1.0"},
        "params": {"lr": 0.001, "epochs": 12, "optimizer": {"name": "adamw"}},
        "metrics": {"core-v1.2": {"score": 0.91, "f1.macro": 0.8}, "core": {"score": 0.5}},
        "license": "MIT",
    }
    r.update(overrides)
    return r


def where(expr, rec=None):
    return parse_where(expr).matches(record() if rec is None else rec)


# ---------------------------------------------------------------- parsing


def test_parse_splits_field_operator_and_value():
    assert parse_where("params.lr<=0.01") == Condition("params.lr", "<=", "0.01")
    assert parse_where("  meta.framework   ==   torch  ") == Condition("meta.framework", "==", "torch")
    assert parse_where("name == 'faq bot'") == Condition("name", "==", "faq bot")
    assert parse_where('name == "it\'s"').value == "it's"
    assert parse_where("name == ''").value == ""
    assert parse_where("meta.note == hello world").value == "hello world"


@pytest.mark.parametrize(
    "expr, message",
    [
        ("params.lr >> 3", "bad --where 'params.lr >> 3': unknown operator at position 10 ('>> 3')"),
        ("params.lr =! 3", "unknown operator at position 10 ('=! 3')"),
        ("params.lr = 3", "unknown operator at position 10 ('= 3')"),
        ("== 3", "missing field at position 0 ('== 3')"),
        ("params.lr >=", "missing value after '>=' at position 12"),
        ("params.lr >=   ", "missing value after '>=' at position 15"),
        ("params.lr", "missing operator after 'params.lr' at position 9"),
        ("params lr == 3", "expected an operator (== != < <= > >= ~=) at position 7 ('lr == 3')"),
        ("name ~= (abc", "invalid regex at position 8 ('(abc'): missing ), unterminated subpattern"),
        ("par@ms == 1", "invalid character '@' in field at position 3 ('@ms == 1')"),
        ("params..lr == 1", "empty path segment in field at position 6 ('..lr == 1')"),
        ("name == 'faq", "unterminated quote at position 8 (\"'faq\")"),
        ("name == 'faq' bot", "unexpected text after the quoted value at position 14 ('bot')"),
        ("   ", "empty expression"),
    ],
)
def test_bad_expressions_point_at_the_bad_part(expr, message):
    with pytest.raises(UsageError) as exc:
        parse_where(expr)
    assert message in exc.value.message
    assert exc.value.message.startswith(f"bad --where '{expr}': ")
    assert "\n" not in exc.value.message
    assert exc.value.exit_code == 2


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("params.lr == 0.001", True),
        ("params.lr == 1e-3", True),
        ("params.lr != 0.001", False),
        ("params.lr < 0.01", True),
        ("params.lr <= 0.001", True),
        ("params.lr > 0.001", False),
        ("params.lr >= 0.001", True),
        ("params.epochs > 9", True),  # numeric, not "12" < "9" as strings
        ("params.epochs == 12.0", True),
        ("params.epochs < -1", False),
    ],
)
def test_numbers_compare_numerically(expr, expected):
    assert where(expr) is expected


def test_a_string_in_a_record_is_not_a_number():
    """The one rule: the string "128" (a quoted value, or one stored before typed values) is a
    string. A number VALUE does not match it (a counted mismatch); a quoted VALUE compares
    as text or, when both parse, in version order."""
    rec = record(meta={"batch": "128"}, params={"lr": "3e-4"})
    cond = parse_where("meta.batch > 64")
    assert not cond.matches(rec)
    assert cond.mismatches == {"count": 1, "example": "128"}
    assert parse_where("meta.batch != 64").matches(rec)
    assert parse_where("meta.batch > '64'").matches(rec)  # both strings, both versions: 128 > 64
    assert not parse_where("params.lr < 0.001").matches(rec)  # the "3e-4" case
    assert not parse_where("params.lr > 0.001").matches(rec)
    assert parse_where("params.lr == '3e-4'").matches(rec)


@pytest.mark.parametrize(
    "expr, literal",
    [
        ("params.lr < 0.001", 0.001), ("params.lr < 3e-4", 0.0003), ("params.n == 1e3", 1000.0),
        ("params.n == -2", -2), ("params.n == +1", "+1"), ("params.n == .5", ".5"), ("params.n == 0755", "0755"),
        ("meta.ok == true", True), ("meta.ok == null", None), ("meta.v == '0.90'", "0.90"),
        ('meta.v == "0.90"', "0.90"), ("meta.v == abc", "abc"),
        ("version == 1.10", "1.10"), ("name == 123", "123"), ("tags == 1.0", "1.0"),
    ],
)
def test_where_values_follow_the_one_rule(expr, literal):
    got = parse_where(expr).literal
    assert got == literal and type(got) is type(literal)


def test_null_matches_missing_and_null_values():
    assert where("params.momentum == null")
    assert where("license == null", record(license=None))
    assert where("license == 'null'", record(license="null")) and not where("license == null", record(license="null"))
    assert where("meta.x == null", record(meta={"x": None}))
    assert not where("meta.framework == null")
    assert where("meta.framework != null")
    with pytest.raises(UsageError, match="null compares only with == or !="):
        parse_where("meta.x > null")


def test_a_number_value_against_a_number_record_and_a_text_value():
    cond = parse_where("params.epochs == abc")
    assert not cond.matches(record()) and cond.mismatches["count"] == 1


# ---------------------------------------------------------------- strings and regex


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("name == faq-bot", True),
        ("name == FAQ-bot", False),
        ("name != faq-bot", False),
        ("name != other", True),
        ("meta.framework > tensorflow", True),
        ("meta.framework < xgboost", True),
        ("meta.framework <= torch", True),
        ("meta.framework > jax", True),
        ("meta.framework >= torcha", False),
        ("params.optimizer.name == adamw", True),
        ("name ~= ^faq", True),
        ("name ~= bot$", True),
        ("name ~= '^bot'", False),
        ("name ~= '(?i)FAQ'", True),
        ("params.lr ~= '^0\\.00'", True),
        ("license ~= MIT|Apache", True),
    ],
)
def test_strings_and_regex(expr, expected):
    assert where(expr) is expected


# ---------------------------------------------------------------- versions


@pytest.mark.parametrize(
    "record_version, expr",
    [
        ("1.10", "version > 1.9"),
        ("1.10.0", "version > 1.9.0"),
        ("1.0.0-rc.1", "version < 1.0.0"),
        ("1.0.0-alpha", "version < 1.0.0-alpha.1"),
        ("1.0.0-alpha.beta", "version < 1.0.0-beta"),
        ("1.0.0-beta.2", "version < 1.0.0-beta.11"),
        ("1.0.0-rc.1", "version > 1.0.0-beta.11"),
        ("1.0rc1", "version < 1.0"),
        ("1.0.dev2", "version < 1.0a1"),
        ("1.0.post1", "version > 1.0"),
        ("2.0.0", "version > 1.99.0"),
        ("1.0", "version == 1.0.0"),
        ("1.0.0-rc.1", "version == 1.0rc1"),
        ("v1.2.0", "version >= 1.2"),
        ("1!0.1", "version > 99.0"),
        ("1.9", "version != 1.10"),
        ("1.10", "version <= 1.10"),
    ],
)
def test_versions_compare_in_version_order(record_version, expr):
    assert where(expr, record(version=record_version))


def test_version_looking_values_in_other_fields_compare_as_versions():
    assert where("meta.base_version > 2.0.9")
    assert where("meta.base_version < 2.1.0-rc.1") is False


def test_non_version_strings_in_the_version_field_fall_back_to_strings():
    assert where("version > alpha", record(version="beta"))


def test_version_key_orders_a_mixed_list():
    ordered = ["1.0.dev2", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.9", "1.10", "1.99.0", "2.0.0-rc.1", "2.0.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("not a version") is None
    assert version_key("") is None
    assert version_key("1.0.0-") is None


def test_version_key_agrees_with_pep440_reference_order():
    packaging_version = pytest.importorskip("packaging.version")  # test-only cross-check
    versions = [
        "0.9", "1.0.dev0", "1.0.dev1", "1.0a1.dev1", "1.0a1", "1.0a2", "1.0b1", "1.0rc1", "1.0rc1.post1",
        "1.0", "1.0.post1.dev3", "1.0.post1", "1.0.post2", "1.0.1", "1.1", "1.10", "2!0.1", "1.0+abc", "1.0+5",
    ]
    assert sorted(versions, key=version_key) == sorted(versions, key=packaging_version.Version)


# ---------------------------------------------------------------- lists, booleans, missing fields


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("tags == nlp", True),
        ("tags == vision", False),
        ("tags != vision", True),
        ("tags != nlp", False),
        ("tags ~= ^ch", True),
        ("stages == production", True),
        ("stages != archived", True),
    ],
)
def test_lists_mean_contains(expr, expected):
    assert where(expr) is expected


def test_empty_list_contains_nothing():
    rec = record(tags=[])
    assert not where("tags == nlp", rec)
    assert where("tags != nlp", rec)


@pytest.mark.parametrize(
    "archived, expr, expected",
    [
        (True, "archived == true", True),
        (True, "archived == TRUE", True),
        (False, "archived == true", False),
        (False, "archived == false", True),
        (False, "archived != true", True),
        (True, "archived ~= ^tr", True),
    ],
)
def test_booleans(archived, expr, expected):
    assert where(expr, record(archived=archived)) is expected


@pytest.mark.parametrize("op", ["==", "<", "<=", ">", ">=", "~="])
def test_missing_field_matches_nothing(op):
    assert not where(f"params.momentum {op} 0.9")
    assert not where(f"metrics.other-suite.score {op} 0.9")
    assert not where(f"license {op} MIT", record(license=None))


def test_missing_field_matches_not_equal():
    assert where("params.momentum != 0.9")
    assert where("license != MIT", record(license=None))


def test_a_mapping_is_not_a_value():
    assert not where("params.optimizer == adamw")
    assert where("params.optimizer != adamw")


# ---------------------------------------------------------------- dotted metric suites


def test_metric_suites_with_dots_and_dashes_resolve_greedily():
    assert where("metrics.core-v1.2.score == 0.91")
    assert where("metrics.core-v1.2.f1.macro >= 0.8")
    assert where("metrics.core.score == 0.5")  # the shorter suite name is still reachable


def test_resolution_backtracks_when_the_longest_key_leads_nowhere():
    rec = record(metrics={"a.b": {"x": 1}, "a": {"b": {"y": 2}}})
    assert where("metrics.a.b.x == 1", rec)
    assert where("metrics.a.b.y == 2", rec)


# ---------------------------------------------------------------- sorting


def records_with(field_values):
    return [record(name=f"m{i}", **fv) for i, fv in enumerate(field_values)]


def names(recs):
    return [r["name"] for r in recs]


def test_sort_by_version_ascending_and_descending():
    versions = ["1.10.0", "1.9.0", "1.0.0-rc.1", "2.0.0", "1.0.0"]
    recs = records_with([{"version": v} for v in versions])
    assert [r["version"] for r in sorted(recs, key=sort_key("version"))] == [
        "1.0.0-rc.1", "1.0.0", "1.9.0", "1.10.0", "2.0.0"
    ]
    assert [r["version"] for r in sorted(recs, key=sort_key("-version"))] == [
        "2.0.0", "1.10.0", "1.9.0", "1.0.0", "1.0.0-rc.1"
    ]


def test_sort_by_metric_puts_missing_values_last_in_both_directions():
    recs = records_with([
        {"metrics": {"core-v1.2": {"score": 0.7}}},
        {"metrics": {}},
        {"metrics": {"core-v1.2": {"score": 0.95}}},
        {"metrics": {"core-v1.2": {"score": 0.8}}},
    ])
    assert names(sorted(recs, key=sort_key("metrics.core-v1.2.score"))) == ["m0", "m3", "m2", "m1"]
    assert names(sorted(recs, key=sort_key("-metrics.core-v1.2.score"))) == ["m2", "m3", "m0", "m1"]


def test_sort_numbers_numerically_and_strings_as_strings():
    recs = records_with([{"params": {"epochs": 100}}, {"params": {"epochs": 9}}, {"params": {"epochs": 20}}])
    assert [r["params"]["epochs"] for r in sorted(recs, key=sort_key("params.epochs"))] == [9, 20, 100]
    recs = records_with([{"license": "MIT"}, {"license": None}, {"license": "Apache-2.0"}])
    assert [r["license"] for r in sorted(recs, key=sort_key("license"))] == ["Apache-2.0", "MIT", None]


def test_sort_is_stable_for_equal_values():
    recs = records_with([{"archived": False}, {"archived": True}, {"archived": False}])
    assert names(sorted(recs, key=sort_key("archived"))) == ["m0", "m2", "m1"]
    assert names(sorted(recs, key=sort_key("-archived"))) == ["m1", "m0", "m2"]


@pytest.mark.parametrize("spec, message", [("", "missing field"), ("-", "missing field"), ("-par@ms", "invalid character '@'")])
def test_bad_sort_field(spec, message):
    with pytest.raises(UsageError) as exc:
        sort_key(spec)
    assert message in exc.value.message
    assert exc.value.message.startswith(f"bad --sort '{spec}'")
