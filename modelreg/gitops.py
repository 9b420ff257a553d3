"""Git integration: commit and push the registry, compare stages across revisions, textconv.

Every call to the ``git`` binary lives in this module and goes through :func:`_git`, which
raises :class:`GitError` (exit 1) carrying the first line git printed on stderr. Functions
return dataclasses and never print. Nothing here touches the network unless asked to push.

The many-writers recipe (see docs/git.md)::

    modelreg promote NAME@NEW STAGE --expect OLD     # compare-and-swap in this clone
    modelreg sync --push --attempts 5                # commit .modelreg/, push; on rejection
                                                     # fetch + rebase (logs union-merge), re-check, retry

A ref that both sides moved makes the rebase conflict: the rebase is aborted and
:class:`~modelreg.errors.Conflict` (exit 4) names the stage. Nothing is ever merged silently.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import log, manifest
from .errors import Conflict, IntegrityError, ModelregError, NotFound, Unreachable, UsageError
from .hashing import sha256_bytes
from .names import check_stage, is_full_digest, parse_ref

DRIVER = "modelreg-ref"
TEXTCONV_ATTRIBUTES = ("refs/** diff=modelreg-ref", "versions/** diff=modelreg-ref")
DEFAULT_ATTEMPTS = 5


class GitError(ModelregError):
    """A git command failed; the message is git's own first line of complaint."""

    exit_code = 1


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never hang waiting for credentials in CI
    env["LC_ALL"] = "C"  # stable messages for the parsing below
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


def _git(
    args: list[str], cwd: str | os.PathLike[str], *, check: bool = True, error: type[ModelregError] = GitError
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd``; on failure (with ``check``) raise ``error`` with git's first stderr line."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=_env(), check=False)
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None
    if check and proc.returncode != 0:
        raise error(f"git {args[0]}: {_first_line(proc.stderr) or f'exited with status {proc.returncode}'}")
    return proc


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


def _in_progress(loc: Location) -> str | None:
    git_dir = Path(_out(["rev-parse", "--absolute-git-dir"], loc.top))
    if (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists():
        return "rebase"
    if (git_dir / "MERGE_HEAD").exists():
        return "merge"
    return None


def _unmerged(loc: Location) -> list[str]:
    out = _out(["diff", "--name-only", "--diff-filter=U"], loc.top)
    return [line for line in out.splitlines() if line]


def describe_path(loc: Location, path: str) -> str:
    """A registry path as a reader knows it: ``refs/m/s`` -> ``m@s`` (stage), ``versions/m/v`` -> ``m@v``."""
    prefix = loc.rel + "/"
    if path.startswith(prefix):
        parts = path[len(prefix):].split("/")
        if len(parts) == 3 and parts[0] == "refs":
            return f"stage {parts[1]}@{parts[2]}"
        if len(parts) == 3 and parts[0] == "versions":
            return f"version {parts[1]}@{parts[2]} (registered on both sides with different content)"
    return path


# ------------------------------------------------------------------------ sync
@dataclass(frozen=True)
class SyncResult:
    """What ``sync`` did: the commit it made (if any), and whether and how it pushed."""

    committed: str | None
    pushed: bool
    remote: str | None
    branch: str | None
    attempts: int
    rebases: int
    message: str | None = None
    checked: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "committed": self.committed,
            "message": self.message,
            "pushed": self.pushed,
            "remote": self.remote,
            "branch": self.branch,
            "attempts": self.attempts,
            "rebases": self.rebases,
            "checked": dict(self.checked),
        }


def _summary(loc: Location) -> str:
    """A commit message naming the events being committed (new log lines in the index)."""
    out = _git(["diff", "--cached", "--no-color", "-U0", "--no-ext-diff", "--", loc.path("logs")], loc.top).stdout
    added = [line[1:] for line in out.split(b"\n") if line.startswith(b"+") and not line.startswith(b"+++")]
    events, _ = log.parse(b"\n".join(added))
    parts = []
    for e in events:
        if e.action == "clear":
            parts.append(f"clear {e.model}@{e.stage}")
            continue
        what = f"{e.model}@{e.version}" if e.version else e.model
        parts.append(f"{e.action} {what}" + (f" -> {e.stage}" if e.stage else ""))
    if not parts:
        return "modelreg: update registry"
    shown = "; ".join(parts[:3]) + (f" (+{len(parts) - 3} more)" if len(parts) > 3 else "")
    return f"modelreg: {shown}"


def commit(reg: Any, message: str | None = None, *, loc: Location | None = None) -> tuple[str | None, str | None]:
    """Stage and commit the changes under the registry directory only; (sha, message) or (None, None).

    During a merge whose conflicts are all resolved (e.g. by ``promote --force``), this
    concludes the merge. Files outside the registry are never staged.
    """
    loc = loc or locate(reg)
    state = _in_progress(loc)
    if state == "rebase":
        raise UsageError("a git rebase is in progress: finish it (git rebase --continue) or abort it first")
    _git(["add", "-A", "--", loc.rel], loc.top)
    if state == "merge":
        left = _unmerged(loc)
        if left:
            raise Conflict(
                f"the merge still has unresolved files: {', '.join(describe_path(loc, p) for p in left[:5])}; "
                "resolve them (for a stage: modelreg promote NAME@VERSION STAGE --force --reason ...) and sync again"
            )
        msg = message or None
        _git(["commit", "--no-edit", *(["-m", msg] if msg else [])], loc.top)
        return _out(["rev-parse", "HEAD"], loc.top), msg or "merge"
    if _git(["diff", "--cached", "--quiet", "--", loc.rel], loc.top, check=False).returncode == 0:
        return None, None
    msg = message or _summary(loc)
    _git(["commit", "-q", "-m", msg, "--", loc.rel], loc.top)
    return _out(["rev-parse", "HEAD"], loc.top), msg


def current_branch(reg: Any, *, loc: Location | None = None) -> str:
    loc = loc or locate(reg)
    proc = _git(["symbolic-ref", "-q", "--short", "HEAD"], loc.top, check=False)
    name = proc.stdout.decode().strip()
    if proc.returncode != 0 or not name:
        raise UsageError("HEAD is detached: pass --branch to say which remote branch to push to")
    return name


def _push(loc: Location, remote: str, branch: str) -> bool:
    """True if pushed, False if the remote rejected it (someone pushed first); other failures raise."""
    proc = _git(["push", "--porcelain", remote, f"HEAD:refs/heads/{branch}"], loc.top, check=False)
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    if any(line.startswith("!") for line in lines):
        return False
    if proc.returncode != 0:
        raise Unreachable(f"git push to {remote}: {_first_line(proc.stderr) or f'exit status {proc.returncode}'}")
    return True


def _stage_paths_changed(loc: Location, base: str) -> list[str]:
    out = _out(["diff", "--name-only", "--no-renames", base, "HEAD", "--", loc.path("refs")], loc.top)
    return [p for p in out.splitlines() if p]


def _blob(loc: Location, rev: str, path: str) -> bytes | None:
    proc = _git(["cat-file", "blob", f"{rev}:{path}"], loc.top, check=False)
    return proc.stdout if proc.returncode == 0 else None


def _rebase_onto_remote(loc: Location, remote: str, branch: str) -> dict[str, str]:
    """``git pull --rebase`` in two steps; Conflict (rebase aborted) if a stage or version conflicts.

    Returns the stages this clone moved in its unpushed commits, re-checked after the rebase:
    each still holds what this clone set (else Conflict).
    """
    _git(["fetch", "-q", remote, f"refs/heads/{branch}"], loc.top, error=Unreachable)
    upstream = _out(["rev-parse", "FETCH_HEAD"], loc.top)
    base_proc = _git(["merge-base", "HEAD", upstream], loc.top, check=False)
    base = base_proc.stdout.decode().strip() if base_proc.returncode == 0 else None
    ours: dict[str, bytes | None] = {}
    if base:
        for p in _stage_paths_changed(loc, base):
            ours[p] = _blob(loc, "HEAD", p)
    proc = _git(["rebase", "-q", "--autostash", upstream], loc.top, check=False)
    if proc.returncode != 0:
        conflicted = _unmerged(loc) if _in_progress(loc) == "rebase" else []
        if _in_progress(loc) == "rebase":
            _git(["rebase", "--abort"], loc.top, check=False)
        if conflicted:
            named = ", ".join(describe_path(loc, p) for p in conflicted[:5])
            raise Conflict(
                f"push rejected and rebasing onto {remote}/{branch} conflicts at {named}: someone else moved it; "
                f"the rebase was aborted and nothing was pushed (git reset --hard {remote}/{branch}, "
                "then promote again with a fresh --expect)"
            )
        raise GitError(f"git rebase onto {remote}/{branch}: {_first_line(proc.stderr) or 'failed'}")
    checked: dict[str, str] = {}
    for p, wanted in ours.items():
        now = _blob(loc, "HEAD", p)
        label = describe_path(loc, p).removeprefix("stage ")
        if now != wanted:
            raise Conflict(
                f"{label} no longer holds what this clone set after rebasing onto {remote}/{branch} "
                f"(now {_digest_text(now)}): someone else moved it; nothing was pushed"
            )
        checked[label] = _digest_text(now)
    return checked


def _digest_text(data: bytes | None) -> str:
    return "nothing" if data is None else data.decode("ascii", "replace").strip()[:71]


def _backoff(attempt: int) -> None:
    time.sleep(min(2.0, 0.05 * (2 ** attempt)) * random.uniform(0.5, 1.5))


def sync(
    reg: Any,
    *,
    push: bool = False,
    remote: str = "origin",
    branch: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    message: str | None = None,
) -> SyncResult:
    """Commit the registry's changes (that directory only); with ``push``, push with fetch-rebase-retry.

    A rejected push is followed by fetch + rebase onto the remote branch (logs union-merge,
    objects never conflict), a re-check that every stage this clone moved still holds what
    it set, a short randomized backoff, and another push, ``attempts`` pushes in all.
    A stage moved on both sides is a Conflict (exit 4); the rebase is aborted first.
    """
    if attempts < 1:
        raise UsageError("--attempts must be at least 1")
    loc = locate(reg)
    sha, msg = commit(reg, message, loc=loc)
    if not push:
        return SyncResult(sha, False, None, None, 0, 0, msg)
    branch = branch or current_branch(reg, loc=loc)
    rebases = 0
    checked: dict[str, str] = {}
    for attempt in range(1, attempts + 1):
        if _push(loc, remote, branch):
            return SyncResult(sha, True, remote, branch, attempt, rebases, msg, checked)
        if attempt == attempts:
            break
        checked.update(_rebase_onto_remote(loc, remote, branch))
        rebases += 1
        _backoff(attempt)
    raise Conflict(
        f"push to {remote}/{branch} was still rejected after {attempts} attempt(s): the remote keeps moving; "
        "run modelreg sync --push again (your commit is kept locally)"
    )


def promote_and_push(
    reg: Any,
    ref: str,
    stage: str,
    *,
    expect: Any,
    reason: str | None = None,
    actor: str | None = None,
    remote: str = "origin",
    branch: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    message: str | None = None,
) -> tuple[Any, SyncResult]:
    """The CI recipe as one call: promote with ``--expect``, commit, push with fetch-rebase-retry.

    ``expect`` is as in :meth:`Registry.promote` (None checks nothing; ``modelreg.EMPTY`` or
    ``"none"``: the stage must be empty). Conflict (exit 4) if the stage does not hold it here, or if, after rebasing onto
    the remote, the stage no longer holds what this clone set (someone else moved it).
    """
    move = reg.promote(ref, stage, expect=expect, reason=reason, actor=actor)  # as Registry.promote: EMPTY/"none" = empty
    result = sync(reg, push=True, remote=remote, branch=branch, attempts=attempts, message=message)
    now = reg.refs.read_stage(move.name, stage)
    if now != move.to.digest:
        raise Conflict(f"{move.name}@{stage} holds {now or 'nothing'} after sync, not {move.to.digest}")
    return move, result


# ----------------------------------------------------------- stage across revisions
@dataclass(frozen=True)
class StageDiff:
    """Which version held a stage at a git revision and now, and how their manifests differ."""

    name: str
    stage: str
    rev: str
    then: Any  # Resolved | None
    now: Any  # Resolved | None
    changes: list[manifest.Change]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "name": self.name,
            "rev": self.rev,
            "then": self.then and self.then.to_dict(),
            "now": self.now and self.now.to_dict(),
            "changes": [{"path": c.path, "kind": c.kind, "old": c.old, "new": c.new} for c in self.changes],
        }


def _object_at(reg: Any, loc: Location, rev: str, digest: str) -> bytes:
    path = loc.path(*reg.objects.path(digest).relative_to(reg.path).parts)  # lexical: nothing followed
    data = _blob(loc, rev, path)
    if data is None:  # objects are immutable: the current store may hold it if the revision does not
        return reg.objects.get(digest)
    if "sha256:" + sha256_bytes(data) != digest:
        raise IntegrityError(f"object {digest} at {rev} is corrupt: its bytes do not match its name")
    return data


def stage_diff(reg: Any, ref: str, rev: str) -> StageDiff:
    """Compare ``NAME@STAGE`` as it was at git revision ``rev`` with the work tree now."""
    from .registry import Resolved

    r = parse_ref(ref)
    if r.name is None or r.kind not in ("word", "stage"):
        raise UsageError(f"diff --rev compares a stage: give NAME@STAGE, not {ref!r}")
    stage = check_stage(r.value)
    if stage not in reg.stages:
        from .registry import unknown_stage

        raise UsageError(unknown_stage(stage, reg.stages))
    loc = locate(reg)
    proc = _git(["rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], loc.top, check=False)
    if proc.returncode != 0:
        raise NotFound(f"no git revision {rev!r}")
    commit_id = proc.stdout.decode().strip()
    path = loc.path("refs", r.name, stage)
    raw = _blob(loc, commit_id, path)
    then_digest = None
    if raw is not None:
        from .refs import parse_ref_bytes

        then_digest = parse_ref_bytes(raw, f"{rev}:{path}")
    now_digest = reg.refs.read_stage(r.name, stage)
    then_m = manifest.from_object(_object_at(reg, loc, commit_id, then_digest), f"{rev}:{path}") if then_digest else None
    then = Resolved(then_m["name"], then_m["version"], then_digest) if then_m else None
    if then is not None:  # what the stage named then must have been registered then
        entry = _blob(loc, commit_id, loc.path("versions", then.name, then.version))
        if then.name != r.name or entry is None or entry.strip().decode("ascii", "replace") != then_digest:
            raise IntegrityError(f"{rev}:{path} points at {then_digest[:19]}, which declares {then.name}@{then.version} "
                                 "but was not registered as that version at that revision")
    now = reg._stage_identity(r.name, stage, now_digest) if now_digest else None  # IntegrityError if unregistered
    now_m = reg._manifest_of(now) if now else None
    if then is None and now is None:
        reg._require_model(r.name)
    changes = manifest.diff(then_m or {}, now_m or {}) if (then_m or now_m) else []
    return StageDiff(r.name, stage, rev, then, now, changes)


# ------------------------------------------------------------------ diff driver
@dataclass(frozen=True)
class SetupResult:
    config_set: bool
    attributes_added: list[str]
    attributes_file: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "config_set": self.config_set,
            "attributes_added": list(self.attributes_added),
            "attributes_file": self.attributes_file,
        }


def setup(reg: Any, command: str = "modelreg") -> SetupResult:
    """Install the textconv driver in this clone's ``.git/config`` and its attributes in the registry.

    The attributes go to ``.modelreg/.gitattributes`` (committed, so every clone shares them);
    the driver command is per clone (git never runs commands named by committed files).
    """
    from . import fileio

    loc = locate(reg)
    textconv = f"{command} git-textconv"
    old = _git(["config", "--local", f"diff.{DRIVER}.textconv"], loc.top, check=False).stdout.decode().strip()
    if old != textconv:
        _git(["config", "--local", f"diff.{DRIVER}.textconv", textconv], loc.top)
    attrs = Path(reg.path) / ".gitattributes"
    try:  # through fileio: a .gitattributes symlinked to a private key is refused, never copied
        text = fileio.read_file(attrs, 1 << 20).decode("utf-8")
    except FileNotFoundError:
        text = ""
    except UnicodeDecodeError:
        raise IntegrityError(f"{attrs} is not UTF-8 text; fix or remove it, then run git-setup again") from None
    have = {line.strip() for line in text.splitlines()}
    added = [line for line in TEXTCONV_ATTRIBUTES if line not in have]
    if added:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "# Written by modelreg git-setup: git diff shows NAME@VERSION for ref files.\n"
        text += "".join(f"{line}\n" for line in added)
        fileio.atomic_write(attrs, text.encode("utf-8"))
    return SetupResult(old != textconv, added, str(attrs))


def _find_for_textconv() -> Any:
    from .registry import DIRNAME, Registry, find_registry

    try:
        return Registry.open()
    except ModelregError:
        pass
    try:
        top = _out(["rev-parse", "--show-toplevel"], os.getcwd())
        return Registry(find_registry(Path(top) / DIRNAME))
    except ModelregError:
        return None


def textconv(data: bytes) -> str:
    """A ref file's content as ``NAME@VERSION (sha256:abcd…)``; anything unexpected is passed through."""
    text = data.decode("utf-8", "replace")
    digest = text.strip()
    if not is_full_digest(digest) or text != digest + "\n":
        return text
    reg = _find_for_textconv()
    if reg is None:
        return text
    try:
        ident = reg._identity(digest)
    except NotFound:
        return f"{digest} (object not in this registry)\n"
    except ModelregError:  # an object nobody registered, or not a manifest: never shown as NAME@VERSION
        return f"{digest} (NOT a registered version: run modelreg fsck)\n"
    return f"{ident.name}@{ident.version} ({digest[:19]}…)\n"


def textconv_file(path: str, out: Any) -> None:
    """Write ``path`` to binary stream ``out`` for ``git diff``: a ref file as :func:`textconv` shows it,
    any other file (whatever ``.gitattributes`` sent here, of any size) byte for byte."""
    from .refs import REF_MAX

    with open(path, "rb") as f:  # git's own temp file, or a work-tree file it names
        head = f.read(REF_MAX + 1)
        if len(head) <= REF_MAX and is_full_digest(head.strip().decode("ascii", "replace")):
            out.write(textconv(head).encode("utf-8"))
            return
        out.write(head)
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            out.write(chunk)

