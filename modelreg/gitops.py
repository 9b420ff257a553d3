"""Git integration: commit and push the registry, compare stages across revisions, textconv.

Every call to the ``git`` binary goes through :func:`modelreg.gitrun._git`, which raises
:class:`GitError` (exit 1) carrying the first line git printed on stderr. Functions return
dataclasses and never print. Nothing here touches the network unless asked to push.

The many-writers recipe (see docs/git.md)::

    modelreg promote NAME@NEW STAGE --expect OLD     # compare-and-swap in this clone
    modelreg sync --push                             # commit .modelreg/, push; on rejection fetch,
                                                     # replay (logs union-merge), re-check, back off, retry

A ref that both sides moved makes the replay conflict: nothing changes and
:class:`SyncConflict` (exit 4) names the stage. A remote that keeps moving until the time
budget runs out is :class:`SyncContention` (exit 9). Nothing is ever merged silently.
The replay and the move of the work tree live in :mod:`modelreg.gitmove`.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import log, manifest
from .errors import (
    Conflict, IntegrityError, ModelregError, NotFound, PushContention, Unreachable, UsageError, WorkTreeBlocked,
    os_errors,
)
from .gitrun import GitError, Location, _first_line, _git, _out, locate
from .hashing import sha256_bytes
from .names import check_stage, is_full_digest, parse_ref

DRIVER = "modelreg-ref"
TEXTCONV_ATTRIBUTES = ("refs/** diff=modelreg-ref", "versions/** diff=modelreg-ref")
DEFAULT_TIMEOUT = 300.0  # seconds sync --push keeps trying while the remote moves (see docs/git.md)


def _git_dir(loc: Location) -> str:
    return _out(["rev-parse", "--absolute-git-dir"], loc.top)


def _in_progress(loc: Location) -> str | None:
    from . import gitguard

    return gitguard.in_progress(gitguard.GitDir(str(loc.top), _git_dir(loc)))


def _blocked(loc: Location, state: str) -> WorkTreeBlocked:
    from . import gitguard

    return WorkTreeBlocked(gitguard.blocked_message(gitguard.GitDir(str(loc.top), _git_dir(loc)), state))


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
    """What ``sync`` did: the commit it made (if any), and whether and how it pushed.

    ``committed`` is the commit sync made, as it reached the remote when it pushed (after
    any rebase); ``pushed_commit`` is the commit the remote branch points at after the push.
    """

    committed: str | None
    pushed: bool
    remote: str | None
    branch: str | None
    attempts: int
    rebases: int
    message: str | None = None
    checked: dict[str, str] = field(default_factory=dict)
    pushed_commit: str | None = None
    elapsed: float = 0.0
    resumed: bool = False  # it first finished a move that a killed sync had left half-way

    @property
    def status(self) -> str:
        return "pushed" if self.pushed else "committed" if self.committed else "up-to-date"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "committed": self.committed,
            "message": self.message,
            "pushed": self.pushed,
            "pushed_commit": self.pushed_commit,
            "remote": self.remote,
            "branch": self.branch,
            "attempts": self.attempts,
            "rebases": self.rebases,
            "elapsed": round(self.elapsed, 3),
            "checked": dict(self.checked),
            "resumed": self.resumed,
            "contention": None,
            "conflict": None,
        }


class SyncConflict(Conflict):
    """Replaying this clone's commits onto the remote conflicts (a stage or version moved on both sides): exit 4.

    ``result`` is the ``--json`` object: ``status: "conflict"`` and ``conflict: {paths, stages, versions}``.
    """

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class SyncContention(PushContention):
    """The remote kept moving until the time budget (or ``--attempts``) ran out: exit 9, nothing in conflict.

    ``result`` is the ``--json`` object: ``status: "contention"`` and ``contention: {attempts, rebases,
    elapsed, timeout}``.
    """

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


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


def _changed_models(loc: Location) -> list[str]:
    """Models whose files under the registry differ from HEAD (modified, new or deleted)."""
    from .names import check_model

    out = _git(["status", "--porcelain", "-z", "--untracked-files=all", "--no-renames", "--", loc.rel],
               loc.top).stdout
    models = set()
    prefix = loc.rel + "/"
    for rec in out.split(b"\0"):
        path = rec[3:].decode("utf-8", "surrogateescape")
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix):].split("/")
        name = None
        if len(parts) == 2 and parts[0] == "logs" and parts[1].endswith(".jsonl"):
            name = parts[1][:-6]
        elif len(parts) == 3 and parts[0] in ("refs", "versions"):
            name = parts[1]
        try:
            models.add(check_model(name)) if name else None
        except ModelregError:
            pass
    return sorted(models)


@os_errors
def commit(reg: Any, message: str | None = None, *, loc: Location | None = None) -> tuple[str | None, str | None]:
    """Stage and commit the changes under the registry directory only; (sha, message) or (None, None).

    The files are staged under the locks of the models that changed, so a commit never holds
    half of a write (a version entry without its event). During a merge whose conflicts are
    all resolved (e.g. by ``promote --force``), this concludes the merge. Files outside the
    registry are never staged. A rebase, cherry-pick or revert in progress, or a merge with
    unresolved files, is WorkTreeBlocked (exit 8).
    """
    from contextlib import ExitStack

    from . import fileio

    loc = loc or locate(reg)
    state = _in_progress(loc)
    if state not in (None, "merge"):
        raise _blocked(loc, state)
    with ExitStack() as stack:
        models = _changed_models(loc)
        if models:
            fileio.makedirs(reg.locks_dir)
        for m in models:
            stack.enter_context(fileio.lock(reg.locks_dir / f"{m}.lock"))
        _git(["add", "-A", "--", loc.rel], loc.top)
        if state == "merge":
            if _unmerged(loc):
                raise _blocked(loc, "merge")
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
        raise UsageError("HEAD is detached: pass --branch to say which remote branch to push to "
                         "(nothing was committed)")
    return name


_CONTENTION = ("[rejected]", "fetch first", "non-fast-forward", "stale info", "cannot lock ref", "failed to lock",
               "failed to update ref", "but expected", "incorrect old value", "reference already exists")


def _push(loc: Location, remote: str, branch: str) -> bool:
    """True if pushed, False if the remote moved first (contention); any other refusal or failure raises."""
    proc = _git(["push", "--porcelain", remote, f"HEAD:refs/heads/{branch}"], loc.top, check=False)
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    refused = [line for line in lines if line.startswith("!")]
    if refused:
        if any(word in refused[0] for word in _CONTENTION):
            return False
        why = refused[0].split("\t")[-1].strip()
        said = [ln[7:].strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines()
                if ln.startswith("remote:") and ln[7:].strip()]
        raise GitError(f"the remote refused the push to {remote}/{branch}: {why}"
                       + (f" ({said[0]})" if said else "") + "; the commit is kept locally")
    if proc.returncode != 0:
        raise Unreachable(f"git push to {remote}: {_first_line(proc.stderr) or f'exit status {proc.returncode}'}")
    return True


def _stage_paths_changed(loc: Location, base: str, head: str) -> list[str]:
    out = _out(["diff", "--name-only", "--no-renames", base, head, "--", loc.path("refs")], loc.top)
    return [p for p in out.splitlines() if p]


def _blob(loc: Location, rev: str, path: str) -> bytes | None:
    proc = _git(["cat-file", "blob", f"{rev}:{path}"], loc.top, check=False)
    return proc.stdout if proc.returncode == 0 else None


def _digest_text(data: bytes | None) -> str:
    return "nothing" if data is None else data.decode("ascii", "replace").strip()[:71]


def backoff(cycle: float, streak: int, remaining: float, rnd: random.Random | None = None) -> float:
    """Seconds to wait before the next push: full jitter over ``cycle * 2**streak``, at most 30 s and ``remaining``.

    ``cycle`` is how long the last push-fetch-rebase round took (what one more clone's push
    costs the remote), so the wait scales with the remote, not with a constant.
    """
    ceiling = min(max(cycle, 0.05) * (2 ** min(streak, 8)), 30.0)
    return max(0.0, min((rnd or random).uniform(0, ceiling), remaining))


def _wait_for_git_locks(loc: Location, git_dir: str, deadline: float) -> None:
    """Return when no git lock is held; WorkTreeBlocked at once for a stale lock, or when one stays held."""
    from . import gitguard

    gd = gitguard.GitDir(str(loc.top), git_dir)
    give_up = min(deadline, time.monotonic() + 30)
    while True:
        locks = gitguard.git_locks(gd)
        if not locks:
            return
        stale = [lk for lk in locks if lk.stale]
        if stale:
            raise WorkTreeBlocked(gitguard.describe_lock(gd, stale[0]))
        if time.monotonic() >= give_up:
            raise WorkTreeBlocked(gitguard.describe_lock(gd, locks[0]))
        time.sleep(0.2)


@os_errors
def sync(
    reg: Any,
    *,
    push: bool = False,
    remote: str = "origin",
    branch: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int | None = None,
    message: str | None = None,
) -> SyncResult:
    """Commit the registry's changes (that directory only); with ``push``, push until it lands or time runs out.

    A push the remote rejects because another clone pushed first is followed by a fetch, a
    replay of this clone's commits onto the remote branch in git's object database (logs
    merge by union; the work tree is not touched, see :mod:`modelreg.gitmove`), a move of
    the work tree to the result, a re-check that every stage this clone moved still holds
    what it set, a jittered exponential backoff sized to the round's duration, and another
    push, until ``timeout`` seconds have passed (``attempts``, if given, also caps the pushes).

    SyncConflict (exit 4): a stage or version moved both here and on the remote; nothing was
    pushed and the clone is as it was. SyncContention (exit 9): the remote kept moving until
    the budget ran out; nothing is in conflict and the commit is kept locally.
    WorkTreeBlocked (exit 8): a rebase/merge is in progress, or a stale git lock.
    A sync killed while moving the work tree is finished by the next one.
    """
    import math

    from . import gitmove

    if attempts is not None and (isinstance(attempts, bool) or attempts < 1):
        raise UsageError("--attempts must be at least 1")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not math.isfinite(timeout) or timeout < 0:
        raise UsageError(f"--timeout must be a number of seconds >= 0, not {timeout!r}")
    started = time.monotonic()
    deadline = started + timeout
    loc = locate(reg)
    git_dir = _git_dir(loc)
    if push:
        branch = branch or current_branch(reg, loc=loc)  # before anything is committed
    with _sync_lock(loc, git_dir, timeout):
        state = _in_progress(loc)
        if state not in (None, "merge", "sync"):
            raise _blocked(loc, state)
        _wait_for_git_locks(loc, git_dir, deadline)
        resumed = gitmove.resume(reg, loc, git_dir)
        sha, msg = commit(reg, message, loc=loc)
        if not push:
            return SyncResult(sha, False, None, None, 0, 0, msg, elapsed=time.monotonic() - started, resumed=resumed)
        assert branch is not None
        mine = sha  # the newest commit this sync made, followed through rebases
        rebases = streak = pushes = 0
        checked: dict[str, str] = {}

        def partial(status: str) -> dict[str, Any]:
            d = SyncResult(mine, False, remote, branch, pushes, rebases, msg, checked,
                           elapsed=time.monotonic() - started, resumed=resumed).to_dict()
            d["status"] = status
            return d

        cycle = 0.0
        while True:
            pushes += 1
            t0 = time.monotonic()
            head = _out(["rev-parse", "HEAD"], loc.top)
            if _push(loc, remote, branch):
                return SyncResult(mine, True, remote, branch, pushes, rebases, msg, checked, pushed_commit=head,
                                  elapsed=time.monotonic() - started, resumed=resumed)
            now = time.monotonic()
            cycle += now - t0
            if (attempts is not None and pushes >= attempts) or now >= deadline:
                limit = f"{attempts} attempt(s)" if attempts is not None and pushes >= attempts else \
                    f"the --timeout of {timeout:g} s"
                result = partial("contention")
                result["contention"] = {"attempts": pushes, "rebases": rebases, "elapsed": round(now - started, 3),
                                        "timeout": timeout}
                raise SyncContention(
                    f"push to {remote}/{branch} was rejected {pushes} time(s) in {now - started:.0f} s because other "
                    f"clones kept pushing first, until {limit} ran out (push contention: nothing is in conflict); "
                    f"the commit is kept locally: run modelreg sync --push again, or give a longer --timeout",
                    result)
            streak += 1
            # Wait before fetching, not after: the replay then starts from the newest remote state
            # and the push follows it at once.
            time.sleep(backoff(cycle, streak, deadline - now))
            t0 = time.monotonic()
            _git(["fetch", "-q", remote, f"refs/heads/{branch}"], loc.top, error=Unreachable)
            upstream = _out(["rev-parse", "FETCH_HEAD"], loc.top)
            replayed = gitmove.replay(loc, git_dir, head, upstream, f"{remote}/{branch}")
            if replayed.conflicts:
                raise _conflict(loc, remote, branch, replayed.conflicts, partial("conflict"))
            checked.update(_recheck(loc, replayed.base, head, replayed.head, remote, branch, partial))
            if not gitmove.move(reg, loc, git_dir, head, replayed.head,
                                lock_timeout=max(1.0, deadline - time.monotonic())):
                again, again_msg = commit(reg, message, loc=loc)  # a writer changed a file meanwhile
                mine, msg = (again, again_msg) if again else (mine, msg)
                cycle = 0.0
                continue
            if mine is not None and mine in replayed.mapping:
                mine = replayed.mapping[mine]
            rebases += 1
            cycle = time.monotonic() - t0


@contextmanager
def _sync_lock(loc: Location, git_dir: str, timeout: float) -> Iterator[None]:
    """One sync at a time per clone (a native lock in the git dir; the kernel drops it if sync is killed)."""
    from . import fileio
    from .gitguard import SYNC_LOCK

    try:
        lock = fileio.lock(os.path.join(git_dir, SYNC_LOCK), timeout=max(timeout, 1.0))
        lock.__enter__()
    except Conflict:
        raise WorkTreeBlocked(f"another modelreg sync is running in {loc.top} and did not finish within "
                              f"{max(timeout, 1.0):g} s: wait for it, then run this one again") from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def _conflict(loc: Location, remote: str, branch: str, paths: list[str], result: dict[str, Any]) -> SyncConflict:
    named = ", ".join(describe_path(loc, p) for p in paths[:5]) + (f" (+{len(paths) - 5} more)" if len(paths) > 5 else "")
    prefix = loc.rel + "/"
    rel = [p[len(prefix):].split("/") for p in paths if p.startswith(prefix)]
    result["conflict"] = {
        "paths": paths,
        "stages": [f"{r[1]}@{r[2]}" for r in rel if len(r) == 3 and r[0] == "refs"],
        "versions": [f"{r[1]}@{r[2]}" for r in rel if len(r) == 3 and r[0] == "versions"],
    }
    return SyncConflict(
        f"push rejected, and this clone's commits conflict with {remote}/{branch} at {named}: someone else moved it; "
        f"nothing was pushed and the clone is as it was (to decide again from the remote's state: "
        f"git fetch {remote} && git reset --hard {remote}/{branch}, then promote with a fresh --expect)",
        result,
    )


def _recheck(loc: Location, base: str, head: str, new: str, remote: str, branch: str, partial: Any) -> dict[str, str]:
    """Every stage this clone moved (base..head) still holds, in ``new``, what it set; SyncConflict otherwise."""
    checked: dict[str, str] = {}
    for p in _stage_paths_changed(loc, base, head):
        wanted, now = _blob(loc, head, p), _blob(loc, new, p)
        label = describe_path(loc, p).removeprefix("stage ")
        if now != wanted:
            raise _conflict(loc, remote, branch, [p], partial("conflict"))
        checked[label] = _digest_text(now)
    return checked


@os_errors
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
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int | None = None,
    message: str | None = None,
) -> tuple[Any, SyncResult]:
    """The CI recipe as one call: promote with ``--expect``, commit, push (time budget ``timeout``).

    ``expect`` is as in :meth:`Registry.promote` (None checks nothing; ``modelreg.EMPTY`` or
    ``"none"``: the stage must be empty). Conflict (exit 4) if the stage does not hold it here, or if,
    after rebasing onto the remote, the stage no longer holds what this clone set (someone else
    moved it); PushContention (exit 9) if the remote kept moving for the whole budget.
    """
    move = reg.promote(ref, stage, expect=expect, reason=reason, actor=actor)  # as Registry.promote: EMPTY/"none" = empty
    result = sync(reg, push=True, remote=remote, branch=branch, timeout=timeout, attempts=attempts, message=message)
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


@os_errors
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


@os_errors
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

