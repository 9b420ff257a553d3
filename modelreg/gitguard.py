"""Refuse to use a registry whose git work tree is between two states (exit 8), and diagnose git locks.

Every :class:`~modelreg.registry.Registry` calls :func:`check` when it opens. While a
``git rebase``, ``merge``, ``cherry-pick`` or ``revert`` is stopped half-way, or a
``modelreg sync`` was killed while moving the work tree, the registry files show a state
that is not the branch's: reads would show an old registry and writes would land where a
``git rebase --abort`` throws them away. :func:`check` costs one ``stat`` per directory
level up to ``.git`` and one ``listdir`` of the git directory; it runs ``git`` only to
word the refusal.

:func:`git_locks` finds the lock files a killed git command leaves (``index.lock``,
``HEAD.lock``, ``refs/**.lock``...) and says whether a live process may still hold them.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass

from .errors import WorkTreeBlocked

JOURNAL = "modelreg-sync.json"  # in the git dir while sync moves the work tree (see modelreg.gitmove)
SYNC_LOCK = "modelreg-sync.lock"  # native lock serialising syncs of one clone

# git-dir entry -> the operation it means is stopped half-way
_STATES = {
    "rebase-merge": "rebase",
    "rebase-apply": "rebase",
    "MERGE_HEAD": "merge",
    "CHERRY_PICK_HEAD": "cherry-pick",
    "REVERT_HEAD": "revert",
    JOURNAL: "sync",
}
_ORDER = ("sync", "rebase", "merge", "cherry-pick", "revert")


@dataclass(frozen=True)
class GitDir:
    """A git work tree: its top directory and its (per-worktree) git directory."""

    top: str
    git_dir: str


def find(start: str | os.PathLike[str]) -> GitDir | None:
    """The git work tree containing ``start`` (a directory), or None; like git, without running it."""
    d = os.path.abspath(start)
    while True:
        dotgit = os.path.join(d, ".git")
        try:
            st = os.stat(dotgit)
        except OSError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                return GitDir(d, dotgit)
            if stat.S_ISREG(st.st_mode):  # linked worktree or submodule: "gitdir: PATH"
                try:
                    with open(dotgit, encoding="utf-8") as f:
                        line = f.readline().strip()
                except (OSError, UnicodeDecodeError):
                    line = ""
                if line.startswith("gitdir:"):
                    target = line[len("gitdir:"):].strip()
                    return GitDir(d, os.path.normpath(os.path.join(d, target)))
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def in_progress(gd: GitDir) -> str | None:
    """``"sync"``, ``"rebase"``, ``"merge"``, ``"cherry-pick"``, ``"revert"`` or None."""
    try:
        names = set(os.listdir(gd.git_dir))
    except OSError:
        return None
    found = {_STATES[n] for n in names & _STATES.keys()}
    for state in _ORDER:
        if state in found:
            return state
    return None


def check(registry_path: str | os.PathLike[str], allow: tuple[str, ...] = ()) -> str | None:
    """Raise WorkTreeBlocked (exit 8) if the registry's work tree is between two states.

    Returns the state found when it is one of ``allow`` (e.g. ``"merge"`` for the commands
    that conclude a merge), else None.
    """
    gd = find(os.path.dirname(os.path.abspath(registry_path)))
    if gd is None:
        return None
    state = in_progress(gd)
    if state is None or state in allow:
        return state
    raise WorkTreeBlocked(blocked_message(gd, state))


def _rel(gd: GitDir, path: str) -> str:
    try:
        rel = os.path.relpath(path, gd.top)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def blocked_message(gd: GitDir, state: str) -> str:
    """One line: what is in progress, why modelreg refuses, and the recovery that keeps acknowledged work."""
    where = gd.top
    if state == "sync":
        try:
            with open(os.path.join(gd.git_dir, JOURNAL), encoding="utf-8") as f:
                j = json.load(f)
            span = f" from {str(j.get('old'))[:12]} to {str(j.get('new'))[:12]}"
        except (OSError, ValueError, AttributeError):
            span = ""
        return (f"a modelreg sync was interrupted in {where} while moving the work tree{span} "
                "(every file holds one side or the other, both in git): run 'modelreg sync' to finish it, "
                "then run the command again")
    if state == "rebase":
        applying = os.path.exists(os.path.join(gd.git_dir, "rebase-apply", "applying"))
        if applying:
            return (f"a git am is in progress in {where}: the registry files are not your branch's; "
                    "finish it (git am --continue) or go back (git am --abort), then run the command again")
        return (f"a git rebase is in progress in {where}: HEAD is not your branch, so the registry files show "
                "another state and writes would be lost by 'git rebase --abort'. Finish it (resolve, git add, "
                "git rebase --continue) or go back with 'git rebase --abort' (your branch still holds every event "
                "committed before the rebase), then run the command again")
    if state == "merge":
        return _merge_message(gd)
    verb = "cherry-pick" if state == "cherry-pick" else "revert"
    return (f"a git {verb} is in progress in {where}: finish it (resolve, git add, git {verb} --continue) or go "
            f"back (git {verb} --abort), then run the command again")


def _merge_message(gd: GitDir) -> str:
    conflicted = _unmerged(gd)
    hints = []
    for p in conflicted[:4]:
        parts = p.split("/")
        if len(parts) >= 3 and parts[-3] == "refs":
            hints.append(f"{p} (a stage: 'modelreg promote {parts[-2]}@VERSION {parts[-1]} --force --reason ...' "
                         f"or git checkout --ours/--theirs -- {p})")
        elif len(parts) >= 3 and parts[-3] == "versions":
            hints.append(f"{p} (a version registered on both sides: git checkout --ours -- {p} or --theirs; "
                         "modelreg fsck then names the other side's registration)")
        else:
            hints.append(p)
    more = f" (+{len(conflicted) - 4} more)" if len(conflicted) > 4 else ""
    todo = f"resolve {'; '.join(hints)}{more}, then " if conflicted else ""
    return (f"a git merge is in progress in {gd.top}: {todo}conclude it with 'modelreg sync' (or git add + "
            "git commit), or go back with 'git merge --abort'; then run the command again")


def _unmerged(gd: GitDir) -> list[str]:
    from .errors import ModelregError
    from .gitrun import _git  # only on the refusal path: opening a registry never runs git

    try:
        proc = _git(["diff", "--name-only", "--diff-filter=U"], gd.top, check=False)
    except (ModelregError, OSError):
        return []
    return [line for line in proc.stdout.decode("utf-8", "replace").splitlines() if line]


# ------------------------------------------------------------------ git locks
@dataclass(frozen=True)
class GitLock:
    """A ``*.lock`` file in a git directory, and what is known about who holds it."""

    path: str
    age: float  # seconds since it was last written
    holders: tuple[int, ...]  # live processes that have it open or run git in this work tree
    known: bool  # True if the process table could be read (Linux /proc)

    @property
    def stale(self) -> bool:
        """No live process can be holding it (or, without /proc, it is older than 10 minutes)."""
        if self.holders:
            return False
        return self.known or self.age > 600


def git_locks(gd: GitDir) -> list[GitLock]:
    """Every lock file git leaves in the git directory, with who may hold it."""
    found: list[tuple[str, float]] = []
    now = time.time()
    dirs = [gd.git_dir]
    common = _common_dir(gd)
    if common != gd.git_dir:
        dirs.append(common)
    for base in dirs:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for n in names:
            if n.endswith(".lock") and n != SYNC_LOCK:
                _add(found, os.path.join(base, n), now)
        for sub in ("refs", os.path.join("logs", "refs")):
            for dirpath, _dirnames, filenames in os.walk(os.path.join(base, sub)):
                for n in filenames:
                    if n.endswith(".lock"):
                        _add(found, os.path.join(dirpath, n), now)
    if not found:
        return []
    known, pids = _git_processes(gd, [p for p, _ in found])
    return [GitLock(p, age, tuple(pids.get(p, ())), known) for p, age in found]


def _add(found: list[tuple[str, float]], path: str, now: float) -> None:
    try:
        found.append((path, max(0.0, now - os.lstat(path).st_mtime)))
    except OSError:
        pass


def _common_dir(gd: GitDir) -> str:
    try:
        with open(os.path.join(gd.git_dir, "commondir"), encoding="utf-8") as f:
            return os.path.normpath(os.path.join(gd.git_dir, f.read().strip()))
    except OSError:
        return gd.git_dir


def _git_processes(gd: GitDir, locks: list[str]) -> tuple[bool, dict[str, list[int]]]:
    """(process table readable, lock path -> pids that may hold it).

    A pid may hold a lock if it has the file open, or if it is a git process whose working
    directory is inside this work tree or git directory (git closes a ref lock before it
    renames it, so an open file is not the only sign).
    """
    proc = "/proc"
    if not os.path.isdir(os.path.join(proc, "self", "fd")):
        return False, {}
    me, uid = os.getpid(), os.getuid()
    roots = tuple(os.path.realpath(p) + os.sep for p in (gd.top, gd.git_dir, _common_dir(gd)))
    wanted = {os.path.realpath(p): p for p in locks}
    out: dict[str, list[int]] = {}
    try:
        pids = [int(n) for n in os.listdir(proc) if n.isdigit()]
    except OSError:
        return False, {}
    for pid in pids:
        if pid == me:
            continue
        base = os.path.join(proc, str(pid))
        try:
            if os.stat(base).st_uid != uid:
                continue  # another user's process cannot write this repository's git directory
            with open(os.path.join(base, "comm"), encoding="utf-8", errors="replace") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm == "git" or comm.startswith("git-"):
            try:
                cwd = os.readlink(os.path.join(base, "cwd")) + os.sep
            except OSError:
                cwd = ""
            if cwd.startswith(roots):
                for p in locks:
                    out.setdefault(p, []).append(pid)
                continue
        try:
            fds = os.listdir(os.path.join(base, "fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(base, "fd", fd))
            except OSError:
                continue
            if target in wanted:
                out.setdefault(wanted[target], []).append(pid)
    return True, out


def describe_lock(gd: GitDir, lock: GitLock) -> str:
    """One line: what the lock is, whether it is stale, and how to clear it safely."""
    rel = _rel(gd, lock.path)
    name = os.path.basename(lock.path)
    if name == "index.lock":
        what = "git's index lock"
        after = "the index keeps its old content: git only replaces it by renaming the lock"
    elif name == "HEAD.lock" or "refs" in lock.path.split(os.sep):
        what = "a git ref lock"
        after = "the ref keeps its old value: git writes the new one into the lock and renames it"
    else:
        what = "a git lock"
        after = "git only replaces the file by renaming the lock"
    if not lock.stale:
        who = f" (pid {', '.join(map(str, lock.holders))})" if lock.holders else ""
        return (f"{rel} is {what} held by a running git command{who} in {gd.top}: wait for it to finish, "
                "then run the command again")
    if lock.known:
        why = f"no git process is running in {gd.top}"
    else:
        why = f"it is {lock.age / 60:.0f} minutes old"
    return (f"{rel} is a stale {what} left {lock.age:.0f} s ago by a git command that was killed (e.g. an "
            f"interrupted sync; {why}): make sure no git command is running here, then remove it "
            f"(rm '{lock.path}'; {after}) and run the command again")
