"""Stage rules, gates, overrides, demotion, retention and the policy section of config.yaml."""

from __future__ import annotations

import json

import pytest

from _policy_support import Cli, log_lines, make_registry, snapshot
from modelreg.errors import PolicyRefused, UsageError
from modelreg.policy import lookup, parse, parse_threshold

GATES = """\
policy:
  gates:
    production:
      require_suites: [core-v1]
      thresholds: {"core-v1.score": ">= 0.85", "latency.p95_ms": "<= 200"}
      not_worse_than_current: {"core-v1.score": higher, "latency.p95_ms": lower}
      require_approvals: 2
"""


@pytest.fixture(autouse=True)
def actor(monkeypatch):
    monkeypatch.setenv("MODELREG_ACTOR", "alice")


def registry(tmp_path, tail="", stages=("staging", "production"), versions=("1", "2", "3")):
    reg = make_registry(tmp_path, tail, stages)
    for v in versions:
        reg.register("bot", v)
    return reg


def good(reg, version, score=0.9, p95=150, approvers=("bob", "carol")):
    reg.set_metrics(f"bot@{version}", "core-v1", {"score": score})
    reg.set_metrics(f"bot@{version}", "latency", {"p95_ms": p95})
    for a in approvers:
        reg.approve(f"bot@{version}", "production", actor=a)


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("tail, needle", [
    ("policy: {gatez: {}}\n", "policy.gatez: unknown key"),
    ("policy: {gates: {production: {treshold: {}}}}\n", "policy.gates.production.treshold: unknown gate"),
    ("policy: {gates: {production: {thresholds: {core.score: '>> 1'}}}}\n",
     "policy.gates.production.thresholds.core.score: '>> 1' is not 'OP NUMBER'"),
    ("policy: {gates: {production: {thresholds: {core.score: '>= abc'}}}}\n", "'abc' is not a number"),
    ("policy: {gates: {production: {thresholds: {score: '>= 1'}}}}\n", "'score' is not a metric path SUITE.KEY"),
    ("policy: {gates: {production: {not_worse_than_current: {core.score: up}}}}\n",
     "policy.gates.production.not_worse_than_current.core.score: 'up' must be 'higher' or 'lower'"),
    ("policy: {gates: {production: {require_approvals: -1}}}\n", "policy.gates.production.require_approvals"),
    ("policy: {gates: {production: {require_approvals: true}}}\n", "must be a non-negative integer"),
    ("policy: {gates: {production: {require_suites: core}}}\n", "require_suites: must be a list"),
    ("policy: {gates: {canary: {}}}\n", "policy.gates.canary: 'canary' is not a declared stage"),
    ("policy: {require_previous_stage: {production: qa}}\n", "policy.require_previous_stage.production: 'qa'"),
    ("policy: {demote_to: {production: production}}\n", "cannot demote to itself"),
    ("policy: [1]\n", "policy: must be a mapping"),
])
def test_bad_policy_is_a_usage_error_naming_the_key(tmp_path, capsys, tail, needle):
    reg = registry(tmp_path, tail)
    code, _, err = Cli(reg, capsys)("check", "bot@1", "staging")
    assert code == 2
    assert needle in err and err.count("\n") == 1


def test_defaults_and_policy_show(tmp_path, capsys):
    reg = registry(tmp_path)
    data = Cli(reg, capsys).json("policy", "show")
    assert data == {"format": 1, "stages": ["staging", "production"],
                    "policy": {"require_previous_stage": {"production": ["staging"]},
                               "demote_to": {"production": "staging"}, "gates": {},
                               "retention": {"keep": None, "auto": False, "purge_after_days": None}},
                    "artifact_store": None, "storage_options": {}}
    # a custom stage list without staging/production drops the defaults instead of failing
    assert parse(None, ("dev", "prod")).require_previous_stage == {}


def test_threshold_syntax_and_metric_paths():
    assert parse_threshold(">= 0.85") == (">=", 0.85)
    assert parse_threshold("<200") == ("<", 200.0)
    assert parse_threshold(" != 1 ") == ("!=", 1.0)
    with pytest.raises(UsageError):
        parse_threshold("= 1")
    metrics = {"core": {"v2.score": 0.1, "score": 0.2}, "core.v2": {"score": 0.9}, "lat": {"p": {"95": 3}}}
    assert lookup(metrics, "core.v2.score") == (True, 0.9)  # the longest existing suite prefix wins
    assert lookup(metrics, "core.score") == (True, 0.2)
    assert lookup(metrics, "lat.p.95") == (True, 3)
    assert lookup(metrics, "core.v2.f1") == (False, None)
    assert lookup(metrics, "nope.x") == (False, None)


# ----------------------------------------------------------------- rules
def test_production_requires_staging_first(tmp_path, capsys):
    reg = registry(tmp_path)
    cli = Cli(reg, capsys)
    before = snapshot(reg)
    code, _, err = cli("promote", "bot@1", "production")
    assert code == 5
    assert "require_previous_stage staging: never was in staging; promote it to staging first" in err
    assert "FAIL" in err  # the gate table goes to stderr
    assert snapshot(reg) == before
    assert cli("promote", "bot@1", "staging")[0] == 0
    assert cli("promote", "bot@1", "production")[0] == 0
    # it still counts after staging moved on
    assert cli("promote", "bot@2", "staging")[0] == 0
    assert reg.check("bot@1", "production").passed


def test_previous_stage_rule_can_be_relaxed(tmp_path, capsys):
    reg = registry(tmp_path, "policy: {require_previous_stage: {}}\n")
    assert Cli(reg, capsys)("promote", "bot@1", "production")[0] == 0


def test_archived_never_promoted_even_forced(tmp_path, capsys):
    reg = registry(tmp_path)
    cli = Cli(reg, capsys)
    reg.archive("bot@1", reason="bad")
    code, _, err = cli("promote", "bot@1", "staging", "--force", "--reason", "please")
    assert code == 5 and "archived and cannot be promoted" in err
    report = cli("check", "bot@1", "staging", "--json")
    assert report[0] == 5 and '"gate": "not_archived"' in report[1]


def test_archive_of_staged_version_needs_force(tmp_path, capsys):
    reg = registry(tmp_path)
    cli = Cli(reg, capsys)
    reg.promote("bot@1", "staging")
    code, _, err = cli("archive", "bot@1")
    assert code == 5 and "holds staging" in err
    assert cli("archive", "bot@1", "--force", "--reason", "withdrawn")[0] == 0
    clear, archive = log_lines(reg, "bot")[-2:]
    assert (clear["action"], clear["stage"], clear["to"], clear["reason"]) == ("clear", "staging", None, "withdrawn")
    assert archive["data"] == {"forced": True, "cleared": ["staging"]}
    assert reg.stage_holders("bot") == {}


def test_cas_is_checked_before_gates(tmp_path, capsys):
    reg = registry(tmp_path, GATES)
    reg.promote("bot@1", "staging")
    code, _, err = Cli(reg, capsys)("promote", "bot@1", "production", "--expect", "2")
    assert code == 4 and "expected" in err


# ----------------------------------------------------------------- gates
def test_each_gate_passes_and_fails(tmp_path, capsys):
    reg = registry(tmp_path, GATES)
    cli = Cli(reg, capsys)
    reg.promote("bot@1", "staging")
    code, out, _ = cli("check", "bot@1", "production", "--json")
    data = json.loads(out)
    assert code == 5 and data["passed"] is False and data["current"] is None
    failed = {(r["gate"], r["subject"]) for r in data["results"] if not r["passed"]}
    assert failed == {("require_suites", "core-v1"), ("thresholds", "core-v1.score"),
                      ("thresholds", "latency.p95_ms"), ("require_approvals", "production")}

    reg.set_metrics("bot@1", "core-v1", {"score": 0.84})
    reg.set_metrics("bot@1", "latency", {"p95_ms": "fast"})
    r = {(x.gate, x.subject): x for x in reg.check("bot@1", "production").results}
    assert r[("require_suites", "core-v1")].passed
    assert not r[("thresholds", "core-v1.score")].passed and r[("thresholds", "core-v1.score")].actual == 0.84
    assert 'key p95_ms of suite latency is the string "fast", not a number' in r[("thresholds", "latency.p95_ms")].message

    good(reg, "1", score=0.85, p95=200)  # boundaries pass (>= and <=)
    code, out, err = cli("check", "bot@1", "production")
    assert code == 0, out + err
    assert "require_approvals" in out and "pass" in out


def test_approvals_count_distinct_actors(tmp_path):
    reg = registry(tmp_path, "policy: {gates: {staging: {require_approvals: 2}}}\n")
    reg.approve("bot@1", "staging")
    reg.approve("bot@1", "staging")  # alice twice: one approval
    reg.approve("bot@1", "production", actor="bob")  # another stage: does not count
    result = [x for x in reg.check("bot@1", "staging").results if x.gate == "require_approvals"][0]
    assert (result.passed, result.actual) == (False, 1)
    reg.approve("bot@1", "staging", actor="bob")
    assert reg.check("bot@1", "staging").passed


def test_not_worse_than_current_higher_and_lower(tmp_path, capsys):
    reg = registry(tmp_path, GATES)
    cli = Cli(reg, capsys)
    reg.promote("bot@1", "staging")
    good(reg, "1", score=0.9, p95=150)
    reg.promote("bot@1", "production")
    good(reg, "2", score=0.89, p95=150)
    reg.promote("bot@2", "staging")
    code, out, err = cli("check", "bot@2", "production", "--json")
    results = {(x["gate"], x["subject"]): x for x in json.loads(out)["results"]}
    assert code == 5
    worse = results[("not_worse_than_current", "core-v1.score")]
    assert worse["passed"] is False and worse["actual"] == 0.89 and worse["expected"] == ">= 0.9"
    assert results[("not_worse_than_current", "latency.p95_ms")]["passed"] is True
    reg.set_metrics("bot@2", "core-v1", {"score": 0.9})  # equal is not worse
    reg.set_metrics("bot@2", "latency", {"p95_ms": 151})  # lower is better: worse
    r = {(x.gate, x.subject): x for x in reg.check("bot@2", "production").results}
    assert r[("not_worse_than_current", "core-v1.score")].passed
    assert not r[("not_worse_than_current", "latency.p95_ms")].passed


def test_not_worse_skips_when_a_value_is_missing(tmp_path):
    reg = registry(tmp_path, "policy: {gates: {production: {not_worse_than_current: {core.score: higher}}}}\n")
    reg.promote("bot@1", "staging")
    reg.promote("bot@1", "production")
    reg.promote("bot@2", "staging")
    reg.set_metrics("bot@2", "core", {"score": 0.1})
    result = [x for x in reg.check("bot@2", "production").results if x.gate == "not_worse_than_current"][0]
    assert result.passed and "missing on 1" in result.message


def test_refused_promote_changes_nothing_and_json_report(tmp_path, capsys):
    reg = registry(tmp_path, GATES)
    reg.promote("bot@1", "staging")
    before = snapshot(reg)
    code, out, err = Cli(reg, capsys)("promote", "bot@1", "production", "--json")
    assert code == 5 and json.loads(out)["passed"] is False
    assert err.startswith("modelreg: error: bot@1 fails 4 gate(s) for production")
    assert snapshot(reg) == before
    with pytest.raises(PolicyRefused) as exc:
        reg.promote("bot@1", "production")
    assert exc.value.exit_code == 5 and len(exc.value.report.failed) == 4


def test_force_needs_reason_and_is_recorded(tmp_path, capsys):
    reg = registry(tmp_path, GATES)
    cli = Cli(reg, capsys)
    reg.promote("bot@1", "staging")
    code, _, err = cli("promote", "bot@1", "production", "--force")
    assert code == 2 and "--force needs --reason" in err
    code, _, err = cli("promote", "bot@1", "production", "--force", "--reason", "hotfix INC-42", "--actor", "oncall")
    assert code == 0, err
    ev = log_lines(reg, "bot")[-1]
    assert ev["action"] == "promote" and ev["actor"] == "oncall" and ev["reason"] == "hotfix INC-42"
    assert ev["data"]["forced"] is True
    assert {g["gate"] for g in ev["data"]["failed_gates"]} == {"require_suites", "thresholds", "require_approvals"}
    _, out, _ = cli("log", "bot", "-n", "1")
    assert "[forced]" in out and "# hotfix INC-42" in out
    with pytest.raises(UsageError):
        reg.promote("bot@2", "staging", force=True)


# --------------------------------------------------------------- demotion
def test_demotion_is_its_own_event_after_the_promote(tmp_path):
    reg = registry(tmp_path)
    reg.promote("bot@1", "staging")
    reg.promote("bot@1", "production")
    reg.promote("bot@2", "staging")
    move = reg.promote("bot@2", "production")
    assert [e.action for e in move.events] == ["promote", "demote"]
    assert reg.resolve("bot@staging").version == "1" and reg.resolve("bot@production").version == "2"
    promote, demote = log_lines(reg, "bot")[-2:]
    assert (promote["action"], demote["action"]) == ("promote", "demote")
    d1, d2 = reg.resolve("bot@1").digest, reg.resolve("bot@2").digest
    assert (demote["stage"], demote["version"], demote["from"], demote["to"]) == ("staging", "1", d2, d1)
    assert demote["data"] == {"replaced_in": "production", "by": promote["id"]}


def test_demotion_can_be_turned_off(tmp_path):
    reg = registry(tmp_path, "policy: {demote_to: {}}\n")
    reg.promote("bot@1", "staging")
    reg.promote("bot@1", "production")
    reg.promote("bot@2", "staging")
    assert [e.action for e in reg.promote("bot@2", "production").events] == ["promote"]
    assert reg.resolve("bot@staging").version == "2"


def test_rollback_runs_no_gates(tmp_path, capsys):
    reg = registry(tmp_path, GATES)
    reg.promote("bot@1", "staging")
    good(reg, "1")
    reg.promote("bot@1", "production")
    reg.promote("bot@2", "staging")
    good(reg, "2", score=0.95)
    reg.promote("bot@2", "production")
    (reg.path / "config.yaml").write_text(  # tighten the gates: v1 would fail them now
        "format: 1\nstages: [staging, production]\n" + GATES.replace(">= 0.85", ">= 0.99"))
    cli = Cli(reg, capsys)  # each command reopens the registry, so it reads the new config
    assert cli("check", "bot@1", "production")[0] == 5
    code, _, err = cli("rollback", "bot", "production", "--reason", "latency spike")
    assert code == 0, err
    assert reg.resolve("bot@production").version == "1"
    ev = log_lines(reg, "bot")[-1]
    assert ev["action"] == "rollback" and ev["reason"] == "latency spike"
    assert set(ev["data"]) == {"undoes"}  # no forced, no failed gates: nothing was evaluated


# ---------------------------------------------------------- custom stages
def test_custom_stage_canary(tmp_path, capsys):
    tail = ("policy:\n  require_previous_stage: {canary: staging, production: canary}\n"
            "  gates:\n    canary: {thresholds: {\"core-v1.score\": \">= 0.5\"}}\n")
    reg = registry(tmp_path, tail, stages=("staging", "canary", "production"))
    cli = Cli(reg, capsys)
    assert cli("promote", "bot@1", "staging")[0] == 0
    code, _, err = cli("promote", "bot@1", "canary")
    assert code == 5 and "core-v1.score not recorded" in err
    cli("metrics", "set", "bot@1", "--suite", "core-v1", "score=0.7")
    assert cli("promote", "bot@1", "canary")[0] == 0
    assert cli("approve", "bot@1", "--stage", "canary")[0] == 0
    assert cli("promote", "bot@1", "production")[0] == 0
    assert cli.json("show", "bot@1")["stages"] == ["staging", "canary", "production"]
    code, _, err = cli("promote", "bot@2", "production")
    assert code == 5 and "never was in canary" in err


def test_undeclared_stage_is_a_usage_error(tmp_path, capsys):
    reg = registry(tmp_path)
    code, _, err = Cli(reg, capsys)("promote", "bot@1", "canary")
    assert code == 2 and "unknown stage 'canary'" in err


# -------------------------------------------------------------- retention
def test_prune_dry_run_changes_nothing(tmp_path, capsys):
    reg = registry(tmp_path, versions=("1", "2", "3", "4", "5"))
    cli = Cli(reg, capsys)
    reg.promote("bot@1", "staging")
    before = snapshot(reg)
    code, out, err = cli("prune", "bot", "--keep", "2")
    assert code == 0 and out.split() == ["2", "3"] and "would archive 2" in err
    assert snapshot(reg) == before


def test_prune_never_touches_staged_and_ignores_archived(tmp_path, capsys):
    reg = registry(tmp_path, versions=("1", "2", "3", "4", "5", "6"))
    cli = Cli(reg, capsys)
    reg.promote("bot@2", "staging")
    reg.promote("bot@2", "production")
    reg.promote("bot@1", "staging")
    reg.archive("bot@6")
    data = cli.json("prune", "bot", "--keep", "2", "--apply")
    # unarchived newest first: 5, 4 kept; 3 archived; 2 and 1 hold stages; 6 was archived already
    assert [r["version"] for r in data["archived"]] == ["3"] and data["applied"] is True
    states = {v.version: v.archived for v in reg.versions("bot")}
    assert states == {"1": False, "2": False, "3": True, "4": False, "5": False, "6": True}
    ev = log_lines(reg, "bot")[-1]
    assert ev["action"] == "archive" and ev["version"] == "3" and ev["reason"] == "pruned: keep 2"
    assert reg.prune("bot", 0) == [reg.resolve("bot@4"), reg.resolve("bot@5")]
    assert cli("prune", "bot", "--keep", "-1")[0] == 2
    assert cli("prune", "nobody", "--keep", "1")[0] == 3


def test_stats(tmp_path, capsys):
    reg = registry(tmp_path)
    reg.register("other", "1")
    reg.promote("bot@1", "staging")
    reg.archive("bot@3")
    data = Cli(reg, capsys).json("stats")
    assert data["models"] == 2 and data["versions"] == 4 and data["archived"] == 1
    assert data["stages"] == {"staging": 1, "production": 0}
    assert data["size_bytes"] > 0
    code, out, _ = Cli(reg, capsys)("stats")
    assert code == 0 and "versions:  4 (1 archived, 0 purged)" in out
