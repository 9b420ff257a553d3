"""The public library API: a registry directory and every operation on it.

Functions here return dataclasses and raise :mod:`modelreg.errors`; they never print.
Every write to one model happens under that model's lock, in the order
object -> version entry / ref (rename) -> event line, so a killed process leaves the
registry valid (see docs/format.md, "Write order").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config as config_mod
from . import fileio, log, manifest
from .actor import resolve_actor
from .artifacts import ProgressFactory, describe, is_local
from .errors import Conflict, IntegrityError, ModelregError, NotFound, PolicyRefused, UsageError
from .log import Event
from .names import Ref, check_model, check_stage, is_full_digest, parse_ref
from .refs import Refs
from .state import ModelState, fold
from .store import ObjectStore

DIRNAME = ".modelreg"
ENV_DIR = "MODELREG_DIR"

GITIGNORE = """\
# Written by modelreg init: lock files and interrupted temp files are never committed.
locks/
.tmp-*
**/.tmp-*
cache/
"""

GITATTRIBUTES = """\
# Written by modelreg init. Append-only event logs merge by union: both sides' lines are
# kept; readers order them by time and id and drop duplicates. Ref files keep git's normal
# merge, so two branches that moved the same stage conflict (a real conflict).
logs/*.jsonl merge=union
"""


@dataclass(frozen=True)
class Resolved:
    """A reference resolved to one version."""

    name: str
    version: str
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest}


@dataclass
class VersionInfo:
    """One version: its manifest and what is recorded beside it."""

    name: str
    version: str
    digest: str
    manifest: dict[str, Any] | None = None
    stages: list[str] = field(default_factory=list)
    archived: bool = False
    archived_reason: str | None = None
    registered_at: str | None = None
    registered_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "stages": list(self.stages),
            "archived": self.archived,
            "archived_reason": self.archived_reason,
            "registered_at": self.registered_at,
            "registered_by": self.registered_by,
        }
        if self.manifest is not None:
            d["manifest"] = self.manifest
        return d


@dataclass(frozen=True)
class RegisterResult:
    """Outcome of a registration; ``created`` is False for an identical re-registration."""

    version: Resolved
    created: bool
    event: Event | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.version.to_dict(), "created": self.created, "event": self.event and self.event.to_dict()}


@dataclass(frozen=True)
class Move:
    """Outcome of promote/rollback: which stage went from what to what."""

    name: str
    stage: str
    from_: Resolved | None
    to: Resolved
    changed: bool
    events: list[Event]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stage": self.stage,
            "from": self.from_ and self.from_.to_dict(),
            "to": self.to.to_dict(),
            "changed": self.changed,
            "events": [e.to_dict() for e in self.events],
        }


@dataclass(frozen=True)
class ModelSummary:
    """A model with its version count, stages and latest version."""

    name: str
    versions: int
    stages: dict[str, str]
    latest: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "versions": self.versions, "stages": self.stages, "latest": self.latest}


@dataclass(frozen=True)
class DiffResult:
    """Differences between the manifests of two versions."""

    a: Resolved
    b: Resolved
    changes: list[manifest.Change]

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "changes": [{"path": c.path, "kind": c.kind, "old": c.old, "new": c.new} for c in self.changes],
        }


Expect = str | None  # a version name, a digest (prefix), or "none"
_UNSET: Any = object()


def find_registry(start: str | os.PathLike[str] | None = None) -> Path:
    """The ``.modelreg`` directory to use: ``start`` if given, else ``MODELREG_DIR``, else the cwd or a parent."""
    explicit = start if start is not None else os.environ.get(ENV_DIR) or None
    if explicit is not None:
        p = Path(explicit)
        if p.name != DIRNAME and (p / DIRNAME).is_dir():
            p = p / DIRNAME
        if not (p / "config.yaml").is_file():
            raise NotFound(f"no modelreg registry at {explicit} (run 'modelreg init')")
        return p
    here = Path.cwd()
    for d in (here, *here.parents):
        candidate = d / DIRNAME
        if (candidate / "config.yaml").is_file():
            return candidate
    raise NotFound("no .modelreg registry in this directory or its parents (run 'modelreg init' or pass --registry)")


class Registry:
    """A model registry stored in a ``.modelreg`` directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        cfg = self.path / "config.yaml"
        try:
            data = fileio.read_file(cfg, 1 << 20)
        except FileNotFoundError:
            raise NotFound(f"no modelreg registry at {self.path} (run 'modelreg init')") from None
        config_mod.check_format(config_mod.format_version(data, cfg), cfg)
        self.root = self.path.parent
        self.objects = ObjectStore(self.path / "objects")
        self.refs = Refs(self.path)
        self.logs_dir = self.path / "logs"
        self.locks_dir = self.path / "locks"
        self._config: config_mod.Config | None = None

    # ------------------------------------------------------------------ setup
    @classmethod
    def init(cls, project: str | os.PathLike[str] = ".") -> Registry:
        """Create ``PROJECT/.modelreg`` (or complete a partial one) and open it."""
        path = Path(project) / DIRNAME if Path(project).name != DIRNAME else Path(project)
        for sub in ("objects", "refs", "versions", "logs", "locks"):
            fileio.makedirs(path / sub)
        cfg = path / "config.yaml"
        if not cfg.exists():
            fileio.atomic_write(cfg, config_mod.DEFAULT_TEXT.encode())
        for name, text in ((".gitignore", GITIGNORE), (".gitattributes", GITATTRIBUTES)):
            if not (path / name).exists():
                fileio.atomic_write(path / name, text.encode())
        return cls(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Registry:
        """Open the registry at ``path`` or the one found from the environment and cwd."""
        return cls(find_registry(path))

    @property
    def config(self) -> config_mod.Config:
        """Parsed ``config.yaml`` (read on first use)."""
        if self._config is None:
            self._config = config_mod.load(self.path / "config.yaml")
        return self._config

    @property
    def stages(self) -> tuple[str, ...]:
        return self.config.stages

    def _check_stage(self, stage: str) -> str:
        check_stage(stage)
        if stage not in self.stages:
            raise UsageError(f"unknown stage {stage!r}; configured stages: {', '.join(self.stages)}")
        return stage

    @contextmanager
    def _locked(self, model: str) -> Iterator[None]:
        check_model(model)
        fileio.makedirs(self.locks_dir)
        with fileio.lock(self.locks_dir / f"{model}.lock"):
            yield

    def _record(self, event: Event) -> Event:
        log.append(self.logs_dir, event)
        return event

    # --------------------------------------------------------------- reading
    def manifest(self, digest: str) -> dict[str, Any]:
        """The manifest stored under ``digest`` (hash verified, strictly parsed)."""
        return manifest.from_bytes(self.objects.get(digest), what=f"object {digest}")

    def _identity(self, digest: str) -> Resolved:
        from . import canonical

        data = self.objects.get(digest)
        h = canonical.header(data, ("name", "version"))
        if "name" not in h or "version" not in h:
            raise IntegrityError(f"object {digest} is not a version manifest")
        return Resolved(str(h["name"]), str(h["version"]), digest)

    def model_state(self, name: str) -> ModelState:
        """The fold of one model's event log."""
        events, _ = log.read(self.logs_dir, check_model(name))
        return fold(events)

    def resolve(self, ref: str | Ref) -> Resolved:
        """Resolve ``NAME@VERSION|STAGE|latest|sha256:HEX`` (or a bare ``sha256:HEX``) to one version."""
        r = parse_ref(ref) if isinstance(ref, str) else ref
        if r.kind == "digest":
            return self._resolve_digest(r)
        assert r.name is not None
        if r.kind == "latest":
            return self._resolve_latest(r.name)
        if r.kind == "word":
            stage_digest = self.refs.read_stage(r.name, r.value)
            version_digest = self.refs.read_version(r.name, r.value)
            if stage_digest and version_digest:
                raise UsageError(f"{r} is ambiguous: {r.value!r} is both a stage and a version of {r.name}")
            if stage_digest:
                return self._identity(stage_digest)
            if version_digest:
                return Resolved(r.name, r.value, version_digest)
            if r.value in self.stages:
                self._require_model(r.name)
                raise NotFound(f"stage {r.value} of {r.name} is empty")
        else:
            version_digest = self.refs.read_version(r.name, r.value)
            if version_digest:
                return Resolved(r.name, r.value, version_digest)
        self._require_model(r.name)
        raise NotFound(f"{r.name} has no version {r.value!r}")

    def _require_model(self, name: str) -> None:
        if not self.refs.version_names(name):
            raise NotFound(f"no model named {name!r}")

    def _resolve_digest(self, r: Ref) -> Resolved:
        matches = self.objects.find(r.value)
        if not matches:
            raise NotFound(f"no version with digest {r.value}")
        if len(matches) > 1:
            raise UsageError(f"digest prefix {r.value} is ambiguous: {len(matches)} objects match; give more digits")
        found = self._identity(matches[0])
        if r.name is not None and found.name != r.name:
            raise NotFound(f"{r.value} is a version of {found.name}, not {r.name}")
        return found

    def _resolve_latest(self, name: str) -> Resolved:
        names = self.refs.version_names(name)
        if not names:
            raise NotFound(f"no model named {name!r}")
        state = self.model_state(name)
        for v in reversed(state.order(names)):
            st = state.versions.get(v)
            if not (st and st.archived):
                digest = self.refs.read_version(name, v)
                if digest:
                    return Resolved(name, v, digest)
        raise NotFound(f"every version of {name} is archived")

    def stage_holders(self, name: str) -> dict[str, str]:
        """Stage -> digest for every non-empty stage of ``name``."""
        return self.refs.stages(name)

    def show(self, ref: str) -> VersionInfo:
        """A version with its manifest, stages, registration and archived state."""
        r = self.resolve(ref)
        m = self.manifest(r.digest)
        if m["name"] != r.name or m["version"] != r.version:
            raise IntegrityError(f"object {r.digest} holds {m['name']}@{m['version']}, not {r.name}@{r.version}")
        return self._info(r, m, self.model_state(r.name), self.stage_holders(r.name))

    def _info(
        self, r: Resolved, m: dict[str, Any] | None, state: ModelState, holders: dict[str, str],
        order: list[str] | None = None,
    ) -> VersionInfo:
        st = state.versions.get(r.version)
        return VersionInfo(
            name=r.name,
            version=r.version,
            digest=r.digest,
            manifest=m,
            stages=[s for s in (order if order is not None else self._stage_order(holders)) if holders[s] == r.digest],
            archived=bool(st and st.archived),
            archived_reason=st.archived_reason if st else None,
            registered_at=st.registered_at if st else None,
            registered_by=st.registered_by if st else None,
        )

    def _stage_order(self, holders: dict[str, str]) -> list[str]:
        known = [s for s in self.stages if s in holders]
        return known + sorted(s for s in holders if s not in known)

    def models(self) -> list[ModelSummary]:
        """Every model with its version count, stages (as version names) and latest version."""
        out = []
        for name in self.refs.models():
            names = self.refs.version_names(name)
            holders = self.stage_holders(name)
            stages = {s: self._identity(holders[s]).version for s in self._stage_order(holders)}
            try:
                latest: str | None = self._resolve_latest(name).version
            except NotFound:
                latest = None
            out.append(ModelSummary(name, len(names), stages, latest))
        return out

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of a model in registration order, with stages and archived state."""
        digests = self.refs.versions(name)
        if not digests:
            raise NotFound(f"no model named {name!r}")
        state = self.model_state(name)
        holders = self.stage_holders(name)
        order = self._stage_order(holders)
        return [self._info(Resolved(name, v, digests[v]), None, state, holders, order) for v in state.order(list(digests))]

    def events(self, name: str | None = None, stage: str | None = None, limit: int | None = None) -> list[Event]:
        """Events oldest first, optionally of one model and one stage, the newest ``limit`` of them."""
        if stage is not None and name is None:
            raise UsageError("--stage needs a model name")
        names = [check_model(name)] if name else log.models(self.logs_dir)
        if name and not self.refs.version_names(name) and name not in names:
            raise NotFound(f"no model named {name!r}")
        merged: list[Event] = []
        for n in names:
            merged.extend(log.read(self.logs_dir, n)[0])
        if len(names) > 1:
            merged.sort(key=lambda e: (e.time, e.id))
        if stage is not None:
            check_stage(stage)
            merged = [e for e in merged if e.stage == stage]
        if limit is not None:
            merged = merged[-limit:] if limit > 0 else []
        return merged

    def diff(self, a: str, b: str) -> DiffResult:
        """The manifest differences from version ``a`` to version ``b``."""
        ra, rb = self.resolve(a), self.resolve(b)
        return DiffResult(ra, rb, manifest.diff(self.manifest(ra.digest), self.manifest(rb.digest)))

    # --------------------------------------------------------------- writing
    def register(
        self,
        name: str,
        version: str,
        *,
        artifacts: list[str] | list[dict[str, Any]] = (),  # type: ignore[assignment]
        params: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        tags: list[str] = (),  # type: ignore[assignment]
        parents: list[str] = (),  # type: ignore[assignment]
        relation: str | None = None,
        description: str | None = None,
        license: str | None = None,
        actor: str | None = None,
        progress: ProgressFactory | None = None,
    ) -> RegisterResult:
        """Register ``name@version``; identical content again is a no-op, other content a Conflict.

        ``artifacts`` are ``[ROLE=]URI`` strings or mappings with role/uri (and optionally
        sha256/size). Local files are hashed; remote URIs are taken as given.
        ``parents`` are references resolved to digests.
        """
        check_model(name)
        from .names import check_version

        check_version(version, set(self.stages))
        specs = [parse_artifact_spec(a) if isinstance(a, str) else dict(a) for a in artifacts]
        for s in specs:  # paths typed by a user are relative to where they stand
            if is_local(s["uri"]) and not s["uri"].startswith("file://"):
                s["uri"] = os.path.abspath(s["uri"])
        parent_entries = []
        for p in parents:
            entry: dict[str, Any] = {"digest": self.resolve(p).digest}
            if relation:
                entry["relation"] = relation
            parent_entries.append(entry)
        raw = {
            "name": name,
            "version": version,
            "description": description,
            "license": license,
            "artifacts": specs,
            "params": params or {},
            "meta": meta or {},
            "tags": list(tags),
            "parents": parent_entries,
        }
        return self.register_manifest(raw, actor=actor, progress=progress)

    def register_manifest(
        self, raw: dict[str, Any], *, actor: str | None = None, progress: ProgressFactory | None = None
    ) -> RegisterResult:
        """Register a manifest mapping (validated, local artifacts hashed, made canonical).

        Relative local artifact paths in ``raw`` are relative to the project root.
        """
        m = manifest.validate(raw, set(self.stages))
        if m.get("artifacts"):
            m["artifacts"] = [describe(a, self.root, progress) for a in m["artifacts"]]
        for p in m.get("parents", []):
            if not self.objects.exists(p["digest"]):
                raise NotFound(f"parent {p['digest']} does not exist in this registry")
        data = manifest.to_bytes(m)
        name, version = m["name"], m["version"]
        who = resolve_actor(actor)
        with self._locked(name):
            existing = self.refs.read_version(name, version)
            if existing is not None:
                return self._same_or_conflict(m, existing, data)
            digest = self.objects.put(data)
            self.refs.add_version(name, version, digest)
            event = self._record(Event("register", name, who, version=version, to=digest))
        return RegisterResult(Resolved(name, version, digest), True, event)

    def _same_or_conflict(self, m: dict[str, Any], existing: str, data: bytes) -> RegisterResult:
        from .hashing import sha256_bytes

        name, version = m["name"], m["version"]
        if existing == "sha256:" + sha256_bytes(data):
            return RegisterResult(Resolved(name, version, existing), False, None)
        changes = manifest.diff(self.manifest(existing), m)
        shown = "; ".join(f"{c.path}: {_short(c.old)} -> {_short(c.new)}" for c in changes[:5])
        more = f" (+{len(changes) - 5} more)" if len(changes) > 5 else ""
        raise Conflict(
            f"{name}@{version} is already registered with other content ({existing[:19]}): {shown}{more}",
            details=[f"{c.path}: {c.old!r} -> {c.new!r}" for c in changes],
        )

    def _expected_digest(self, name: str, expect: str) -> str | None:
        if expect == "none":
            return None
        if expect.startswith("sha256:"):
            r = self.resolve(expect)
            if r.name != name:
                raise UsageError(f"--expect {expect} is a version of {r.name}, not {name}")
            return r.digest
        return self.resolve(Ref(name, "version", expect)).digest

    def promote(
        self,
        ref: str,
        stage: str,
        *,
        expect: Expect = _UNSET,
        reason: str | None = None,
        actor: str | None = None,
        force: bool = False,
    ) -> Move:
        """Point ``stage`` of the model at the version ``ref``; ``expect`` is a compare-and-swap on the old value."""
        target = self.resolve(ref)
        self._check_stage(stage)
        want = _UNSET if expect is _UNSET or expect is None else self._expected_digest(target.name, expect)
        who = resolve_actor(actor)
        with self._locked(target.name):
            current = self.refs.read_stage(target.name, stage)
            if want is not _UNSET and current != want:
                raise Conflict(
                    f"{target.name}@{stage} holds {self._label(current)}, expected {self._label(want)}: "
                    "it was moved by someone else"
                )
            state = self.model_state(target.name)
            st = state.versions.get(target.version)
            if st and st.archived:
                raise PolicyRefused(f"{target.name}@{target.version} is archived and cannot be promoted")
            if current == target.digest:
                return Move(target.name, stage, target, target, False, [])
            self.refs.set_stage_if_equals(target.name, stage, current, target.digest)
            data = {"forced": True} if force else {}
            ev = self._record(
                Event("promote", target.name, who, version=target.version, stage=stage,
                      from_=current, to=target.digest, reason=reason, data=data)
            )
        return Move(target.name, stage, self._maybe_identity(current), target, True, [ev])

    def _label(self, digest: str | None) -> str:
        if digest is None:
            return "nothing"
        try:
            r = self._identity(digest)
            return f"{r.version} ({digest[:19]})"
        except ModelregError:
            return digest[:19]

    def _maybe_identity(self, digest: str | None) -> Resolved | None:
        return None if digest is None else self._identity(digest)

    def rollback(
        self,
        name: str,
        stage: str,
        *,
        to: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> Move:
        """Move ``stage`` back to the version it held before its latest change, or to version ``to``."""
        check_model(name)
        self._check_stage(stage)
        self._require_model(name)
        who = resolve_actor(actor)
        with self._locked(name):
            current = self.refs.read_stage(name, stage)
            state = self.model_state(name)
            if to is not None:
                target = self.resolve(Ref(name, "version", to))
            else:
                target = self._previous(name, stage, current, state)
            st = state.versions.get(target.version)
            if st and st.archived:
                raise PolicyRefused(f"{name}@{target.version} is archived; unarchive it before rolling back to it")
            if current == target.digest:
                return Move(name, stage, target, target, False, [])
            self.refs.set_stage_if_equals(name, stage, current, target.digest)
            ev = self._record(
                Event("rollback", name, who, version=target.version, stage=stage,
                      from_=current, to=target.digest, reason=reason)
            )
        return Move(name, stage, self._maybe_identity(current), target, True, [ev])

    def _previous(self, name: str, stage: str, current: str | None, state: ModelState) -> Resolved:
        if current is None:
            raise NotFound(f"stage {stage} of {name} is empty: nothing to roll back")
        for e in reversed(state.stage_events(stage)):
            if e.to == current:
                if e.from_ is None:
                    break
                return self._identity(e.from_)
        raise NotFound(f"{name}@{stage} has no earlier value in the log to roll back to; use --to VERSION")

    def archive(
        self, ref: str, *, reason: str | None = None, actor: str | None = None, force: bool = False, undo: bool = False
    ) -> Event | None:
        """Mark a version archived (or, with ``undo``, not archived); None if it already was."""
        target = self.resolve(ref)
        who = resolve_actor(actor)
        with self._locked(target.name):
            st = self.model_state(target.name).versions.get(target.version)
            if bool(st and st.archived) != undo:
                return None
            if not undo:
                held = [s for s, d in self.stage_holders(target.name).items() if d == target.digest]
                if held and not force:
                    raise PolicyRefused(
                        f"{target.name}@{target.version} holds {', '.join(held)}; move the stage first or use --force"
                    )
            return self._record(
                Event("unarchive" if undo else "archive", target.name, who, version=target.version,
                      to=target.digest, reason=reason, data={"forced": True} if force else {})
            )


def parse_artifact_spec(text: str) -> dict[str, Any]:
    """``[ROLE=]URI`` -> ``{"role": ..., "uri": ...}``; without a role, the file name is the role."""
    if not text:
        raise UsageError("empty --artifact")
    head, sep, tail = text.partition("=")
    if sep and head and "/" not in head and ":" not in head and "?" not in head:
        role, uri = head, tail
    else:
        role, uri = None, text
    if not uri:
        raise UsageError(f"--artifact {text!r} has no URI")
    if role is None:
        base = uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        role = base.lower() or "artifact"
    from .names import check_key

    return {"role": check_key("artifact role", role), "uri": uri}


def _short(value: Any) -> str:
    text = repr(value) if value is not None else "(none)"
    return text if len(text) <= 40 else text[:37] + "..."
