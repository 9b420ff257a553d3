"""--record-noop: a transition to what a stage already holds writes nothing, unless asked to record it."""

from __future__ import annotations

import json

import pytest
from conftest import log_lines, snapshot

MODEL = "m"


@pytest.fixture
def held(cli, project):
    for v in ("1", "2"):
        assert cli("register", MODEL, v)[0] == 0
    assert cli("promote", f"{MODEL}@1", "production")[0] == 0
    assert cli("promote", f"{MODEL}@2", "production")[0] == 0
    return project


def test_without_the_flag_nothing_is_written(cli, held):
    before = snapshot(held / ".modelreg")
    code, out, err = cli("promote", f"{MODEL}@2", "production", "--json")
    assert code == 0 and json.loads(out)["changed"] is False and json.loads(out)["events"] == []
    assert cli("clear", MODEL, "staging", "--reason", "x")[0] == 0
    assert cli("rollback", MODEL, "production", "--to", "2")[0] == 0
    assert snapshot(held / ".modelreg") == before


def test_with_the_flag_a_noop_event_is_recorded(cli, held):
    digest = cli("resolve", f"{MODEL}@2", "--digest")[1].strip()
    code, out, err = cli("promote", f"{MODEL}@2", "production", "--record-noop", "--reason", "re-run", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["changed"] is False and len(doc["events"]) == 1
    ev = log_lines(held, MODEL)[-1]
    assert (ev["action"], ev["stage"], ev["version"], ev["from"], ev["to"], ev["reason"]) == (
        "noop", "production", "2", digest, digest, "re-run")
    assert ev["data"] == {"command": "promote"} and "prev" not in ev
    code, _, err = cli("promote", f"{MODEL}@2", "production", "--record-noop")
    assert code == 0 and "nothing changed (recorded a noop event)" in err
    assert cli("clear", MODEL, "staging", "--reason", "drill", "--record-noop")[0] == 0
    assert log_lines(held, MODEL)[-1]["data"] == {"command": "clear"} and log_lines(held, MODEL)[-1]["to"] is None
    assert cli("rollback", MODEL, "production", "--to", "2", "--record-noop")[0] == 0
    assert log_lines(held, MODEL)[-1]["data"] == {"command": "rollback"}
    # a noop is not a move: rollback still undoes the last real move, and fsck is content
    code, out, _ = cli("rollback", MODEL, "production", "--json")
    assert code == 0 and json.loads(out)["to"]["version"] == "1"
    assert cli("fsck")[0] == 0
    code, out, _ = cli("log", MODEL, "--stage", "production")
    assert "noop" in out and "already held" in out
    # a change is never recorded as a noop
    code, out, _ = cli("promote", f"{MODEL}@2", "production", "--record-noop", "--json")
    assert json.loads(out)["changed"] is True and log_lines(held, MODEL)[-1]["action"] == "promote"


def test_library(reg):
    reg.register(MODEL, "1")
    reg.promote(f"{MODEL}@1", "staging")
    move = reg.promote(f"{MODEL}@1", "staging", record_noop=True)
    assert not move.changed and [e.action for e in move.events] == ["noop"]
    assert reg.undo_stack(MODEL, "staging")[-1].action == "promote"
