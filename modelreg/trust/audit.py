"""``modelreg audit --base REV``: what a change did to the registry's history, for pull-request CI.

Compares the registry in the work tree with git revision REV and reports, as findings:

- a log line of REV that was edited or removed (``fsck --repair`` moving an unreadable line to
  ``lost-found/`` is not a removal);
- a version entry or an object of REV that changed or was removed; an added object whose bytes
  do not hash to its name;
- a stage ref or version entry that points at a manifest that is not the registered version of
  that name (no version entry, another digest, another model or version, a missing object);
- an added event that reuses an existing id, belongs to another model, or is out of order with
  the commit that added it: older (by more than ``max_skew``) than the newest event of its model
  in the commit it was added on top of, or newer than that commit itself (uncommitted: now).

git runs as a subprocess with a fixed, minimal environment (no GIT_DIR, GIT_INDEX_FILE,
alternates or replace objects from the caller). See docs/security.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import fileio
from ..errors import ModelregError, NotFound, UsageError
from ..log import Event
from .settings import shown

MAX_SKEW = 300.0  # seconds of clock difference tolerated between machines
LOG_DIR, OBJ_DIR, VER_DIR, REF_DIR = "logs", "objects", "versions", "refs"


class AuditGitError(ModelregError):
    """git could not answer (not a repository, git missing)."""

    exit_code = 1


@dataclass(frozen=True)
class Finding:
    kind: str
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "message": self.message}


@dataclass
class AuditReport:
    """Findings of one audit; ``ok`` when there are none."""

    base: str
    base_commit: str
    head_commit: str | None
    registry: str
    findings: list[Finding] = field(default_factory=list)
    added_events: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "base": self.base, "base_commit": self.base_commit, "head_commit": self.head_commit,
                "registry": self.registry, "added_events": self.added_events,
                "findings": [f.to_dict() for f in self.findings], "notes": list(self.notes)}


# ------------------------------------------------------------------------ git
def _env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0",
           "GIT_NO_REPLACE_OBJECTS": "1", "GIT_OPTIONAL_LOCKS": "0", "GIT_NO_LAZY_FETCH": "1"}
    for key in ("HOME", "XDG_CONFIG_HOME"):  # the user's own git config (safe.directory), never GIT_* overrides
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


class _Git:
    """git in one work tree, read-only commands, a fixed environment; blobs through one cat-file process."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.env = _env()
        self._batch: subprocess.Popen[bytes] | None = None
        self._blobs: dict[str, bytes] = {}
        self._trees: dict[tuple[str, str], dict[str, str]] = {}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        try:
            proc = subprocess.run(["git", "-c", "core.fsmonitor=false", *args], cwd=self.top, env=self.env,
                                  capture_output=True, check=False, timeout=600)
        except FileNotFoundError:
            raise AuditGitError("git is not installed or not on PATH") from None
        if check and proc.returncode != 0:
            line = next((ln for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()), "")
            raise AuditGitError(f"git {args[0]}: {line or f'exit status {proc.returncode}'}")
        return proc

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode("utf-8", "replace").strip()

    def tree(self, commit: str, prefix: str) -> dict[str, str]:
        """path -> blob id of every blob under ``prefix`` at ``commit``."""
        key = (commit, prefix)
        if key not in self._trees:
            data = self.run("ls-tree", "-r", "-z", "--full-tree", commit, "--", prefix).stdout
            entries: dict[str, str] = {}
            for rec in data.split(b"\0"):
                if not rec:
                    continue
                meta, _, path = rec.partition(b"\t")
                parts = meta.split()
                if len(parts) == 3 and parts[1] == b"blob":
                    entries[path.decode("utf-8", "surrogateescape")] = parts[2].decode()
            self._trees[key] = entries
        return self._trees[key]

    def blob(self, oid: str) -> bytes:
        if oid not in self._blobs:
            if self._batch is None:
                self._batch = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.top, env=self.env,
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert self._batch.stdin is not None and self._batch.stdout is not None
            self._batch.stdin.write(oid.encode() + b"\n")
            self._batch.stdin.flush()
            header = self._batch.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                raise AuditGitError(f"git cat-file: cannot read blob {oid}")
            size = int(header[2])
            data = self._batch.stdout.read(size)
            self._batch.stdout.read(1)
            self._blobs[oid] = data
        return self._blobs[oid]

    def close(self) -> None:
        if self._batch is not None:
            try:
                assert self._batch.stdin is not None
                self._batch.stdin.close()
                self._batch.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self._batch.kill()
            self._batch = None


def _blob_id(data: bytes, algo: str) -> str:
    h = hashlib.new(algo)
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


# ------------------------------------------------------------------------ events
@dataclass(frozen=True)
class _Line:
    raw: bytes
    event: Event | None
    key: str  # canonical content (parsed events) or the raw bytes (unreadable lines)


def _lines(data: bytes) -> list[_Line]:
    out = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            ev = Event.from_dict(json.loads(raw))
        except (ValueError, TypeError, UnicodeDecodeError, RecursionError, AttributeError):
            out.append(_Line(raw, None, "raw:" + raw.decode("utf-8", "replace")))
            continue
        out.append(_Line(raw, ev, json.dumps(ev.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))))
    return out


def _epoch(text: str) -> float | None:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, TypeError):
        return None
    if dt.tzinfo is None:
        return None
    return dt.timestamp()


def _newest(lines: list[_Line]) -> tuple[float, str] | None:
    best: tuple[float, str] | None = None
    for ln in lines:
        t = _epoch(ln.event.time) if ln.event else None
        if t is not None and (best is None or t > best[0]):
            best = (t, ln.event.time)  # type: ignore[union-attr]
    return best


@dataclass(frozen=True)
class _Intro:
    """Where an event line first appeared: a commit (or the work tree) and the bounds its time must keep."""

    where: str
    low: tuple[float, str] | None  # newest event of the model in the state it was added on top of
    high: float  # the commit's time (or now)


def _describe(ev: Event) -> str:
    what = f"{ev.model}@{ev.version}" if ev.version else ev.model
    return shown(f"{ev.action} {what} by {ev.actor} ({ev.id[:16]})", 160)


# ------------------------------------------------------------------------ the audit
class _Audit:
    def __init__(self, reg: Any, base: str, max_skew: float) -> None:
        self.reg = reg
        self.base = base
        self.skew = max_skew
        self.regdir = Path(reg.path)

    def find(self, kind: str, path: str, message: str) -> None:
        self.report.findings.append(Finding(kind, shown(path, 300), shown(message, 600)))

    def run(self) -> AuditReport:
        probe = _Git(self.regdir)
        proc = probe.run("rev-parse", "--show-toplevel", check=False)
        if proc.returncode != 0:
            raise NotFound(f"{self.regdir} is not inside a git work tree")
        top = Path(proc.stdout.decode().strip()).resolve()
        self.git = _Git(top)
        try:
            return self._run(top)
        finally:
            self.git.close()

    def _run(self, top: Path) -> AuditReport:
        git = self.git
        self.rel = self.regdir.resolve().relative_to(top).as_posix()
        if self.base.startswith("-"):
            raise UsageError(f"--base {self.base!r} is not a git revision")
        proc = git.run("rev-parse", "--verify", "-q", "--end-of-options", f"{self.base}^{{commit}}", check=False)
        if proc.returncode != 0:
            raise NotFound(f"no git revision {self.base!r}")
        base_commit = proc.stdout.decode().strip()
        head = git.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        head_commit = head.stdout.decode().strip() if head.returncode == 0 else None
        fmt = git.run("rev-parse", "--show-object-format", check=False).stdout.decode().strip() or "sha1"
        self.algo = "sha256" if fmt == "sha256" else "sha1"
        self.report = AuditReport(self.base, base_commit, head_commit, self.rel)
        if head_commit and git.run("merge-base", "--is-ancestor", base_commit, head_commit, check=False).returncode:
            self.report.notes.append(
                f"{self.base} is not an ancestor of HEAD: changes made there since the fork look removed here; "
                "audit against the merge base (git merge-base) instead")

        base_tree = git.tree(base_commit, self.rel)
        prefix = self.rel + "/"
        base_logs: dict[str, list[_Line]] = {}
        for path, oid in sorted(base_tree.items()):
            sub = path[len(prefix):] if path.startswith(prefix) else path
            data = self._work_file(top / path)
            if data is not None and _blob_id(data, self.algo) == oid:
                if sub.startswith(LOG_DIR + "/"):
                    base_logs[sub] = _lines(data)
                continue
            if sub.startswith(LOG_DIR + "/") and sub.endswith(".jsonl"):
                base_logs[sub] = _lines(git.blob(oid))
                if data is None:
                    self.find("log-removed", sub, f"{sub} of {self.base} was removed with its "
                                                  f"{len(base_logs[sub])} event line(s)")
            elif sub.startswith(OBJ_DIR + "/"):
                self.find("object-removed" if data is None else "object-changed", sub,
                          f"object {sub} of {self.base} was {'removed' if data is None else 'changed'}: objects are immutable")
            elif sub.startswith(VER_DIR + "/"):
                what = "removed" if data is None else "changed"
                self.find(f"version-{what}", sub,
                          f"version entry {sub} of {self.base} was {what}: a version's digest never changes")
            elif sub == "config.yaml":
                self.report.notes.append("config.yaml changed (stages, policy or storage settings): review it")

        self.check_logs(top, base_logs, head_commit, base_commit)
        self.check_new_objects(base_tree, prefix)
        self.check_pointers()
        return self.report

    def _work_file(self, path: Path) -> bytes | None:
        try:  # through fileio: a symlink anywhere on the way is refused (exit 6), never followed
            return fileio.read_file(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    # -- logs
    def check_logs(self, top: Path, base_logs: dict[str, list[_Line]], head: str | None, base: str) -> None:
        logs_dir = self.regdir / LOG_DIR
        try:
            names = sorted(n for n in fileio.listdir(logs_dir) if n.endswith(".jsonl") and not n.startswith("."))
        except (FileNotFoundError, NotADirectoryError):
            names = []
        lost = self._lost_found()
        intro = self._introductions(head, base)
        now = time.time()
        for name in names:
            sub = f"{LOG_DIR}/{name}"
            model = name[: -len(".jsonl")]
            data = self._work_file(logs_dir / name)
            if data is None:
                self.find("log-unreadable", sub, f"{sub} is not a regular file")
                continue
            cur = _lines(data)
            old = base_logs.pop(sub, [])
            self._compare(sub, old, cur, lost)
            old_keys = {ln.key for ln in old}
            old_ids = {ln.event.id for ln in old if ln.event}
            seen: dict[str, str] = {}
            fallback = _newest(old)
            for ln in cur:
                if ln.key in old_keys:
                    continue
                ev = ln.event
                if ev is None:
                    self.find("event-unreadable", sub, f"{sub}: added line is not a valid event: "
                                                        f"{shown(ln.raw[:60].decode('utf-8', 'replace'))!r}")
                    continue
                self.report.added_events += 1
                if ev.id in old_ids:
                    self.find("event-reused-id", sub, f"{sub}: added event {_describe(ev)} reuses the id of an "
                                                      f"event of {self.base} with other content")
                if seen.get(ev.id, ln.key) != ln.key:
                    self.find("event-duplicate-id", sub, f"{sub}: two added events share the id {ev.id[:16]}")
                seen[ev.id] = ln.key
                if ev.model != model:
                    self.find("event-wrong-model", sub, f"{sub}: added event {_describe(ev)} is about model "
                                                        f"{shown(ev.model, 80)!r}, not {model!r}")
                t = _epoch(ev.time)
                if t is None:
                    self.find("event-bad-time", sub, f"{sub}: added event {_describe(ev)} has no valid time")
                    continue
                where = intro.get((sub, ln.key))
                low = where.low if where else fallback
                high = where.high if where else now
                label = where.where if where else "this change"
                if low is not None and t < low[0] - self.skew:
                    self.find("event-out-of-order", sub,
                              f"{sub}: added event {_describe(ev)} at {shown(ev.time, 40)} predates {low[1]}, the newest "
                              f"{model} event before {label}, by more than {self.skew:g} s")
                if t > high + self.skew:
                    self.find("event-from-the-future", sub,
                              f"{sub}: added event {_describe(ev)} at {shown(ev.time, 40)} is later than {label} "
                              f"by more than {self.skew:g} s")

    def _lost_found(self) -> set[bytes]:
        out: set[bytes] = set()
        d = self.regdir / "lost-found"
        try:
            names = fileio.listdir(d)
        except (FileNotFoundError, NotADirectoryError):
            return out
        for n in names:
            data = self._work_file(d / n)
            if data:
                out.update(line for line in data.split(b"\n") if line.strip())
        return out

    def _compare(self, sub: str, old: list[_Line], cur: list[_Line], lost: set[bytes]) -> None:
        cur_keys = {ln.key for ln in cur}
        cur_ids = {ln.event.id for ln in cur if ln.event}
        for i, ln in enumerate(old, 1):
            if ln.key in cur_keys:
                continue
            if ln.event is None:
                if ln.raw in lost:  # an unreadable line set aside by fsck --repair
                    continue
                self.find("log-line-removed", sub, f"{sub}: an unreadable line of {self.base} was removed "
                                                   f"without being kept in lost-found/")
            elif ln.event.id in cur_ids:
                self.find("log-line-edited", sub, f"{sub}: event {_describe(ln.event)} of {self.base} was edited")
            else:
                self.find("log-line-removed", sub, f"{sub}: event {_describe(ln.event)} of {self.base} was removed")

    def _introductions(self, head: str | None, base: str) -> dict[tuple[str, str], _Intro]:
        """(log path, line key) -> where that line first appeared between ``base`` and the work tree."""
        git = self.git
        prefix = f"{self.rel}/{LOG_DIR}"
        intro: dict[tuple[str, str], _Intro] = {}
        parsed: dict[str, list[_Line]] = {}

        def lines_of(oid: str | None) -> list[_Line]:
            if oid is None:
                return []
            if oid not in parsed:
                parsed[oid] = _lines(git.blob(oid))
            return parsed[oid]

        def record(sub: str, new: list[_Line], parents: list[list[_Line]], where: str, high: float) -> None:
            before = {ln.key for p in parents for ln in p}
            lows = [n for n in (_newest(p) for p in parents) if n is not None]
            low = max(lows) if lows else None
            for ln in new:
                if ln.key not in before:
                    intro.setdefault((sub, ln.key), _Intro(where, low, high))

        def sub_of(path: str) -> str:
            return path[len(self.rel) + 1:]

        if head is not None:
            log = git.run("log", "--topo-order", "--reverse", "--format=%H %ct %P", f"{base}..{head}").stdout
            for line in log.decode().splitlines():
                parts = line.split()
                if len(parts) < 2:
                    continue
                commit, ctime, parents = parts[0], float(parts[1]), parts[2:]
                tree = git.tree(commit, prefix)
                ptrees = [git.tree(p, prefix) for p in parents]
                for path, oid in tree.items():
                    if any(pt.get(path) == oid for pt in ptrees):
                        continue
                    record(sub_of(path), lines_of(oid), [lines_of(pt.get(path)) for pt in ptrees],
                           f"commit {commit[:12]}", ctime)
        head_tree = git.tree(head, prefix) if head else {}
        logs_dir = self.regdir / LOG_DIR
        try:
            names = [n for n in fileio.listdir(logs_dir) if n.endswith(".jsonl")]
        except (FileNotFoundError, NotADirectoryError):
            names = []
        for name in names:
            sub = f"{LOG_DIR}/{name}"
            data = self._work_file(logs_dir / name)
            if data is None:
                continue
            oid = head_tree.get(f"{self.rel}/{sub}")
            if oid is not None and _blob_id(data, self.algo) == oid:
                continue
            record(sub, _lines(data), [lines_of(oid)], "the uncommitted work tree", time.time())
        return intro

    # -- objects and pointers
    def check_new_objects(self, base_tree: dict[str, str], prefix: str) -> None:
        from ..names import is_full_digest

        known = {p[len(prefix):] for p in base_tree}
        for digest in self.reg.objects:
            if not is_full_digest(digest):
                continue
            sub = f"{OBJ_DIR}/{digest[7:9]}/{digest[9:]}"
            if sub in known:
                continue
            data = self._work_file(self.regdir / sub)
            if data is None:
                continue
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                self.find("object-corrupt", sub, f"added object {sub} does not hash to its name")

    def _manifest_identity(self, digest: str, where: str) -> tuple[str, str] | None:
        from .. import manifest

        try:  # the strict two-line read every reader uses (names validated, canonical spelling)
            return manifest.identity(self.reg.objects.get(digest), f"{where} -> {digest[:19]}")
        except NotFound:
            self.find("object-missing", where, f"{where} points at {digest[:19]}, which is not in objects/")
            return None
        except (ModelregError, OSError, ValueError) as exc:
            self.find("object-unreadable", where, f"{where} points at {digest[:19]}: "
                                                   f"{getattr(exc, 'message', None) or exc}")
            return None

    def check_pointers(self) -> None:
        refs = self.reg.refs
        for model in _listdir(self.regdir / VER_DIR):
            for version in _listdir(self.regdir / VER_DIR / model):
                where = f"{VER_DIR}/{model}/{version}"
                try:
                    digest = refs._read(self.regdir / VER_DIR / model / version)
                except ModelregError as exc:
                    self.find("version-unreadable", where, exc.message)
                    continue
                ident = self._manifest_identity(digest, where) if digest else None
                if ident is not None and ident != (model, version):
                    self.find("version-mismatch", where, f"{where} points at a manifest of {ident[0]}@{ident[1]}")
        for model in _listdir(self.regdir / REF_DIR):
            for stage in _listdir(self.regdir / REF_DIR / model):
                where = f"{REF_DIR}/{model}/{stage}"
                try:
                    digest = refs._read(self.regdir / REF_DIR / model / stage)
                except ModelregError as exc:
                    self.find("ref-unreadable", where, exc.message)
                    continue
                if digest is None:
                    continue
                ident = self._manifest_identity(digest, where)
                if ident is None:
                    continue
                name, version = ident
                try:
                    registered = refs.read_version(name, version)  # names validated before they become a path
                except ModelregError:
                    registered = None
                if name != model:
                    self.find("ref-mismatch", where, f"{where} points at a manifest of another model ({name}@{version})")
                elif registered != digest:
                    held = f"holds {registered[:19]}" if registered else "does not exist"
                    self.find("ref-unregistered", where,
                              f"{where} points at {digest[:19]}, a manifest claiming {name}@{version} that was never "
                              f"registered (versions/{name}/{version} {held})")


def _listdir(d: Path) -> list[str]:
    try:
        return sorted(n for n in fileio.listdir(d) if not n.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


def audit(reg: Any, base: str, max_skew: float = MAX_SKEW) -> AuditReport:
    """Audit the registry's work tree against git revision ``base`` (see the module docstring)."""
    if not isinstance(max_skew, (int, float)) or max_skew < 0:
        raise UsageError("--max-skew must be a non-negative number of seconds")
    return _Audit(reg, base, float(max_skew)).run()
