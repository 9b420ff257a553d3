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
from typing import TYPE_CHECKING, Any

from . import config as config_mod
from . import fileio, log, manifest
from .errors import StorageError, Conflict, IntegrityError, ModelregError, NotFound, PolicyRefused, UsageError
from .log import Event
from .names import Ref, check_key, check_model, check_stage, is_full_digest, parse_ref
from .refs import Refs
from .state import ModelState, VersionState, fold
from .store import ObjectStore

if TYPE_CHECKING:  # imported where used: fsspec-facing and policy code stay off the read path
    from . import policy as policy_mod
    from .artifacts import FetchReport, ProgressFactory
    from .policy import GateReport
    from .uris import VerifyResult

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
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: list[str] | None = None  # current tags; None when the manifest was not read (listings)
    approvals: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)

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
            "metrics": self.metrics,
        }
        if self.tags is not None:
            d["tags"] = list(self.tags)
        d["approvals"] = self.approvals
        d["bindings"] = self.bindings
        if self.manifest is not None:
            d["manifest"] = self.manifest
        return d

    def extra_lines(self) -> list[tuple[str, str]]:
        """Annotation lines for the text form of ``show``."""
        import json

        lines = []
        if self.tags is not None:
            lines.append(("tags", ", ".join(self.tags) or "-"))
        for suite in sorted(self.metrics):
            values = "  ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(self.metrics[suite].items()))
            lines.append(("metrics", f"{suite}: {values}"))
        for stage in sorted(self.approvals):
            lines.append(("approvals", f"{stage}: {', '.join(sorted(self.approvals[stage]))}"))
        for provider in sorted(self.bindings):
            b = self.bindings[provider]
            lines.append(("binding", f"{provider}: {b['id']}" + (f" at {b['endpoint']}" if b.get("endpoint") else "")))
        return lines


@dataclass(frozen=True)
class RegisterResult:
    """Outcome of a registration; ``created`` is False for an identical re-registration."""

    version: Resolved
    created: bool
    event: Event | None
    duplicates: list[Resolved] = field(default_factory=list)  # other versions with the same params fingerprint

    def to_dict(self) -> dict[str, Any]:
        return {**self.version.to_dict(), "created": self.created, "event": self.event and self.event.to_dict(),
                "duplicates": [d.to_dict() for d in self.duplicates]}


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
    annotations: list[manifest.Change] = field(default_factory=list)  # metrics.SUITE.KEY and tags

    def to_dict(self) -> dict[str, Any]:
        def rows(changes: list[manifest.Change]) -> list[dict[str, Any]]:
            return [{"path": c.path, "kind": c.kind, "old": c.old, "new": c.new} for c in changes]

        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "changes": rows(self.changes),
                "annotations": rows(self.annotations)}


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

    @property
    def policy(self) -> policy_mod.Policy:
        """The promotion rules and gates of ``config.yaml`` (defaults filled in)."""
        return self.config.policy

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
            try:
                yield
            except OSError as exc:  # disk full, I/O error...: the write order left the old or new state
                where = f" ({exc.filename})" if exc.filename else ""
                raise StorageError(f"could not write to the registry: {exc.strerror or exc}{where}") from exc

    def _record(self, event: Event, signer: Any = None) -> Event:
        if signer is not None:
            event = signer.sign_event(event)
        log.append(self.logs_dir, event)
        return event

    def _signer(self, sign: bool) -> Any:
        """The SSH key events are signed with (``--sign``), found before any lock is taken; None without ``sign``."""
        if not sign:
            return None
        from .trust.signing import Signer

        return Signer.from_environment(self.root)

    def verifier(self) -> Any:
        """A :class:`trust.signing.Verifier` over the allowed signers file of the user's environment."""
        from .trust.signing import Verifier

        return Verifier.from_environment(self.root, self.path)

    def signatures(self, events: list[Event]) -> dict[str, Any]:
        """Event id -> :class:`trust.signing.Verdict` for each signed event (the environment's allowed signers)."""
        signed = [e for e in events if e.sig is not None]
        if not signed:
            return {}
        verifier = self.verifier()
        return {e.id: verifier.verify(e) for e in signed}

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
        st = state.versions.get(r.version) or VersionState(r.version)
        return VersionInfo(
            name=r.name,
            version=r.version,
            digest=r.digest,
            manifest=m,
            stages=[s for s in (order if order is not None else self._stage_order(holders)) if holders[s] == r.digest],
            archived=st.archived,
            archived_reason=st.archived_reason,
            registered_at=st.registered_at,
            registered_by=st.registered_by,
            metrics=st.metrics,
            tags=st.tags(m.get("tags", [])) if m is not None else None,
            approvals=st.approvals,
            bindings=st.bindings,
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
        if name and not self.refs.version_names(name) and not log.path_for(self.logs_dir, name).exists():
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
        """The differences from version ``a`` to version ``b``: manifests, then metrics and current tags."""
        ra, rb = self.resolve(a), self.resolve(b)
        ma, mb = self.manifest(ra.digest), self.manifest(rb.digest)
        states = {n: self.model_state(n) for n in {ra.name, rb.name}}

        def annotations(r: Resolved, m: dict[str, Any]) -> dict[str, Any]:
            st = states[r.name].versions.get(r.version) or VersionState(r.version)
            out: dict[str, Any] = {"tags": st.tags(m.get("tags", []))}
            metrics = {s: v for s, v in st.metrics.items() if v}
            if metrics:
                out["metrics"] = metrics
            return out

        return DiffResult(ra, rb, manifest.diff(ma, mb), manifest.diff(annotations(ra, ma), annotations(rb, mb)))

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
        check: bool = True,
        compute_hash: bool = False,
        upload: bool = False,
        strict: bool = False,
        new_model: bool = False,
        allow_unknown_license: bool = False,
    ) -> RegisterResult:
        """Register ``name@version``; identical content again is a no-op, other content a Conflict.

        ``artifacts`` are ``[ROLE=]URI`` strings or mappings with role/uri (and optionally
        sha256/size). Local files are hashed; remote URIs are checked (exists, is a file, size)
        unless ``check=False``, and hashed with ``compute_hash``. ``upload`` copies local files to
        the configured ``artifact_store`` (see docs/artifacts.md).
        ``parents`` are references resolved to digests. See :meth:`register_manifest` for
        ``strict``, ``new_model`` and ``allow_unknown_license``.
        """
        check_model(name)
        from .names import check_version

        check_version(version, set(self.stages))
        specs = [parse_artifact_spec(a) if isinstance(a, str) else dict(a) for a in artifacts]
        for s in specs:  # paths typed by a user are relative to where they stand
            if _is_local(s["uri"]) and not s["uri"].startswith("file://"):
                s["uri"] = os.path.abspath(s["uri"])
        if relation and not parents:
            raise UsageError("--lineage needs at least one --parent")
        if relation and relation not in manifest.RELATIONS:
            raise UsageError(f"unknown --lineage {relation!r}; one of {', '.join(manifest.RELATIONS)}")
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
        return self.register_manifest(
            raw, actor=actor, progress=progress, check=check, compute_hash=compute_hash, upload=upload,
            strict=strict, new_model=new_model, allow_unknown_license=allow_unknown_license,
        )

    def register_manifest(
        self,
        raw: dict[str, Any],
        *,
        actor: str | None = None,
        progress: ProgressFactory | None = None,
        check: bool = True,
        compute_hash: bool = False,
        upload: bool = False,
        strict: bool = False,
        new_model: bool = False,
        allow_unknown_license: bool = False,
    ) -> RegisterResult:
        """Register a manifest mapping (validated, local artifacts hashed, made canonical).

        Relative local artifact paths in ``raw`` are relative to the project root. Before
        anything is written: the license is normalised (unknown ids refused unless
        ``allow_unknown_license``), a new model named like an existing one is a Conflict
        unless ``new_model``, and other versions with the same params fingerprint are
        returned in ``duplicates`` (a Conflict if ``strict``).
        """
        from .discovery import FingerprintIndex, check_registration

        m = manifest.validate(raw, set(self.stages))
        checks = check_registration(self, m, strict=strict, new_model=new_model,
                                    allow_unknown_license=allow_unknown_license)
        if m.get("artifacts"):
            store, options = None, None
            self._committed_storage()  # credentials in config.yaml are refused whatever is registered
            if upload or (check and not all(_is_local(a["uri"]) for a in m["artifacts"])):  # only if storage is used
                eff = self._effective()
                store, options = (eff.upload_store() if upload else eff.store), eff.options
            if upload and store is None:
                raise UsageError("--upload needs 'artifact_store: URL' in config.yaml or your user config")
            m["artifacts"] = [
                _describe(a, self.root, progress, check=check, compute_hash=compute_hash,
                         upload_to=store if upload else None, storage_options=options)
                for a in m["artifacts"]
            ]
            m = manifest.validate(m, set(self.stages))  # re-normalise what describe filled in
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
            self.refs.check_new_version(name, version)
            fingerprints = FingerprintIndex(self)
            was_current = fingerprints.covers(name)
            digest = self.objects.put(data)
            self.refs.add_version(name, version, digest)
            event = self._record(Event("register", name, who, version=version, to=digest))
            fingerprints.registered(m, digest, was_current)
        return RegisterResult(Resolved(name, version, digest), True, event, checks.duplicates)

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
        sign: bool = False,
    ) -> Move:
        """Point ``stage`` of the model at the version ``ref``; ``expect`` is a compare-and-swap on the old value.

        ``expect`` is a version name, a ``sha256:`` digest (prefix), or ``None``/``"none"`` for an
        empty stage; leave it out to move the stage whatever it holds.

        Inside the model's lock, after the compare-and-swap, the policy's rules and gates for
        ``stage`` are evaluated: a failure raises PolicyRefused (with ``.report``) and changes
        nothing, unless ``force`` (which needs a ``reason``; the event records both and the
        failed gates). Archived versions are refused even with ``force``. When the policy's
        ``demote_to`` names a stage for ``stage``, the replaced version moves there with its
        own ``demote`` event, written after the promote event. ``sign`` signs the events with the
        user's SSH key (see :mod:`trust.signing`).
        """
        if force and not (reason and reason.strip()):
            raise UsageError("--force needs --reason: say why the policy is overridden (it is recorded)")
        target = self.resolve(ref)
        self._check_stage(stage)
        if expect is _UNSET:
            want = _UNSET
        else:  # None, like "none", means the stage must be empty
            want = None if expect is None else self._expected_digest(target.name, expect)
        who = resolve_actor(actor)
        policy = self.policy
        signer = self._signer(sign)
        with self._locked(target.name):
            sides = self.refs.conflict_sides(target.name, stage) if force else None
            if sides is not None:
                return self._resolve_conflict(target, stage, sides, want, reason, who, signer)
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
            report = self._evaluate(target, stage, state, current)
            if not report.passed and not force:
                raise PolicyRefused(report.summary(), details=[r.message for r in report.failed], report=report)
            self.refs.set_stage_if_equals(target.name, stage, current, target.digest)
            data: dict[str, Any] = {}
            if force:
                data = {"forced": True, "failed_gates": [r.to_dict() for r in report.failed]}
            ev = self._record(
                Event("promote", target.name, who, version=target.version, stage=stage,
                      from_=current, to=target.digest, reason=reason, data=data), signer
            )
            events = [ev]
            demote_stage = policy.demote_to.get(stage)
            if demote_stage and current is not None:
                held = self.refs.read_stage(target.name, demote_stage)
                if held != current:
                    self.refs.set_stage_if_equals(target.name, demote_stage, held, current)
                    events.append(self._record(Event(
                        "demote", target.name, who, version=self._identity(current).version, stage=demote_stage,
                        from_=held, to=current, reason=f"replaced in {stage} by {target.version}",
                        data={"replaced_in": stage, "by": ev.id},
                    ), signer))
        return Move(target.name, stage, self._maybe_identity(current), target, True, events)

    def _evaluate(self, target: Resolved, stage: str, state: ModelState, current: str | None) -> GateReport:
        holder = self._maybe_identity(current)
        from . import policy as policy_mod

        problem = None
        gates = self.policy.gates.get(stage)
        if gates is not None and gates.require_signatures:
            state, problem = self._signed_state(state)
        return policy_mod.evaluate(
            self.policy, stage, target.name, target.version, target.digest, state.versions.get(target.version),
            holder.version if holder else None, state.versions.get(holder.version) if holder else None,
            signatures=problem,
        )

    def _signed_state(self, state: ModelState) -> tuple[ModelState, str | None]:
        """The fold with only the approvals and metrics whose signature verifies against an allowed
        signer, each approval under its signer's identity (one approver per signing key)."""
        import dataclasses

        from .state import fold
        from .trust.signing import Verifier, allowed_signers_file

        try:
            verifier = Verifier(allowed_signers_file(self.root, self.path))
        except UsageError as exc:
            verifier, problem = Verifier(None), exc.message
        else:
            problem = None if verifier.allowed is not None else (
                "no allowed signers file: set MODELREG_ALLOWED_SIGNERS or git config gpg.ssh.allowedSignersFile")
        kept = []
        for e in state.events:
            if e.action in ("approve", "metrics"):
                v = verifier.verify(e) if verifier.allowed is not None else None
                if v is None or not v.verified:
                    continue
                e = dataclasses.replace(e, actor=v.identity)
            kept.append(e)
        return fold(kept), problem

    def check(self, ref: str, stage: str) -> GateReport:
        """Evaluate the rules and gates for moving ``ref`` into ``stage`` without moving anything."""
        target = self.resolve(ref)
        self._check_stage(stage)
        current = self.refs.read_stage(target.name, stage)
        return self._evaluate(target, stage, self.model_state(target.name), current)

    def _resolve_conflict(
        self, target: Resolved, stage: str, sides: list[str], want: Any, reason: str | None, who: str,
        signer: Any = None,
    ) -> Move:
        """``promote --force`` onto a ref left with git conflict markers: pick ``target`` (lock held)."""
        if want is not _UNSET and want not in sides:
            raise Conflict(
                f"{target.name}@{stage} has merge conflict markers between {', '.join(self._label(d) for d in sides)}; "
                f"--expect {self._label(want)} is neither side"
            )
        st = self.model_state(target.name).versions.get(target.version)
        if st and st.archived:
            raise PolicyRefused(f"{target.name}@{target.version} is archived and cannot be promoted")
        self.refs.overwrite_conflicted_stage(target.name, stage, target.digest)
        ev = self._record(
            Event("promote", target.name, who, version=target.version, stage=stage, from_=None, to=target.digest,
                  reason=reason, data={"forced": True, "resolved_conflict": True, "conflict_sides": sides}), signer
        )
        return Move(target.name, stage, None, target, True, [ev])

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
        sign: bool = False,
    ) -> Move:
        """Move ``stage`` back to the version it held before its latest change, or to version ``to``."""
        check_model(name)
        self._check_stage(stage)
        self._require_model(name)
        who = resolve_actor(actor)
        signer = self._signer(sign)
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
                      from_=current, to=target.digest, reason=reason), signer
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
            return self._archive_locked(target, who, reason, force, undo)

    def _archive_locked(
        self, target: Resolved, who: str, reason: str | None, force: bool, undo: bool, data: dict[str, Any] | None = None
    ) -> Event | None:
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
                  to=target.digest, reason=reason, data={**({"forced": True} if force else {}), **(data or {})})
        )

    # ------------------------------------------------------------ annotations
    def _annotate(self, ref: str, action: str, data: dict[str, Any], actor: str | None, sign: bool = False) -> Event:
        target = self.resolve(ref)
        who = resolve_actor(actor)
        signer = self._signer(sign)
        with self._locked(target.name):
            return self._record(Event(action, target.name, who, version=target.version, to=target.digest, data=data),
                                signer)

    def set_metrics(
        self, ref: str, suite: str, values: dict[str, Any], actor: str | None = None, sign: bool = False
    ) -> Event:
        """Merge ``values`` into ``suite``'s metrics of a version (later values win per key; JSON types kept).

        ``sign``: sign the event with the user's SSH key (gates with ``require_signatures`` count only signed metrics)."""
        check_key("suite", suite)
        if not isinstance(values, dict) or not values:
            raise UsageError(f"metrics for suite {suite}: give at least one KEY=VALUE")
        _check_json(values, f"metrics for suite {suite}")
        return self._annotate(ref, "metrics", {"suite": suite, "values": values}, actor, sign)

    def metrics(self, ref: str, suite: str | None = None) -> dict[str, Any]:
        """Current metrics of a version: ``{suite: {key: value}}``, or one suite's ``{key: value}``."""
        r = self.resolve(ref)
        st = self.model_state(r.name).versions.get(r.version) or VersionState(r.version)
        if suite is None:
            return st.metrics
        check_key("suite", suite)
        if suite not in st.metrics:
            raise NotFound(f"{r.name}@{r.version} has no metrics for suite {suite!r} "
                           f"(has: {', '.join(sorted(st.metrics)) or 'none'})")
        return st.metrics[suite]

    def tag(
        self, ref: str, add: list[str] = (), remove: list[str] = (), actor: str | None = None  # type: ignore[assignment]
    ) -> Event | None:
        """Add and remove tags of a version; None when nothing would change."""
        add, remove = sorted({check_key("tag", t) for t in add}), sorted({check_key("tag", t) for t in remove})
        if not add and not remove:
            raise UsageError("tag: give at least one TAG")
        both = set(add) & set(remove)
        if both:
            raise UsageError(f"tag {sorted(both)[0]!r} is both added and removed")
        current = set(self.show(ref).tags or [])
        if set(add) <= current and not set(remove) & current:
            return None
        return self._annotate(ref, "tag", {"add": add, "remove": remove}, actor)

    def approve(
        self, ref: str, stage: str, comment: str | None = None, actor: str | None = None, sign: bool = False
    ) -> Event:
        """Record the actor's approval of a version for ``stage`` (one per actor and stage; again replaces it).

        ``sign``: sign the event with the user's SSH key; gates with ``require_signatures`` count
        only signed approvals, one per allowed signer."""
        self._check_stage(stage)
        return self._annotate(ref, "approve", {"stage": stage, "comment": comment}, actor, sign)

    def bind(
        self, ref: str, provider: str, id: str, endpoint: str | None = None,
        params: dict[str, Any] | None = None, actor: str | None = None,
    ) -> Event:
        """Record where a version is served: ``provider``'s model ``id`` (one binding per provider)."""
        check_key("provider", provider)
        if not isinstance(id, str) or not id.strip():
            raise UsageError("bind needs a non-empty --id")
        params = params or {}
        if not isinstance(params, dict):
            raise UsageError("bind params must be a mapping")
        _check_json(params, "bind params")
        from .trust.settings import check_no_credentials
        from .uris import check_uri_safe

        if endpoint is not None:
            check_uri_safe(endpoint)  # the log is committed: no user info, tokens or signed queries
        check_no_credentials(params, "bind --param", "the event log")
        data = {"provider": provider, "id": id, "endpoint": endpoint, "params": params}
        return self._annotate(ref, "bind", data, actor)

    def unbind(self, ref: str, provider: str, actor: str | None = None) -> Event | None:
        """Remove a version's binding to ``provider``; None if it had none."""
        check_key("provider", provider)
        r = self.resolve(ref)
        st = self.model_state(r.name).versions.get(r.version)
        if not st or provider not in st.bindings:
            return None
        return self._annotate(ref, "unbind", {"provider": provider}, actor)

    # -------------------------------------------------------------- retention
    def prune(self, name: str, keep: int, apply: bool = False, *, actor: str | None = None) -> list[Resolved]:
        """The versions archived (or, without ``apply``, that would be): all but the newest ``keep``
        unarchived versions, in registration order, never one that holds a stage.

        Already archived versions neither count toward ``keep`` nor appear in the result.
        Staged versions count toward ``keep`` when they are among the newest, and are
        simply skipped when they are not. Without ``apply`` nothing changes.
        """
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 0:
            raise UsageError(f"--keep must be a non-negative integer, not {keep!r}")
        check_model(name)
        self._require_model(name)
        who = resolve_actor(actor)
        with self._locked(name):
            digests = self.refs.versions(name)
            state = self.model_state(name)
            live = [v for v in state.order(list(digests)) if not (state.versions.get(v) and state.versions[v].archived)]
            staged = set(self.stage_holders(name).values())
            old = live[: max(len(live) - keep, 0)]
            chosen = [Resolved(name, v, digests[v]) for v in old if digests[v] not in staged]
            if apply:
                for r in chosen:
                    self._archive_locked(r, who, f"pruned: keep {keep}", False, False, {"prune": {"keep": keep}})
        return chosen

    def stats(self) -> dict[str, Any]:
        """Counts of models, versions, archived versions, versions per stage, and bytes on disk."""
        models = self.refs.models()
        versions = archived = 0
        per_stage: dict[str, int] = {s: 0 for s in self.stages}
        for name in models:
            names = self.refs.version_names(name)
            versions += len(names)
            state = self.model_state(name)
            archived += sum(1 for v in names if state.versions.get(v) and state.versions[v].archived)
            for stage in self.stage_holders(name):
                per_stage[stage] = per_stage.get(stage, 0) + 1
        size = files = 0
        for dirpath, dirnames, filenames in os.walk(self.path):
            if Path(dirpath) == self.locks_dir:
                dirnames[:] = []
                continue
            for f in filenames:
                try:
                    size += os.lstat(os.path.join(dirpath, f)).st_size
                    files += 1
                except FileNotFoundError:
                    pass
        return {"models": len(models), "versions": versions, "archived": archived,
                "stages": per_stage, "size_bytes": size, "files": files}

    # --------------------------------------------------------------- artifacts
    def artifact_settings(self) -> tuple[str | None, dict[str, dict[str, Any]] | None]:
        """``(artifact_store, storage_options)`` in effect: config.yaml's harmless options, its network
        settings only if approved on this machine, then the user's config (docs/security.md)."""
        eff = self._effective()
        return eff.store, eff.options

    def _committed_storage(self) -> Any:
        from .trust import settings

        return settings.committed(self.config.raw)

    def _effective(self) -> Any:
        from .trust import settings

        c = self._committed_storage()
        local_store = None
        if c.store is not None and not c.store_is_remote and not c.store.startswith("file://"):
            path = Path(c.store).expanduser()  # a relative store path is relative to the project root
            local_store = (path if path.is_absolute() else self.root / path).resolve().as_uri()
        elif c.store is not None and not c.store_is_remote:
            local_store = c.store
        return settings.effective(self.path, c, local_store)

    def trust_status(self) -> Any:
        """The committed network settings (:class:`trust.settings.TrustStatus`) and whether this machine approved them."""
        from .trust import settings

        return settings.status(self.path, self._committed_storage())

    def trust(self, revoke: bool = False) -> Any:
        """Approve (or with ``revoke`` forget) exactly the current committed network settings, for this machine."""
        from .trust import settings

        c = self._committed_storage()
        return settings.revoke(self.path, c) if revoke else settings.approve(self.path, c)

    def egress(self) -> Any:
        """The reading rules for artifact URIs that come from this registry (:mod:`trust.egress`)."""
        from .trust import egress

        return egress.for_project(self.root)

    def verify(
        self, ref: str, *, compute_hash: bool = False, progress: ProgressFactory | None = None
    ) -> VerifyReport:
        """Re-check every artifact of a version: exists, same size, and with ``compute_hash`` same SHA-256."""
        return self._verify(self.resolve(ref), compute_hash, progress)

    def _verify(self, r: Resolved, compute_hash: bool, progress: ProgressFactory | None) -> VerifyReport:
        from .artifacts import verify_entries

        _store, options = self.artifact_settings()
        results = verify_entries(
            self.manifest(r.digest).get("artifacts", []), self.root,
            compute_hash=compute_hash, progress=progress, storage_options=options, egress=self.egress(),
        )
        return VerifyReport(r, list(results))

    def verify_all(
        self, stage: str | None = None, *, compute_hash: bool = False, progress: ProgressFactory | None = None
    ) -> list[VerifyReport]:
        """:meth:`verify` every version that holds a stage (or ``stage``), once each, models in name order."""
        if stage is not None:
            self._check_stage(stage)
        reports = []
        for name in self.refs.models():
            holders = self.stage_holders(name)
            seen: set[str] = set()
            for s in self._stage_order(holders):
                digest = holders[s]
                if (stage is not None and s != stage) or digest in seen:
                    continue
                seen.add(digest)
                reports.append(self._verify(self._identity(digest), compute_hash, progress))
        return reports

    def fetch(
        self, ref: str, dest: str | os.PathLike[str], *, progress: ProgressFactory | None = None,
        allow_unverified: bool = False,
    ) -> FetchReport:
        """Download every artifact of a version into directory ``dest``, each checked against its SHA-256.

        Files are named by role (plus the URI's extension, see :func:`artifacts.fetch_name`). Files
        already there with the right hash are not downloaded again. All or nothing: on a mismatch
        (IntegrityError) or any other failure, the files this call wrote are removed. Artifacts with
        no recorded sha256 are refused (IntegrityError) unless ``allow_unverified``; then they are
        downloaded with only a size check and reported as "unverified". URIs are read under the
        :meth:`egress` rules (no special files, nothing outside allowed roots, no private addresses).
        """
        from .artifacts import fetch_entries

        r = self.resolve(ref)
        _store, options = self.artifact_settings()
        return fetch_entries(
            r, self.manifest(r.digest).get("artifacts", []), dest, self.root,
            progress=progress, storage_options=options, egress=self.egress(), allow_unverified=allow_unverified,
        )

    # ----------------------------------------------------------------- history
    def audit(self, base: str, max_skew: float | None = None) -> Any:
        """Compare the registry's work tree with git revision ``base``: an :class:`trust.audit.AuditReport`
        naming each edited or removed log line, changed immutable file, unregistered ref target and
        out-of-order added event (see docs/security.md)."""
        from .trust import audit

        return audit.audit(self, base, audit.MAX_SKEW if max_skew is None else max_skew)

    # ------------------------------------------------------------- discovery
    def search(
        self,
        name_regex: str | None = None,
        stage: str | None = None,
        staged: bool = False,
        tag: str | None = None,
        archived: bool | None = None,
        where: list[Any] = (),  # type: ignore[assignment]
        sort: str | None = None,
        limit: int | None = None,
    ) -> list[Any]:
        """Versions across models matching every filter (AND): list of :class:`discovery.SearchRecord`."""
        from . import discovery

        return discovery.search(self, name_regex=name_regex, stage=stage, staged=staged, tag=tag,
                                archived=archived, where=where, sort=sort, limit=limit)

    def lineage(self, ref: str, direction: str = "ancestors", depth: int | None = None) -> Any:
        """The ancestors or descendants of a version as a :class:`discovery.LineageNode` tree."""
        from . import discovery

        return discovery.lineage(self, ref, direction, depth)

    def license_check(self, ref: str, project_license: str | None = None) -> Any:
        """A :class:`discovery.LicenseReport`: the version's license against all ancestors and a project."""
        from . import discovery

        return discovery.license_check(self, ref, project_license)

    def reindex(self) -> dict[str, int]:
        """Rebuild the search cache of every model; model -> number of versions."""
        from . import discovery

        return discovery.SearchIndex(self).reindex()

    # ------------------------------------------------------------------ site
    def build_site(
        self, out: str | os.PathLike[str] = "site", *, title: str | None = None, base_url: str | None = None,
        jobs: int | None = None,
    ) -> Any:
        """Write the team's static site (HTML pages and a JSON API) into ``out``; a :class:`site.build.BuildReport`.

        Only files whose bytes changed are written. Needs Jinja2 (``pip install 'modelreg[site]'``).
        See docs/site.md.
        """
        from .site import build_site

        return build_site(self, out, title=title, base_url=base_url, jobs=jobs)


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :meth:`Registry.verify`: one result per artifact (an ``artifacts.ArtifactResult``)."""

    ref: Resolved
    results: list[VerifyResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {**self.ref.to_dict(), "ok": self.ok, "results": [r.to_dict() for r in self.results]}  # type: ignore[attr-defined]


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


def _check_json(value: Any, what: str, depth: int = 0) -> None:
    """Values stored in event data: JSON types only, finite numbers, string keys."""
    import math

    if depth > 16:
        raise UsageError(f"{what}: nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise UsageError(f"{what}: key {k!r} is not a non-empty string")
            _check_json(v, f"{what}: {k}" if depth == 0 else f"{what}.{k}", depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_json(v, what, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{what}: {value!r} is not a finite number")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise UsageError(f"{what}: a value of type {type(value).__name__} cannot be stored")


def _short(value: Any) -> str:
    text = repr(value) if value is not None else "(none)"
    return text if len(text) <= 40 else text[:37] + "..."


def _is_local(uri: str) -> bool:
    from .uris import is_local

    return is_local(uri)


def _describe(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from .artifacts import describe

    return describe(*args, **kwargs)


def resolve_actor(explicit: str | None) -> str:
    """The actor of a write (see modelreg.actor); imported on first write, not on reads."""
    from .actor import resolve_actor as resolve

    return resolve(explicit)
