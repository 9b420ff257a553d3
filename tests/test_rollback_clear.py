"""Incident levers, through the CLI and the library: rollback as an undo stack, clear, archived versions.

Each test states one rule of docs/policy.md ("Rollback", "Clear", "Archived versions") and checks
exit codes, --json, the ref files and the log lines on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ACTOR, log_lines, snapshot

import modelreg
from modelreg.errors import Conflict, NotFound, UsageError
from modelreg.log import Event
from modelreg.registry import Registry

MODEL = "m"


def ref_path(project: Path, stage: str) -> Path:
    return project / ".modelreg" / "refs" / MODEL / stage


def holds(project: Path, stage: str) -> str | None:
    p = ref_path(project, stage)
    return p.read_text().strip() if p.exists() else None


@pytest.fixture
def releases(cli, project) -> dict[str, str]:
    """Versions 1.0.0 .. 1.3.0 registered; production moved 1.0.0 -> 1.1.0 -> 1.2.0. Returns version -> digest."""
    digests = {}
    for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
        code, out, err = cli("register", MODEL, v, "-p", f"release={v}")
        assert code == 0, err
        digests[v] = out.strip()
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        assert cli("promote", f"{MODEL}@{v}", "production")[0] == 0
    return digests


# ------------------------------------------------------------------ rollback walks back
def test_rollback_twice_walks_back_and_never_redeploys(cli, project, releases):
    code, out, err = cli("rollback", MODEL, "production", "--reason", "INC-1 error rate", "--json")
    assert code == 0, err
    move = json.loads(out)
    assert (move["from"]["version"], move["to"]["version"], move["changed"]) == ("1.2.0", "1.1.0", True)
    assert holds(project, "production") == releases["1.1.0"]
    first = log_lines(project, MODEL)[-1]
    promote_12 = [e for e in log_lines(project, MODEL) if e["action"] == "promote" and e["version"] == "1.2.0"][0]
    assert first["action"] == "rollback" and first["data"] == {"undoes": [promote_12["id"]]}
    assert first["prev"] == promote_12["id"]  # linked to the move it followed

    code, out, err = cli("rollback", MODEL, "production", "--reason", "INC-1 still bad")
    assert code == 0, err
    assert out.strip() == releases["1.0.0"] and "1.1.0 -> 1.0.0" in err  # not back to 1.2.0
    assert holds(project, "production") == releases["1.0.0"]

    # production was empty before 1.0.0: nothing left to undo, and rollback never empties a stage
    before = snapshot(project / ".modelreg")
    code, out, err = cli("rollback", MODEL, "production")
    assert code == 3 and out == "" and err.count("\n") == 1
    assert "--to VERSION" in err and f"modelreg clear {MODEL} production" in err
    assert snapshot(project / ".modelreg") == before


def test_after_a_new_promote_rollback_returns_to_the_value_before_it(cli, project, releases):
    assert cli("rollback", MODEL, "production")[0] == 0  # 1.1.0
    assert cli("rollback", MODEL, "production")[0] == 0  # 1.0.0
    assert cli("promote", f"{MODEL}@1.3.0", "production")[0] == 0
    code, _, err = cli("rollback", MODEL, "production")
    assert code == 0 and "1.3.0 -> 1.0.0" in err
    assert holds(project, "production") == releases["1.0.0"]


def test_rollback_to_rewinds_the_stack_to_that_version(cli, project, releases):
    code, _, err = cli("rollback", MODEL, "production", "--to", "1.0.0")
    assert code == 0 and "1.2.0 -> 1.0.0" in err
    assert len(log_lines(project, MODEL)[-1]["data"]["undoes"]) == 2  # the moves to 1.2.0 and to 1.1.0
    code, _, err = cli("rollback", MODEL, "production")  # below 1.0.0 there is nothing
    assert code == 3
    # --to a version production never held there jumps outside the history: nothing left to undo after it
    assert cli("promote", f"{MODEL}@1.2.0", "production")[0] == 0
    assert cli("rollback", MODEL, "production", "--to", "1.3.0")[0] == 0
    assert cli("rollback", MODEL, "production")[0] == 3
    assert holds(project, "production") == releases["1.3.0"]


def test_rollback_expect_is_a_compare_and_swap(cli, project, releases):
    before = snapshot(project / ".modelreg")
    for stale in ("1.1.0", "none"):
        code, out, err = cli("rollback", MODEL, "production", "--expect", stale, "--json")
        assert code == 4, err
        error = json.loads(out)["error"]
        assert error["code"] == 4 and "1.2.0" in error["message"]
        assert error["actual"]["version"] == "1.2.0" and error["stage"] == "production"
    assert snapshot(project / ".modelreg") == before
    assert cli("rollback", MODEL, "production", "--expect", "1.2.0")[0] == 0
    assert cli("rollback", MODEL, "production", "--expect", releases["1.1.0"][:20])[0] == 0  # a digest prefix
    assert holds(project, "production") == releases["1.0.0"]


def test_rollback_of_an_empty_stage_is_not_found(cli, project, releases):
    code, out, err = cli("rollback", MODEL, "staging", "--json")
    assert code == 3 and json.loads(out)["error"]["code"] == 3
    assert "nothing left to undo" in err and "--to VERSION" in err


def test_rollback_refuses_when_the_ref_moved_without_an_event(cli, project, releases, reg):
    # an interrupted write: the ref says 1.3.0, the log's last move says 1.2.0
    ref_path(project, "production").write_text(releases["1.3.0"] + "\n")
    before = snapshot(project / ".modelreg")
    code, _, err = cli("rollback", MODEL, "production")
    assert code == 4 and "fsck --repair" in err and "1.3.0" in err
    assert snapshot(project / ".modelreg") == before
    assert cli("fsck", "--repair")[0] == 0  # records the move as a reconcile ...
    code, _, err = cli("rollback", MODEL, "production")  # ... which rollback then undoes
    assert code == 0 and "1.3.0 -> 1.2.0" in err


def test_rollback_undoes_a_demotion_in_the_stage_it_moved(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELREG_ACTOR", "oncall")
    reg = Registry.init(tmp_path)  # default policy: production demotes to staging
    for v in ("1", "2"):
        reg.register(MODEL, v)
    reg.promote(f"{MODEL}@1", "staging")
    reg.promote(f"{MODEL}@1", "production")
    reg.promote(f"{MODEL}@2", "staging")
    move = reg.promote(f"{MODEL}@2", "production")
    assert [e.action for e in move.events] == ["promote", "demote"]
    assert reg.resolve(f"{MODEL}@staging").version == "1"
    back = reg.rollback(MODEL, "staging")  # undoes the demote: staging held 2 before it
    assert (back.from_.version, back.to.version) == ("1", "2")
    assert [e.id for e in reg.undo_stack(MODEL, "staging")] == [e.id for e in reg.events(MODEL, "staging")[:2]]


def test_library_rollback_is_the_same_rule(reg):
    for v in ("1", "2", "3"):
        reg.register(MODEL, v)
        reg.promote(f"{MODEL}@{v}", "production")
    assert [e.version for e in reg.undo_stack(MODEL, "production")] == ["1", "2", "3"]
    assert reg.rollback(MODEL, "production").to.version == "2"
    assert reg.rollback(MODEL, "production", expect="2").to.version == "1"
    with pytest.raises(NotFound, match="clear"):
        reg.rollback(MODEL, "production")
    with pytest.raises(Conflict):
        reg.rollback(MODEL, "production", to="3", expect="2")
    assert [e.version for e in reg.undo_stack(MODEL, "production")] == ["1"]


def test_rollbacks_written_before_undoes_existed_still_fold(reg, project):
    """An older modelreg wrote rollbacks without data.undoes and moves without prev (its rule:
    back to the ``from`` of the latest move to the current value): the stack reads them too."""
    d = {v: reg.register(MODEL, v).version.digest for v in ("1", "2", "3")}
    log = project / ".modelreg" / "logs" / f"{MODEL}.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    t = lines[-1]["time"][:-8]

    def old(action: str, version: str, frm: str | None, to: str, n: int) -> dict:
        return {"id": f"{n:016x}00000000", "time": f"{t}0{n}.000000Z", "actor": "old", "action": action,
                "model": MODEL, "version": version, "stage": "production", "from": frm, "to": to,
                "reason": None, "data": {}}

    moves = [old("promote", "1", None, d["1"], 1), old("promote", "2", d["1"], d["2"], 2),
             old("promote", "3", d["2"], d["3"], 3), old("rollback", "2", d["3"], d["2"], 4),
             old("rollback", "3", d["2"], d["3"], 5)]  # the old rule's re-deploy of 3
    log.write_text(log.read_text() + "".join(json.dumps(m) + "\n" for m in moves))
    (project / ".modelreg" / "refs" / MODEL).mkdir(parents=True, exist_ok=True)
    (project / ".modelreg" / "refs" / MODEL / "production").write_text(d["3"] + "\n")
    # the first old rollback undid the move to 3; the re-deploy is a move of its own
    assert [e.id[:16] for e in reg.undo_stack(MODEL, "production")] == [f"{n:016x}" for n in (1, 2, 5)]
    assert reg.rollback(MODEL, "production").to.version == "2"
    assert reg.rollback(MODEL, "production").to.version == "1"


# ------------------------------------------------------------------ clear
def test_clear_empties_the_stage_and_records_who_and_why(cli, project, releases):
    code, out, err = cli("clear", MODEL, "production", "--reason", "INC-2: bad release", "--json")
    assert code == 0, err
    move = json.loads(out)
    assert move["from"]["version"] == "1.2.0" and move["to"] is None and move["changed"] is True
    assert not ref_path(project, "production").exists()
    ev = log_lines(project, MODEL)[-1]
    assert (ev["action"], ev["stage"], ev["from"], ev["to"], ev["version"]) == (
        "clear", "production", releases["1.2.0"], None, "1.2.0")
    assert ev["actor"] == ACTOR and ev["reason"] == "INC-2: bad release" and ev["prev"]

    code, out, err = cli("resolve", f"{MODEL}@production")
    assert code == 3 and out == ""
    assert f"{MODEL}@production is empty (cleared by {ACTOR} at {ev['time']}: INC-2: bad release)" in err
    error = json.loads(cli("resolve", f"{MODEL}@production", "--json")[1])["error"]
    assert error["code"] == 3 and error["emptied_by"] == ACTOR and error["emptied_at"] == ev["time"]

    code, _, err = cli("log", MODEL, "--stage", "production", "--limit", "1")
    assert "clear" in _ and f"{MODEL}@production: 1.2.0 -> (empty)" in _

    code, _, err = cli("rollback", MODEL, "production", "--reason", "restore")  # undoes the clear
    assert code == 0 and "(empty) -> 1.2.0" in err
    assert holds(project, "production") == releases["1.2.0"]
    assert cli("fsck")[0] == 0


def test_clear_refusals_change_nothing(cli, project, releases):
    before = snapshot(project / ".modelreg")
    for args, want in ((("clear", MODEL, "production"), 2),  # --reason is required
                       (("clear", MODEL, "production", "--reason", " "), 2),
                       (("clear", MODEL, "prod", "--reason", "x"), 2),
                       (("clear", "nosuch", "production", "--reason", "x"), 3),
                       (("clear", MODEL, "production", "--reason", "x", "--expect", "1.1.0"), 4),
                       (("clear", MODEL, "production", "--reason", "x", "--expect", "none"), 4)):
        code, out, err = cli(*args)
        assert code == want, (args, err)
        assert out == "" and err.startswith("modelreg: error:") and err.count("\n") == 1
    assert snapshot(project / ".modelreg") == before


def test_clear_of_an_empty_stage_changes_nothing(cli, project, releases):
    before = snapshot(project / ".modelreg")
    code, out, err = cli("clear", MODEL, "staging", "--reason", "x")
    assert code == 0 and "already empty" in err and out == ""
    assert snapshot(project / ".modelreg") == before
    assert cli("clear", MODEL, "staging", "--reason", "x", "--expect", "none")[0] == 0


def test_library_clear(reg):
    reg.register(MODEL, "1")
    reg.promote(f"{MODEL}@1", "staging")
    with pytest.raises(UsageError):
        reg.clear(MODEL, "staging", reason="")
    with pytest.raises(Conflict):
        reg.clear(MODEL, "staging", reason="x", expect=modelreg.EMPTY)
    move = reg.clear(MODEL, "staging", reason="withdrawn", expect="1")
    assert move.changed and move.to is None and move.events[0].action == "clear"
    with pytest.raises(NotFound, match="cleared by"):
        reg.resolve(f"{MODEL}@staging")
    assert not reg.clear(MODEL, "staging", reason="again").changed


# ------------------------------------------------------------------ archived versions hold no stage
def test_promote_to_archived_clears_every_stage_in_one_step(cli, project, releases):
    assert cli("promote", f"{MODEL}@1.2.0", "staging")[0] == 0
    code, out, err = cli("promote", f"{MODEL}@1.2.0", "archived", "--reason", "withdrawn", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert (res["name"], res["version"], res["changed"], res["archived"]) == (MODEL, "1.2.0", True, True)
    assert sorted(res["cleared"]) == ["production", "staging"]
    assert [e["action"] for e in res["events"]] == ["clear", "clear", "archive"]
    assert holds(project, "production") is None and holds(project, "staging") is None
    assert [e["action"] for e in log_lines(project, MODEL)[-3:]] == ["clear", "clear", "archive"]
    assert cli("resolve", f"{MODEL}@production")[0] == 3
    info = json.loads(cli("show", f"{MODEL}@1.2.0", "--json")[1])
    assert info["archived"] is True and info["stages"] == []
    # the text form says what changed, one line per stage
    assert cli("archive", f"{MODEL}@1.2.0", "--undo")[0] == 0
    assert cli("promote", f"{MODEL}@1.2.0", "production")[0] == 0
    code, out, err = cli("promote", f"{MODEL}@1.2.0", "archived")
    assert code == 0 and f"Cleared {MODEL}@production (held 1.2.0)" in err and f"Archived {MODEL}@1.2.0" in err
    # archived again: nothing to do
    code, _, err = cli("promote", f"{MODEL}@1.2.0", "archived")
    assert code == 0 and "already archived" in err
    assert cli("promote", f"{MODEL}@1.2.0", "archived", "--expect", "1.2.0")[0] == 2


def test_archive_force_clears_stages_and_resolve_never_returns_an_archived_version(cli, project, releases):
    code, out, err = cli("archive", f"{MODEL}@1.2.0", "--json")  # holds production: refused
    assert code == 5
    error = json.loads(out)["error"]
    assert error["stages"] == ["production"] and error["version"] == "1.2.0" and "--force" in error["message"]
    code, out, err = cli("archive", f"{MODEL}@1.2.0", "--force", "--reason", "bad")
    assert code == 0 and f"Cleared {MODEL}@production" in err
    assert cli("resolve", f"{MODEL}@production")[0] == 3
    # rollback cannot bring it back while it is archived
    code, _, err = cli("rollback", MODEL, "production")
    assert code == 5 and "archived" in err


def test_an_archived_version_is_never_demoted(tmp_path, monkeypatch, capsys):
    """An archived version can still hold production in a registry written by an older modelreg
    (archive --force did not clear) or after a merge; promoting over it demotes nothing."""
    from conftest import run_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELREG_ACTOR", "oncall")
    reg = Registry.init(tmp_path)  # default policy: production demotes to staging
    for v in ("1.0.0", "2.0.0"):
        reg.register(MODEL, v)
        reg.promote(f"{MODEL}@{v}", "staging")
    reg.promote(f"{MODEL}@1.0.0", "production", demote=False)
    # what `archive --force` used to write: the archive event, production left alone
    reg._record(Event("archive", MODEL, "old", version="1.0.0", to=reg.resolve(f"{MODEL}@1.0.0").digest,
                      data={"forced": True}))
    code, out, err = run_cli(capsys, "fsck", "--json")
    assert code == 0 and any("archived" in p["message"] for p in json.loads(out)["problems"])
    code, out, err = run_cli(capsys, "promote", f"{MODEL}@2.0.0", "production", "--json")
    assert code == 0, err
    move = json.loads(out)
    assert [e["action"] for e in move["events"]] == ["promote"]
    assert "archived: not demoted" in move["notes"][0]
    assert reg.resolve(f"{MODEL}@staging").version == "2.0.0"  # staging unchanged
    assert run_cli(capsys, "check", f"{MODEL}@2.0.0", "staging")[0] == 0


def test_signed_clear_and_rollback_cover_prev(cli, project, releases, tmp_path, monkeypatch):
    import shutil
    import subprocess

    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    key = tmp_path / "keys" / "oncall"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "oncall", "-f", str(key)], check=True)
    signers = key.parent / "allowed_signers"
    signers.write_text(f"oncall@example.com {key.with_suffix('.pub').read_text()}")
    monkeypatch.setenv("MODELREG_SIGNING_KEY", str(key))
    monkeypatch.setenv("MODELREG_ALLOWED_SIGNERS", str(signers))
    assert cli("clear", MODEL, "production", "--reason", "INC-3", "--sign")[0] == 0
    assert cli("rollback", MODEL, "production", "--sign")[0] == 0
    events = json.loads(cli("log", MODEL, "--stage", "production", "--limit", "2", "--json")[1])
    assert [(e["action"], e["verified"]) for e in events] == [("rollback", True), ("clear", True)]
    assert events[0]["prev"] == events[1]["id"]
    # prev is covered by the signature: re-linking the event breaks it
    log = project / ".modelreg" / "logs" / f"{MODEL}.jsonl"
    log.write_text(log.read_text().replace(f'"prev":"{events[1]["id"]}"', f'"prev":"{events[1]["prev"]}"', 1))
    events = json.loads(cli("log", MODEL, "--stage", "production", "--limit", "2", "--json")[1])
    assert not all(e["verified"] for e in events)
