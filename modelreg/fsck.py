"""Registry check: every object's hash, every version entry and ref, every log line.

Errors make ``modelreg fsck`` exit 6. Warnings name states an interrupted write can leave
(a ref move or registration whose event line was not written, a stale temp file); they do
not make the registry invalid, and ``--repair`` settles them. Every problem that ``--repair``
can settle names the repair (``Problem.repair``).

Repairs race nothing: each takes the model's lock, re-reads what it judged under it, and
acts only if the problem is still there. A log is rewritten only to set aside the lines
judged unreadable (to ``lost-found/``); every other line is kept byte for byte, including
lines appended after the check.

fsck reads the registry as the untrusted input it is: the tree is walked without following
links (each symlink is reported, never entered), and ``--repair`` writes only through
:mod:`modelreg.fileio`, which refuses to write through a link (``lost-found/`` included).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as config_mod
from . import fileio, log, manifest
from .errors import ModelregError, UsageError, os_errors
from .log import Event
from .names import check_model, check_stage, check_version
from .refs import REF_MAX, parse_ref_bytes
from .state import ANNOTATIONS, MOVES, fold

STALE_TMP_SECONDS = 60.0


# What --repair does about each kind of problem it can settle (Problem.repair).
REPAIR_TMP = "fsck --repair deletes it once it is older than 60 s"
REPAIR_LINES = "fsck --repair moves the line to lost-found/ and keeps every other line"
REPAIR_REGISTER = "fsck --repair logs a register event for it (actor modelreg-fsck)"
REPAIR_RECONCILE = "fsck --repair logs a reconcile event recording what the stage holds (actor modelreg-fsck)"
REPAIR_CACHE = "fsck --repair removes cache/ (without following links)"


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    path: str
    message: str
    repair: str | None = None  # what fsck --repair does about it; None: nothing automatic

    def to_dict(self) -> dict[str, str | None]:
        return {"severity": self.severity, "path": self.path, "message": self.message, "repair": self.repair}


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict(objects=0, versions=0, refs=0, events=0))
    repaired: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts,
            "problems": [p.to_dict() for p in self.problems],
            "repaired": self.repaired,
        }


class _Checker:
    def __init__(self, reg: Any, repair: bool, artifacts: bool = False, compute_hash: bool = False,
                 quick: bool = False, progress: Any = None) -> None:
        self.reg = reg
        self.quick = quick
        self.progress = progress
        self.stats: dict[str, os.stat_result] = {}  # lstat of every object file, from the tree walk
        self.artifacts = artifacts
        self.compute_hash = compute_hash
        self.root: Path = reg.path
        self.repair = repair
        self.report = Report()
        self.manifests: dict[str, dict[str, Any]] = {}
        self.states: dict[str, Any] = {}  # model -> its fold, read for purged artifacts
        self.skipped: set[str] = set()  # registry paths reported as links or not regular: not read
        self.referenced: set[str] = set()

    def rel(self, p: Path) -> str:
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def error(self, p: Path, msg: str, repair: str | None = None) -> None:
        self.report.problems.append(Problem("error", self.rel(p), msg, repair))

    def warn(self, p: Path, msg: str, repair: str | None = None) -> None:
        self.report.problems.append(Problem("warning", self.rel(p), msg, repair))

    # ------------------------------------------------------------------
    def run(self) -> Report:
        self.check_config()
        self.check_tree()
        self.check_objects()
        versions = self.check_versions()
        refs = self.check_refs(versions)
        self.check_logs(versions, refs)
        self.check_lineage()
        self.check_unreferenced()
        if self.artifacts:
            self.check_artifacts()
        return self.report

    def guarded(self, where: Path, fn: Any, *args: Any) -> Any:
        """``fn(*args)``; a link on the way (already reported by the tree walk) or another refusal
        becomes a problem of ``where`` instead of stopping the check."""
        try:
            return fn(*args)
        except fileio.SymlinkError:
            return None
        except ModelregError as exc:
            self.error(where, exc.message)
            return None

    def _skip(self, p: Path) -> bool:
        """True for a path the tree walk reported (a link or a special file), or one below it."""
        rel = self.rel(p)
        return any(rel == s or rel.startswith(s + "/") for s in self.skipped)

    def check_config(self) -> None:
        """A config mistake (unknown key, bad policy) is a usage error, exit 2, as in every command."""
        try:
            cfg = config_mod.load(self.root / "config.yaml")
            self.stages = set(cfg.stages)
            cfg.policy  # noqa: B018 - validates the policy section
        except UsageError:
            raise
        except ModelregError as exc:
            self.error(self.root / "config.yaml", exc.message)
            self.stages = set(config_mod.DEFAULT_STAGES)
            return
        from .trust import settings

        try:  # credentials refused; network settings named until this machine approves them
            st = settings.status(self.reg.path, settings.committed(cfg.raw))
        except ModelregError as exc:
            self.error(self.root / "config.yaml", exc.message)
            return
        if st.settings and st.approved is None:
            self.warn(self.root / "config.yaml", f"sets {', '.join(settings.shown(k, 80) for k in st.settings)}, "
                                                 "not approved on this machine: "
                                                 "they are not used until 'modelreg trust'")

    def check_tree(self) -> None:
        """Every entry of the registry, by lstat: symlinks and special files (errors), stale temp
        files, unexpected files in ``locks/``, and an ignored ``cache/`` from an older modelreg."""
        now = time.time()
        root = str(self.root)
        try:
            for dirpath, dirnames, entries in fileio.walk(self.root):
                d = Path(dirpath)
                if dirpath == root and "locks" in dirnames:
                    dirnames.remove("locks")
                    self.check_locks(d / "locks")
                for name, st in entries:
                    p = d / name
                    self.stats[dirpath + os.sep + name] = st
                    if stat.S_ISLNK(st.st_mode):
                        self.skipped.add(self.rel(p))
                        self.error(p, "is a symlink; a registry never contains symlinks (a committed one can point "
                                      "anywhere): replace it with the real file or directory (git rm the link)")
                    elif not stat.S_ISREG(st.st_mode):
                        self.skipped.add(self.rel(p))
                        self.error(p, "is not a regular file (a registry holds only files and directories)")
                    elif name.startswith(fileio.TMP_PREFIX):
                        if not (self.repair and self._remove_tmp(p, now)):
                            self.warn(p, "temporary file left by an interrupted write (safe to delete)", REPAIR_TMP)
        except ModelregError as exc:  # a tree nested absurdly deep, or a directory swapped for a link
            self.error(self.root, exc.message)
        self.check_old_cache()

    def _remove_tmp(self, p: Path, now: float) -> bool:
        """Delete a stale temp file, under the lock of the model it belongs to when that is known."""
        model = self._model_of(p)
        with self.reg._locked(model) if model else _nothing():
            st = fileio.lstat(p)
            if st is None:
                return True
            if now - st.st_mtime <= STALE_TMP_SECONDS:
                return False
            fileio.unlink(p, missing_ok=True)
        self.report.repaired.append(f"removed stale temp file {self.rel(p)}")
        return True

    def _model_of(self, p: Path) -> str | None:
        parts = self.rel(p).split("/")
        if len(parts) == 3 and parts[0] in ("refs", "versions") and _ok(check_model, parts[1]):
            return parts[1]
        if len(parts) == 2 and parts[0] == "logs":
            name = parts[1][len(fileio.TMP_PREFIX):].split("-", 1)[-1].removesuffix(log.LOG_SUFFIX)
            return name if _ok(check_model, name) else None
        return None

    def check_locks(self, locks: Path) -> None:
        """``locks/`` holds only ``<model>.lock`` and registry-wide ``_<word>.lock`` files (never committed;
        anything else is suspicious)."""
        try:
            with fileio.opendir(locks) as d:
                names = sorted(d.listdir())
                for name in names:
                    p = locks / name
                    st = d.lstat(name)
                    if st is None:
                        continue
                    if stat.S_ISLNK(st.st_mode):
                        self.skipped.add(self.rel(p))
                        self.error(p, "is a symlink; a registry never contains symlinks (a committed one can point "
                                      "anywhere): remove it")
                    elif not stat.S_ISREG(st.st_mode) or not name.endswith(".lock") or not _ok(check_model, name[:-5].removeprefix("_")):
                        self.warn(p, "unexpected entry in locks/ (it holds only NAME.lock and _NAME.lock files and is never "
                                     "committed): remove it")
        except fileio.SymlinkError:
            self.skipped.add("locks")
            self.error(locks, "is a symlink; a registry never contains symlinks (a committed one can point "
                              "anywhere): remove it")
        except (FileNotFoundError, NotADirectoryError):
            pass
        except ModelregError as exc:
            self.error(locks, exc.message)

    def check_old_cache(self) -> None:
        """A ``cache/`` inside the registry (written by modelreg before 0.2, or committed) is never read."""
        old = self.root / "cache"
        st = fileio.lstat(old)
        if st is None or not stat.S_ISDIR(st.st_mode):
            return
        if self.repair:
            try:
                fileio.rmtree(old)
                self.report.repaired.append("removed cache/ (derived data now lives in the user's cache directory)")
                return
            except (ModelregError, OSError) as exc:
                self.error(old, f"could not remove it: {getattr(exc, 'message', None) or exc}")
                return
        self.warn(old, "is ignored: derived data now lives in the user's cache directory, never where git can "
                       "deliver it; remove it (fsck --repair, or git rm -r .modelreg/cache)", REPAIR_CACHE)

    def check_objects(self) -> None:
        """Every object hashed and parsed (in a process pool; ``--quick``: only files whose stat changed
        since they last passed), see :mod:`modelreg.fsckobjects`."""
        from .fsckobjects import QuickState, check_all

        objects = self.root / "objects"
        if self._skip(objects):
            return
        state = QuickState(self.reg.path)
        try:
            todo: list[str] = []
            paths: dict[str, Path] = {}
            for digest in self._objects():
                p = self.reg.objects.path(digest) if _valid_name(digest) else objects / digest[7:9] / digest[9:]
                self.report.counts["objects"] += 1
                if not _valid_name(digest):
                    self.error(p, "file name is not a SHA-256 digest")
                    continue
                if self._skip(p):
                    continue  # reported by check_tree
                paths[digest] = p
                if self.quick:
                    known = state.unchanged(digest, self.stats.get(str(p)), self.artifacts)
                    if known is not None:
                        self.manifests[digest] = known
                        continue
                todo.append(digest)
            advance = self.progress("checking objects", len(todo)) if self.progress and todo else None
            passed = []
            try:
                for digest, status, value in check_all(str(self.root), self.reg.objects, todo, self.artifacts, advance):
                    if status == "ok":
                        self.manifests[digest] = value
                        st = self.stats.get(str(paths[digest]))
                        if st is not None:
                            passed.append((digest, st, value, self.artifacts))
                    else:
                        self.error(paths[digest], value)
            finally:
                getattr(advance, "close", lambda: None)()
            state.remember(passed)
        finally:
            state.close()

    def _objects(self) -> list[str]:
        """The digests in objects/, skipping shards the tree walk reported."""
        try:
            return [d for d in self.reg.objects if not self._skip(self.root / "objects" / d[7:9])]
        except ModelregError:
            return []  # a link on the way: reported by check_tree

    def _manifest(self, digest: str, where: Path, what: str) -> dict[str, Any] | None:
        self.referenced.add(digest)
        m = self.manifests.get(digest)
        if m is None:
            p = self.reg.objects.path(digest)
            if not self._skip(p) and self.guarded(where, fileio.exists, p) is False:
                self.error(where, f"{what} points at {digest}, which is missing from objects/")
            return None
        return m

    def _read_ref(self, p: Path, d: Any = None) -> str | None:
        if self._skip(p):
            return None
        try:
            data = d.read(p.name, REF_MAX) if d is not None else fileio.read_file(p, REF_MAX)
            return parse_ref_bytes(data, self.rel(p))
        except ModelregError as exc:
            self.error(p, exc.message)
        except OSError as exc:
            self.error(p, f"unreadable: {exc.strerror}")
        return None

    def _names(self, d: Path) -> list[str]:
        if self._skip(d):
            return []
        try:
            return sorted(n for n in fileio.listdir(d) if not n.startswith(fileio.TMP_PREFIX))
        except (FileNotFoundError, NotADirectoryError, ModelregError):
            return []

    def check_versions(self) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        base = self.root / "versions"
        for model in self._names(base):
            found[model] = {}
            if not _ok(check_model, model):
                self.error(base / _printable(model), "is not a valid model name")
                continue
            names = self._names(base / model)
            with contextlib.ExitStack() as stack:
                try:  # one walk to the directory for all its entries
                    d = stack.enter_context(fileio.opendir(base / model)) if names else None
                except (ModelregError, OSError):
                    d = None
                for version in names:
                    p = base / model / version
                    self.report.counts["versions"] += 1
                    if not _ok(check_version, version):
                        self.error(base / model / _printable(version), "is not a valid version name")
                        continue
                    digest = self._read_ref(p, d)
                    if digest is None:
                        continue
                    found[model][version] = digest
                    m = self._manifest(digest, p, "version entry")
                    if m is not None and (m["name"], m["version"]) != (model, version):
                        self.error(p, f"points at a manifest of {m['name']}@{m['version']}")
            folded: dict[str, str] = {}
            for version in sorted(found[model]):  # registered on two clones, or without a register event
                other = folded.setdefault(version.lower(), version)
                if other != version:
                    self.error(base / model / version, f"differs only by case from version {other!r} (the two "
                               "clash on case-insensitive file systems); keep one (git rm the other's entry)")
        return found

    def check_refs(self, versions: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        base = self.root / "refs"
        for model in self._names(base):
            found[model] = {}
            for stage in self._names(base / model):
                p = base / model / stage
                self.report.counts["refs"] += 1
                if not _ok(check_model, model) or not _ok(check_stage, stage):
                    self.error(base / _printable(model) / _printable(stage), "is not a valid model/stage name")
                    continue
                if stage not in self.stages:
                    self.warn(p, f"stage {stage!r} is not declared in config.yaml")
                digest = self._read_ref(p)
                if digest is None:
                    continue
                found[model][stage] = digest
                m = self._manifest(digest, p, "stage ref")
                if m is not None and m["name"] != model:
                    self.error(p, f"points at a version of another model ({m['name']}@{m['version']})")
                elif m is not None and versions.get(model, {}).get(m["version"]) != digest:
                    entry = versions.get(model, {}).get(m["version"])
                    self.error(p, f"points at {digest[:19]}, a manifest of {model}@{m['version']} that was never "
                                  "registered (" + (f"versions/{model}/{m['version']} is {entry[:19]}" if entry
                                                    else "no such version entry") + "): what a stage names must be "
                                  "what was registered; restore the ref from git or promote a registered version "
                                  "with --force")
        return found

    def check_logs(self, versions: dict[str, dict[str, str]], refs: dict[str, dict[str, str]]) -> None:
        logs = self.root / "logs"
        models = set(self.guarded(logs, log.models, logs) or []) | set(versions) | set(refs)
        for model in sorted(models):
            if not _ok(check_model, model):
                self.error(log.path_for(logs, model), "log of an invalid model name")
                continue
            path = log.path_for(logs, model)
            if self._skip(path) or self._skip(logs):
                continue
            try:
                events, bad = log.read(logs, model)
            except (ModelregError, OSError) as exc:
                self.error(path, getattr(exc, "message", None) or f"unreadable: {exc}")
                continue
            self.report.counts["events"] += len(events)
            for b in bad:
                kind = "torn last line (interrupted append)" if b.last else "unreadable line"
                self.error(path, f"line {b.lineno}: {kind}: {b.problem}", REPAIR_LINES)
            for e in events:
                self.referenced.update(d for d in (e.from_, e.to) if d)
                if e.model != model:
                    self.error(path, f"event {e.id} is about model {e.model!r}")
            if bad and self.repair:
                self._drop_bad_lines(model, path, bad)
            self._consistency(model, path, events, versions.get(model, {}), refs.get(model, {}))

    def _drop_bad_lines(self, model: str, path: Path, bad: list[Any]) -> None:
        """Under the model's lock, re-read the log and move to ``lost-found/`` the unreadable lines
        this check judged (and reported); every other line is kept byte for byte, including lines
        appended since. Nothing is written through a link."""
        judged = Counter(b.text for b in bad)
        try:
            with self.reg._locked(model):
                kept: list[bytes] = []
                moved: list[bytes] = []
                for _lineno, raw, _last in fileio.read_lines(path, log.MAX_LINE):
                    if not raw.strip():
                        continue
                    text = raw[:200].decode("utf-8", "replace")
                    if judged[text] and _unreadable(raw):
                        judged[text] -= 1
                        moved.append(raw)
                    else:
                        kept.append(raw)
                if not moved:
                    return
                lost = self.root / "lost-found"
                fileio.makedirs(lost)
                fileio.atomic_write(lost / f"{path.name}.{time.time_ns():x}", b"".join(r + b"\n" for r in moved))
                fileio.atomic_write(path, b"".join(r + b"\n" for r in kept))
        except (ModelregError, OSError) as exc:
            self.error(path, "could not move its unreadable lines aside: "
                             + (getattr(exc, "message", None) or fileio_message(exc)))
            return
        self.report.repaired.append(f"moved {len(moved)} unreadable line(s) of {self.rel(path)} to lost-found/")
        if not sum(judged.values()):
            rel = self.rel(path)
            self.report.problems = [p for p in self.report.problems if not (p.path == rel and p.repair == REPAIR_LINES)]

    def _consistency(
        self, model: str, path: Path, events: list[Event], versions: dict[str, str], refs: dict[str, str]
    ) -> None:
        state = fold(events)
        for version, digest in versions.items():
            st = state.versions.get(version)
            if st is None or st.registered_at is None:
                if not (self.repair and self._repair_register(model, version)):
                    self.warn(path, f"{model}@{version} has no register event (interrupted registration?)",
                              REPAIR_REGISTER)
        for e in events:
            mismatch = bool(e.version and e.to and e.version in versions and e.to != versions[e.version])
            if e.action == "register" and e.version and e.version not in versions:
                self.error(path, f"event {e.id} registers {model}@{e.version}, which has no version entry")
            elif mismatch and (e.action == "register" or e.action in ANNOTATIONS) and self._other_side(e):
                self.warn(path, f"{e.action} event {e.id} recorded {model}@{e.version} as {e.to[:19]}, but the "
                                f"version entry holds {versions[e.version][:19]}: no version entry has that digest "
                                "(the other side of a merge conflict was kept); register that content again under a "
                                "new version if it is still wanted")
            elif mismatch and (e.action == "register" or e.action in MOVES):
                self.error(path, f"{e.action} event {e.id} says {model}@{e.version} is {e.to[:19]}, but "
                                 f"versions/{model}/{e.version} is {versions[e.version][:19]} (a forged or edited line)")
            elif e.action in ANNOTATIONS:
                if not e.version or e.version not in versions:
                    self.error(path, f"{e.action} event {e.id} is about {model}@{e.version}, which does not exist")
                elif mismatch:
                    self.error(path, f"{e.action} event {e.id} names digest {e.to[:19]} for {model}@{e.version}, "
                                     f"which is {versions[e.version][:19]}")
        # the log's last move of each stage (causal order: a skewed clock cannot fake an interruption)
        logged = {e.stage for e in events if e.stage and e.action in MOVES}
        for stage in sorted(set(refs) | logged):
            digest = refs.get(stage)
            head = state.head(stage)
            last = head.to if head else None
            if last != digest:
                registered = digest is None or digest in versions.values()  # never legitimize a forged ref
                if not (self.repair and registered and self._repair_reconcile(model, stage)):
                    self.warn(path, f"{model}@{stage} holds {(digest or 'nothing')[:19]} but the log last moved it "
                                    f"to {(last or 'nothing')[:19]} (interrupted write or hand-resolved merge)",
                              REPAIR_RECONCILE if registered else None)
            holder = self._version_of(digest) if digest else None
            if holder and state.versions.get(holder) and state.versions[holder].archived:
                self.warn(path, f"{model}@{stage} holds {holder}, which is archived (a merge of two branches?): "
                                f"'modelreg promote {model}@{holder} archived' clears it")

    def _other_side(self, e: Event) -> bool:
        """True if ``e.to`` is a stored manifest of that very name and version: a registration that lost a
        merge conflict on its version entry (not a forged line, which names no such object)."""
        m = self.manifests.get(e.to or "")
        return m is not None and (m["name"], m["version"]) == (e.model, e.version)

    def _repair_register(self, model: str, version: str) -> bool:
        """Log a register event for a version entry without one, if that is still so under the lock."""
        with self.reg._locked(model):
            digest = self.reg.refs.read_version(model, version)
            state = fold(log.read(self.reg.logs_dir, model)[0])
            st = state.versions.get(version)
            if digest is not None and (st is None or st.registered_at is None):
                self.reg._record(Event(  # like every written event, delivered to the user's hooks
                    "register", model, "modelreg-fsck", version=version, to=digest,
                    reason="recorded by fsck --repair after an interrupted registration"))
                self.report.repaired.append(f"logged register of {model} {version}")
        return True

    def _repair_reconcile(self, model: str, stage: str) -> bool:
        """Log a reconcile event for a stage whose ref and log disagree, if they still do under the lock."""
        with self.reg._locked(model):
            digest = self.reg.refs.read_stage(model, stage)
            head = fold(log.read(self.reg.logs_dir, model)[0]).head(stage)
            last = head.to if head else None
            if last != digest:
                self.reg._record(Event(  # like every written event, delivered to the user's hooks
                    "reconcile", model, "modelreg-fsck", stage=stage, from_=last, to=digest,
                    version=self._version_of(digest or last or ""), prev=head and head.id,
                    reason="recorded by fsck --repair: the ref moved without a logged event"))
                self.report.repaired.append(f"logged reconcile of {model} {stage}")
        return True

    def _version_of(self, digest: str) -> str | None:
        m = self.manifests.get(digest)
        return m["version"] if m else None

    def check_unreferenced(self) -> None:
        """Objects nothing names (no version entry, ref, parent or event): left by an interrupted
        registration, or added by hand. Harmless, so a warning; repair leaves objects alone."""
        for m in self.manifests.values():
            self.referenced.update(p["digest"] for p in m.get("parents", []))
        for digest in sorted(set(self.manifests) - self.referenced):
            self.warn(self.reg.objects.path(digest), "unreferenced object: no version entry, stage, parent or "
                                                     "event names it (an interrupted registration, or added by hand)")

    def check_lineage(self) -> None:
        parents = {d: [p["digest"] for p in m.get("parents", [])] for d, m in self.manifests.items()}
        for d, ps in parents.items():
            for p in ps:
                if p not in parents:
                    self.error(self.reg.objects.path(d), f"parent {p} does not exist")
        state: dict[str, int] = {}
        for start in parents:
            stack = [(start, iter(parents[start]))]
            if state.get(start):
                continue
            state[start] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                elif nxt in parents:
                    if state.get(nxt) == 1:
                        self.error(self.reg.objects.path(node), f"lineage cycle through {nxt}")
                    elif not state.get(nxt):
                        state[nxt] = 1
                        stack.append((nxt, iter(parents[nxt])))

    def check_artifacts(self) -> None:
        """Optional pass: every artifact of every version exists with its recorded size (and hash).

        Missing or different bytes are errors; an unreachable store is a warning (nothing is known
        about the bytes) counted in ``counts["unreachable"]``. Each (uri, size, sha256) is checked once.
        """
        from .artifacts import verify_entry

        counts = self.report.counts
        counts.setdefault("artifacts", 0)
        counts.setdefault("unreachable", 0)
        done: dict[tuple[Any, ...], Any] = {}
        try:
            _store, options = self.reg.artifact_settings()
            egress = self.reg.egress()  # URIs from the registry: no special files, private addresses...
        except ModelregError as exc:
            self.error(self.root / "config.yaml", exc.message)
            return
        for digest in sorted(self.manifests, key=lambda d: (self.manifests[d]["name"], self.manifests[d]["version"])):
            m = self.manifests[digest]
            for a in m.get("artifacts", []):
                where = f"{m['name']}@{m['version']} artifact {a['role']} ({a['uri']})"
                key = (a["uri"], a.get("size"), a.get("sha256"), a.get("tree"))
                if key not in done:
                    counts["artifacts"] += 1
                    try:
                        done[key] = verify_entry(a, self.reg.root, compute_hash=self.compute_hash,
                                                 storage_options=options, egress=egress)
                    except ModelregError as exc:
                        done[key] = exc
                res = done[key]
                if not isinstance(res, ModelregError) and res.status == "missing":
                    from .artifacts import as_purged

                    res = as_purged(res, self._purged(m["name"], m["version"]).get(a["uri"]))
                if isinstance(res, ModelregError):
                    self.report.problems.append(Problem("error", where, res.message))
                elif res.status == "purged":  # deleted on purpose (prune --purge): not a problem
                    counts["purged"] = counts.get("purged", 0) + 1
                elif res.status == "unreachable":
                    counts["unreachable"] += 1
                    self.report.problems.append(Problem("warning", where, res.message))
                elif not res.ok:
                    self.report.problems.append(Problem("error", where, f"{res.status}: {res.message}"))


    def _purged(self, model: str, version: str) -> dict[str, Any]:
        """The artifacts of a version its ``purge`` events deleted (uri -> {sha256, size, time})."""
        if model not in self.states:
            self.states[model] = self.reg.model_state(model)
        st = self.states[model].versions.get(version)
        return st.purged if st is not None else {}


def _unreadable(raw: bytes) -> bool:
    try:
        log.parse_line(raw)
    except ValueError:
        return True
    return False


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _printable(name: str) -> str:
    """A file name as it may be shown: non-printable characters escaped."""
    return name if name.isprintable() else ascii(name)[1:-1]


def fileio_message(exc: OSError) -> str:
    return f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")


def _valid_name(digest: str) -> bool:
    from .names import is_full_digest

    return is_full_digest(digest)


def _ok(check: Any, name: str) -> bool:
    try:
        check(name)
        return True
    except ModelregError:
        return False


@os_errors
def fsck(reg: Any, repair: bool = False, *, artifacts: bool = False, compute_hash: bool = False,
         quick: bool = False, progress: Any = None) -> Report:
    """Check the whole registry; with ``repair``, settle what interrupted writes left behind.

    With ``artifacts``, also check every artifact against its store (``compute_hash``: by content).
    With ``quick``, objects whose file is unchanged (inode, size, mtime, ctime) since they last passed
    are not read again (:mod:`modelreg.fsckobjects` says what that can miss). ``progress(label, total)``
    may return a callback advanced as objects are checked (the CLI's bar on a terminal).
    """
    return _Checker(reg, repair, artifacts, compute_hash, quick, progress).run()
