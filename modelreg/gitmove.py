"""Rebase in git's object database, then move the work tree by atomic renames under a journal.

:func:`replay` replays the commits HEAD has and the upstream lacks onto the upstream without
touching the work tree, the index or any ref: a temporary index builds each tree, logs merge
by union (``merge=union`` in ``.gitattributes``, like git), and any other file changed on both
sides is a conflict. A kill during a replay leaves the clone exactly as it was.

:func:`move` then brings the work tree, the index and the branch from the old commit to the
replayed one. It writes a journal (``.git/modelreg-sync.json``) first; replaces each changed
registry file by rename (old or new bytes, never a mix) in the registry's write order
(objects, versions, refs, logs) under the locks of the models it touches; then updates the
index and moves the branch (compare-and-swap), and removes the journal. A kill in between
leaves the journal, every modelreg command refuses (exit 8), and ``modelreg sync`` finishes
the move: both commits are in git, and each file holds one side or the other.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import fileio, gitguard
from .errors import Conflict, IntegrityError, WorkTreeBlocked
from .gitrun import GitError, Location, _git, _out
from .names import check_model

LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}
CHUNK = 400  # paths per command line
REGULAR = ("100644", "100755")
_PHASES = ("objects", "versions", None, "refs", "logs")  # registry write order; None: any other file


@dataclass(frozen=True)
class Entry:
    """A tree entry: mode and object id."""

    mode: str
    oid: str


@dataclass
class Replayed:
    """Outcome of :func:`replay`: the new tip, what became of each commit, or the conflicting paths."""

    head: str
    base: str = ""  # the merge base of the old head and the upstream
    mapping: dict[str, str | None] = field(default_factory=dict)  # old commit -> new (None: became empty)
    conflicts: list[str] = field(default_factory=list)
    merged: bool = False  # a merge commit was made (the unpushed commits contain merges)


# ---------------------------------------------------------------- object access
def _batch(loc: Location, oids: list[str]) -> dict[str, bytes]:
    """Contents of objects by id, in one ``git cat-file --batch``."""
    if not oids:
        return {}
    want = list(dict.fromkeys(oids))
    out = _git(["cat-file", "--batch"], loc.top, input="".join(f"{o}\n" for o in want).encode()).stdout
    result: dict[str, bytes] = {}
    pos = 0
    for oid in want:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].split()
        if len(header) < 3:
            raise GitError(f"git cat-file: object {oid} is missing")
        size = int(header[2])
        result[oid] = out[nl + 1: nl + 1 + size]
        pos = nl + 1 + size + 1
    return result


def _changes(loc: Location, a: str, b: str) -> list[tuple[str, Entry | None, Entry | None]]:
    """Paths that differ between two commits or trees: (path, entry in a, entry in b)."""
    out = _git(["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", a, b], loc.top).stdout
    parts = out.split(b"\0")
    result = []
    i = 0
    while i + 1 < len(parts) and parts[i]:
        meta = parts[i].decode().lstrip(":").split()
        path = parts[i + 1].decode("utf-8", "surrogateescape")
        old = None if set(meta[2]) == {"0"} else Entry(meta[0], meta[2])
        new = None if set(meta[3]) == {"0"} else Entry(meta[1], meta[3])
        result.append((path, old, new))
        i += 2
    return result


def _ls(loc: Location, rev: str, paths: list[str]) -> dict[str, Entry]:
    """The entries of ``paths`` in ``rev`` (absent paths are left out)."""
    found: dict[str, Entry] = {}
    for i in range(0, len(paths), CHUNK):
        out = _git(["ls-tree", "-z", "--full-tree", rev, "--", *paths[i:i + CHUNK]], loc.top, env=LITERAL).stdout
        for rec in out.split(b"\0"):
            if not rec:
                continue
            meta, _, path = rec.partition(b"\t")
            mode, kind, oid = meta.decode().split()
            if kind != "tree":
                found[path.decode("utf-8", "surrogateescape")] = Entry(mode, oid)
    return found


def _union_paths(loc: Location, paths: list[str]) -> set[str]:
    """The paths whose ``merge`` attribute is ``union`` (as ``git check-attr`` sees them)."""
    if not paths:
        return set()
    data = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)
    out = _git(["check-attr", "-z", "--stdin", "merge"], loc.top, input=data).stdout.split(b"\0")
    return {out[i].decode("utf-8", "surrogateescape") for i in range(0, len(out) - 2, 3) if out[i + 2] == b"union"}


def _union(loc: Location, base: Entry | None, ours: Entry, theirs: Entry) -> Entry:
    """``git merge-file --union`` of three blobs, written to the object database."""
    blobs = _batch(loc, [e.oid for e in (base, ours, theirs) if e is not None])
    with tempfile.TemporaryDirectory(prefix="modelreg-merge-") as tmp:
        files = []
        for name, e in (("ours", ours), ("base", base), ("theirs", theirs)):
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(blobs[e.oid] if e is not None else b"")
            files.append(p)
        merged = _git(["merge-file", "--union", "-p", *files], loc.top, check=False)
        if merged.returncode < 0 or merged.returncode > 127:
            raise GitError(f"git merge-file: {merged.stderr.decode('utf-8', 'replace').strip()}")
    oid = _git(["hash-object", "-w", "--no-filters", "--stdin"], loc.top, input=merged.stdout).stdout.decode().strip()
    return Entry(ours.mode, oid)


def _write_tree(loc: Location, git_dir: str, start: str, updates: dict[str, Entry | None]) -> str:
    """The tree ``start`` with ``updates`` applied (None deletes), built in a temporary index."""
    fd, index = tempfile.mkstemp(prefix="modelreg-index-", dir=git_dir)
    os.close(fd)
    os.unlink(index)  # git creates it; an empty file is not a valid index
    env = {"GIT_INDEX_FILE": index}
    try:
        _git(["read-tree", start], loc.top, env=env)
        if updates:
            zero = "0" * len(next(iter(e.oid for e in updates.values() if e is not None), "0" * 40))
            lines = b"".join(
                (f"{e.mode} {e.oid}\t" if e is not None else f"0 {zero}\t").encode() + p.encode("utf-8", "surrogateescape")
                + b"\0" for p, e in updates.items()
            )
            _git(["update-index", "-z", "--index-info"], loc.top, env=env, input=lines)
        return _git(["write-tree"], loc.top, env=env, error=Conflict).stdout.decode().strip()
    finally:
        for p in (index, index + ".lock"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass


def three_way(loc: Location, git_dir: str, base: str, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """Apply the changes ``base -> theirs`` to the tree of ``ours``; (tree, []) or (None, conflicting paths).

    A path changed on both sides merges by union when its ``merge`` attribute says so and
    all sides are regular files; otherwise it conflicts.
    """
    changes = _changes(loc, base, theirs)
    if not changes:
        return _out(["rev-parse", f"{ours}^{{tree}}"], loc.top), []
    current = _ls(loc, ours, [p for p, _, _ in changes])
    updates: dict[str, Entry | None] = {}
    both: list[tuple[str, Entry | None, Entry | None, Entry | None]] = []
    for path, b, t in changes:
        o = current.get(path)
        if o == b:
            updates[path] = t
        elif o != t:
            both.append((path, b, o, t))
    conflicts = []
    unions = _union_paths(loc, [p for p, _, _, _ in both])
    for path, b, o, t in both:
        regular = all(e is None or e.mode in REGULAR for e in (b, o, t))
        if path in unions and o is not None and t is not None and regular:
            updates[path] = _union(loc, b, o, t)
        else:
            conflicts.append(path)
    if conflicts:
        return None, conflicts
    return _write_tree(loc, git_dir, ours, updates), []


# ----------------------------------------------------------------------- replay
def _parse_commit(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """(tree, author environment, message) of a raw commit object."""
    head, _, message = raw.partition(b"\n\n")
    tree = ""
    env: dict[str, str] = {}
    for line in head.split(b"\n"):
        if line.startswith(b"tree "):
            tree = line[5:].decode()
        elif line.startswith(b"author "):
            text = line[7:].decode("utf-8", "replace")
            name, _, rest = text.partition(" <")
            email, _, date = rest.partition("> ")
            env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
    return tree, env, message


def replay(loc: Location, git_dir: str, head: str, upstream: str, what: str = "upstream") -> Replayed:
    """Replay ``upstream..head`` onto ``upstream`` in the object database (nothing else changes).

    Commits that become empty are dropped, as ``git rebase`` does. When the commits to
    replay contain a merge, the result is instead one merge commit of ``upstream`` and
    ``head`` (a rebase would re-do the merge). Conflicts come back in ``conflicts``.
    """
    base_proc = _git(["merge-base", head, upstream], loc.top, check=False)
    if base_proc.returncode != 0:
        raise GitError(f"{what} shares no history with HEAD: nothing can be replayed onto it")
    base = base_proc.stdout.decode().strip()
    if base == head:
        return Replayed(upstream, base)  # nothing of ours is missing upstream: fast-forward
    rows = [line.split() for line in _out(["rev-list", "--reverse", "--topo-order", "--parents",
                                           f"{upstream}..{head}"], loc.top).splitlines()]
    if any(len(r) > 2 for r in rows):
        tree, conflicts = three_way(loc, git_dir, base, upstream, head)
        if tree is None:
            return Replayed(head, base, conflicts=conflicts)
        msg = f"modelreg sync: merge {what}\n".encode()
        new = _git(["commit-tree", tree, "-p", upstream, "-p", head, "-F", "-"], loc.top,
                   input=msg).stdout.decode().strip()
        return Replayed(new, base, merged=True)
    raws = _batch(loc, [r[0] for r in rows] + [upstream])
    current = upstream
    current_tree = _parse_commit(raws[upstream])[0]
    mapping: dict[str, str | None] = {}
    for commit, parent in ((r[0], r[1]) for r in rows):
        tree_then, author, message = _parse_commit(raws[commit])
        tree, conflicts = three_way(loc, git_dir, parent, current, commit)
        if tree is None:
            return Replayed(head, base, mapping, conflicts)
        if tree == current_tree:
            mapping[commit] = None  # its changes are all upstream already
            continue
        current = _git(["commit-tree", tree, "-p", current, "-F", "-"], loc.top, input=message,
                       env=author).stdout.decode().strip()
        current_tree = tree
        mapping[commit] = current
    return Replayed(current, base, mapping)


# ------------------------------------------------------------------------- move
def journal_path(git_dir: str) -> str:
    return os.path.join(git_dir, gitguard.JOURNAL)


def read_journal(git_dir: str) -> dict[str, Any] | None:
    """The journal of an interrupted move, or None."""
    try:
        with open(journal_path(git_dir), encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorkTreeBlocked(f"{journal_path(git_dir)} is unreadable ({exc}): check 'git status', then remove it") \
            from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("old", "new")):
        raise WorkTreeBlocked(f"{journal_path(git_dir)} is not a modelreg sync journal: check 'git status', "
                              "then remove it")
    return data


def _model_of(reg_parts: list[str]) -> str | None:
    if len(reg_parts) == 2 and reg_parts[0] == "logs" and reg_parts[1].endswith(".jsonl"):
        name = reg_parts[1][: -len(".jsonl")]
    elif len(reg_parts) == 3 and reg_parts[0] in ("refs", "versions"):
        name = reg_parts[1]
    else:
        return None
    try:
        return check_model(name)
    except Exception:  # noqa: BLE001 - an invalid name is not a model to lock (fsck reports it)
        return None


def _safe_target(top: Path, path: str) -> Path:
    """The work-tree file for a tree path, refusing '..', '.git' and symlinked parent directories."""
    parts = path.split("/")
    if any(p in ("", ".", "..") or p.lower() == ".git" for p in parts):
        raise IntegrityError(f"refusing to write {path!r}: not a plain path inside the work tree")
    d = top
    for p in parts[:-1]:
        d = d / p
        if not os.path.lexists(d):
            break
        if os.path.islink(d) or not os.path.isdir(d):
            raise IntegrityError(f"refusing to write {path}: {d} is not a plain directory")
    return top / path


@dataclass
class _Plan:
    path: str
    target: Path
    new: Entry | None
    data: bytes | None  # what to write (None: delete)
    phase: int


def move(reg: Any, loc: Location, git_dir: str, old: str, new: str, *, resume: bool = False,
         lock_timeout: float | None = None) -> bool:
    """Move the work tree, index and HEAD from commit ``old`` to ``new``; False if it must be retried.

    Returns False, having changed nothing, when a registry file changed since ``old`` was
    committed in a way that cannot be carried over (a concurrent writer moved a ref the
    move also changes): the caller commits again and replays again. A log that only gained
    lines since ``old`` keeps them after the new content. Uncommitted changes outside the
    registry that the move would overwrite raise WorkTreeBlocked (nothing changed).
    """
    prefix = loc.rel + "/"
    changes = _changes(loc, old, new)
    reg_changes = [(p, o, n) for p, o, n in changes if p.startswith(prefix)]
    other = [(p, o, n) for p, o, n in changes if not p.startswith(prefix)]
    for p, _o, n in reg_changes:
        if n is not None and n.mode not in REGULAR:
            raise IntegrityError(f"{p} in {new[:12]} is not a regular file (mode {n.mode}): a registry never holds "
                                 "symlinks or submodules; nothing was changed")
    if other:
        _check_outside(loc, other, new, resume)
    models = sorted({m for p, _, _ in reg_changes if (m := _model_of(p[len(prefix):].split("/")))})
    blobs = _batch(loc, [e.oid for _, o, n in reg_changes for e in (o, n) if e is not None])
    top = Path(loc.top)
    with ExitStack() as stack:
        fileio.makedirs(reg.locks_dir)
        for m in models:
            stack.enter_context(fileio.lock(reg.locks_dir / f"{m}.lock", timeout=lock_timeout))
        plans: list[_Plan] = []
        for path, o, n in reg_changes:
            target = _safe_target(top, path)
            try:
                current: bytes | None = fileio.read_file(target)
            except FileNotFoundError:
                current = None
            except IsADirectoryError:
                current = b"\0directory"
            want = blobs[n.oid] if n is not None else None
            was = blobs[o.oid] if o is not None else None
            if current == want:
                continue
            rel = path[len(prefix):].split("/")
            if current == was:
                data = want
            elif (rel[0] == "logs" and was is not None and want is not None and current is not None
                  and current.startswith(was) and was.endswith(b"\n")):
                data = want + current[len(was):]  # lines appended since the commit stay, after the new ones
            elif resume:
                raise WorkTreeBlocked(
                    f"{path} changed during an interrupted modelreg sync (it is neither {old[:12]}'s nor "
                    f"{new[:12]}'s): look at it with 'git diff', put back one side, then run 'modelreg sync'")
            else:
                return False
            phase = _PHASES.index(rel[0]) if rel[0] in _PHASES else _PHASES.index(None)
            plans.append(_Plan(path, target, n, data, phase))
        if not resume:
            fileio.atomic_write(journal_path(git_dir), json.dumps(
                {"format": 1, "old": old, "new": new, "registry": loc.rel}).encode() + b"\n")
        dirs: set[Path] = set()
        for plan in sorted(plans, key=lambda x: x.phase):
            if plan.data is None:
                try:
                    os.unlink(plan.target)
                except FileNotFoundError:
                    pass
                _prune_dirs(plan.target.parent, Path(reg.path))
                dirs.add(plan.target.parent)
            else:
                fileio.makedirs(plan.target.parent)
                fileio.atomic_write(plan.target, plan.data)
                if plan.new is not None and plan.new.mode == "100755":
                    os.chmod(plan.target, 0o755)
    if other:
        present = [p for p, _, n in other if n is not None]
        for i in range(0, len(present), CHUNK):
            _git(["checkout", new, "--", *present[i:i + CHUNK]], loc.top, env=LITERAL)
        for p, _, n in other:
            if n is None:
                try:
                    os.unlink(_safe_target(top, p))
                except (FileNotFoundError, IsADirectoryError):
                    pass
    finish(loc, git_dir, old, new, changes)
    return True


def _prune_dirs(d: Path, stop: Path) -> None:
    """Remove directories left empty by a deletion, up to (not including) ``stop``."""
    while d != stop and stop in d.parents:
        try:
            os.rmdir(d)
        except OSError:
            return
        d = d.parent


def _check_outside(loc: Location, other: list[tuple[str, Entry | None, Entry | None]], new: str, resume: bool) -> None:
    """Refuse (nothing changed) if uncommitted changes outside the registry would be overwritten."""
    existing = [p for p, _, _ in other if os.path.lexists(os.path.join(loc.top, p))]
    hashes: dict[str, str] = {}
    if existing:
        data = b"".join(p.encode("utf-8", "surrogateescape") + b"\n" for p in existing)
        out = _git(["hash-object", "--stdin-paths"], loc.top, input=data, check=False).stdout.decode().split()
        hashes = dict(zip(existing, out))
    dirty = []
    for p, o, n in other:
        now = hashes.get(p)
        if now in ((o.oid if o else None), (n.oid if n else None)):
            continue
        if now is None and o is None:
            continue
        if resume and n is not None and now is None:
            continue
        dirty.append(p)
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" (+{len(dirty) - 3} more)" if len(dirty) > 3 else "")
        raise WorkTreeBlocked(
            f"uncommitted changes to {shown} would be overwritten by the commits sync brings in from {new[:12]}: "
            "commit or stash them, then run modelreg sync --push again (the registry commit is kept locally)")


def finish(loc: Location, git_dir: str, old: str, new: str,
           changes: list[tuple[str, Entry | None, Entry | None]] | None = None) -> None:
    """Point the index entries and HEAD at ``new`` (compare-and-swap from ``old``) and drop the journal."""
    if changes is None:
        changes = _changes(loc, old, new)
    if changes:
        zero = "0" * len(new)
        lines = b"".join(
            (f"{n.mode} {n.oid}\t" if n is not None else f"0 {zero}\t").encode() + p.encode("utf-8", "surrogateescape")
            + b"\0" for p, _o, n in changes
        )
        _git(["update-index", "-z", "--index-info"], loc.top, input=lines)
        _git(["update-index", "-q", "--refresh"], loc.top, check=False)
    head = _out(["rev-parse", "HEAD"], loc.top)
    if head != new:
        _git(["update-ref", "-m", f"modelreg sync: rebased onto {new[:12]}", "HEAD", new, old], loc.top,
             error=WorkTreeBlocked)
    try:
        os.unlink(journal_path(git_dir))
        fileio.fsync_dir(git_dir)
    except FileNotFoundError:
        pass


def resume(reg: Any, loc: Location, git_dir: str, lock_timeout: float | None = None) -> bool:
    """Finish a move a killed sync left half-way (its journal); True if there was one."""
    j = read_journal(git_dir)
    if j is None:
        return False
    old, new = j["old"], j["new"]
    head = _out(["rev-parse", "HEAD"], loc.top)
    if head == new:
        finish(loc, git_dir, old, new)
    elif head == old:
        move(reg, loc, git_dir, old, new, resume=True, lock_timeout=lock_timeout)
    else:
        raise WorkTreeBlocked(
            f"HEAD ({head[:12]}) moved since a modelreg sync was interrupted moving it from {old[:12]} to "
            f"{new[:12]} (git reset or checkout?): check 'git status', then remove {journal_path(git_dir)}")
    return True
