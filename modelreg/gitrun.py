"""Run the git binary: one function (:func:`_git`), one error (:class:`GitError`), and where a registry sits.

Shared by :mod:`modelreg.gitops` (sync, diff across revisions, textconv) and
:mod:`modelreg.gitmove` (the replay and the move of the work tree). A git failure because
a lock file exists becomes WorkTreeBlocked (exit 8), worded by :mod:`modelreg.gitguard`.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ModelregError, NotFound, WorkTreeBlocked


class GitError(ModelregError):
    """A git command failed; the message is git's own first line of complaint."""

    exit_code = 1


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never hang waiting for credentials in CI
    env["LC_ALL"] = "C"  # stable messages for the parsing below
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    env.pop("GIT_INDEX_FILE", None)
    if extra:
        env.update(extra)
    return env


_LOCK_EXISTS = re.compile(r"Unable to create '([^']+\.lock)': File exists")


def _git(
    args: list[str], cwd: str | os.PathLike[str], *, check: bool = True, error: type[ModelregError] = GitError,
    input: bytes | None = None, env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd``; on failure (with ``check``) raise ``error`` with git's first stderr line.

    A failure because a git lock file exists becomes WorkTreeBlocked (exit 8) saying whether
    the lock is stale and how to clear it.
    """
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=_env(env), check=False,
                              input=input if input is not None else b"")
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    if proc.returncode != 0:
        m = _LOCK_EXISTS.search(proc.stderr.decode("utf-8", "replace"))
        if m:
            raise WorkTreeBlocked(_lock_message(cwd, m.group(1)))
    if check and proc.returncode != 0:
        raise error(f"git {args[0]}: {_first_line(proc.stderr) or f'exited with status {proc.returncode}'}")
    return proc


def _lock_message(cwd: str | os.PathLike[str], path: str) -> str:
    from . import gitguard

    gd = gitguard.find(cwd)
    if gd is not None:
        for lock in gitguard.git_locks(gd):
            if os.path.realpath(lock.path) == os.path.realpath(path):
                return gitguard.describe_lock(gd, lock)
    return f"git could not take its lock {path}: another git command holds it, or a killed one left it"


def _first_line(data: bytes) -> str:
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _out(args: list[str], cwd: str | os.PathLike[str]) -> str:
    return _git(args, cwd).stdout.decode("utf-8", "replace").strip()


# ------------------------------------------------------------------ where things are
@dataclass(frozen=True)
class Location:
    """The git work tree holding a registry and the registry's path inside it (posix, relative)."""

    top: Path
    rel: str  # e.g. ".modelreg" or "ml/.modelreg"

    def path(self, *parts: str) -> str:
        return str(PurePosixPath(self.rel, *parts))


def locate(reg: Any) -> Location:
    """Where ``reg`` sits in its git work tree; NotFound if it is not inside one."""
    proc = _git(["rev-parse", "--show-toplevel"], reg.path, check=False)
    if proc.returncode != 0:
        raise NotFound(f"{reg.path} is not inside a git work tree (git: {_first_line(proc.stderr)})")
    top = Path(proc.stdout.decode().strip()).resolve()
    rel = Path(reg.path).resolve().relative_to(top).as_posix()
    return Location(top, rel)
