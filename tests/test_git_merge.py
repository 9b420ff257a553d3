"""Merging registries with real git: union-merged logs, conflicting stage refs and their resolution."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from gitutil import cli, git, git_env, log_lines, new_repo  # noqa: F401  (git_env is a fixture)
from gitutil import ok as _ok

pytestmark = pytest.mark.usefixtures("git_env")


def _commit(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def _ids(repo: Path, model: str) -> list[str]:
    return [e["id"] for e in log_lines(repo, model)]


def test_init_attributes_union_logs_normal_refs_and_ignores(git_env: Path) -> None:
    repo = new_repo(git_env / "repo")
    attrs = git(repo, "check-attr", "merge", "--", ".modelreg/logs/faq-bot.jsonl", ".modelreg/refs/faq-bot/production",
                ".modelreg/versions/faq-bot/1.0.0", ".modelreg/objects/ab/cd").stdout.splitlines()
    assert attrs == [
        ".modelreg/logs/faq-bot.jsonl: merge: union",
        ".modelreg/refs/faq-bot/production: merge: unspecified",
        ".modelreg/versions/faq-bot/1.0.0: merge: unspecified",
        ".modelreg/objects/ab/cd: merge: unspecified",
    ]
    ignored = git(repo, "check-ignore", ".modelreg/locks/faq-bot.lock", ".modelreg/.tmp-123",
                  ".modelreg/objects/ab/.tmp-x", check=False).stdout.split()
    assert ignored == [".modelreg/locks/faq-bot.lock", ".modelreg/.tmp-123", ".modelreg/objects/ab/.tmp-x"]
    assert git(repo, "check-ignore", ".modelreg/logs/faq-bot.jsonl", check=False).returncode == 1


def test_branches_that_register_promote_and_archive_merge_cleanly(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.0", "-p", "lr=0.1"))
    _ok(cli(capsys, repo, "promote", "faq-bot@1.0.0", "production", "--expect", "none"))
    _commit(repo, "base")

    git(repo, "checkout", "-q", "-b", "a")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.1.0", "-p", "lr=0.2"))
    _ok(cli(capsys, repo, "promote", "faq-bot@1.1.0", "staging", "--expect", "none"))
    _ok(cli(capsys, repo, "register", "shared", "a-1"))  # both branches create this model's log (add/add)
    _ok(cli(capsys, repo, "register", "only-a", "1.0"))
    _commit(repo, "a")
    a_ids = {m: _ids(repo, m) for m in ("faq-bot", "shared")}

    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "b")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.2.0", "-p", "lr=0.3"))
    _ok(cli(capsys, repo, "promote", "faq-bot@1.2.0", "production", "--expect", "1.0.0"))
    _ok(cli(capsys, repo, "archive", "faq-bot@1.0.0", "--reason", "superseded"))
    _ok(cli(capsys, repo, "register", "shared", "b-1"))
    _commit(repo, "b")
    b_ids = {m: _ids(repo, m) for m in ("faq-bot", "shared")}

    git(repo, "checkout", "-q", "a")
    merge = git(repo, "merge", "--no-edit", "b", check=False)
    assert merge.returncode == 0, merge.stdout + merge.stderr
    assert git(repo, "status", "--porcelain").stdout == ""

    fsck = cli(capsys, repo, "fsck", "--json")
    assert fsck.code == 0, fsck.out
    assert fsck.json()["ok"] and not fsck.json()["problems"]

    for model in ("faq-bot", "shared"):
        merged = _ids(repo, model)
        assert Counter(merged) == Counter(set(a_ids[model]) | set(b_ids[model]))  # each event exactly once
        shown = _ok(cli(capsys, repo, "log", model, "--json")).json()
        assert sorted(e["id"] for e in shown) == sorted(set(merged))
        times = [(e["time"], e["id"]) for e in reversed(shown)]
        assert times == sorted(times)  # log --json is newest first, ordered by (time, id)

    models = {m["name"]: m for m in _ok(cli(capsys, repo, "ls", "--json")).json()}
    assert models["faq-bot"]["stages"] == {"staging": "1.1.0", "production": "1.2.0"}
    assert models["shared"]["versions"] == 2 and "only-a" in models
    info = _ok(cli(capsys, repo, "show", "faq-bot@1.0.0", "--json")).json()
    assert info["archived"] is True and info["stages"] == []


def test_real_union_merge_with_duplicate_and_out_of_order_lines(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.0"))
    _commit(repo, "base")
    # A hotfix commit (event E) that gets cherry-picked onto two branches: both sides then carry line E.
    git(repo, "checkout", "-q", "-b", "hotfix")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.1"))
    _commit(repo, "hotfix")
    e_id = _ids(repo, "faq-bot")[-1]

    git(repo, "checkout", "-q", "-b", "a", "main")
    _ok(cli(capsys, repo, "promote", "faq-bot@1.0.0", "staging"))  # X, later than E
    _commit(repo, "a: X")
    git(repo, "cherry-pick", "hotfix")  # a's log: base, X, E
    git(repo, "checkout", "-q", "-b", "b", "main")
    git(repo, "cherry-pick", "hotfix")
    _ok(cli(capsys, repo, "promote", "faq-bot@1.0.0", "production"))  # Y, latest
    _commit(repo, "b: Y")  # b's log: base, E, Y

    merge = git(repo, "merge", "--no-edit", "a", check=False)
    assert merge.returncode == 0, merge.stdout + merge.stderr
    raw = _ids(repo, "faq-bot")
    assert raw.count(e_id) == 2, "the union merge kept E twice"
    times = [e["time"] for e in log_lines(repo, "faq-bot")]
    assert times != sorted(times), "the union merge interleaved lines out of time order"

    shown = list(reversed(_ok(cli(capsys, repo, "log", "faq-bot", "--json")).json()))
    assert [e["id"] for e in shown] == sorted(set(raw), key=lambda i: next(
        (e["time"], e["id"]) for e in log_lines(repo, "faq-bot") if e["id"] == i))
    assert len(shown) == len(set(raw)) == 4
    fsck = cli(capsys, repo, "fsck", "--json")
    assert fsck.code == 0 and fsck.json()["counts"]["events"] == 4


def test_hand_made_log_with_duplicates_and_shuffled_lines(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        _ok(cli(capsys, repo, "register", "faq-bot", v))
    _ok(cli(capsys, repo, "promote", "faq-bot@1.2.0", "production"))
    path = repo / ".modelreg" / "logs" / "faq-bot.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([lines[3], lines[1], lines[0], lines[3], lines[2], lines[1]]))
    shown = _ok(cli(capsys, repo, "log", "faq-bot", "--json")).json()
    assert [e["id"] for e in reversed(shown)] == [json.loads(line)["id"] for line in lines]
    fsck = cli(capsys, repo, "fsck", "--json")
    assert fsck.code == 0 and fsck.json()["counts"]["events"] == 4
    versions = _ok(cli(capsys, repo, "ls", "faq-bot", "--json")).json()
    assert [v["version"] for v in versions] == ["1.0.0", "1.1.0", "1.2.0"]


def _conflicted_repo(git_env: Path, capsys) -> Path:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        _ok(cli(capsys, repo, "register", "faq-bot", v))
    _ok(cli(capsys, repo, "promote", "faq-bot@1.0.0", "production"))
    _commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "a")
    _ok(cli(capsys, repo, "promote", "faq-bot@1.1.0", "production", "--expect", "1.0.0"))
    _commit(repo, "a promotes 1.1.0")
    git(repo, "checkout", "-q", "-b", "b", "main")
    _ok(cli(capsys, repo, "promote", "faq-bot@1.2.0", "production", "--expect", "1.0.0"))
    _commit(repo, "b promotes 1.2.0")
    merge = git(repo, "merge", "--no-edit", "a", check=False)
    assert merge.returncode != 0
    assert "CONFLICT (content): Merge conflict in .modelreg/refs/faq-bot/production" in merge.stdout
    assert "logs/faq-bot.jsonl" not in merge.stdout.split("CONFLICT")[-1]  # the log merged by union
    assert b"<<<<<<<" in (repo / ".modelreg/refs/faq-bot/production").read_bytes()
    return repo


@pytest.mark.parametrize("args", [
    ["resolve", "faq-bot@production"],
    ["show", "faq-bot@production"],
    ["show", "faq-bot@1.1.0"],
    ["ls"],
    ["ls", "faq-bot"],
    ["fsck"],
    ["register", "faq-bot", "2.0.0"],
    ["promote", "faq-bot@1.1.0", "production"],
    ["promote", "faq-bot@1.1.0", "production", "--expect", "1.0.0"],
])
def test_conflicting_stage_moves_block_every_command_during_the_merge(git_env: Path, capsys, args) -> None:  # type: ignore[no-untyped-def]
    repo = _conflicted_repo(git_env, capsys)
    before = (repo / ".modelreg/logs/faq-bot.jsonl").read_bytes()
    run = cli(capsys, repo, *args)
    assert run.code == 8, run.err
    assert run.err.count("\n") == 1 and run.err.startswith("modelreg: error: a git merge is in progress")
    assert ".modelreg/refs/faq-bot/production" in run.err and "promote faq-bot@VERSION production --force" in run.err
    assert "git checkout --ours/--theirs -- .modelreg/refs/faq-bot/production" in run.err
    assert "modelreg sync" in run.err and "git merge --abort" in run.err
    assert (repo / ".modelreg/logs/faq-bot.jsonl").read_bytes() == before  # nothing written


@pytest.mark.parametrize("args", [
    ["resolve", "faq-bot@production"],
    ["show", "faq-bot@production"],
    ["ls", "faq-bot"],
    ["promote", "faq-bot@1.1.0", "production", "--expect", "1.0.0"],
])
def test_committed_conflict_markers_are_detected_by_every_reader(git_env: Path, capsys, args) -> None:  # type: ignore[no-untyped-def]
    repo = _conflicted_repo(git_env, capsys)
    git(repo, "commit", "-q", "-a", "--no-edit")  # someone committed the markers
    run = cli(capsys, repo, *args)
    assert run.code == 6, run.err
    assert run.err.count("\n") == 1 and run.err.startswith("modelreg: error: ")
    assert "refs/faq-bot/production" in run.err and "conflict markers" in run.err
    assert "modelreg promote NAME@VERSION STAGE --force" in run.err and "check out one side" in run.err
    assert "Traceback" not in run.err


def test_fsck_names_the_conflicted_file_then_promote_force_resolves_it(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = _conflicted_repo(git_env, capsys)
    assert cli(capsys, repo, "fsck").code == 8  # the merge is in progress
    # --expect must name one of the two sides
    assert cli(capsys, repo, "promote", "faq-bot@1.1.0", "production", "--force", "--expect", "1.0.0", "--reason", "pick a side").code == 4
    digests = {v: git(repo, "show", f"{b}:.modelreg/refs/faq-bot/production").stdout.strip()
               for v, b in (("1.1.0", "a"), ("1.2.0", "b"))}
    move = _ok(cli(capsys, repo, "promote", "faq-bot@1.1.0", "production", "--force", "--expect", "1.2.0",
                   "--reason", "pick a", "--json")).json()
    assert move["changed"] and move["from"] is None and move["to"]["version"] == "1.1.0"
    data = move["events"][0]["data"]
    assert data["resolved_conflict"] is True and data["forced"] is True
    assert sorted(data["conflict_sides"]) == sorted(digests.values())
    assert (repo / ".modelreg/refs/faq-bot/production").read_text() == digests["1.1.0"] + "\n"
    # --force is for picking a side of a conflicted ref only: anything else waits for the merge to end
    again = cli(capsys, repo, "promote", "faq-bot@1.2.0", "staging", "--force", "--reason", "x")
    assert again.code == 8 and "git merge is in progress" in again.err

    # sync concludes the merge: only the registry is staged, the merge commit has two parents
    sync = _ok(cli(capsys, repo, "sync", "--json")).json()
    assert sync["committed"] and not sync["pushed"]
    assert git(repo, "status", "--porcelain").stdout == ""
    assert len(git(repo, "rev-list", "--parents", "-n1", "HEAD").stdout.split()) == 3
    last = log_lines(repo, "faq-bot")[-1]
    assert last["data"]["resolved_conflict"] is True
    assert _ok(cli(capsys, repo, "resolve", "faq-bot@production")).out.strip() == "1.1.0"
    fsck = cli(capsys, repo, "fsck", "--json")
    assert fsck.code == 0 and not fsck.json()["problems"], fsck.out
    text = cli(capsys, repo, "fsck")
    assert text.code == 0


def test_promote_without_force_keeps_refusing_and_checkout_one_side_also_resolves(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = _conflicted_repo(git_env, capsys)
    before = (repo / ".modelreg/refs/faq-bot/production").read_bytes()
    assert cli(capsys, repo, "promote", "faq-bot@1.2.0", "production").code == 8
    assert (repo / ".modelreg/refs/faq-bot/production").read_bytes() == before
    git(repo, "checkout", "--theirs", "--", ".modelreg/refs/faq-bot/production")
    assert cli(capsys, repo, "resolve", "faq-bot@production").code == 8  # still merging
    _ok(cli(capsys, repo, "sync"))
    assert git(repo, "status", "--porcelain").stdout == ""
    assert _ok(cli(capsys, repo, "resolve", "faq-bot@production")).out.strip() == "1.1.0"
    fsck = cli(capsys, repo, "fsck", "--json")
    assert fsck.code == 0  # the union log's last production move is one of the two; a warning at most
    problems = fsck.json()["problems"]
    assert all(p["severity"] == "warning" and p["repair"] for p in problems), problems


def test_version_registered_on_both_sides_gets_a_working_hint_and_fsck_names_the_lost_side(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.0"))
    _commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "a")
    _ok(cli(capsys, repo, "register", "faq-bot", "2.0.0", "-p", "lr=0.1"))
    _commit(repo, "a registers 2.0.0")
    git(repo, "checkout", "-q", "-b", "b", "main")
    _ok(cli(capsys, repo, "register", "faq-bot", "2.0.0", "-p", "lr=0.2"))
    _commit(repo, "b registers 2.0.0 differently")
    ours = (repo / ".modelreg/versions/faq-bot/2.0.0").read_text().strip()
    assert git(repo, "merge", "--no-edit", "a", check=False).returncode != 0
    path = ".modelreg/versions/faq-bot/2.0.0"

    run = cli(capsys, repo, "resolve", "faq-bot@2.0.0")
    assert run.code == 8 and f"git checkout --ours -- {path}" in run.err, run.err
    git(repo, "checkout", "--ours", "--", path)  # the hint, as written, works
    _ok(cli(capsys, repo, "sync"))  # concludes the merge
    assert _ok(cli(capsys, repo, "resolve", "faq-bot@2.0.0", "--digest")).out.strip() == ours
    fsck = cli(capsys, repo, "fsck", "--json")
    assert fsck.code == 0, fsck.out
    warned = [p for p in fsck.json()["problems"] if "no version entry has that digest" in p["message"]]
    assert len(warned) == 1 and warned[0]["severity"] == "warning" and warned[0]["repair"] is None
    assert "faq-bot@2.0.0" in warned[0]["message"]


def test_committed_version_conflict_markers_name_checkout_not_promote(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.0"))
    _commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "a")
    _ok(cli(capsys, repo, "register", "faq-bot", "2.0.0", "-p", "lr=0.1"))
    _commit(repo, "a")
    git(repo, "checkout", "-q", "-b", "b", "main")
    _ok(cli(capsys, repo, "register", "faq-bot", "2.0.0", "-p", "lr=0.2"))
    _commit(repo, "b")
    git(repo, "merge", "--no-edit", "a", check=False)
    git(repo, "commit", "-q", "-a", "--no-edit")
    run = cli(capsys, repo, "show", "faq-bot@2.0.0")
    assert run.code == 6 and "git checkout --ours --" in run.err and "promote" not in run.err
