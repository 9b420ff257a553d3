"""Registry check: every object's hash, every version entry and ref, every log line.

Errors make ``modelreg fsck`` exit 6. Warnings name states an interrupted write can leave
(a ref move or registration whose event line was not written, a stale temp file); they do
not make the registry invalid, and ``--repair`` settles them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as config_mod
from . import fileio, log, manifest
from .errors import ModelregError
from .log import Event
from .names import check_model, check_stage, check_version
from .refs import REF_MAX, parse_ref_bytes
from .state import ANNOTATIONS, fold

STALE_TMP_SECONDS = 60.0


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "path": self.path, "message": self.message}


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
    def __init__(self, reg: Any, repair: bool, artifacts: bool = False, compute_hash: bool = False) -> None:
        self.reg = reg
        self.artifacts = artifacts
        self.compute_hash = compute_hash
        self.root: Path = reg.path
        self.repair = repair
        self.report = Report()
        self.manifests: dict[str, dict[str, Any]] = {}

    def rel(self, p: Path) -> str:
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def error(self, p: Path, msg: str) -> None:
        self.report.problems.append(Problem("error", self.rel(p), msg))

    def warn(self, p: Path, msg: str) -> None:
        self.report.problems.append(Problem("warning", self.rel(p), msg))

    # ------------------------------------------------------------------
    def run(self) -> Report:
        self.check_config()
        self.check_tree()
        self.check_objects()
        versions = self.check_versions()
        refs = self.check_refs()
        self.check_logs(versions, refs)
        self.check_lineage()
        if self.artifacts:
            self.check_artifacts()
        return self.report

    def check_config(self) -> None:
        try:
            cfg = config_mod.load(self.root / "config.yaml")
            self.stages = set(cfg.stages)
            cfg.policy  # noqa: B018 - validates the policy section
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
        now = time.time()
        for dirpath, dirnames, filenames in os.walk(self.root):
            d = Path(dirpath)
            if d == self.root / "locks":
                dirnames[:] = []
                continue
            for name in dirnames + filenames:
                p = d / name
                if p.is_symlink():
                    self.error(p, "is a symlink; a registry never contains symlinks (it could point anywhere)")
                    if name in dirnames:
                        dirnames.remove(name)
                elif name.startswith(fileio.TMP_PREFIX):
                    age = now - p.lstat().st_mtime
                    if self.repair and age > STALE_TMP_SECONDS:
                        p.unlink()
                        self.report.repaired.append(f"removed stale temp file {self.rel(p)}")
                    else:
                        self.warn(p, "temporary file left by an interrupted write (safe to delete)")

    def check_objects(self) -> None:
        objects = self.root / "objects"
        for digest in self.reg.objects:
            p = self.reg.objects.path(digest) if _valid_name(digest) else objects / digest[7:9] / digest[9:]
            self.report.counts["objects"] += 1
            if not _valid_name(digest):
                self.error(p, "file name is not a SHA-256 digest")
                continue
            if p.is_symlink():
                continue  # reported by check_tree
            try:
                self.manifests[digest] = manifest.from_bytes(self.reg.objects.get(digest), what="manifest")
            except ModelregError as exc:
                self.error(p, exc.message)

    def _manifest(self, digest: str, where: Path, what: str) -> dict[str, Any] | None:
        m = self.manifests.get(digest)
        if m is None:
            p = self.reg.objects.path(digest)
            if not p.exists():
                self.error(where, f"{what} points at {digest}, which is missing from objects/")
            return None
        return m

    def _read_ref(self, p: Path) -> str | None:
        if p.is_symlink():
            return None
        try:
            return parse_ref_bytes(fileio.read_file(p, REF_MAX), self.rel(p))
        except ModelregError as exc:
            self.error(p, exc.message)
        except OSError as exc:
            self.error(p, f"unreadable: {exc.strerror}")
        return None

    def _names(self, d: Path) -> list[str]:
        try:
            return sorted(n for n in os.listdir(d) if not n.startswith(fileio.TMP_PREFIX))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def check_versions(self) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        base = self.root / "versions"
        for model in self._names(base):
            found[model] = {}
            if not _ok(check_model, model):
                self.error(base / model, "is not a valid model name")
                continue
            for version in self._names(base / model):
                p = base / model / version
                self.report.counts["versions"] += 1
                if not _ok(check_version, version):
                    self.error(p, "is not a valid version name")
                    continue
                digest = self._read_ref(p)
                if digest is None:
                    continue
                found[model][version] = digest
                m = self._manifest(digest, p, "version entry")
                if m is not None and (m["name"], m["version"]) != (model, version):
                    self.error(p, f"points at a manifest of {m['name']}@{m['version']}")
        return found

    def check_refs(self) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        base = self.root / "refs"
        for model in self._names(base):
            found[model] = {}
            for stage in self._names(base / model):
                p = base / model / stage
                self.report.counts["refs"] += 1
                if not _ok(check_model, model) or not _ok(check_stage, stage):
                    self.error(p, "is not a valid model/stage name")
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
        return found

    def check_logs(self, versions: dict[str, dict[str, str]], refs: dict[str, dict[str, str]]) -> None:
        logs = self.root / "logs"
        models = set(log.models(logs)) | set(versions) | set(refs)
        for model in sorted(models):
            if not _ok(check_model, model):
                self.error(log.path_for(logs, model), "log of an invalid model name")
                continue
            path = log.path_for(logs, model)
            events, bad = log.read(logs, model) if path.exists() and not path.is_symlink() else ([], [])
            self.report.counts["events"] += len(events)
            for b in bad:
                kind = "torn last line (interrupted append)" if b.last else "unreadable line"
                self.error(path, f"line {b.lineno}: {kind}: {b.problem}")
            for e in events:
                if e.model != model:
                    self.error(path, f"event {e.id} is about model {e.model!r}")
            if bad and self.repair:
                self._drop_bad_lines(path, events, bad)
            self._consistency(model, path, events, versions.get(model, {}), refs.get(model, {}))

    def _drop_bad_lines(self, path: Path, events: list[Event], bad: list[Any]) -> None:
        lost = self.root / "lost-found"
        fileio.makedirs(lost)
        fileio.atomic_write(lost / f"{path.name}.{int(time.time())}", "".join(b.text + "\n" for b in bad).encode())
        fileio.atomic_write(path, b"".join(e.line() for e in events))
        self.report.repaired.append(f"moved {len(bad)} unreadable line(s) of {self.rel(path)} to lost-found/")
        self.report.problems = [p for p in self.report.problems if p.path != self.rel(path)]

    def _consistency(
        self, model: str, path: Path, events: list[Event], versions: dict[str, str], refs: dict[str, str]
    ) -> None:
        state = fold(events)
        for version, digest in versions.items():
            st = state.versions.get(version)
            if st is None or st.registered_at is None:
                if self.repair:
                    self._append(Event("register", model, "modelreg-fsck", version=version, to=digest,
                                       reason="recorded by fsck --repair after an interrupted registration"))
                else:
                    self.warn(path, f"{model}@{version} has no register event (interrupted registration?)")
        for e in events:
            if e.action == "register" and e.version and e.version not in versions:
                self.error(path, f"event {e.id} registers {model}@{e.version}, which has no version entry")
            elif e.action in ANNOTATIONS:
                if not e.version or e.version not in versions:
                    self.error(path, f"{e.action} event {e.id} is about {model}@{e.version}, which does not exist")
                elif e.to and e.to != versions[e.version]:
                    self.error(path, f"{e.action} event {e.id} names digest {e.to[:19]} for {model}@{e.version}, "
                                     f"which is {versions[e.version][:19]}")
        for stage, digest in refs.items():
            moves = state.stage_events(stage)
            last = moves[-1].to if moves else None
            if last != digest:
                if self.repair:
                    self._append(Event("reconcile", model, "modelreg-fsck", stage=stage, from_=last, to=digest,
                                       version=self._version_of(digest),
                                       reason="recorded by fsck --repair: the ref moved without a logged event"))
                else:
                    self.warn(path, f"{model}@{stage} holds {digest[:19]} but the log last moved it to "
                                    f"{(last or 'nothing')[:19]} (interrupted write or hand-resolved merge)")

    def _version_of(self, digest: str) -> str | None:
        m = self.manifests.get(digest)
        return m["version"] if m else None

    def _append(self, event: Event) -> None:
        with self.reg._locked(event.model):
            log.append(self.reg.logs_dir, event)
        self.report.repaired.append(f"logged {event.action} of {event.model} {event.version or event.stage}")

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
                key = (a["uri"], a.get("size"), a.get("sha256"))
                if key not in done:
                    counts["artifacts"] += 1
                    try:
                        done[key] = verify_entry(a, self.reg.root, compute_hash=self.compute_hash,
                                                 storage_options=options, egress=egress)
                    except ModelregError as exc:
                        done[key] = exc
                res = done[key]
                if isinstance(res, ModelregError):
                    self.report.problems.append(Problem("error", where, res.message))
                elif res.status == "unreachable":
                    counts["unreachable"] += 1
                    self.report.problems.append(Problem("warning", where, res.message))
                elif not res.ok:
                    self.report.problems.append(Problem("error", where, f"{res.status}: {res.message}"))


def _valid_name(digest: str) -> bool:
    from .names import is_full_digest

    return is_full_digest(digest)


def _ok(check: Any, name: str) -> bool:
    try:
        check(name)
        return True
    except ModelregError:
        return False


def fsck(reg: Any, repair: bool = False, *, artifacts: bool = False, compute_hash: bool = False) -> Report:
    """Check the whole registry; with ``repair``, settle what interrupted writes left behind.

    With ``artifacts``, also check every artifact against its store (``compute_hash``: by content).
    """
    return _Checker(reg, repair, artifacts, compute_hash).run()
