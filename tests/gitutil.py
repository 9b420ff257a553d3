"""Helpers for tests that drive real git: isolated config, repos, in-process and subprocess CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME in a temp dir and no system config, so the machine's git config cannot interfere."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("MODELREG_ACTOR", "tester")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "MODELREG_DIR", "GIT_CONFIG_GLOBAL"):
        monkeypatch.delenv(var, raising=False)
    pp = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + pp if pp else ""))
    return tmp_path


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc


def configure(repo: Path, who: str = "tester") -> None:
    git(repo, "config", "user.name", who)
    git(repo, "config", "user.email", f"{who}@example.com")
    git(repo, "config", "commit.gpgsign", "false")


def new_repo(path: Path, *, registry: bool = True) -> Path:
    """A git repo on branch main with an initialised registry committed."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    configure(path)
    if registry:
        from modelreg.registry import Registry

        Registry.init(path)
        # These tests are about git, not promotion policy: let versions go straight to any stage.
        cfg = path / ".modelreg" / "config.yaml"
        cfg.write_text(cfg.read_text() + "policy:\n  require_previous_stage: {}\n  demote_to: {}\n")
        (path / "README.md").write_text("project\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "init registry")
    return path


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli(capsys: pytest.CaptureFixture[str], cwd: Path, *args: str) -> Run:
    """Run the CLI in-process with ``cwd`` as the working directory; returns exit code and output."""
    from modelreg.cli import main

    capsys.readouterr()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def cli_proc(cwd: Path, *args: str, timeout: float = 60) -> Run:
    """Run the CLI in a subprocess (safe from threads: no process-global cwd change)."""
    proc = subprocess.run(
        [sys.executable, "-m", "modelreg", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ),
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def log_lines(repo: Path, model: str) -> list[dict[str, Any]]:
    text = (repo / ".modelreg" / "logs" / f"{model}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def ok(run: Run) -> Run:
    """``run``, after asserting it exited 0 (its stderr as the message)."""
    assert run.code == 0, run.err
    return run


def seeded_remote(tmp: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A bare repo whose main holds a registry with faq-bot@1.0.0 in production."""
    seed = new_repo(tmp / "seed")
    ok(cli(capsys, seed, "register", "faq-bot", "1.0.0"))
    ok(cli(capsys, seed, "promote", "faq-bot@1.0.0", "production"))
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "seed")
    bare = tmp / "remote.git"
    git(tmp, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


def clone_of(bare: Path, dest: Path, who: str = "tester") -> Path:
    """A clone of ``bare`` at ``dest`` with ``who`` as its commit identity."""
    git(bare.parent, "clone", "-q", str(bare), str(dest))
    configure(dest, who)
    return dest
