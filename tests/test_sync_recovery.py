"""A sync cut short, a rebase/merge left in progress, stale git locks: refuse with exit 8 and recover without loss.

The SIGKILL versions of these run in the torture suite (``python -m tests.torture --only sync``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitutil import cli, configure, git, git_env, log_lines, new_repo  # noqa: F401
from gitutil import clone_of, seeded_remote, ok as _ok

pytestmark = pytest.mark.usefixtures("git_env")

READS_AND_WRITES = [
    ["resolve", "faq-bot@production"],
    ["ls", "faq-bot"],
    ["log", "faq-bot"],
    ["fsck"],
    ["register", "faq-bot", "9.9.9"],
    ["metrics", "set", "faq-bot@1.0.0", "--suite", "s", "x=1"],
]


def _setup(tmp: Path, capsys) -> tuple[Path, Path, Path]:  # type: ignore[no-untyped-def]
    """A remote, clone one (which pushed two more versions) and clone two (with its own unpushed events)."""
    bare = seeded_remote(tmp, capsys)
    one, two = clone_of(bare, tmp / "one"), clone_of(bare, tmp / "two")
    for v in ("1.1.0", "1.2.0"):
        _ok(cli(capsys, one, "register", "faq-bot", v))
    _ok(cli(capsys, one, "sync", "--push"))
    _ok(cli(capsys, two, "register", "faq-bot", "2.0.0"))
    _ok(cli(capsys, two, "metrics", "set", "faq-bot@2.0.0", "--suite", "core", "score=0.9"))
    return bare, one, two


def _ids(repo: Path) -> set[str]:
    return {e["id"] for e in log_lines(repo, "faq-bot")}


def _remote_ids(bare: Path) -> set[str]:
    import json

    text = git(bare, "show", "main:.modelreg/logs/faq-bot.jsonl").stdout
    return {json.loads(line)["id"] for line in text.splitlines() if line.strip()}


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing catches it, no cleanup beyond releasing locks runs."""


def test_a_sync_cut_short_while_moving_the_work_tree_blocks_everything_until_sync_finishes_it(
        git_env: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from modelreg import fileio, gitmove, gitops
    from modelreg.registry import Registry

    bare, one, two = _setup(git_env, capsys)
    acknowledged = _ids(two)
    real = fileio.atomic_write
    calls = []

    def dies_on_the_third(path, data):  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) == 3:  # the journal, then one registry file, then the kill
            raise _Killed()
        return real(path, data)

    monkeypatch.setattr(gitmove.fileio, "atomic_write", dies_on_the_third)
    with pytest.raises(_Killed):
        gitops.sync(Registry(two / ".modelreg"), push=True)
    monkeypatch.setattr(gitmove.fileio, "atomic_write", real)
    assert (two / ".git" / "modelreg-sync.json").exists()

    for args in READS_AND_WRITES:
        run = cli(capsys, two, *args)
        assert run.code == 8, (args, run.err)
        assert "a modelreg sync was interrupted" in run.err and "run 'modelreg sync'" in run.err
    status_before = git(two, "status", "--porcelain").stdout

    data = _ok(cli(capsys, two, "sync", "--push", "--json")).json()
    assert data["resumed"] is True and data["pushed"]
    assert not (two / ".git" / "modelreg-sync.json").exists()
    assert git(two, "status", "--porcelain").stdout == "" and status_before  # it was half-way before
    assert acknowledged <= _ids(two) and acknowledged <= _remote_ids(bare)
    assert _ids(one) <= _remote_ids(bare)
    fsck = _ok(cli(capsys, two, "fsck", "--json")).json()
    assert fsck["ok"] and not fsck["problems"], fsck


def test_journal_left_after_head_moved_tells_what_to_do(git_env: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from modelreg import gitmove, gitops
    from modelreg.registry import Registry

    bare, one, two = _setup(git_env, capsys)

    def killed(*a, **k):  # type: ignore[no-untyped-def]
        raise _Killed()

    real = gitmove.finish
    monkeypatch.setattr(gitmove, "finish", killed)  # every file moved, then killed before the index and HEAD
    with pytest.raises(_Killed):
        gitops.sync(Registry(two / ".modelreg"), push=True)
    monkeypatch.setattr(gitmove, "finish", real)
    git(two, "reset", "-q", "--hard", "origin/main")  # someone moved HEAD by hand meanwhile
    run = cli(capsys, two, "sync")
    assert run.code == 8 and "moved since a modelreg sync was interrupted" in run.err
    assert "modelreg-sync.json" in run.err


def test_rebase_in_progress_blocks_every_command_and_abort_keeps_acknowledged_events(
        git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare, one, two = _setup(git_env, capsys)
    _ok(cli(capsys, two, "sync"))  # committed locally, as every sync does before it pushes
    acknowledged = _ids(two)
    git(two, "fetch", "-q", "origin")
    # a rebase stopped before replaying anything: HEAD is the remote's commit (what a killed rebase leaves)
    env = dict(os.environ, GIT_SEQUENCE_EDITOR="sed -i '1i break'")
    proc = subprocess.run(["git", "rebase", "-i", "origin/main"], cwd=two, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and (two / ".git" / "rebase-merge").is_dir(), proc.stderr
    assert not acknowledged <= _ids(two)  # the work tree now shows an old registry

    for args in [*READS_AND_WRITES, ["sync"], ["sync", "--push"]]:
        run = cli(capsys, two, *args)
        assert run.code == 8, (args, run.err)
        assert "git rebase is in progress" in run.err and "git rebase --abort" in run.err
        assert run.err.count("\n") == 1

    git(two, "rebase", "--abort")  # the recovery the message names
    assert acknowledged <= _ids(two)
    _ok(cli(capsys, two, "sync", "--push"))
    assert acknowledged <= _remote_ids(bare)


@pytest.mark.parametrize("state", ["cherry-pick", "merge"])
def test_cherry_pick_or_merge_in_progress_blocks_reads_and_writes(git_env: Path, capsys, state: str) -> None:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    (repo / "notes.txt").write_text("base\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "notes")
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "notes.txt").write_text("side\n")
    git(repo, "commit", "-q", "-am", "side")
    git(repo, "checkout", "-q", "main")
    (repo / "notes.txt").write_text("main\n")
    git(repo, "commit", "-q", "-am", "main")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.0"))
    git(repo, *(["cherry-pick", "side"] if state == "cherry-pick" else ["merge", "side"]), check=False)
    run = cli(capsys, repo, "resolve", "faq-bot@1.0.0")
    assert run.code == 8 and f"git {state} is in progress" in run.err
    assert cli(capsys, repo, "register", "faq-bot", "1.1.0").code == 8
    git(repo, state, "--abort")
    assert _ok(cli(capsys, repo, "resolve", "faq-bot@1.0.0")).out.strip() == "1.0.0"


@pytest.mark.parametrize("lock", ["index.lock", "HEAD.lock", "refs/heads/main.lock"])
def test_stale_git_lock_blocks_sync_with_exit_8_and_says_how_to_clear_it(git_env: Path, capsys, lock: str) -> None:  # type: ignore[no-untyped-def]
    bare, one, two = _setup(git_env, capsys)
    path = two / ".git" / lock
    path.write_text("left by a killed git\n")
    run = cli(capsys, two, "sync", "--push", "--json")
    assert run.code == 8, run.err
    assert "stale" in run.err and f"rm '{path}'" in run.err and run.json()["error"]["code"] == 8
    assert _ok(cli(capsys, two, "resolve", "faq-bot@production")).out.strip() == "1.0.0"  # reads are not blocked
    path.unlink()  # the documented way out
    assert _ok(cli(capsys, two, "sync", "--push", "--json")).json()["pushed"]


def test_a_lock_held_by_a_live_process_is_waited_for_then_named(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare, one, two = _setup(git_env, capsys)
    lock = two / ".git" / "index.lock"
    holder = subprocess.Popen([sys.executable, "-c", f"f = open({str(lock)!r}, 'w'); import time; time.sleep(60)"])
    try:
        for _ in range(100):
            if lock.exists():
                break
            time.sleep(0.05)
        start = time.monotonic()
        run = cli(capsys, two, "sync", "--push", "--timeout", "1")
        assert run.code == 8 and "held by a running" in run.err and str(holder.pid) in run.err, run.err
        assert time.monotonic() - start >= 0.9  # it waited for the holder first
    finally:
        holder.kill()
        holder.wait()
    run = cli(capsys, two, "sync")
    assert run.code == 8 and "stale" in run.err  # the holder died without removing it


def test_move_carries_lines_appended_meanwhile_and_retries_when_a_ref_moved(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from modelreg import gitmove, gitops
    from modelreg.registry import Registry

    bare, one, two = _setup(git_env, capsys)
    reg = Registry(two / ".modelreg")
    _ok(cli(capsys, two, "sync"))
    loc = gitops.locate(reg)
    git_dir = str(two / ".git")
    git(two, "fetch", "-q", "origin")
    head = git(two, "rev-parse", "HEAD").stdout.strip()
    upstream = git(two, "rev-parse", "origin/main").stdout.strip()
    replayed = gitmove.replay(loc, git_dir, head, upstream)
    assert not replayed.conflicts

    # a writer promoted after the commit, and clone one moved nothing: the move carries the new line
    ev = reg.promote("faq-bot@2.0.0", "staging")
    assert gitmove.move(reg, loc, git_dir, head, replayed.head)
    assert git(two, "rev-parse", "HEAD").stdout.strip() == replayed.head
    assert ev.events[0].id in _ids(two) and _ids(one) <= _ids(two)
    status = git(two, "status", "--porcelain").stdout.split("\n")
    assert " M .modelreg/logs/faq-bot.jsonl" in status  # the new line is a local change to commit next

    # the remote moves staging too: the ref a local writer changed is not overwritten, the caller retries
    _ok(cli(capsys, one, "promote", "faq-bot@1.1.0", "staging"))
    _ok(cli(capsys, one, "sync", "--push"))
    git(two, "fetch", "-q", "origin")
    head = git(two, "rev-parse", "HEAD").stdout.strip()
    replayed = gitmove.replay(loc, git_dir, head, git(two, "rev-parse", "origin/main").stdout.strip())
    assert not gitmove.move(reg, loc, git_dir, head, replayed.head)
    assert git(two, "rev-parse", "HEAD").stdout.strip() == head and not (two / ".git/modelreg-sync.json").exists()
    run = cli(capsys, two, "sync", "--push", "--json")  # commits the promote; now a real conflict
    assert run.code == 4 and run.json()["conflict"]["stages"] == ["faq-bot@staging"], run.err


def test_a_second_sync_in_the_same_clone_waits_then_says_so(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare, one, two = _setup(git_env, capsys)
    lock = two / ".git" / "modelreg-sync.lock"
    code = ("import sys, time, fcntl\n"
            f"f = open({str(lock)!r}, 'a'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        run = cli(capsys, two, "sync", "--push", "--timeout", "1")
        assert run.code == 8 and "another modelreg sync is running" in run.err, run.err
    finally:
        holder.kill()
        holder.wait()
    assert _ok(cli(capsys, two, "sync", "--push", "--json")).json()["pushed"]  # the kernel dropped the lock


def test_the_check_on_open_runs_no_git_and_is_cheap(git_env: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every command opens the registry; the check is a few stats and one listdir, never a git process."""
    from modelreg import gitguard
    from modelreg.registry import Registry

    repo = new_repo(git_env / "repo")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.0"))
    spawned = []
    real = subprocess.Popen

    def no_git(*a, **k):  # type: ignore[no-untyped-def]
        spawned.append(a)
        return real(*a, **k)

    monkeypatch.setattr(subprocess, "Popen", no_git)
    reg = Registry(repo / ".modelreg")
    assert reg.resolve("faq-bot@1.0.0").version == "1.0.0" and not spawned
    start = time.perf_counter()
    for _ in range(1000):
        gitguard.check(repo / ".modelreg")
    assert time.perf_counter() - start < 2.0  # ~20-70 us each; 2 ms each would still pass on a loaded machine
