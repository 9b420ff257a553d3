"""Many writers: modelreg sync (commit, push, fetch-rebase-retry) against a bare repo on local disk."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from gitutil import cli, cli_proc, configure, git, git_env, log_lines, new_repo  # noqa: F401
from gitutil import ok as _ok, seeded_remote as _remote, clone_of as _clone

pytestmark = pytest.mark.usefixtures("git_env")


def _remote_file(bare: Path, path: str) -> str:
    return git(bare, "show", f"main:{path}").stdout


def test_sync_commits_only_the_registry_and_never_touches_the_network(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    git(repo, "remote", "add", "origin", str(git_env / "does-not-exist.git"))
    (repo / "README.md").write_text("changed, not committed\n")
    (repo / "staged.txt").write_text("staged by the user\n")
    git(repo, "add", "staged.txt")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.0"))
    _ok(cli(capsys, repo, "promote", "faq-bot@1.0.0", "staging"))

    result = _ok(cli(capsys, repo, "sync", "--json")).json()
    assert result["committed"] and result["pushed"] is False and result["attempts"] == 0
    assert result["message"] == "modelreg: register faq-bot@1.0.0; promote faq-bot@1.0.0 -> staging"
    files = git(repo, "show", "--name-only", "--format=", "HEAD").stdout.split()
    assert files and all(f.startswith(".modelreg/") for f in files)
    assert ".modelreg/logs/faq-bot.jsonl" in files and not any("locks" in f for f in files)
    status = git(repo, "status", "--porcelain").stdout.splitlines()
    assert sorted(status) == [" M README.md", "A  staged.txt"]

    again = _ok(cli(capsys, repo, "sync"))
    assert "Nothing to commit" in again.err
    custom = cli(capsys, repo, "register", "faq-bot", "1.1.0")
    assert custom.code == 0
    _ok(cli(capsys, repo, "sync", "-m", "release 1.1.0"))
    assert git(repo, "log", "-1", "--format=%s").stdout.strip() == "release 1.1.0"


def test_push_rebases_over_other_registrations(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare = _remote(git_env, capsys)
    one, two = _clone(bare, git_env / "one"), _clone(bare, git_env / "two")
    _ok(cli(capsys, one, "register", "faq-bot", "1.1.0"))
    assert _ok(cli(capsys, one, "sync", "--push", "--json")).json()["rebases"] == 0
    _ok(cli(capsys, two, "register", "faq-bot", "1.2.0"))
    _ok(cli(capsys, two, "promote", "faq-bot@1.2.0", "staging", "--expect", "none"))
    result = _ok(cli(capsys, two, "sync", "--push", "--json")).json()
    assert result["pushed"] and result["rebases"] == 1 and result["attempts"] == 2
    assert result["checked"] == {"faq-bot@staging": git(two, "show", "HEAD:.modelreg/refs/faq-bot/staging").stdout.strip()}

    fresh = _clone(bare, git_env / "fresh")
    assert _ok(cli(capsys, fresh, "fsck", "--json")).json()["ok"]
    versions = [v["version"] for v in _ok(cli(capsys, fresh, "ls", "faq-bot", "--json")).json()]
    assert sorted(versions) == ["1.0.0", "1.1.0", "1.2.0"]
    ids = [e["id"] for e in log_lines(fresh, "faq-bot")]
    assert len(ids) == len(set(ids)) == 5


def test_stale_expect_conflicts_on_push_and_names_the_stage(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare = _remote(git_env, capsys)
    one, two = _clone(bare, git_env / "one"), _clone(bare, git_env / "two")
    for clone, version in ((one, "1.1.0"), (two, "1.2.0")):
        _ok(cli(capsys, clone, "register", "faq-bot", version))
    _ok(cli(capsys, one, "promote", "faq-bot@1.1.0", "production", "--expect", "1.0.0"))
    _ok(cli(capsys, one, "sync", "--push"))
    _ok(cli(capsys, two, "promote", "faq-bot@1.2.0", "production", "--expect", "1.0.0"))  # stale, locally fine
    head = git(two, "rev-parse", "HEAD").stdout

    run = cli(capsys, two, "sync", "--push")
    assert run.code == 4, run.err
    assert run.err.count("\n") == 1 and "stage faq-bot@production" in run.err and "nothing was pushed" in run.err
    git_dir = two / ".git"
    assert not (git_dir / "rebase-merge").exists() and not (git_dir / "rebase-apply").exists()
    made = git(two, "rev-parse", "HEAD").stdout
    assert made != head  # its commit was made, and kept
    assert git(two, "status", "--porcelain").stdout == ""
    one_digest = (one / ".modelreg/refs/faq-bot/production").read_text()
    assert _remote_file(bare, ".modelreg/refs/faq-bot/production") == one_digest  # not overwritten
    again = cli(capsys, two, "sync", "--push", "--json")
    assert again.code == 4 and git(two, "rev-parse", "HEAD").stdout == made  # the clone is as it was
    data = again.json()
    assert data["error"]["code"] == 4 and data["status"] == "conflict" and data["pushed"] is False
    assert data["conflict"]["stages"] == ["faq-bot@production"] and data["contention"] is None

    # the documented way on: reset to the remote, and the stale --expect is now refused locally
    git(two, "reset", "-q", "--hard", "origin/main")
    again = cli(capsys, two, "promote", "faq-bot@1.0.0", "production", "--expect", "1.0.0")
    assert again.code == 4 and "expected 1.0.0" in again.err


def test_a_hook_refusal_is_not_contention_and_unreachable_remote_exits_7(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bare = _remote(git_env, capsys)
    clone = _clone(bare, git_env / "one")
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho registry is frozen >&2\nexit 1\n")
    hook.chmod(0o755)
    _ok(cli(capsys, clone, "register", "faq-bot", "1.1.0"))
    start = time.monotonic()
    run = cli(capsys, clone, "sync", "--push")
    assert run.code == 1 and "refused the push" in run.err and "registry is frozen" in run.err, run.err
    assert time.monotonic() - start < 10  # not retried for the whole time budget
    hook.unlink()
    assert _ok(cli(capsys, clone, "sync", "--push", "--json")).json()["pushed"]  # commit was kept; now it goes

    _ok(cli(capsys, clone, "register", "faq-bot", "1.2.0"))
    run = cli(capsys, clone, "sync", "--push", "--remote", str(git_env / "nowhere.git"))
    assert run.code == 7 and run.err.count("\n") == 1 and "nowhere.git" in run.err
    assert cli(capsys, clone, "sync", "--push", "--attempts", "0").code == 2
    assert cli(capsys, clone, "sync", "--push", "--timeout", "-1").code == 2


def test_promote_and_push_library_recipe(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from modelreg.errors import Conflict
    from modelreg.gitops import promote_and_push
    from modelreg.registry import Registry

    bare = _remote(git_env, capsys)
    one, two = _clone(bare, git_env / "one"), _clone(bare, git_env / "two")
    reg1, reg2 = Registry(one / ".modelreg"), Registry(two / ".modelreg")
    reg1.register("faq-bot", "1.1.0")
    reg2.register("faq-bot", "1.2.0")
    move, result = promote_and_push(reg1, "faq-bot@1.1.0", "production", expect="1.0.0", reason="ci")
    assert move.changed and result.pushed and result.rebases == 0
    with pytest.raises(Conflict, match="faq-bot@production"):
        promote_and_push(reg2, "faq-bot@1.2.0", "production", expect="1.0.0")
    # a staging promotion does not touch what clone one set: it rebases and pushes
    git(two, "reset", "-q", "--hard", "origin/main")
    reg2.register("faq-bot", "1.2.0")
    move, result = promote_and_push(reg2, "faq-bot@1.2.0", "staging", expect="none", timeout=60)
    assert result.pushed and move.to.version == "1.2.0"
    assert _remote_file(bare, ".modelreg/refs/faq-bot/production") == (one / ".modelreg/refs/faq-bot/production").read_text()


def test_three_clones_register_and_promote_concurrently(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """3 clones x 3 rounds: each registers its version and pushes, then all promote from the same view.

    Exactly one promotion per round lands; the others fail with exit 4 (stale --expect), and
    after resetting, their --expect is refused locally too. Nothing is silently overwritten.
    """
    start = time.monotonic()
    bare = _remote(git_env, capsys)
    clones = [_clone(bare, git_env / f"clone{i}", f"ci{i}") for i in range(3)]
    rounds = 3
    barrier = threading.Barrier(len(clones), timeout=60)
    pushed_ids: list[list[str]] = [[] for _ in clones]
    outcomes: list[list[tuple[int, str, int]]] = [[] for _ in clones]  # (round, version, exit)
    failures: list[BaseException] = []

    def worker(i: int) -> None:
        from modelreg.errors import Conflict
        from modelreg.registry import Registry

        repo = clones[i]
        try:
            for r in range(rounds):
                version = f"{r + 1}.{i}.1"
                reg = Registry(repo / ".modelreg")  # library in-thread: no cwd involved
                registered = reg.register("faq-bot", version, params={"round": r}, actor=f"ci{i}")
                sync = cli_proc(repo, "sync", "--push", "--json")
                assert sync.code == 0, sync.err  # registrations never conflict
                pushed_ids[i].append(registered.event.id)
                barrier.wait()  # everyone's registration is on the remote
                git(repo, "pull", "-q", "--rebase", "origin", "main")
                seen = Registry(repo / ".modelreg").resolve("faq-bot@production").version
                barrier.wait()  # everyone has read production; nobody has moved it yet
                move = cli_proc(repo, "promote", f"faq-bot@{version}", "production", "--expect", seen,
                                "--actor", f"ci{i}", "--json")
                assert move.code == 0, move.err
                sync = cli_proc(repo, "sync", "--push", "--json")
                outcomes[i].append((r, version, sync.code))
                if sync.code == 0:
                    pushed_ids[i].append(move.json()["events"][0]["id"])
                else:
                    assert sync.code == 4, sync.err
                    assert "faq-bot@production" in sync.err
                    git(repo, "fetch", "-q", "origin")
                    git(repo, "reset", "-q", "--hard", "origin/main")
                    try:
                        Registry(repo / ".modelreg").promote(f"faq-bot@{version}", "production", expect=seen)
                        raise AssertionError("a stale --expect was accepted after reset")
                    except Conflict as exc:
                        assert exc.exit_code == 4
                barrier.wait()  # round over
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(clones))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[0]
    assert not any(t.is_alive() for t in threads)

    for r in range(rounds):
        codes = sorted(o[2] for per in outcomes for o in per if o[0] == r)
        assert codes == [0, 4, 4], f"round {r}: {codes}"

    fresh = _clone(bare, git_env / "fresh")
    fsck = _ok(cli(capsys, fresh, "fsck", "--json")).json()
    assert fsck["ok"] and not fsck["problems"], fsck
    events = log_lines(fresh, "faq-bot")
    counts = Counter(e["id"] for e in events)
    expected = {e for ids in pushed_ids for e in ids}
    assert all(n == 1 for n in counts.values())  # exactly once in the file itself
    seed_ids = {e["id"] for e in events if e["actor"] == "tester"}
    assert set(counts) == expected | seed_ids and len(seed_ids) == 2
    assert len(expected) == rounds * len(clones) + rounds

    # the production moves form an unbroken compare-and-swap chain: none overwrote another silently
    moves = [e for e in events if e["stage"] == "production"]
    assert len(moves) == 1 + rounds
    for before, after in zip(moves, moves[1:]):
        assert after["from"] == before["to"]
    head = (fresh / ".modelreg/refs/faq-bot/production").read_text().strip()
    assert head == moves[-1]["to"]
    winners = [v for per in outcomes for (_, v, code) in per if code == 0]
    assert [m["version"] for m in moves[1:]] == sorted(winners)
    assert time.monotonic() - start < 30
