"""Auto-demotion never evicts the staging candidate silently (docs/policy.md, "Demotion").

1.0.0 is in production, 2.0.0 is the staging candidate, 3.0.0 (staged earlier) is promoted to
production: demoting 1.0.0 into staging would take 2.0.0's place, so the promotion is refused
unless the caller says which way: --no-demote, --replace-staging or --expect-staging VERSION.
"""

from __future__ import annotations

import json

import pytest
from _policy_support import Cli, log_lines, make_registry, snapshot

from modelreg.errors import Conflict, UsageError


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELREG_ACTOR", "oncall")
    reg = make_registry(tmp_path)  # default policy: staging before production, production demotes to staging
    for v in ("1.0.0", "2.0.0", "3.0.0"):
        reg.register("m", v)
    reg.promote("m@1.0.0", "staging")
    reg.promote("m@1.0.0", "production")
    reg.promote("m@3.0.0", "staging")  # 3.0.0 was staged earlier ...
    reg.promote("m@2.0.0", "staging")  # ... 2.0.0 is the candidate now
    return reg


def stages(reg):
    return {s: reg.resolve(f"m@{s}").version for s in reg.stage_holders("m")}


def test_default_refuses_naming_the_candidate_and_the_ways_on(reg, capsys):
    before = snapshot(reg)
    code, out, err = Cli(reg, capsys)("promote", "m@3.0.0", "production", "--json")
    assert code == 4 and err.count("\n") == 1
    for word in ("2.0.0", "1.0.0", "--no-demote", "--replace-staging", "--expect-staging 2.0.0"):
        assert word in err
    error = json.loads(out)["error"]
    assert error["code"] == 4 and error["candidate"]["version"] == "2.0.0" and error["demoted"]["version"] == "1.0.0"
    assert error["demote_stage"] == "staging" and "--no-demote" in error["options"]
    assert snapshot(reg) == before
    with pytest.raises(Conflict, match="evict the staging candidate 2.0.0"):
        reg.promote("m@3.0.0", "production")


def test_no_demote_keeps_the_candidate_and_says_so(reg, capsys):
    code, out, err = Cli(reg, capsys)("promote", "m@3.0.0", "production", "--no-demote")
    assert code == 0, err
    assert "1.0.0 -> 3.0.0" in err and "--no-demote" in err and "1.0.0 left production" in err
    assert stages(reg) == {"staging": "2.0.0", "production": "3.0.0"}
    assert log_lines(reg, "m")[-1]["action"] == "promote"


def test_replace_staging_evicts_with_its_own_event_and_line(reg, capsys):
    code, out, err = Cli(reg, capsys)("promote", "m@3.0.0", "production", "--replace-staging", "--json")
    assert code == 0, err
    move = json.loads(out)
    promote, demote = move["events"]
    assert demote["action"] == "demote" and demote["from"] == reg.resolve("m@2.0.0").digest
    assert demote["data"]["by"] == promote["id"]
    assert stages(reg) == {"staging": "1.0.0", "production": "3.0.0"}
    assert cli_text(reg, capsys, "rollback", "m", "staging") == "Rolled back m@staging: 1.0.0 -> 2.0.0"


def cli_text(reg, capsys, *args):
    code, _, err = Cli(reg, capsys)(*args)
    assert code == 0, err
    return err.strip().splitlines()[0]


def test_text_output_names_every_stage_it_changes(reg, capsys):
    code, out, err = Cli(reg, capsys)("promote", "m@3.0.0", "production", "--replace-staging")
    assert code == 0
    assert "Promoted m@production: 1.0.0 -> 3.0.0" in err
    assert "Demoted m@1.0.0 to staging (replacing 2.0.0)" in err


def test_expect_staging_is_a_compare_and_swap_on_the_demotion_stage(reg, capsys):
    cli = Cli(reg, capsys)
    before = snapshot(reg)
    code, out, err = cli("promote", "m@3.0.0", "production", "--expect-staging", "3.0.0", "--json")
    assert code == 4 and "staging holds 2.0.0" in err and json.loads(out)["error"]["option"] == "--expect-staging"
    assert snapshot(reg) == before
    assert cli("promote", "m@3.0.0", "production", "--expect", "1.0.0", "--expect-staging", "2.0.0")[0] == 0
    assert stages(reg) == {"staging": "1.0.0", "production": "3.0.0"}


def test_conflicting_options_are_usage_errors(reg, capsys):
    cli = Cli(reg, capsys)
    before = snapshot(reg)
    assert cli("promote", "m@3.0.0", "production", "--no-demote", "--replace-staging")[0] == 2
    assert cli("promote", "m@3.0.0", "production", "--no-demote", "--expect-staging", "2.0.0")[0] == 2
    assert cli("promote", "m@2.0.0", "staging", "--expect-staging", "2.0.0")[0] == 2  # staging demotes nothing
    assert snapshot(reg) == before
    with pytest.raises(UsageError):
        reg.promote("m@3.0.0", "production", demote=False, replace_staging=True)


def test_promoting_the_candidate_itself_demotes_as_before(reg):
    move = reg.promote("m@2.0.0", "production")  # staging's candidate goes up; 1.0.0 takes its place
    assert [e.action for e in move.events] == ["promote", "demote"]
    assert stages(reg) == {"staging": "1.0.0", "production": "2.0.0"}


def test_library_options(reg):
    move = reg.promote("m@3.0.0", "production", expect="1.0.0", expect_staging="2.0.0")
    assert [e.action for e in move.events] == ["promote", "demote"] and move.notes == []
    reg.rollback("m", "production")  # 1.0.0 back in production; staging still 1.0.0 (a demotion is its own move)
    reg.promote("m@2.0.0", "staging")
    move = reg.promote("m@3.0.0", "production", demote=False)
    assert [e.action for e in move.events] == ["promote"] and "left production" in move.notes[0]
