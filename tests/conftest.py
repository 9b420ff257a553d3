"""Shared fixtures: an initialized registry in a temp project, an in-process CLI runner, artifact files."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from modelreg import cli as cli_mod
from modelreg.registry import Registry

WORKTREE = Path(__file__).resolve().parent.parent

# Environment that would change which registry or actor a test sees.
_ISOLATE = (
    "MODELREG_DIR", "MODELREG_ACTOR", "MODELREG_LOCK_TIMEOUT", "MODELREG_TRACEBACK",
    "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR_EMAIL", "CIRCLE_USERNAME",
    "BITBUCKET_STEP_TRIGGERER_UUID", "BUILD_REQUESTEDFOREMAIL",
)

ACTOR = "tester@example.com"


# The user's own settings and trust decisions (modelreg.userconfig) and signing setup.
_USER_LEVEL = (
    "MODELREG_LOCAL_ROOTS", "MODELREG_ALLOW_PRIVATE_NETWORK", "MODELREG_TRUSTED_SETTINGS",
    "MODELREG_SIGNING_KEY", "MODELREG_ALLOWED_SIGNERS",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for var in _ISOLATE:
        monkeypatch.delenv(var, raising=False)
    # Derived data goes to the user's cache directory: never the real one in tests.
    cache = tmp_path_factory.mktemp("cache")
    (cache / "modelreg").mkdir()
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(cache / "modelreg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty user config directory (XDG_CONFIG_HOME) per test; no user-level modelreg settings."""
    home = tmp_path_factory.mktemp("xdg-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for var in _USER_LEVEL:
        monkeypatch.delenv(var, raising=False)
    return home


def relax_policy(project: Path) -> None:
    """Let any version go to any stage, demoting nothing.

    The core tests exercise stage moves themselves; promotion policy has its own tests
    (test_policy.py, test_team_flow.py).
    """
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + "policy:\n  require_previous_stage: {}\n  demote_to: {}\n")


@pytest.fixture
def bare_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory as the cwd, with MODELREG_ACTOR=tester (no registry yet)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELREG_ACTOR", "tester")
    return tmp_path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (the cwd) holding an initialized ``.modelreg`` registry."""
    proj = tmp_path / "proj"
    proj.mkdir()
    Registry.init(proj)
    relax_policy(proj)
    monkeypatch.chdir(proj)
    monkeypatch.setenv("MODELREG_ACTOR", ACTOR)
    return proj


@pytest.fixture
def reg(project: Path) -> Registry:
    return Registry.open(project / ".modelreg")


CliResult = tuple[int, str, str]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """Run ``modelreg ARGS`` in-process in the current directory; return (exit code, stdout, stderr)."""
    capsys.readouterr()  # drop anything printed before
    try:
        cli_mod.main([str(a) for a in args])
        code: int = 0
    except SystemExit as exc:
        c = exc.code
        code = 0 if c is None else (c if isinstance(c, int) else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``modelreg ARGS`` in-process; return (exit code, stdout, stderr)."""

    def run(*args: str, input: str | None = None) -> CliResult:
        if input is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.StringIO(input))
        return run_cli(capsys, *args)

    return run


@pytest.fixture
def make_artifact(project: Path) -> Callable[..., Path]:
    """Write a file under the project and return its path."""

    def make(rel: str, content: bytes | str = b"weights") -> Path:
        p = project / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p

    return make


def snapshot(regdir: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file in a registry directory, except locks/ and cache/ (derived)."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(regdir):
        rel_dir = Path(dirpath).relative_to(regdir)
        if rel_dir.parts[:1] in (("locks",), ("cache",)):
            dirnames[:] = []
            continue
        for name in filenames:
            p = Path(dirpath) / name
            out[(rel_dir / name).as_posix()] = p.read_bytes()
        for name in dirnames:  # record empty directories too
            if rel_dir / name not in (Path("locks"), Path("cache")):
                out[(rel_dir / name).as_posix() + "/"] = b""
    return out


def log_lines(project: Path, model: str) -> list[dict]:
    p = project / ".modelreg" / "logs" / f"{model}.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for ``python -m modelreg`` subprocesses running the worktree's code."""
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATE}
    env["PYTHONPATH"] = str(WORKTREE) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env
