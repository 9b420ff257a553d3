"""Reviewing registry changes with git: diff a stage across revisions, textconv for git diff."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from gitutil import cli, git, git_env, new_repo  # noqa: F401
from gitutil import ok as _ok

pytestmark = pytest.mark.usefixtures("git_env")


def _commit(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def _two_releases(git_env: Path, capsys) -> Path:  # type: ignore[no-untyped-def]
    repo = new_repo(git_env / "repo")
    (repo / "model-a.bin").write_bytes(b"weights a")
    (repo / "model-b.bin").write_bytes(b"weights b")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.0.0", "-a", "checkpoint=model-a.bin", "-p", "lr=0.1"))
    _ok(cli(capsys, repo, "promote", "faq-bot@1.0.0", "production"))
    _commit(repo, "release 1.0.0")
    _ok(cli(capsys, repo, "register", "faq-bot", "1.1.0", "-a", "checkpoint=model-b.bin", "-p", "lr=0.2",
            "-p", "epochs=3"))
    _ok(cli(capsys, repo, "promote", "faq-bot@1.1.0", "production", "--expect", "1.0.0"))
    _commit(repo, "release 1.1.0")
    return repo


def test_diff_rev_shows_then_and_now_and_the_manifest_changes(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = _two_releases(git_env, capsys)
    d1 = _ok(cli(capsys, repo, "resolve", "faq-bot@1.0.0", "--digest")).out.strip()
    d2 = _ok(cli(capsys, repo, "resolve", "faq-bot@1.1.0", "--digest")).out.strip()
    data = _ok(cli(capsys, repo, "diff", "faq-bot@production", "--rev", "HEAD~1", "--json")).json()
    assert data["stage"] == "production"
    assert data["then"] == {"name": "faq-bot", "version": "1.0.0", "digest": d1}
    assert data["now"] == {"name": "faq-bot", "version": "1.1.0", "digest": d2}
    changes = {c["path"]: c for c in data["changes"]}
    assert changes["version"]["old"] == "1.0.0" and changes["version"]["new"] == "1.1.0"
    assert changes["params.lr"] == {"path": "params.lr", "kind": "changed", "old": 0.1, "new": 0.2}
    assert changes["params.epochs"]["kind"] == "added"
    assert changes["artifacts.checkpoint.sha256"]["kind"] == "changed"
    assert _ok(cli(capsys, repo, "diff", "faq-bot@production", "--since", "HEAD~1", "--json")).json() == data

    text = _ok(cli(capsys, repo, "diff", "faq-bot@production", "--rev", "HEAD~1")).out
    assert f"faq-bot@production goes from 1.0.0 ({d1[:19]}) at HEAD~1 to 1.1.0 ({d2[:19]}) now" in text
    assert "- params.lr: 0.1" in text and "+ params.lr: 0.2" in text and "+ params.epochs: 3" in text

    same = _ok(cli(capsys, repo, "diff", "faq-bot@production", "--rev", "HEAD")).out
    assert same.strip() == f"faq-bot@production is unchanged since HEAD: 1.1.0 ({d2[:19]})"
    # the plain two-reference diff still works
    plain = _ok(cli(capsys, repo, "diff", "faq-bot@1.0.0", "faq-bot@1.1.0", "--json")).json()
    assert plain["a"]["version"] == "1.0.0" and plain["changes"] == data["changes"]


def test_diff_rev_compares_with_the_work_tree_and_reads_objects_from_the_revision(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = _two_releases(git_env, capsys)
    _ok(cli(capsys, repo, "rollback", "faq-bot", "production"))  # uncommitted: production is 1.0.0 again
    data = _ok(cli(capsys, repo, "diff", "faq-bot@production", "--rev", "HEAD", "--json")).json()
    assert data["then"]["version"] == "1.1.0" and data["now"]["version"] == "1.0.0"

    # before any release the stage was empty: then is null and everything is added
    first = git(repo, "rev-list", "--max-parents=0", "HEAD").stdout.strip()
    data = _ok(cli(capsys, repo, "diff", "faq-bot@production", "--rev", first, "--json")).json()
    assert data["then"] is None and data["now"]["version"] == "1.0.0"
    assert data["changes"] and all(c["kind"] == "added" for c in data["changes"])
    assert "goes from (empty)" in _ok(cli(capsys, repo, "diff", "faq-bot@production", "--rev", first)).out

    # the object held at the revision is read from git, not from the work tree
    _commit(repo, "rollback")
    d2 = _ok(cli(capsys, repo, "resolve", "faq-bot@1.1.0", "--digest")).out.strip()
    (repo / ".modelreg" / "objects" / d2[7:9] / d2[9:]).unlink()  # e.g. a sparse or damaged work tree
    data = _ok(cli(capsys, repo, "diff", "faq-bot@production", "--rev", "HEAD~1", "--json")).json()
    assert data["then"] == {"name": "faq-bot", "version": "1.1.0", "digest": d2}
    assert data["now"]["version"] == "1.0.0"


@pytest.mark.parametrize("args, code", [
    (["diff", "faq-bot@production", "--rev", "no-such-rev"], 3),
    (["diff", "faq-bot@production", "faq-bot@1.0.0", "--rev", "HEAD"], 2),
    (["diff", "faq-bot@production", "--rev", "HEAD", "--since", "HEAD"], 2),
    (["diff", "faq-bot@1.0.0", "--rev", "HEAD"], 2),
    (["diff", "faq-bot@production"], 2),
    (["diff", "nobody@production", "--rev", "HEAD"], 3),
])
def test_diff_rev_errors(git_env: Path, capsys, args, code) -> None:  # type: ignore[no-untyped-def]
    repo = _two_releases(git_env, capsys)
    run = cli(capsys, repo, *args)
    assert run.code == code, run.err
    assert run.err.count("\n") == 1 and "Traceback" not in run.err


def test_diff_rev_outside_git_is_not_found(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    plain = git_env / "plain"
    plain.mkdir()
    _ok(cli(capsys, plain, "init"))
    run = cli(capsys, plain, "diff", "faq-bot@production", "--rev", "HEAD")
    assert run.code == 3 and "not inside a git work tree" in run.err


def _command() -> str:
    return f"{shlex.quote(sys.executable)} -m modelreg"


def test_git_setup_makes_git_diff_show_names_and_versions(git_env: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = _two_releases(git_env, capsys)
    setup = _ok(cli(capsys, repo, "git-setup", "--command", _command(), "--json")).json()
    assert setup["config_set"] is True
    assert setup["attributes_added"] == ["refs/** diff=modelreg-ref", "versions/** diff=modelreg-ref"]
    assert git(repo, "config", "diff.modelreg-ref.textconv").stdout.strip() == f"{_command()} git-textconv"
    again = _ok(cli(capsys, repo, "git-setup", "--command", _command(), "--json")).json()
    assert again["config_set"] is False and again["attributes_added"] == []
    attrs = (repo / ".modelreg" / ".gitattributes").read_text()
    assert "logs/*.jsonl merge=union" in attrs and attrs.count("refs/** diff=modelreg-ref") == 1
    assert git(repo, "check-attr", "diff", "--", ".modelreg/refs/faq-bot/production").stdout.strip().endswith(
        "diff: modelreg-ref")
    _commit(repo, "git-setup")

    d1 = _ok(cli(capsys, repo, "resolve", "faq-bot@1.0.0", "--digest")).out.strip()
    d2 = _ok(cli(capsys, repo, "resolve", "faq-bot@1.1.0", "--digest")).out.strip()
    shown = git(repo, "diff", "HEAD~2", "HEAD~1", "--", ".modelreg/refs", ".modelreg/versions").stdout
    assert f"-faq-bot@1.0.0 ({d1[:19]}…)" in shown
    assert f"+faq-bot@1.1.0 ({d2[:19]}…)" in shown
    assert d2 not in shown  # no bare digests
    # the work tree change, seen from a subdirectory
    _ok(cli(capsys, repo, "rollback", "faq-bot", "production"))
    sub = repo / "src"
    sub.mkdir()
    work = git(sub, "diff").stdout
    assert f"-faq-bot@1.1.0 ({d2[:19]}…)" in work and f"+faq-bot@1.0.0 ({d1[:19]}…)" in work
    # without the driver configured, git shows the raw digest (the attribute alone is harmless)
    git(repo, "config", "--unset", "diff.modelreg-ref.textconv")
    assert f"+{d1}" in git(repo, "diff").stdout


def test_git_textconv_on_temp_files(git_env: Path, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = _two_releases(git_env, capsys)
    d1 = _ok(cli(capsys, repo, "resolve", "faq-bot@1.0.0", "--digest")).out.strip()
    tmp = tmp_path / "XXXX_production"
    tmp.write_text(d1 + "\n")
    assert _ok(cli(capsys, repo, "git-textconv", str(tmp))).out == f"faq-bot@1.0.0 ({d1[:19]}…)\n"
    unknown = "sha256:" + "0" * 64
    tmp.write_text(unknown + "\n")
    assert _ok(cli(capsys, repo, "git-textconv", str(tmp))).out == f"{unknown} (object not in this registry)\n"
    tmp.write_text("<<<<<<< HEAD\nsomething else\n")
    assert _ok(cli(capsys, repo, "git-textconv", str(tmp))).out == "<<<<<<< HEAD\nsomething else\n"
    assert cli(capsys, repo, "git-textconv", str(tmp_path / "missing")).code == 2
