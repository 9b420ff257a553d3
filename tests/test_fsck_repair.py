"""fsck names the repair for every problem it can repair; --repair takes the model's lock and drops nothing unjudged.

The race against live writers (processes) is the torture suite's ``repair`` section.
"""

from __future__ import annotations

import json
import os
import time

from conftest import log_lines


def _problems(cli) -> list[dict]:  # type: ignore[no-untyped-def]
    code, out, err = cli("fsck", "--json")
    return json.loads(out)["problems"]


def test_fsck_names_the_repair_of_each_problem_text_and_json(cli, reg, project) -> None:  # type: ignore[no-untyped-def]
    reg.register("m", "1.0")
    reg.register("m", "1.1")
    reg.promote("m@1.0", "staging")
    logp = project / ".modelreg/logs/m.jsonl"
    lines = logp.read_bytes().splitlines(keepends=True)
    logp.write_bytes(lines[0] + lines[2] + b'{"id": "torn')  # 1.1's register event gone, a torn last line
    reg.refs.set_stage_if_equals("m", "production", None, reg.resolve("m@1.1").digest)  # a move without an event
    tmp = project / ".modelreg/refs/m/.tmp-abc-production"
    tmp.write_bytes(b"x")
    os.utime(tmp, (time.time() - 3600, time.time() - 3600))

    problems = _problems(cli)
    by_kind = {p["message"].split(":")[0]: p for p in problems}
    assert len(problems) == 4, problems
    assert all(p["repair"] and p["repair"].startswith("fsck --repair ") for p in problems), problems
    assert "lost-found" in by_kind["line 3"]["repair"] and by_kind["line 3"]["severity"] == "error"
    assert any("register event" in p["repair"] for p in problems)
    assert any("reconcile" in p["repair"] for p in problems)
    assert any("older than 60 s" in p["repair"] for p in problems)

    code, out, err = cli("fsck")
    assert code == 6
    assert all("[repair: fsck --repair " in line for line in out.splitlines()), out

    code, out, err = cli("fsck", "--repair", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and not report["problems"], report
    assert len(report["repaired"]) == 4
    assert _problems(cli) == []


def test_a_problem_fsck_cannot_repair_has_no_repair(cli, reg, project) -> None:  # type: ignore[no-untyped-def]
    reg.register("m", "1.0")
    obj = reg.objects.path(reg.resolve("m@1.0").digest)
    data = bytearray(obj.read_bytes())
    data[10] ^= 1
    obj.write_bytes(bytes(data))
    problems = _problems(cli)
    assert problems and all(p["repair"] is None for p in problems)


def test_repair_keeps_lines_appended_after_the_check_and_only_drops_what_it_judged(
        cli, reg, project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from modelreg import fsck as fsck_mod

    reg.register("m", "1.0")
    logp = project / ".modelreg/logs/m.jsonl"
    with open(logp, "ab") as f:
        f.write(b"not json, judged bad\n")
    real = fsck_mod._Checker._drop_bad_lines
    appended = []

    def writers_get_in_first(self, model, path, bad):  # type: ignore[no-untyped-def]
        # between the check and the repair: a writer appends an event, and another bad line appears
        appended.append(reg.set_metrics("m@1.0", "core", {"score": 1}).id)
        with open(logp, "ab") as f:
            f.write(b"a bad line nobody judged yet\n")
        return real(self, model, path, bad)

    monkeypatch.setattr(fsck_mod._Checker, "_drop_bad_lines", writers_get_in_first)
    code, out, err = cli("fsck", "--repair", "--json")
    raw = logp.read_bytes()
    assert appended[0].encode() in raw  # the acknowledged event is kept
    assert b"judged bad" not in raw and b"nobody judged yet" in raw  # only the judged line was set aside
    lost = list((project / ".modelreg/lost-found").iterdir())
    assert len(lost) == 1 and lost[0].read_bytes() == b"not json, judged bad\n"
    monkeypatch.setattr(fsck_mod._Checker, "_drop_bad_lines", real)
    code, out, err = cli("fsck", "--repair")  # the next run judges and moves the other one
    assert code == 0 and b"nobody judged" not in logp.read_bytes()
    ids = [e["id"] for e in log_lines(project, "m")]
    assert appended[0] in ids and len(ids) == 2


def test_repair_rechecks_under_the_lock_and_logs_nothing_spurious(cli, reg, project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A registration caught between its version entry and its event is not given a second register event."""
    from modelreg import fsck as fsck_mod
    from modelreg.log import Event

    reg.register("m", "1.0")
    digest = reg.objects.put(b"name: m\nversion: '2.0'\n")
    reg.refs.add_version("m", "2.0", digest)  # the registration has written its entry, not yet its event
    real = fsck_mod._Checker._repair_register

    def writer_finishes_first(self, model, version):  # type: ignore[no-untyped-def]
        reg._record(Event("register", "m", "writer", version="2.0", to=digest))
        return real(self, model, version)

    monkeypatch.setattr(fsck_mod._Checker, "_repair_register", writer_finishes_first)
    code, out, err = cli("fsck", "--repair", "--json")
    registers = [e for e in log_lines(project, "m") if e["action"] == "register" and e["version"] == "2.0"]
    assert [e["actor"] for e in registers] == ["writer"]
