"""Stage moves are ordered causally (docs/git.md, "Clocks and the order of moves").

Each move records ``prev``, the previous move of its stage; readers order along those links and
break forks by (time, id). A writer whose clock is an hour behind cannot reorder ``log``, make
fsck report an interruption, or make ``--repair`` append a reconcile; two clones merged by union
fold to the same order and the same rollback stack.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest

import modelreg.log as log_mod
from gitutil import cli as git_cli
from gitutil import ok as _ok
from gitutil import git, git_env, log_lines, new_repo  # noqa: F401  (git_env is a fixture)
from modelreg.fsck import fsck
from modelreg.lifecycle.order import causal_order
from modelreg.lifecycle.undo import undo_stack
from modelreg.log import Event, parse
from modelreg.registry import Registry

MODEL = "m"
HOUR = 3600 * 10**9


@pytest.fixture
def skew(monkeypatch):
    """``skew(seconds)``: from now on this process's clock (the one modelreg reads) is off by that much."""
    real = log_mod._now_ns

    def set_skew(ns: int) -> None:
        monkeypatch.setattr(log_mod, "_now_ns", lambda: real() + ns)

    return set_skew


def test_a_writer_an_hour_behind_reorders_nothing(reg, skew, cli, project):
    for v in ("1", "2", "3"):
        reg.register(MODEL, v)
    reg.promote(f"{MODEL}@1", "production")
    skew(-HOUR)  # this writer's clock is an hour behind
    reg.promote(f"{MODEL}@2", "production")
    skew(0)
    reg.promote(f"{MODEL}@3", "production")
    lines = log_lines(project, MODEL)
    assert lines[-2]["time"] < lines[-3]["time"]  # the skewed event's time really is earlier
    assert lines[-2]["prev"] == lines[-3]["id"] and lines[-1]["prev"] == lines[-2]["id"]

    code, out, _ = cli("log", MODEL, "--stage", "production", "--json")
    assert [e["version"] for e in json.loads(out)] == ["3", "2", "1"]  # newest first, as written
    rep = fsck(reg)
    assert rep.problems == []  # no interruption that never happened
    assert fsck(reg, repair=True).repaired == []  # and nothing to repair
    assert len(log_lines(project, MODEL)) == len(lines)
    assert reg.rollback(MODEL, "production").to.version == "2"
    assert reg.rollback(MODEL, "production").to.version == "1"


def test_without_links_a_skewed_move_would_have_been_misread(reg, skew, project):
    """The same history with ``prev`` stripped (a log written before the field): time order."""
    for v in ("1", "2"):
        reg.register(MODEL, v)
    reg.promote(f"{MODEL}@1", "production")
    skew(-HOUR)
    reg.promote(f"{MODEL}@2", "production")
    path = project / ".modelreg" / "logs" / f"{MODEL}.jsonl"
    events, _ = parse(path.read_bytes())
    assert [e.version for e in events if e.stage] == ["1", "2"]
    stripped = b"".join(dataclasses.replace(e, prev=None).line() for e in events)  # Event has slots: no __dict__
    old, _ = parse(stripped)
    assert [e.version for e in old if e.stage] == ["2", "1"]  # older logs fall back to time order


def test_the_order_is_the_same_whatever_order_the_lines_are_in(reg, skew, project):
    for v in ("1", "2", "3", "4"):
        reg.register(MODEL, v)
    rnd = random.Random(7)
    for i in range(30):
        skew(rnd.choice((-HOUR, 0, HOUR // 2)))
        v = rnd.choice("1234")
        stage = rnd.choice(("staging", "production"))
        try:
            if rnd.random() < 0.3:
                reg.rollback(MODEL, stage)
            elif rnd.random() < 0.1:
                reg.clear(MODEL, stage, reason="x")
            else:
                reg.promote(f"{MODEL}@{v}", stage)
        except Exception:  # noqa: BLE001 - refusals are part of a random history
            pass
    data = (project / ".modelreg" / "logs" / f"{MODEL}.jsonl").read_bytes()
    events, _ = parse(data)
    lines = data.splitlines(keepends=True)
    for _ in range(20):
        rnd.shuffle(lines)
        shuffled, _ = parse(b"".join(lines + lines[:3]))  # shuffled, some lines twice (a union merge)
        assert [e.id for e in shuffled] == [e.id for e in events]
    for stage in ("staging", "production"):
        last = [e for e in events if e.stage == stage][-1:]
        assert (last[0].to if last else None) == reg.refs.read_stage(MODEL, stage)
    assert fsck(reg).problems == []


def test_links_to_unknown_ids_and_cycles_are_read_deterministically():
    def ev(i: str, t: str, prev: str | None) -> Event:
        return Event("promote", MODEL, "x", version="1", stage="production", to="sha256:" + "0" * 64,
                     id=i, time=f"2026-01-01T00:00:0{t}.000000Z", prev=prev)

    a, b, c = ev("a", "1", "b"), ev("b", "2", "a"), ev("c", "3", "nowhere")  # a cycle, and a dangling link
    # the dangling link is ignored (c is free at once); the cycle is broken at its earliest member
    for perm in ([a, b, c], [c, b, a], [b, c, a]):
        assert [e.id for e in causal_order(perm)] == ["c", "a", "b"]
    assert [e.id for e in undo_stack(causal_order([a, b, c]))] == ["c", "a", "b"]


# --------------------------------------------------------------- two clones, a real union merge
def _commit(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def test_two_clones_merged_by_union_fold_to_the_same_rollback_stack(git_env: Path, capsys, skew) -> None:
    origin = git_env / "origin.git"
    git(git_env, "init", "-q", "--bare", "-b", "main", str(origin))
    base = new_repo(git_env / "base")
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        _ok(git_cli(capsys, base, "register", MODEL, v))
        _ok(git_cli(capsys, base, "promote", f"{MODEL}@{v}", "production"))
    _commit(base, "three releases")
    git(base, "remote", "add", "origin", str(origin))
    git(base, "push", "-q", "origin", "main")
    a, b = git_env / "a", git_env / "b"
    for clone in (a, b):
        git(git_env, "clone", "-q", str(origin), str(clone))
        git(clone, "config", "user.email", "t@example.com")
        git(clone, "config", "user.name", "t")

    # two on-call engineers press rollback at once, one of them with a clock an hour behind;
    # each also moves staging
    skew(-HOUR)
    _ok(git_cli(capsys, a, "rollback", MODEL, "production", "--reason", "INC-9 (a)"))
    _ok(git_cli(capsys, a, "promote", f"{MODEL}@1.2.0", "staging"))
    skew(0)
    _ok(git_cli(capsys, b, "rollback", MODEL, "production", "--reason", "INC-9 (b)"))
    _ok(git_cli(capsys, b, "promote", f"{MODEL}@1.2.0", "staging"))
    _commit(a, "a")
    _commit(b, "b")
    git(a, "push", "-q", "origin", "main:a")
    git(b, "push", "-q", "origin", "main:b")
    git(a, "fetch", "-q", "origin")
    git(b, "fetch", "-q", "origin")
    git(a, "merge", "-q", "--no-edit", "origin/b")  # each side merges the other: lines in another order
    git(b, "merge", "-q", "--no-edit", "origin/a")

    log_a = (a / ".modelreg" / "logs" / f"{MODEL}.jsonl").read_bytes()
    log_b = (b / ".modelreg" / "logs" / f"{MODEL}.jsonl").read_bytes()
    assert log_a != log_b and sorted(log_a.splitlines()) == sorted(log_b.splitlines())
    ra, rb = Registry.open(a), Registry.open(b)
    for stage in ("production", "staging"):
        assert [e.id for e in ra.undo_stack(MODEL, stage)] == [e.id for e in rb.undo_stack(MODEL, stage)]
    assert [e.id for e in ra.events(MODEL)] == [e.id for e in rb.events(MODEL)]
    for repo in (a, b):
        rep = _ok(git_cli(capsys, repo, "fsck", "--json")).json()
        assert rep["problems"] == []
    # the two rollbacks undid the same move: it counts once, and the next rollback goes one further
    assert [e.version for e in ra.undo_stack(MODEL, "production")] == ["1.0.0", "1.1.0"]
    for repo in (a, b):
        run = _ok(git_cli(capsys, repo, "rollback", MODEL, "production", "--json")).json()
        assert (run["from"]["version"], run["to"]["version"]) == ("1.1.0", "1.0.0")
