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
from . import fileio, gitguard, log, manifest
from .errors import StorageError, Conflict, IntegrityError, ModelregError, NotFound, PolicyRefused, UsageError
from .lifecycle.expect import Empty, Expect, wants_empty
from .log import Event
from .names import Ref, check_key, check_model, check_stage, is_full_digest, parse_ref
from .refs import Refs
from .state import ANNOTATIONS, MOVES, ModelState, VersionState
from .store import ObjectStore

if TYPE_CHECKING:  # imported where used: fsspec-facing and policy code stay off the read path
    from . import policy as policy_mod
    from .artifacts import FetchReport, ProgressFactory
    from .history import HistoryWriter
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
    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)  # actor -> {score, comment, time}
    purged: dict[str, dict[str, Any]] = field(default_factory=dict)  # artifact uri -> {sha256, size, time}

    @property
    def rating(self) -> dict[str, Any]:
        """``{"avg", "count"}`` of the ratings (one per actor, the latest)."""
        scores = [r["score"] for r in self.ratings.values()]
        return {"avg": sum(scores) / len(scores) if scores else None, "count": len(scores)}

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
        d["rating"] = self.rating
        d["ratings"] = self.ratings
        d["purged"] = self.purged
        if self.manifest is not None:
            d["manifest"] = self.manifest
        return d

    def extra_lines(self) -> list[tuple[str, str]]:
        """Annotation lines for the text form of ``show``."""
        from .values import display

        lines = []
        if self.tags is not None:
            lines.append(("tags", ", ".join(self.tags) or "-"))
        for suite in sorted(self.metrics):
            values = "  ".join(f"{k}={display(v)}" for k, v in sorted(self.metrics[suite].items()))
            lines.append(("metrics", f"{suite}: {values}"))
        for stage in sorted(self.approvals):
            lines.append(("approvals", f"{stage}: {', '.join(sorted(self.approvals[stage]))}"))
        for provider in sorted(self.bindings):
            b = self.bindings[provider]
            figures = "".join(f", {k}={display(b[k])}" for k in ("latency_ms", "success_rate", "last_used")
                              if b.get(k) is not None)
            lines.append(("binding", f"{provider}: {b['id']}" + (f" at {b['endpoint']}" if b.get("endpoint") else "")
                          + f" ({b.get('status') or 'active'}{figures})"))
        if self.ratings:
            r = self.rating
            lines.append(("rating", f"{r['avg']:.2f} from {r['count']} rating(s)"))
        if self.purged:
            lines.append(("purged", f"{len(self.purged)} artifact(s) deleted from the store by prune --purge"))
        return lines


@dataclass(frozen=True)
class RegisterResult:
    """Outcome of a registration; ``created`` is False for an identical re-registration."""

    version: Resolved
    created: bool
    event: Event | None
    # other versions with the same params fingerprint (of each model the five most recently registered),
    # and whether there are more
    duplicates: list[Resolved] = field(default_factory=list)
    more_duplicates: bool = False
    same_artifacts: list[Any] = field(default_factory=list)  # discovery.SameArtifact: same bytes, other version
    pruned: list[Resolved] = field(default_factory=list)  # archived by policy.retention (auto) in the same lock
    pruned_events: list[Event] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.version.to_dict(), "created": self.created, "event": self.event and self.event.to_dict(),
                "duplicates": [d.to_dict() for d in self.duplicates], "more_duplicates": self.more_duplicates,
                "same_artifacts": [s.to_dict() for s in self.same_artifacts],
                "pruned": [r.to_dict() for r in self.pruned]}


@dataclass(frozen=True)
class Move:
    """Outcome of promote/rollback/clear: which stage went from what to what (``to`` None: emptied).

    ``events`` are every event the command wrote (a promote's demotion, an archive's clears);
    ``notes`` say what it chose not to change (a demotion skipped), one line each.
    """

    name: str
    stage: str
    from_: Resolved | None
    to: Resolved | None
    changed: bool
    events: list[Event]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stage": self.stage,
            "from": self.from_ and self.from_.to_dict(),
            "to": self.to and self.to.to_dict(),
            "changed": self.changed,
            "events": [e.to_dict() for e in self.events],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelSummary:
    """A model with its version count, stages and latest version."""

    name: str
    versions: int
    stages: dict[str, str]
    latest: str | None
    fields: dict[str, Any] = field(default_factory=dict)  # the model's own fields (model set)

    def to_dict(self) -> dict[str, Any]:
        from .records import TEXT_FIELDS

        return {"name": self.name, "versions": self.versions, "stages": self.stages, "latest": self.latest,
                **{k: self.fields.get(k) for k in TEXT_FIELDS}, "fields": self.fields}


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


_NO_CHECK: Any = object()  # an expectation that checks nothing (``expect=None``)


def find_registry(start: str | os.PathLike[str] | None = None) -> Path:
    """The ``.modelreg`` directory to use: ``start`` if given, else ``MODELREG_DIR``, else the cwd or a parent."""
    from_env = start is None and bool(os.environ.get(ENV_DIR))
    explicit = start if start is not None else os.environ.get(ENV_DIR) or None
    # lexists, not is_file: a symlinked .modelreg or config.yaml is found here and refused on open
    if explicit is not None:
        p = Path(explicit)
        if p.name != DIRNAME and os.path.lexists(p / DIRNAME):
            p = p / DIRNAME
        if not os.path.lexists(p / "config.yaml"):
            raise missing_registry(Path(explicit), ENV_DIR if from_env else "--registry")
        return p
    here = Path.cwd()
    for d in (here, *here.parents):
        candidate = d / DIRNAME
        if os.path.lexists(candidate / "config.yaml"):
            return candidate
    raise NotFound(
        f"no .modelreg registry in {here} or any parent directory; create one here with 'modelreg init', "
        f"or name one with --registry PATH or {ENV_DIR}"
    )


def missing_registry(where: Path, source: str | None = None) -> NotFound:
    """No registry at an explicit location: say where modelreg looked and how to create one there."""
    looked = where / "config.yaml" if where.name == DIRNAME else where / DIRNAME / "config.yaml"
    given = f" (from {source})" if source else ""
    init = "modelreg init" if source == ENV_DIR else f"modelreg init {where}"  # init honours MODELREG_DIR
    return NotFound(f"no modelreg registry at {where}{given}: {looked} does not exist; create one with '{init}'")


class Registry:
    """A model registry stored in a ``.modelreg`` directory."""

    def __init__(self, path: str | os.PathLike[str], *, allow_git: tuple[str, ...] = ()) -> None:
        """Open the registry at ``path``.

        Refuses (WorkTreeBlocked, exit 8) while the git work tree holding it is stopped in a
        rebase, merge, cherry-pick or revert, or a ``modelreg sync`` was interrupted; ``allow_git``
        names states the caller handles itself (``"merge"`` for the commands that conclude one).
        """
        self.path = Path(path)
        fileio.confine(self.path)  # from here on nothing below it is reached through a symlink
        self.git_state = gitguard.check(self.path, allow_git)
        cfg = self.path / "config.yaml"
        try:
            data = fileio.read_file(cfg, 1 << 20)
        except FileNotFoundError:
            raise missing_registry(self.path) from None
        except fileio.SymlinkError as exc:  # nothing, fsck included, opens such a registry
            raise fileio.SymlinkError(exc.path, "replace it with the real directory or file (git rm the link), "
                                                "then run 'modelreg fsck'") from None
        config_mod.check_format(config_mod.format_version(data, cfg), cfg)
        config_mod.check_keys(data, cfg)
        self.root = self.path.parent
        self.objects = ObjectStore(self.path / "objects")
        self.refs = Refs(self.path)
        self.logs_dir = self.path / "logs"
        self.locks_dir = self.path / "locks"
        self._config: config_mod.Config | None = None
        self._pending: list[Event] = []  # written under the lock, delivered to hooks once it is released
        self._written: set[str] = set()  # models whose logs grew under the lock: their snapshots catch up after it
        self._snapshots: dict[str, Any] = {}  # open state snapshots by model (modelreg.derived.state)

    # ------------------------------------------------------------------ setup
    @classmethod
    def init(cls, project: str | os.PathLike[str] = ".") -> Registry:
        """Create ``PROJECT/.modelreg`` (or complete a partial one) and open it."""
        path = Path(project) / DIRNAME if Path(project).name != DIRNAME else Path(project)
        fileio.confine(path)
        for sub in ("objects", "refs", "versions", "logs", "locks"):
            fileio.makedirs(path / sub)
        cfg = path / "config.yaml"
        if not fileio.exists(cfg):
            fileio.atomic_write(cfg, config_mod.DEFAULT_TEXT.encode())
        for name, text in ((".gitignore", GITIGNORE), (".gitattributes", GITATTRIBUTES)):
            if not fileio.exists(path / name):
                fileio.atomic_write(path / name, text.encode())
        return cls(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, allow_git: tuple[str, ...] = ()) -> Registry:
        """Open the registry at ``path`` or the one found from the environment and cwd."""
        return cls(find_registry(path), allow_git=allow_git)

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

    def effective_config(self) -> dict[str, Any]:
        """The whole config.yaml as modelreg reads it: every key of the schema, defaults filled in,
        validated (storage as committed: ``trust_status`` says which network settings apply here)."""
        c = self._committed_storage()
        return self.config.effective((c.store, self.config.raw.get("storage_options") or {}))

    def _check_stage(self, stage: str) -> str:
        check_stage(stage)
        if stage not in self.stages:
            raise UsageError(unknown_stage(stage, self.stages), info={"stage": stage, "stages": list(self.stages)})
        return stage

    def _no_model(self, name: str) -> NotFound:
        """``no model named 'x'`` with the closest names, or where to look."""
        from .suggest import did_you_mean

        models = self.refs.models()
        hint = did_you_mean(name, models)
        if not hint:
            hint = "; see 'modelreg ls'" if models else "; the registry has no models yet ('modelreg register NAME VERSION')"
        return NotFound(f"no model named {name!r}{hint}", info={"name": name})

    def _no_version(self, name: str, value: str, stages_too: bool) -> NotFound:
        """``NAME has no version 'x'`` with the closest versions (and stages, for a word that could be one)."""
        from .query import version_key
        from .suggest import did_you_mean

        words = list(self.refs.version_names(name)) + (list(self.stages) if stages_too else [])
        hint = did_you_mean(value, words) or f"; see 'modelreg ls {name}'"
        what = "no version or stage" if stages_too and version_key(value) is None else "no version"
        return NotFound(f"{name} has {what} {value!r}{hint}", info={"name": name, "version": value})

    @contextmanager
    def _locked(self, model: str) -> Iterator[None]:
        check_model(model)
        fileio.makedirs(self.locks_dir)
        fileio.makedirs(self.logs_dir)  # a linked logs/ is refused before anything is written
        try:
            with fileio.lock(self.locks_dir / f"{model}.lock"):
                try:
                    yield
                except OSError as exc:  # disk full, I/O error...: the write order left the old or new state
                    where = f" ({exc.filename})" if exc.filename else ""
                    raise StorageError(f"could not write to the registry: {exc.strerror or exc}{where}") from exc
        finally:
            try:
                self._catch_up()
            finally:
                self._deliver()

    def _record(self, event: Event, signer: Any = None) -> Event:
        if signer is not None:
            event = signer.sign_event(event)
        log.append(self.logs_dir, event)
        self._pending.append(event)
        self._written.add(event.model)
        return event

    def _catch_up(self) -> None:
        """Fold the lines a write just appended into the models' snapshots, so that the next write
        reads none of them again (derived data: a failure here only costs the next command time)."""
        models, self._written = self._written, set()
        if models:
            from .derived.state import refresh

            for model in sorted(models):
                refresh(self, model)

    def _warm(self, model: str) -> None:
        """Bring ``model``'s snapshot up to date before taking its lock: a snapshot that has to be folded
        again from the whole log (deleted, or the log merged) is folded while other writers can still write."""
        from .derived.state import refresh

        refresh(self, model)

    def _deliver(self) -> None:
        """Hand the events written under the lock (now durable) to the user's hooks (:mod:`modelreg.hooks`)."""
        events, self._pending = self._pending, []
        if events:
            from . import hooks

            hooks.deliver(events, self.path)

    def _emit_read(self, action: str, r: Resolved, data: dict[str, Any]) -> None:
        """A read-side event (``upload``, ``download``) for the hooks only: never written to the log."""
        from . import hooks

        hooks.emit(lambda: [Event(action, r.name, resolve_actor(None), version=r.version, to=r.digest, data=data)],
                   self.path)

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
        """The manifest stored under ``digest`` (hash verified, strictly parsed, canonical)."""
        return manifest.from_object(self.objects.get(digest), what=f"object {digest}")

    def _manifest_of(self, r: Resolved) -> dict[str, Any]:
        """The manifest of a resolved version, which must declare that very name and version."""
        m = self.manifest(r.digest)
        if m["name"] != r.name or m["version"] != r.version:
            raise IntegrityError(f"object {r.digest} holds {m['name']}@{m['version']}, not {r.name}@{r.version}")
        return m

    def _identity(self, digest: str, where: str | None = None, model: str | None = None) -> Resolved:
        """The registered version that ``digest`` is, from the object's first two lines.

        What a stage (or a log line, ``where``) names must be what was registered: the object
        hashes to its name, declares a valid name and version canonically, and
        ``versions/NAME/VERSION`` holds this very digest; otherwise IntegrityError (exit 6).
        A few hundred bytes are read, no YAML parser is loaded.
        """
        name, version = manifest.identity(self.objects.get(digest), f"object {digest}")
        entry = self.refs.read_version(name, version)
        if entry == digest and (model is None or name == model):
            return Resolved(name, version, digest)
        said = f"{where} points at {digest[:19]}, which" if where else f"object {digest[:19]}"
        if model is not None and name != model:
            problem = f"{said} declares {name}@{version}, a version of another model"
        elif entry is None:
            problem = f"{said} declares {name}@{version}, which is not registered"
        else:
            problem = f"{said} declares {name}@{version}, but versions/{name}/{version} is {entry[:19]}: it was never registered"
        raise IntegrityError(
            f"{problem}; refusing to use it (restore the file from git, or point the stage at a registered "
            "version with 'modelreg promote NAME@VERSION STAGE --force --reason ...'; 'modelreg fsck' lists every problem)"
        )

    def _stage_identity(self, name: str, stage: str, digest: str) -> Resolved:
        return self._identity(digest, where=f"refs/{name}/{stage}", model=name)

    def model_state(self, name: str) -> ModelState:
        """The state of one model: its snapshot brought up to date with the log (see
        :func:`modelreg.derived.state.state_of`), with the interface of :class:`ModelState`."""
        from .derived.state import state_of

        return state_of(self, check_model(name))  # type: ignore[return-value]

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
                return self._stage_identity(r.name, r.value, stage_digest)
            if version_digest:
                return self._version_identity(r.name, r.value, version_digest)
            if r.value in self.stages:
                self._require_model(r.name)
                raise self._empty_stage(r.name, r.value)
        else:
            version_digest = self.refs.read_version(r.name, r.value)
            if version_digest:
                return self._version_identity(r.name, r.value, version_digest)
        self._require_model(r.name)
        raise self._no_version(r.name, r.value, r.kind == "word")

    def _version_identity(self, name: str, version: str, digest: str) -> Resolved:
        """``versions/NAME/VERSION`` must name an object that declares NAME@VERSION (IntegrityError)."""
        declared = manifest.identity(self.objects.get(digest), f"object {digest}")
        if declared != (name, version):
            raise IntegrityError(
                f"versions/{name}/{version} points at {digest[:19]}, which declares {declared[0]}@{declared[1]}; "
                "run 'modelreg fsck'"
            )
        return Resolved(name, version, digest)

    def _empty_stage(self, name: str, stage: str) -> NotFound:
        """The refusal for reading an empty stage, saying who emptied it and when (the log, read only here)."""
        last = self.model_state(name).head(stage)
        info: dict[str, Any] = {"name": name, "stage": stage}
        if last is None:
            return NotFound(f"{name}@{stage} is empty (nothing has been promoted to it); put a version there with "
                            f"'modelreg promote {name}@VERSION {stage}'", info=info)
        if last.to is not None:  # the ref went without an event (interrupted write or hand edit)
            return NotFound(f"{name}@{stage} is empty (its log last set it to {last.version}; run 'modelreg fsck')",
                            info=info)
        verb = "cleared" if last.action == "clear" else f"emptied by {last.action}"
        why = f": {last.reason}" if last.reason else ""
        info.update(emptied_by=last.actor, emptied_at=last.time, action=last.action, reason=last.reason)
        return NotFound(f"{name}@{stage} is empty ({verb} by {last.actor} at {last.time}{why})", info=info)

    def _require_model(self, name: str) -> None:
        if not self.refs.has_versions(name):
            raise self._no_model(name)

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

    def _resolve_latest(self, name: str, state: ModelState | None = None) -> Resolved:
        self._require_model(name)
        state = self.model_state(name) if state is None else state
        found = state.latest(lambda v: self.refs.read_version(name, v))
        if found is not None:
            return Resolved(name, *found)
        # no version the log registers is left: the versions it does not know decide (a listing)
        for v in reversed(state.order(self.refs.version_names(name))):
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
        m = self._manifest_of(r)
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
            ratings=st.ratings,
            purged=st.purged,
        )

    def _stage_order(self, holders: dict[str, str]) -> list[str]:
        known = [s for s in self.stages if s in holders]
        return known + sorted(s for s in holders if s not in known)

    def models(self) -> list[ModelSummary]:
        """Every model with its version count, stages (as version names) and latest version."""
        from .index.db import open_index

        idx = open_index(self)  # the query index: current with the registry's stamps, or None
        if idx is not None:
            try:
                rows = idx.models()
            finally:
                idx.close()
            return [ModelSummary(m["name"], m["n_versions"],
                                 {s: m["stage_versions"][s] for s in self._stage_order(m["holders"])}, m["latest"],
                                 m["fields"])
                    for m in rows]
        out = []
        for name in self.refs.models():
            names = self.refs.version_names(name)
            holders = self.stage_holders(name)
            stages = {s: self._stage_identity(name, s, holders[s]).version for s in self._stage_order(holders)}
            state = self.model_state(name)
            try:
                latest: str | None = self._resolve_latest(name, state).version
            except NotFound:
                latest = None
            out.append(ModelSummary(name, len(names), stages, latest, state.fields))
        return out

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of a model in registration order, with stages and archived state."""
        from .index.db import open_index

        idx = open_index(self, only=check_model(name))
        if idx is not None:
            try:
                rows, holders = idx.model_versions(name), idx.holders(name)
            finally:
                idx.close()
            if rows:
                import dataclasses

                order = self._stage_order(holders)
                keep = {f.name for f in dataclasses.fields(VersionInfo)}  # to_dict() also shows properties
                return [VersionInfo(**{**{k: x for k, x in info.items() if k in keep},
                                       "stages": [s for s in order if holders[s] == d], "manifest": None,
                                       "tags": None}) for _v, d, info in rows]
        digests = self.refs.versions(name)
        if not digests:
            raise self._no_model(name)
        state = self.model_state(name)
        holders = self.checked_holders(name, digests)
        order = self._stage_order(holders)
        return [self._info(Resolved(name, v, digests[v]), None, state, holders, order) for v in state.order(list(digests))]

    def checked_holders(self, name: str, digests: dict[str, str]) -> dict[str, str]:
        """Stage -> digest of ``name``, each digest one of the model's registered ``digests`` (IntegrityError)."""
        holders = self.stage_holders(name)
        registered = set(digests.values())
        for stage, digest in holders.items():
            if digest not in registered:
                self._stage_identity(name, stage, digest)  # raises, saying what the object claims to be
        return holders

    def events(
        self, name: str | None = None, stage: str | None = None, limit: int | None = None, since: str | None = None,
    ) -> list[Event]:
        """Events oldest first, optionally of one model and one stage, after the event ``since``, the newest ``limit``.

        One model's events are in the log's causal order (a stage's moves along their ``prev``
        chain, whatever the writers' clocks said); several models' are merged by ``(time, id)``
        keeping each model's order. ``stage`` must be a configured stage or one the log mentions.
        """
        import heapq

        names = self._log_names(name, stage)
        if name is None and stage is None and since is None and limit is not None:
            from .index.db import open_index

            idx = open_index(self)  # the newest events of every model without reading every log
            if idx is not None:
                try:
                    lines = idx.latest_events(limit, None)
                finally:
                    idx.close()
                if lines is not None:
                    import json

                    selected = [Event.from_dict(json.loads(x)) for x in lines]
                    self._check_events(selected)
                    return selected
        per_model = []
        for n in names:
            per_model.append(log.read(self.logs_dir, n)[0])
            self._check_stages_of(n)
        merged: list[Event] = (
            per_model[0] if len(per_model) == 1 else list(heapq.merge(*per_model, key=lambda e: (e.time, e.id)))
        )
        self._check_log_stage(stage, merged)
        selected = _select(merged, stage, limit, since)
        self._check_events(selected)
        return selected

    def _check_stages_of(self, name: str) -> None:
        """IntegrityError if a stage of ``name`` holds a manifest that is not the registered version it claims."""
        for held, digest in self.stage_holders(name).items():
            self._stage_identity(name, held, digest)

    def _log_names(self, name: str | None, stage: str | None = None) -> list[str]:
        if stage is not None and name is None:
            raise UsageError("--stage needs a model name")
        from .refs import _valid

        names = [check_model(name)] if name else [_valid(self.logs_dir, n, check_model) for n in log.models(self.logs_dir)]
        if name and not self.refs.version_names(name) and not fileio.exists(log.path_for(self.logs_dir, name)):
            raise self._no_model(name)
        return names

    def _check_log_stage(self, stage: str | None, events: list[Event]) -> None:
        if stage is not None:
            check_stage(stage)
            if stage not in self.stages and not any(e.stage == stage for e in events):
                self._check_stage(stage)  # a typo: refused like everywhere else

    def follow(
        self, name: str | None = None, stage: str | None = None, since: str | None = None,
        limit: int | None = None, interval: float = 0.25,
    ) -> Iterator[Event]:
        """Yield the selected existing events (after ``since``; the newest ``limit``, by default 10 unless
        ``since`` is given), oldest first, then every event appended afterwards as it appears, until
        the caller stops iterating. The log files are polled every ``interval`` seconds (a stat each;
        only appended bytes are read). Events are checked against the version entries as in :meth:`events`."""
        for n in self._log_names(name, stage):
            self._check_stages_of(n)
        tail = log.Tail(self.logs_dir, check_model(name) if name else None)
        self._check_log_stage(stage, tail.initial)
        initial = _select(tail.initial, stage, 10 if limit is None and since is None else limit, since)
        self._check_events(initial)
        yield from initial
        for e in tail.follow(interval):
            if stage is None or e.stage == stage:
                self._check_events([e])
                yield e

    def _check_events(self, events: list[Event]) -> None:
        """Every event about a version names the digest registered for it (IntegrityError otherwise).

        A log line is untrusted input: one that says ``promote m@1.1.0`` with another digest than
        ``versions/m/1.1.0`` (a forged or hand-edited line) is refused rather than shown.
        """
        entries: dict[tuple[str, str], str | None] = {}
        for e in events:
            if e.version is None or e.to is None or (e.action not in MOVES and e.action != "register"
                                                      and e.action not in ANNOTATIONS):
                continue
            key = (e.model, e.version)
            if key not in entries:
                entries[key] = self.refs.read_version(e.model, e.version)
            entry = entries[key]
            if entry is not None and entry != e.to:
                raise IntegrityError(
                    f"logs/{e.model}.jsonl: event {e.id} ({e.action}) says {e.model}@{e.version} is {e.to[:19]}, "
                    f"but versions/{e.model}/{e.version} is {entry[:19]}: a forged or hand-edited line; "
                    "run 'modelreg fsck'"
                )

    def version_labels(self, digests: Any = (), events: list[Event] = ()) -> dict[str, str]:  # type: ignore[assignment]
        """digest -> version name for ``digests`` and for the ``from``/``to`` of the stage moves in
        ``events`` (display: ``log`` shows versions, not digests); unreadable digests are left out."""
        from .lifecycle.order import MOVES

        out: dict[str, str] = {}
        wanted = list(digests)
        for e in events:
            if e.action in MOVES and e.version:
                if e.to is not None:
                    out.setdefault(e.to, e.version)
                elif e.action == "clear" and e.from_ is not None:
                    out.setdefault(e.from_, e.version)
            if e.action in MOVES:
                wanted += [d for d in (e.from_, e.to) if d]
        for d in wanted:
            if d not in out:
                try:
                    out[d] = self._identity(d).version
                except ModelregError:
                    pass
        return out

    def diff(self, a: str, b: str) -> DiffResult:
        """The differences from version ``a`` to version ``b``: manifests, then metrics and current tags."""
        ra, rb = self.resolve(a), self.resolve(b)
        ma, mb = self._manifest_of(ra), self._manifest_of(rb)
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
        version: str | None = None,
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
        next: str | None = None,
    ) -> RegisterResult:
        """Register ``name@version``; identical content again is a no-op, other content a Conflict.

        ``next`` (``"patch"``, ``"minor"`` or ``"major"``, no ``version``) picks the next semantic
        version after the model's highest inside the model's lock (:mod:`modelreg.semver`).

        ``artifacts`` are ``[ROLE=]URI`` strings or mappings with role/uri (and optionally
        sha256/size). Local files are hashed; remote URIs are checked (exists, is a file, size)
        unless ``check=False``, and hashed with ``compute_hash``. ``upload`` copies local files to
        the configured ``artifact_store`` (see docs/artifacts.md).
        ``parents`` are references resolved to digests. See :meth:`register_manifest` for
        ``strict``, ``new_model`` and ``allow_unknown_license``.
        """
        check_model(name)
        from .names import check_version

        if (version is None) == (next is None):
            raise UsageError("register needs VERSION or --next patch|minor|major (not both)")
        if version is not None:
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
            strict=strict, new_model=new_model, allow_unknown_license=allow_unknown_license, next=next,
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
        next: str | None = None,
    ) -> RegisterResult:
        """Register a manifest mapping (validated, local artifacts hashed, made canonical).

        Relative local artifact paths in ``raw`` are relative to the project root. Before
        anything is written: the license is normalised (unknown ids refused unless
        ``allow_unknown_license``), a new model named like an existing one is a Conflict
        unless ``new_model``, other versions with the same params fingerprint are returned in
        ``duplicates`` and other versions of the model with an artifact of the same bytes in
        ``same_artifacts`` (either is a Conflict if ``strict``).

        ``next`` (the manifest then has no ``version``): the next semantic version, picked in
        the lock. With ``policy.retention.auto``, the versions the keep-N rule names are archived
        in the same lock after the registration (``pruned``; never one holding a stage).
        """
        if next is not None:
            from .semver import check_part

            check_part(next)
            if not isinstance(raw, dict) or raw.get("version") is not None:
                raise UsageError("--next picks the version: give no VERSION")
            raw = {**raw, "version": "0.0.0"}  # a placeholder for validation; replaced in the lock
        from contextlib import ExitStack

        with ExitStack() as stack:
            m = manifest.validate(raw, set(self.stages))
            if m.get("artifacts"):  # a purge never deletes what this registration is about to reference
                from .retention.storelock import held

                stack.enter_context(held(self.locks_dir, shared=True))
            return self._register_manifest(
                m, actor=actor, progress=progress, check=check, compute_hash=compute_hash, upload=upload,
                strict=strict, new_model=new_model, allow_unknown_license=allow_unknown_license, next=next)

    def _register_manifest(
        self, m: dict[str, Any], *, actor: str | None, progress: ProgressFactory | None, check: bool,
        compute_hash: bool, upload: bool, strict: bool, new_model: bool, allow_unknown_license: bool,
        next: str | None,
    ) -> RegisterResult:
        from .discovery import FingerprintIndex, check_registration, same_artifacts

        if next is not None:
            m = {**m, "version": None}  # no version yet: nothing to compare with an existing one
        checks = check_registration(self, m, strict=strict, new_model=new_model,
                                    allow_unknown_license=allow_unknown_license)
        if next is not None:
            m["version"] = "0.0.0"
        if m.get("artifacts"):
            store, options = None, None
            self._committed_storage()  # credentials in config.yaml are refused whatever is registered
            if upload or (check and not all(_is_local(a["uri"]) for a in m["artifacts"])):  # only if storage is used
                eff = self._effective()
                store, options = (eff.upload_store() if upload else eff.store), eff.options
            if upload and store is None:
                raise UsageError("--upload needs 'artifact_store: URL' in config.yaml or your user config")
            if upload and _is_local(store) and eff.sources.get("artifact_store") == "committed":
                check_local_store(store, self.root)
            existing = self.refs.read_version(m["name"], m["version"]) if next is None else None
            if existing is not None:  # refuse other content before hashing (maybe gigabytes) again
                from .artifacts import cheap_changes

                changes = cheap_changes(self.manifest(existing), m, self.root, upload)
                if changes:
                    raise self._conflict(m["name"], m["version"], existing, changes)
            from .artifacts import describe_with_uploads

            described, uploaded = [], []
            for a in m["artifacts"]:
                entry, up = describe_with_uploads(a, self.root, progress, check=check, compute_hash=compute_hash,
                                                  upload_to=store if upload else None, storage_options=options)
                described.append(entry)
                uploaded.extend(up)
            m["artifacts"] = described
            m = manifest.validate(m, set(self.stages))  # re-normalise what describe filled in
            if uploaded:
                from . import hooks

                name_, version_ = m["name"], None if next else m["version"]  # --next: picked later
                hooks.emit(lambda: [Event("upload", name_, resolve_actor(actor), version=version_,
                                          data={"store": store, "artifacts": uploaded})], self.path)
        for p in m.get("parents", []):
            if not self.objects.exists(p["digest"]):
                raise NotFound(f"parent {p['digest']} does not exist in this registry")
        name = m["name"]
        if next is None:
            data = manifest.to_bytes(m)
            existing = self.refs.read_version(name, m["version"])
            if existing is not None:  # version entries never change: no lock needed (a read-only clone works)
                return self._same_or_conflict(m, existing, data)
        same = same_artifacts(self, {**m, "version": None if next else m["version"]}, strict=strict)
        from .retention.rules import from_config

        rule = from_config(self.config.raw)  # a bad retention rule refuses before anything is written
        who = resolve_actor(actor)
        self._warm(name)
        with self._locked(name):
            if next is not None:
                from .names import check_version
                from .semver import next_version

                m["version"] = check_version(next_version(self.refs.version_names(name), next), set(self.stages))
            version = m["version"]
            data = manifest.to_bytes(m)
            existing = self.refs.read_version(name, version)
            if existing is not None:
                return self._same_or_conflict(m, existing, data)
            variants = self.model_state(name).case_variants(version)
            self.refs.check_new_version(name, version, variants)
            fingerprints = FingerprintIndex(self)
            was_current = fingerprints.covers(name)
            digest = self.objects.put(data)
            self.refs.add_version(name, version, digest, variants)
            event = self._record(Event("register", name, who, version=version, to=digest))
            fingerprints.registered(m, digest, was_current)
            pruned: list[Resolved] = []
            pruned_events: list[Event] = []
            if rule.auto and rule.keep is not None:
                from .retention.rules import plan

                for r in plan(self, name, rule.keep):
                    pruned_events += self._archive_locked(r, who, rule.reason(True), False, False,
                                                          {"retention": rule.to_dict()})
                    pruned.append(r)
        return RegisterResult(Resolved(name, version, digest), True, event, checks.duplicates, checks.more, same, pruned,
                              pruned_events)

    def _same_or_conflict(self, m: dict[str, Any], existing: str, data: bytes) -> RegisterResult:
        from .hashing import sha256_bytes

        name, version = m["name"], m["version"]
        if existing == "sha256:" + sha256_bytes(data):
            return RegisterResult(Resolved(name, version, existing), False, None)
        old = self.manifest(existing)
        from .values import legacy_equal

        if legacy_equal(old, m):  # registered before values were typed ("3e-4" then, 0.0003 now): the same
            return RegisterResult(Resolved(name, version, existing), False, None)
        changes = manifest.diff(old, m)
        if all(c.old is None and c.path.startswith("artifacts.") and c.path.endswith(".name") for c in changes):
            # only the original file names --upload records now, which versions uploaded before lack
            return RegisterResult(Resolved(name, version, existing), False, None)
        raise self._conflict(name, version, existing, changes)

    def _conflict(self, name: str, version: str, existing: str, changes: list[manifest.Change]) -> Conflict:
        shown = "; ".join(f"{c.path}: {_short(c.old)} -> {_short(c.new)}" for c in changes[:5])
        more = f" (+{len(changes) - 5} more)" if len(changes) > 5 else ""
        return Conflict(
            f"{name}@{version} is already registered with other content ({existing[:19]}): {shown}{more}; "
            "a version never changes: register the new content as a new version",
            details=[f"{c.path}: {c.old!r} -> {c.new!r}" for c in changes],
        )

    def _expected(self, name: str, expect: Expect, option: str = "--expect") -> Any:
        """An expectation as the digest the stage must hold (None: empty), or _NO_CHECK for ``None``."""
        if expect is None:
            return _NO_CHECK
        if wants_empty(expect):
            return None
        if not isinstance(expect, str) or not expect:
            raise UsageError(f"{option} must be a version, a sha256: digest, 'none' or modelreg.EMPTY, not {expect!r}")
        if expect.startswith("sha256:"):
            r = self.resolve(expect)
            if r.name != name:
                raise UsageError(f"{option} {expect} is a version of {r.name}, not {name}")
            return r.digest
        return self.resolve(Ref(name, "version", expect)).digest

    def _expect_holds(self, name: str, stage: str, current: str | None, want: Any, option: str = "--expect") -> None:
        """Conflict unless ``stage`` holds what ``want`` (from :meth:`_expected`) says."""
        if want is _NO_CHECK or current == want:
            return
        raise Conflict(
            f"{name}@{stage} holds {self._label(current)}, expected {self._label(want)}"
            f"{'' if option == '--expect' else f' ({option})'}: it was moved by someone else; nothing changed; "
            f"read it again ('modelreg resolve {name}@{stage}') and decide again",
            info={"name": name, "stage": stage, "option": option,
                  "actual": self._brief(current), "expected": self._brief(want)},
        )

    def _brief(self, digest: str | None) -> dict[str, Any] | None:
        """``{"version", "digest"}`` of a stage value for JSON (version None if unreadable)."""
        if digest is None:
            return None
        try:
            return {"version": self._identity(digest).version, "digest": digest}
        except ModelregError:
            return {"version": None, "digest": digest}

    def promote(
        self,
        ref: str,
        stage: str,
        *,
        expect: str | Empty | None = None,
        reason: str | None = None,
        actor: str | None = None,
        force: bool = False,
        demote: bool = True,
        replace_staging: bool = False,
        expect_staging: str | Empty | None = None,
        sign: bool = False,
        record_noop: bool = False,
    ) -> Move:
        """Point ``stage`` of the model at the version ``ref``, if the policy's rules and gates pass.

        ``expect`` is a compare-and-swap on what the stage holds now: ``None`` (the default)
        checks nothing; ``modelreg.EMPTY`` (or the string ``"none"``) requires an empty stage; a
        version name or a ``sha256:`` digest (prefix) requires that version. A mismatch raises
        Conflict and changes nothing.

        Inside the model's lock, after the compare-and-swap, the rules and gates for ``stage``
        are evaluated: a failure raises PolicyRefused (with ``.report``) and changes nothing,
        unless ``force`` (which needs a ``reason``; the event records both and the failed
        gates). Archived versions are refused even with ``force``.

        Demotion: when the policy's ``demote_to`` names a stage D for ``stage``, the replaced
        version moves to D with its own ``demote`` event, written after the promote event;
        never an archived version. If D holds another version (a candidate that is neither
        the replaced one nor ``ref``), the promotion is refused (Conflict) rather than evict
        it, unless ``demote=False`` (the replaced version holds no stage; D keeps its
        candidate), ``replace_staging=True`` (the candidate is replaced, recorded) or
        ``expect_staging`` names what D holds (a compare-and-swap on D, like ``expect``).

        ``stage="archived"`` archives the version instead, clearing every stage it holds
        (one ``clear`` event per stage, then the ``archive`` event); the Move's ``stage`` is
        ``"archived"``.

        ``sign`` signs every event written with the user's SSH key (see :mod:`trust.signing`).

        A promotion to the version the stage already holds changes and writes nothing
        (``changed`` False); with ``record_noop`` it writes a ``noop`` event saying so.
        """
        from .config import ARCHIVED

        if force and not (reason and reason.strip()):
            raise UsageError("--force needs --reason: say why the policy is overridden (it is recorded)")
        target = self.resolve(ref)
        if stage == ARCHIVED:
            if expect is not None or expect_staging is not None:
                raise UsageError(f"--expect does not apply to {ARCHIVED!r}: it is not a stage")
            if self.git_state is not None:  # only picking a side of a conflicted ref runs during a merge
                gitguard.check(self.path)
            return self._promote_archived(target, reason, resolve_actor(actor), self._signer(sign))
        self._check_stage(stage)
        if not demote and (replace_staging or expect_staging is not None):
            raise UsageError("--no-demote cannot be combined with --replace-staging or --expect-staging")
        policy = self.policy
        demote_stage = policy.demote_to.get(stage)
        if expect_staging is not None and demote_stage is None:
            raise UsageError(f"--expect-staging: a promotion to {stage} demotes nothing "
                             f"(config.yaml policy.demote_to has no entry for {stage})")
        want = self._expected(target.name, expect)
        want_d = self._expected(target.name, expect_staging, "--expect-staging")
        who = resolve_actor(actor)
        signer = self._signer(sign)
        self._warm(target.name)
        with self._locked(target.name):
            sides = self.refs.conflict_sides(target.name, stage) if force else None
            if sides is not None:
                return self._resolve_conflict(target, stage, sides, want, reason, who, signer)
            if self.git_state is not None:  # opened during a merge only to pick a side of a conflicted ref
                gitguard.check(self.path)
            current = self.refs.read_stage(target.name, stage)
            self._expect_holds(target.name, stage, current, want)
            held = self.refs.read_stage(target.name, demote_stage) if demote_stage else None
            if demote_stage:
                self._expect_holds(target.name, demote_stage, held, want_d, "--expect-staging")
            state = self.model_state(target.name)
            st = state.versions.get(target.version)
            if st and st.archived:
                raise PolicyRefused(f"{target.name}@{target.version} is archived and cannot be promoted; "
                                    f"unarchive it first: modelreg archive {target.name}@{target.version} --undo",
                                    info={"name": target.name, "version": target.version})
            if current == target.digest:
                return self._noop(target.name, stage, target, "promote", reason, who, signer, record_noop)
            holder = self._holder(target.name, stage, current, force)
            report = self._evaluate(target, stage, state, holder and holder.digest)
            if not report.passed and not force:
                raise PolicyRefused(report.summary(), details=[r.message for r in report.failed], report=report)
            replaced = holder  # an unregistered value (replaced only with --force) is never demoted
            demotion, notes = self._plan_demotion(
                target, stage, replaced, demote_stage, held, state, demote, replace_staging or want_d is not _NO_CHECK)
            self.refs.set_stage_if_equals(target.name, stage, current, target.digest)
            data: dict[str, Any] = {}
            if force:
                data = {"forced": True, "failed_gates": [r.to_dict() for r in report.failed]}
            ev = self._record(self._move(
                state, "promote", target.name, who, stage, current, target, reason, data), signer)
            events = [ev]
            if demotion:
                assert replaced is not None and demote_stage is not None
                self.refs.set_stage_if_equals(target.name, demote_stage, held, replaced.digest)
                events.append(self._record(self._move(
                    state, "demote", target.name, who, demote_stage, held, replaced,
                    f"replaced in {stage} by {target.version}", {"replaced_in": stage, "by": ev.id}), signer))
        return Move(target.name, stage, replaced, target, True, events, notes)

    def _noop(self, name: str, stage: str, holds: Resolved | None, command: str, reason: str | None, who: str,
              signer: Any, record: bool) -> Move:
        """A transition to what ``stage`` already holds (lock held): nothing changes; with ``record``
        (``--record-noop``) a ``noop`` event says who asked for what. It is not a move: rollback and
        the stage's history ignore it."""
        events = []
        if record:
            digest = holds.digest if holds else None
            events.append(self._record(Event(
                "noop", name, who, version=holds.version if holds else None, stage=stage, from_=digest, to=digest,
                reason=reason, data={"command": command}), signer))
        return Move(name, stage, holds, holds, False, events)

    def _plan_demotion(
        self, target: Resolved, stage: str, replaced: Resolved | None, demote_stage: str | None, held: str | None,
        state: ModelState, demote: bool, replace: bool,
    ) -> tuple[bool, list[str]]:
        """Whether the version ``target`` replaces in ``stage`` moves to ``demote_stage`` (which holds
        ``held``), and notes on what is left alone; Conflict rather than evict a candidate silently."""
        if not demote_stage or replaced is None or held == replaced.digest:
            return False, []
        rst = state.versions.get(replaced.version)
        if rst and rst.archived:
            return False, [f"{replaced.name}@{replaced.version} is archived: not demoted to {demote_stage}"]
        if not demote:
            return False, [f"{replaced.name}@{replaced.version} left {stage} and holds no stage "
                           f"(--no-demote: {demote_stage} keeps {self._label(held)})"]
        if held is None or held == target.digest or replace:
            return True, []
        candidate = self._identity(held)
        raise Conflict(
            f"promoting {target.name}@{target.version} to {stage} would demote {replaced.version} into "
            f"{demote_stage} and evict the {demote_stage} candidate {candidate.version}; nothing changed. "
            f"Pass --no-demote ({demote_stage} keeps {candidate.version}), --replace-staging "
            f"({replaced.version} replaces it) or --expect-staging {candidate.version} "
            f"(replace it only if {demote_stage} still holds it)",
            info={"name": target.name, "stage": stage, "demote_stage": demote_stage,
                  "candidate": candidate.to_dict(), "demoted": replaced.to_dict(),
                  "options": ["--no-demote", "--replace-staging", f"--expect-staging {candidate.version}"]},
        )

    def _move(
        self, state: ModelState, action: str, name: str, who: str, stage: str, before: str | None,
        after: Resolved | None, reason: str | None, data: dict[str, Any] | None = None, version: str | None = None,
    ) -> Event:
        """A stage move event linked (``prev``) to the stage's last move in ``state`` (read under the lock)."""
        head = state.head(stage)
        return Event(action, name, who, version=version or (after.version if after else None), stage=stage,
                     from_=before, to=after.digest if after else None, reason=reason, data=data or {},
                     prev=head.id if head else None)

    def _holder(self, name: str, stage: str, current: str | None, force: bool) -> Resolved | None:
        """The registered version a stage holds before a move; an unregistered value is refused
        (IntegrityError) unless ``force``, which replaces it (and then treats the stage as empty)."""
        if current is None:
            return None
        try:
            return self._stage_identity(name, stage, current)
        except IntegrityError:
            if force:
                return None
            raise

    def _evaluate(self, target: Resolved, stage: str, state: ModelState, current: str | None) -> GateReport:
        holder = self._maybe_identity(current)
        from . import policy as policy_mod

        problem = None
        gates = self.policy.gates.get(stage)
        if gates is not None and gates.require_signatures:
            state, problem = self._signed_state(state, [target.version] + ([holder.version] if holder else []))
        return policy_mod.evaluate(
            self.policy, stage, target.name, target.version, target.digest, state.versions.get(target.version),
            holder.version if holder else None, state.versions.get(holder.version) if holder else None,
            signatures=problem,
        )

    def _signed_state(self, state: ModelState, versions: list[str]) -> tuple[ModelState, str | None]:
        """The states of ``versions`` with only the approvals and metrics whose signature verifies against
        an allowed signer, each approval under its signer's identity (one approver per signing key)."""
        import dataclasses

        from .state import apply_version_event
        from .trust.signing import Verifier, allowed_signers_file

        try:
            verifier = Verifier(allowed_signers_file(self.root, self.path))
        except UsageError as exc:
            verifier, problem = Verifier(None), exc.message
        else:
            problem = None if verifier.allowed is not None else (
                "no allowed signers file: set MODELREG_ALLOWED_SIGNERS or git config gpg.ssh.allowedSignersFile")
        signed = ModelState()
        for version in dict.fromkeys(versions):
            base = state.versions.get(version)
            if base is None:
                continue
            st = signed.get(version)
            st.registered_at, st.registered_by, st.digest = base.registered_at, base.registered_by, base.digest
            st.stages_held = set(base.stages_held)
            for e in state.version_events(version):
                if e.action in ("approve", "metrics"):
                    v = verifier.verify(e) if verifier.allowed is not None else None
                    if v is None or not v.verified:
                        continue
                    e = dataclasses.replace(e, actor=v.identity)
                apply_version_event(st, e)
        return signed, problem

    def check(self, ref: str, stage: str) -> GateReport:
        """Evaluate the rules and gates for moving ``ref`` into ``stage`` without moving anything."""
        target = self.resolve(ref)
        self._check_stage(stage)
        holder = self._holder(target.name, stage, self.refs.read_stage(target.name, stage), False)
        return self._evaluate(target, stage, self.model_state(target.name), holder and holder.digest)

    def _resolve_conflict(
        self, target: Resolved, stage: str, sides: list[str], want: Any, reason: str | None, who: str,
        signer: Any = None,
    ) -> Move:
        """``promote --force`` onto a ref left with git conflict markers: pick ``target`` (lock held)."""
        if want is not _NO_CHECK and want not in sides:
            raise Conflict(
                f"{target.name}@{stage} has merge conflict markers between {', '.join(self._label(d) for d in sides)}; "
                f"--expect {self._label(want)} is neither side"
            )
        state = self.model_state(target.name)
        st = state.versions.get(target.version)
        if st and st.archived:
            raise PolicyRefused(f"{target.name}@{target.version} is archived and cannot be promoted; "
                                 f"unarchive it first: modelreg archive {target.name}@{target.version} --undo")
        self.refs.overwrite_conflicted_stage(target.name, stage, target.digest)
        ev = self._record(self._move(
            state, "promote", target.name, who, stage, None, target, reason,
            {"forced": True, "resolved_conflict": True, "conflict_sides": sides}), signer)
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

    def undo_stack(self, name: str, stage: str) -> list[Event]:
        """The moves of ``stage`` that ``rollback`` would undo, oldest first: the next rollback
        undoes the last one (see docs/policy.md, "Rollback")."""
        self._check_stage(stage)
        self._require_model(check_model(name))
        return self.model_state(name).undo_stack(stage)

    def rollback(
        self,
        name: str,
        stage: str,
        *,
        to: str | None = None,
        expect: str | Empty | None = None,
        reason: str | None = None,
        actor: str | None = None,
        sign: bool = False,
        record_noop: bool = False,
    ) -> Move:
        """Undo the most recent move of ``stage`` not undone yet, or go back to version ``to``.

        The undo stack is folded from the stage's moves in the log's causal order (promote,
        demote, clear and reconcile push; a rollback pops what it undid), so rolling back twice
        walks back two moves and never re-deploys what was rolled back. With ``to``, every
        move back to the most recent time the stage held ``to`` is undone (the whole stack if it
        never held it there). Nothing to undo, or a move that would empty the stage (rollback
        never empties one: use :meth:`clear`), is NotFound. ``expect`` is a compare-and-swap on
        what the stage holds now, as in :meth:`promote`. No gates run and nothing is demoted;
        an archived target is refused. ``record_noop``: a rollback to what the stage already
        holds writes a ``noop`` event (else nothing).
        """
        check_model(name)
        self._check_stage(stage)
        self._require_model(name)
        want = self._expected(name, expect)
        who = resolve_actor(actor)
        signer = self._signer(sign)
        self._warm(name)
        with self._locked(name):
            current = self.refs.read_stage(name, stage)
            self._expect_holds(name, stage, current, want)
            before = self._holder(name, stage, current, False)  # an unregistered value: exit 6 before anything
            state = self.model_state(name)
            if to is not None:
                target = self.resolve(Ref(name, "version", to))
                found = state.rewind(stage, target.digest)
                undone = found if found is not None else list(reversed(state.undo_stack(stage)))
            else:
                undone = [self._undoable(name, stage, current, state.undo_top(stage))]
                target = self._identity(undone[0].from_, where=f"logs/{name}.jsonl event {undone[0].id}",  # type: ignore[arg-type]
                                        model=name)
            st = state.versions.get(target.version)
            if st and st.archived:
                raise PolicyRefused(
                    f"{name}@{target.version} is archived; unarchive it before rolling back to it "
                    "(or roll back with --to VERSION)", info={"name": name, "version": target.version})
            if current == target.digest:
                return self._noop(name, stage, target, "rollback", reason, who, signer, record_noop)
            self.refs.set_stage_if_equals(name, stage, current, target.digest)
            ev = self._record(self._move(state, "rollback", name, who, stage, current, target, reason,
                                         {"undoes": [e.id for e in undone]}), signer)
        return Move(name, stage, before, target, True, [ev])

    def _undoable(self, name: str, stage: str, current: str | None, top: Event | None) -> Event:
        """The move a plain rollback undoes: ``top``, the top of the stack, if undoing it is possible."""
        hint = f"use 'modelreg rollback {name} {stage} --to VERSION' or 'modelreg clear {name} {stage} --reason ...'"
        info = {"name": name, "stage": stage}
        if top is None:
            what = "is empty and" if current is None else f"holds {self._label(current)} and"
            raise NotFound(f"{name}@{stage} {what} has nothing left to undo in the log; {hint}", info=info)
        if top.to != current:
            raise Conflict(
                f"{name}@{stage} holds {self._label(current)} but its last logged move set {self._label(top.to)} "
                "(a move without its event: an interrupted write or a hand-resolved merge); run "
                f"'modelreg fsck --repair' to record it, or use 'modelreg rollback {name} {stage} --to VERSION'",
                info={**info, "actual": self._brief(current), "logged": self._brief(top.to)})
        if top.from_ is None:
            raise NotFound(
                f"{name}@{stage} was empty before {top.version} ({top.action} by {top.actor} at {top.time}): "
                f"nothing left to undo, and rollback never empties a stage; {hint}", info=info)
        return top

    def clear(
        self, name: str, stage: str, *, reason: str, expect: str | Empty | None = None, actor: str | None = None,
        sign: bool = False, record_noop: bool = False,
    ) -> Move:
        """Empty ``stage`` of model ``name``: the ref file is removed under the lock and a ``clear``
        event records what it held, who and why (``reason`` is required). ``expect`` is a
        compare-and-swap as in :meth:`promote`. An empty stage stays empty (``changed`` False; with
        ``record_noop`` a ``noop`` event says so). ``rollback`` undoes a clear. ``sign`` signs the
        event with the user's SSH key."""
        check_model(name)
        self._check_stage(stage)
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError("clear needs --reason: say why the stage is emptied (it is recorded)")
        self._require_model(name)
        want = self._expected(name, expect)
        who = resolve_actor(actor)
        signer = self._signer(sign)
        self._warm(name)
        with self._locked(name):
            current = self.refs.read_stage(name, stage)
            self._expect_holds(name, stage, current, want)
            if current is None:
                return self._noop(name, stage, None, "clear", reason, who, signer, record_noop)
            was = self._identity(current)
            state = self.model_state(name)
            self.refs.set_stage_if_equals(name, stage, current, None)
            ev = self._record(
                self._move(state, "clear", name, who, stage, current, None, reason, version=was.version), signer)
        return Move(name, stage, was, None, True, [ev])

    def archive(
        self, ref: str, *, reason: str | None = None, actor: str | None = None, force: bool = False, undo: bool = False
    ) -> Event | None:
        """Mark a version archived (or, with ``undo``, not archived); None if it already was.

        A version that holds stages is refused (PolicyRefused) unless ``force``, which first
        clears each of them (one ``clear`` event per stage, listed in the archive event's
        ``data.cleared``): an archived version never holds a stage. Unarchiving restores none,
        and is refused for a version whose content was purged unless ``force``.
        """
        target = self.resolve(ref)
        who = resolve_actor(actor)
        from contextlib import ExitStack

        self._warm(target.name)
        with ExitStack() as stack:
            if undo:  # a version made live again: never while a purge deletes (retention.storelock)
                from .retention.storelock import held

                stack.enter_context(held(self.locks_dir, shared=True))
            with self._locked(target.name):
                if undo and not force:
                    st = self.model_state(target.name).versions.get(target.version)
                    if st is not None and st.archived and st.purged:
                        raise PolicyRefused(
                            f"{target.name}@{target.version} had {len(st.purged)} artifact(s) deleted from the store by "
                            "prune --purge: unarchived, it could be promoted without its bytes; register the content "
                            "again as a new version, or use --force (after restoring the bytes)",
                            info={"name": target.name, "version": target.version, "purged": sorted(st.purged)})
                events = self._archive_locked(target, who, reason, force, undo)
        return events[-1] if events and events[-1].action in ("archive", "unarchive") else None

    def _promote_archived(self, target: Resolved, reason: str | None, who: str, signer: Any = None) -> Move:
        """``promote NAME@VERSION archived``: clear every stage it holds, archive it, one locked step."""
        self._warm(target.name)
        with self._locked(target.name):
            events = self._archive_locked(target, who, reason, False, False, clear=True, signer=signer)
        return Move(target.name, "archived", None, target, bool(events), events)

    def _archive_locked(
        self, target: Resolved, who: str, reason: str | None, force: bool, undo: bool,
        data: dict[str, Any] | None = None, clear: bool = False, signer: Any = None,
    ) -> list[Event]:
        """Archive (or unarchive) under the lock; the events written: a clear per stage held, then the
        archive event. ``clear`` clears held stages without ``force`` (and even when already archived)."""
        state = self.model_state(target.name)
        st = state.versions.get(target.version)
        archived = bool(st and st.archived)
        held = [] if undo else [s for s, d in self.stage_holders(target.name).items() if d == target.digest]
        done = archived != undo  # already in the state asked for
        if done and not (clear and held):
            return []
        if held and not (force or clear):
            raise PolicyRefused(
                f"{target.name}@{target.version} holds {', '.join(held)}; move the stage first, or use --force "
                "to clear it and archive", info={"name": target.name, "version": target.version, "stages": held})
        events = []
        for stage in self._stage_order({s: target.digest for s in held}):
            self.refs.set_stage_if_equals(target.name, stage, target.digest, None)
            events.append(self._record(self._move(
                state, "clear", target.name, who, stage, target.digest, None, reason, {"archive": True},
                version=target.version), signer))
        if not done:
            extra = {**({"forced": True} if force else {}), **({"cleared": held} if held else {}), **(data or {})}
            events.append(self._record(
                Event("unarchive" if undo else "archive", target.name, who, version=target.version,
                      to=target.digest, reason=reason, data=extra), signer))
        return events

    # ------------------------------------------------------------ history import
    @contextmanager
    def history(self, name: str, *, dry_run: bool = False) -> Iterator[HistoryWriter]:
        """A :class:`history.HistoryWriter` for events of ``name`` that happened elsewhere (imports):
        original time and actor, written in the usual order (object -> entry/ref -> event) while
        this holds the model's lock. No policy applies: the history already happened."""
        from .history import HistoryWriter

        if dry_run:
            yield HistoryWriter(self, check_model(name), dry_run=True)
            return
        with self._locked(name):
            yield HistoryWriter(self, name)

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
        params: dict[str, Any] | None = None, actor: str | None = None, *, status: str = "active",
        latency_ms: float | None = None, success_rate: float | None = None, last_used: str | None = None,
    ) -> Event:
        """Record where a version is served: ``provider``'s model ``id`` (one binding per provider;
        binding again replaces it), its ``status`` (active, inactive, deprecated) and optionally
        figures observed already (see :meth:`update_binding` to report them later)."""
        from .bindings import check_figures, check_status

        check_key("provider", provider)
        if not isinstance(id, str) or not id.strip():
            raise UsageError("bind needs a non-empty --id")
        check_status(status)
        figures = check_figures(latency_ms, success_rate, last_used)
        params = params or {}
        if not isinstance(params, dict):
            raise UsageError("bind params must be a mapping")
        _check_json(params, "bind params")
        from .trust.settings import check_no_credentials
        from .uris import check_uri_safe

        if endpoint is not None:
            check_uri_safe(endpoint)  # the log is committed: no user info, tokens or signed queries
        check_no_credentials(params, "bind --param", "the event log")
        data = {"provider": provider, "id": id, "endpoint": endpoint, "params": params, "status": status, **figures}
        return self._annotate(ref, "bind", data, actor)

    def update_binding(
        self, ref: str, provider: str, *, status: str | None = None, endpoint: str | None = None,
        latency_ms: float | None = None, success_rate: float | None = None, last_used: str | None = None,
        actor: str | None = None,
    ) -> Event:
        """Change only the given fields of a version's binding to ``provider`` (a ``bind-update`` event):
        its status or endpoint, or what a serving job observed (``latency_ms``, ``success_rate`` from 0
        to 1, ``last_used`` as ``now`` or an ISO 8601 time). NotFound if there is no such binding."""
        from .bindings import check_figures, check_status

        check_key("provider", provider)
        data: dict[str, Any] = {"provider": provider}
        if status is not None:
            data["status"] = check_status(status)
        if endpoint is not None:
            from .uris import check_uri_safe

            check_uri_safe(endpoint)
            data["endpoint"] = endpoint
        data.update(check_figures(latency_ms, success_rate, last_used))
        if len(data) == 1:
            raise UsageError("bind without --id updates a binding: give --status, --endpoint, --latency-ms, "
                             "--success-rate or --last-used (or --id to bind)")
        target = self.resolve(ref)
        who = resolve_actor(actor)
        with self._locked(target.name):
            st = self.model_state(target.name).versions.get(target.version)
            if st is None or provider not in st.bindings:
                has = ", ".join(sorted(st.bindings)) if st and st.bindings else "none"
                raise NotFound(f"{target.name}@{target.version} has no binding to {provider} (has: {has}); "
                               f"bind it first: modelreg bind {target.name}@{target.version} --provider {provider} "
                               "--id ID", info={"name": target.name, "version": target.version, "provider": provider})
            return self._record(Event("bind-update", target.name, who, version=target.version, to=target.digest,
                                      data=data))

    def bindings(self, name: str | None = None, provider: str | None = None, status: str | None = None) -> list[Any]:
        """Every binding (of model ``name``, to ``provider``, with ``status``): :class:`bindings.BindingInfo`."""
        from .bindings import list_bindings

        return list_bindings(self, name, provider, status)

    def rate(self, ref: str, score: int, comment: str | None = None, actor: str | None = None) -> Event:
        """Record the actor's rating of a version, an integer from 1 to 5 (one per actor: the latest counts)."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise UsageError(f"a rating is a whole number from 1 to 5, not {score!r}", info={"score": score})
        if comment is not None and (not isinstance(comment, str) or len(comment) > manifest.MAX_TEXT):
            raise UsageError(f"--comment must be text of at most {manifest.MAX_TEXT} characters")
        return self._annotate(ref, "rate", {"score": score, "comment": comment}, actor)

    # ----------------------------------------------------------- model records
    def set_model(
        self, name: str, fields: dict[str, Any], reason: str | None = None, actor: str | None = None
    ) -> Event | None:
        """Set fields of the model itself (``description``, ``task``, ``subject``, ``owner``, any other
        key; a null value removes a key) as a ``model`` event; None when nothing would change."""
        from .records import check_fields
        from .state import _merge

        check_model(name)
        check_fields(fields)
        _check_json(fields, "model fields")
        self._require_model(name)
        who = resolve_actor(actor)
        with self._locked(name):
            current = self.model_state(name).fields
            after = dict(current)
            _merge(after, fields)
            if after == current:
                return None
            return self._record(Event("model", name, who, reason=reason, data={"fields": fields}))

    def model_info(self, name: str) -> Any:
        """A :class:`records.ModelInfo`: the model's fields, version count, stages, first/last registration."""
        from .records import ModelInfo

        check_model(name)
        digests = self.refs.versions(name)
        if not digests:
            raise self._no_model(name)
        state = self.model_state(name)
        holders = self.stage_holders(name)
        order = state.order(list(digests))
        times = sorted(t for t in (state.versions[v].registered_at for v in digests if v in state.versions) if t)
        latest = next((v for v in reversed(order) if not (state.versions.get(v) and state.versions[v].archived)), None)
        updated = state.fields_updated or {}
        return ModelInfo(
            name, state.fields, len(digests),
            sum(1 for v in digests if state.versions.get(v) and state.versions[v].archived),
            {s: self._identity(holders[s]).version for s in self._stage_order(holders)}, latest,
            times[0] if times else None, times[-1] if times else None, updated.get("time"), updated.get("actor"),
        )

    def unbind(self, ref: str, provider: str, actor: str | None = None) -> Event | None:
        """Remove a version's binding to ``provider``; None if it had none."""
        check_key("provider", provider)
        r = self.resolve(ref)
        st = self.model_state(r.name).versions.get(r.version)
        if not st or provider not in st.bindings:
            return None
        return self._annotate(ref, "unbind", {"provider": provider}, actor)

    # -------------------------------------------------------------- retention
    def prune(self, name: str | None, keep: int | None = None, apply: bool = False, *,
              actor: str | None = None) -> list[Resolved]:
        """The versions archived (or, without ``apply``, that would be): all but the newest ``keep``
        unarchived versions, in registration order, never one that holds a stage.

        ``name`` None: every model, each under its own lock, in name order.
        ``keep`` None: ``policy.retention.keep`` of config.yaml (UsageError if it has none).
        Already archived versions neither count toward ``keep`` nor appear in the result.
        Staged versions count toward ``keep`` when they are among the newest, and are
        simply skipped when they are not. Without ``apply`` nothing changes. The archive
        events' reason names the rule (``pruned: keep N``, or the config's retention rule).
        """
        from .retention import rules

        if keep is None:
            rule = rules.from_config(self.config.raw)
            if rule.keep is None:
                raise UsageError("prune needs --keep N, or policy.retention.keep in config.yaml")
            keep, reason, data = rule.keep, rule.reason(), {"retention": rule.to_dict()}
        else:
            rules.check_keep(keep)
            reason, data = f"pruned: keep {keep}", {"prune": {"keep": keep}}
        if name is not None:
            check_model(name)
            self._require_model(name)
        who = resolve_actor(actor)
        chosen: list[Resolved] = []
        for model in [name] if name is not None else self.refs.models():
            with self._locked(model):
                chosen += (rules.archive_locked(self, model, keep, who, reason, data) if apply
                           else rules.plan(self, model, keep))
        return chosen

    def purge(self, name: str | None = None, apply: bool = False, *, actor: str | None = None,
              now: Any = None) -> Any:
        """``prune --purge``: delete from the artifact store the content of versions archived at least
        ``policy.retention.purge_after_days`` days that no kept version shares (a dry run unless
        ``apply``); a ``purge`` event per version. A :class:`retention.purge.PurgeReport`."""
        from .retention.purge import purge

        return purge(self, name, apply=apply, actor=actor, now=now)

    def stats(self, name: str | None = None) -> dict[str, Any]:
        """Versions, archived, purged, stage holders, artifact bytes and what retention would archive
        next, per model and in total (or for model ``name`` only); see docs/policy.md, "Statistics"."""
        from .retention.stats import stats

        return stats(self, name)

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
            self._manifest_of(r).get("artifacts", []), self.root,
            compute_hash=compute_hash, progress=progress, storage_options=options, egress=self.egress(),
        )
        st = self.model_state(r.name).versions.get(r.version)
        if st is not None and st.purged:
            from .artifacts import as_purged

            results = [as_purged(res, st.purged.get(res.uri)) for res in results]
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
                reports.append(self._verify(self._stage_identity(name, s, digest), compute_hash, progress))
        return reports

    def fetch(
        self, ref: str, dest: str | os.PathLike[str], *, progress: ProgressFactory | None = None,
        allow_unverified: bool = False, roles: list[str] | None = None,
    ) -> FetchReport:
        """Download every artifact of a version into directory ``dest``, each checked against its SHA-256.

        Files are named by role (plus the URI's extension, see :func:`artifacts.fetch_name`). Files
        already there with the right hash are not downloaded again. All or nothing: on a mismatch
        (IntegrityError) or any other failure, the files this call wrote are removed. Artifacts with
        no recorded sha256 are refused (IntegrityError) unless ``allow_unverified``; then they are
        downloaded with only a size check and reported as "unverified". URIs are read under the
        :meth:`egress` rules (no special files, nothing outside allowed roots, no private addresses).
        """
        from .artifacts import fetch_entries, select

        r = self.resolve(ref)
        entries = select(r, self._manifest_of(r).get("artifacts", []), roles)
        _store, options = self.artifact_settings()
        report = fetch_entries(
            r, entries, dest, self.root,
            progress=progress, storage_options=options, egress=self.egress(), allow_unverified=allow_unverified,
        )
        self._emit_read("download", r, {
            "dest": report.dest, "roles": [e["role"] for e in entries], "files": len(report.files),
            "bytes": sum(f.size or 0 for f in report.files if f.status != "present"),
            "downloaded": sum(1 for f in report.files if f.status != "present"),
        })
        return report

    def url(self, ref: str, role: str | None = None, expires: int = 3600) -> Any:
        """A time-limited HTTPS link to an artifact (:class:`artifacts.SignedLink`): S3/GCS ``sign()``.

        ``role`` may be left out when the version has one artifact. A directory artifact gets one
        link per file. UsageError for local paths and stores that cannot sign."""
        from .artifacts import sign

        r = self.resolve(ref)
        _store, options = self.artifact_settings()
        return sign(r, self._manifest_of(r).get("artifacts", []), role, expires, options, self.egress())

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
        offset: int = 0,
    ) -> list[Any]:
        """Versions across models matching every filter (AND): list of :class:`discovery.SearchRecord`,
        in a stable order (``sort``, ties by model name and registration order), ``offset`` skipped."""
        from . import discovery

        return discovery.search(self, name_regex=name_regex, stage=stage, staged=staged, tag=tag,
                                archived=archived, where=where, sort=sort, limit=limit, offset=offset)

    def lineage(self, ref: str, direction: str = "ancestors", depth: int | None = None) -> Any:
        """The ancestors or descendants of a version as a :class:`discovery.LineageNode` tree."""
        from . import discovery

        return discovery.lineage(self, ref, direction, depth)

    def license_check(self, ref: str, project_license: str | None = None) -> Any:
        """A :class:`discovery.LicenseReport`: the version's license against all ancestors and a project.

        ``project_license`` is an identifier, or the path of a LICENSE file, of a directory holding
        one, or of a ``pyproject.toml``, whose license is detected offline (:mod:`licensefile`)."""
        from . import discovery

        return discovery.license_check(self, ref, project_license)

    def reindex(self) -> dict[str, int]:
        """Rebuild the query index (:mod:`modelreg.index`) from scratch; model -> number of versions."""
        from .index.build import reindex

        return reindex(self)

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


def unknown_stage(stage: str, stages: tuple[str, ...] | list[str]) -> str:
    """``unknown stage 'prod' (did you mean 'production'?); configured stages: staging, production``"""
    from .suggest import did_you_mean

    return f"unknown stage {stage!r}{did_you_mean(stage, stages)}; configured stages: {', '.join(stages)}"


def _wrap_os_errors(cls: type) -> None:
    """Every public method (and construction) of ``cls`` raises StorageError instead of a raw OSError."""
    from .errors import os_errors

    for name, attr in list(vars(cls).items()):
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(attr, classmethod):
            setattr(cls, name, classmethod(os_errors(attr.__func__)))
        elif isinstance(attr, property):
            setattr(cls, name, property(os_errors(attr.fget), attr.fset, attr.fdel, attr.__doc__))
        elif callable(attr) and not isinstance(attr, (staticmethod, type)):
            setattr(cls, name, os_errors(attr))


_wrap_os_errors(Registry)


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


def check_local_store(store: str, root: Path) -> None:
    """A local ``artifact_store`` from the committed config.yaml must lie inside the project,
    unless the user's own settings allow that directory (``local_roots`` in
    ``$XDG_CONFIG_HOME/modelreg/config.yaml`` or ``MODELREG_LOCAL_ROOTS``).

    config.yaml arrives by git: a store outside the project would let a pull request decide
    where ``register --upload`` writes on this machine.
    """
    from . import userconfig
    from .uris import resolve_local

    real = resolve_local(store, root)
    project = root.resolve()
    if real != project and project not in real.parents and not userconfig.allows_local_path(real):
        raise UsageError(
            f"config.yaml: artifact_store {store} is outside the project {project}: a committed config may only "
            "name a local store inside the project (or one your user config allows in local_roots)"
        )


def _select(events: list[Event], stage: str | None, limit: int | None, since: str | None) -> list[Event]:
    if since is not None:
        events = log.after(events, since)
    if stage is not None:
        events = [e for e in events if e.stage == stage]
    if limit is not None:
        events = events[-limit:] if limit > 0 else []
    return events


def parse_artifact_spec(text: str) -> dict[str, Any]:
    """``[ROLE=]URI`` -> ``{"role": ..., "uri": ...}``; without a role, see :func:`artifacts.default_role`."""
    if not text:
        raise UsageError("empty --artifact")
    head, sep, tail = text.partition("=")
    if sep and head and "/" not in head and ":" not in head and "?" not in head:
        role, uri = head, tail
    else:
        role, uri = None, text
    if not uri:
        raise UsageError(f"--artifact {text!r} has no URI")
    from .names import check_key

    if role is None:
        from .artifacts import default_role

        return {"role": default_role(uri), "uri": uri}
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
    from .values import display  # the string "0.90" quoted, the number 0.9 bare, as everywhere in text

    text = display(value) if value is not None else "(none)"
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
