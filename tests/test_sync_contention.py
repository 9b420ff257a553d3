"""sync --push under contention: a time budget, exit 9 for contention vs 4 for a real conflict, the pushed commit.

Concurrency here uses generous time budgets and no timing assertions tighter than the
budget itself; the 16-clone round is in the torture suite (``python -m tests.torture --long``).
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gitutil import cli, cli_proc, configure, git, git_env, log_lines, new_repo  # noqa: F401
from gitutil import ok as _ok, seeded_remote as _remote, clone_of as _clone

pytestmark = pytest.mark.usefixtures("git_env")


def _on_remote(bare: Path, commit: str) -> bool:
    return git(bare, "merge-base", "--is-ancestor", commit, "main", check=False).returncode == 0


def test_six_clones_pushing_at_once_all_land_with_the_defaults(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare = _remote(git_env, capsys)
    clones = [_clone(bare, git_env / f"c{i}", f"ci{i}") for i in range(6)]
    rounds = 2

    def job(i: int) -> list[tuple[int, dict, str]]:
        out = []
        for r in range(rounds):
            reg = cli_proc(clones[i], "register", "faq-bot", f"{r + 2}.{i}.0", "--json")
            assert reg.code == 0, reg.err
            sync = cli_proc(clones[i], "sync", "--push", "--json", timeout=600)
            out.append((sync.code, sync.json() if sync.out.strip() else {}, sync.err))
        return out

    with ThreadPoolExecutor(len(clones)) as pool:
        results = [o for per in pool.map(job, range(len(clones))) for o in per]
    assert [code for code, _, _ in results] == [0] * len(results), [err for code, _, err in results if code]
    for _, data, _ in results:
        assert data["status"] == "pushed" and data["pushed"] and data["contention"] is None
        # the commit reported is the one that reached the remote, even after a rebase
        assert _on_remote(bare, data["committed"]) and _on_remote(bare, data["pushed_commit"])
    assert any(data["rebases"] for _, data, _ in results)  # there was contention to survive

    fresh = _clone(bare, git_env / "fresh")
    fsck = _ok(cli(capsys, fresh, "fsck", "--json")).json()
    assert fsck["ok"] and not fsck["problems"], fsck
    versions = {v["version"] for v in _ok(cli(capsys, fresh, "ls", "faq-bot", "--json")).json()}
    assert versions == {"1.0.0"} | {f"{r + 2}.{i}.0" for r in range(rounds) for i in range(len(clones))}
    ids = Counter(e["id"] for e in log_lines(fresh, "faq-bot"))
    assert set(ids.values()) == {1} and len(ids) == 2 + rounds * len(clones)


def test_contention_exits_9_and_keeps_the_commit_a_conflict_exits_4(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare = _remote(git_env, capsys)
    one, two = _clone(bare, git_env / "one"), _clone(bare, git_env / "two")
    _ok(cli(capsys, one, "register", "faq-bot", "1.1.0"))
    _ok(cli(capsys, one, "sync", "--push"))
    _ok(cli(capsys, two, "register", "faq-bot", "1.2.0"))

    # the budget is spent after the first rejection: contention, not a conflict
    run = cli(capsys, two, "sync", "--push", "--timeout", "0", "--json")
    assert run.code == 9, run.err
    data = run.json()
    assert data["error"]["code"] == 9 and "contention" in data["error"]["message"]
    assert data["status"] == "contention" and data["conflict"] is None and data["pushed"] is False
    assert data["contention"]["attempts"] == 1 and data["contention"]["timeout"] == 0
    kept = data["committed"]
    assert kept and git(two, "rev-parse", "HEAD").stdout.strip() == kept and not _on_remote(bare, kept)
    text = cli(capsys, two, "sync", "--push", "--attempts", "1")
    assert text.code == 9 and "deprecated" in text.err and "nothing is in conflict" in text.err

    pushed = _ok(cli(capsys, two, "sync", "--push", "--json")).json()
    assert pushed["committed"] is None  # this run made no commit: it pushed the one kept above, rebased
    assert pushed["rebases"] == 1 and pushed["pushed_commit"] != kept
    assert pushed["pushed_commit"] == git(bare, "rev-parse", "main").stdout.strip()
    assert git(bare, "log", "-1", "--format=%s", "main").stdout.strip() == "modelreg: register faq-bot@1.2.0"

    # a real conflict: both clones moved production
    _ok(cli(capsys, one, "promote", "faq-bot@1.1.0", "production", "--expect", "1.0.0"))
    _ok(cli(capsys, one, "sync", "--push"))
    _ok(cli(capsys, two, "promote", "faq-bot@1.2.0", "production", "--expect", "1.0.0"))
    run = cli(capsys, two, "sync", "--push", "--json")
    assert run.code == 4, run.err
    data = run.json()
    assert data["status"] == "conflict" and data["contention"] is None
    assert data["conflict"]["stages"] == ["faq-bot@production"]
    assert data["conflict"]["paths"] == [".modelreg/refs/faq-bot/production"]


def test_detached_head_refuses_before_committing(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare = _remote(git_env, capsys)
    clone = _clone(bare, git_env / "one")
    git(clone, "checkout", "-q", "--detach")
    head = git(clone, "rev-parse", "HEAD").stdout
    _ok(cli(capsys, clone, "register", "faq-bot", "1.1.0"))
    run = cli(capsys, clone, "sync", "--push", "--json")
    assert run.code == 2 and "detached" in run.err and "nothing was committed" in run.err
    assert run.json()["error"]["code"] == 2
    assert git(clone, "rev-parse", "HEAD").stdout == head
    assert git(clone, "status", "--porcelain").stdout.strip()  # the registration is still uncommitted
    # naming the branch is the documented way for a detached CI checkout
    data = _ok(cli(capsys, clone, "sync", "--push", "--branch", "main", "--json")).json()
    assert data["pushed"] and git(bare, "rev-parse", "main").stdout.strip() == data["pushed_commit"]


def test_a_remote_that_refuses_with_a_lock_race_is_contention(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """GitHub answers a push that lost a race for the ref lock with '[remote rejected] (cannot lock ref ...)'."""
    bare = _remote(git_env, capsys)
    one, two = _clone(bare, git_env / "one"), _clone(bare, git_env / "two")
    _ok(cli(capsys, one, "register", "faq-bot", "1.1.0"))
    _ok(cli(capsys, one, "sync"))
    other = git(one, "rev-parse", "HEAD").stdout.strip()
    git(one, "push", "-q", "origin", "HEAD:refs/heads/side")
    # the hook moves main under the push once, so receive-pack's compare-and-swap on the ref fails
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nif [ ! -e {git_env}/moved ]; then touch {git_env}/moved; "
                    f"env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main {other}; fi\nexit 0\n")
    hook.chmod(0o755)
    _ok(cli(capsys, two, "register", "faq-bot", "1.2.0"))
    data = _ok(cli(capsys, two, "sync", "--push", "--json")).json()
    assert data["attempts"] == 2 and data["rebases"] == 1
    assert _on_remote(bare, other) and _on_remote(bare, data["committed"])


def test_backoff_is_jittered_exponential_in_the_cycle_and_bounded() -> None:
    from modelreg.gitops import backoff

    rnd = random.Random(1)
    waits = [backoff(0.5, s, 1000.0, rnd) for s in range(1, 12) for _ in range(50)]
    assert all(0 <= w <= 30 for w in waits)
    assert max(backoff(0.5, 1, 1000.0, rnd) for _ in range(200)) <= 1.0  # 2 x cycle at first
    assert max(backoff(0.5, 5, 1000.0, rnd) for _ in range(200)) > 4  # grows with the streak
    assert backoff(0.5, 5, 0.2, rnd) <= 0.2 and backoff(0.5, 5, -1, rnd) == 0  # never past the budget
    assert len({round(w, 6) for w in waits}) > 100  # jittered
