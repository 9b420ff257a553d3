"""Gathers what the site shows from a registry through one source object, reading each model's log once.

:class:`RegistrySource` is the only code of the site that talks to a
:class:`~modelreg.registry.Registry`; everything after :func:`gather` works on the plain
dataclasses defined here. A later index (SQLite) can replace the source by providing the
same few members (``stages``, ``policy``, ``model_names``, ``version_count``, ``model``).

Per model the source reads the event log once (``Registry.model_state``: events and their
fold), the version entries and stage refs, and each version's manifest (hash-verified), or
that manifest from the site's cache (a digest names immutable bytes; see
:mod:`modelreg.site.cache`). It never reads a log once per version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ModelregError
from .cache import ManifestCache

if TYPE_CHECKING:
    from ..log import Event
    from ..registry import Registry


@dataclass(slots=True)
class Holder:
    """What one stage holds, and the move that put it there (``since``/``by``/``reason``)."""

    stage: str
    digest: str
    version: str | None
    since: str | None = None
    by: str | None = None
    reason: str | None = None
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "version": self.version, "digest": self.digest, "since": self.since,
                "by": self.by, "reason": self.reason, "action": self.action}


@dataclass(slots=True)
class VersionData:
    """One version: registration, annotations (from the log fold) and its manifest."""

    name: str
    version: str
    digest: str
    index: int  # position in registration order, 0-based
    registered_at: str | None = None
    registered_by: str | None = None
    archived: bool = False
    archived_reason: str | None = None
    stages: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    approvals: dict[str, Any] = field(default_factory=dict)
    bindings: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    problem: str | None = None  # why the manifest could not be read
    rating: dict[str, Any] | None = None  # {"avg", "count"}
    purged: dict[str, Any] = field(default_factory=dict)  # artifact uri -> {sha256, size, time}

    def listing(self) -> dict[str, Any]:
        """The JSON form used by the API's version pages (``ls NAME --json`` fields plus tags)."""
        return {
            "name": self.name, "version": self.version, "digest": self.digest, "stages": list(self.stages),
            "archived": self.archived, "archived_reason": self.archived_reason,
            "registered_at": self.registered_at, "registered_by": self.registered_by,
            "metrics": self.metrics, "tags": list(self.tags), "approvals": self.approvals, "bindings": self.bindings,
            "rating": self.rating,
        }


@dataclass(slots=True)
class ModelData:
    """One model: versions in registration order, its events in log order, its stages."""

    name: str
    versions: list[VersionData]
    events: list[Event]
    holders: dict[str, Holder]  # configured stage order first
    checks: list[dict[str, Any]] = field(default_factory=list)  # GateReport.to_dict() per gated stage
    problems: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # the model's own fields (``model set``)

    @property
    def archived(self) -> int:
        return sum(1 for v in self.versions if v.archived)

    @property
    def latest(self) -> VersionData | None:
        """The newest version that is not archived (``NAME@latest``)."""
        for v in reversed(self.versions):
            if not v.archived:
                return v
        return None

    def by_version(self) -> dict[str, VersionData]:
        return {v.version: v for v in self.versions}


@dataclass
class SiteData:
    """Everything a build renders."""

    stages: tuple[str, ...]
    policy: dict[str, Any]
    models: list[ModelData]
    stats: dict[str, Any]
    by_digest: dict[str, VersionData] = field(default_factory=dict)  # every version of every model
    children: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)  # parent digest -> children

    @property
    def versions(self) -> int:
        return sum(len(m.versions) for m in self.models)

    @property
    def top_stage(self) -> str | None:
        """The stage versions are compared with ("production" in the default configuration)."""
        if "production" in self.stages:
            return "production"
        return self.stages[-1] if self.stages else None

    def thresholds(self) -> dict[str, list[tuple[str, str, float]]]:
        """``SUITE.KEY`` -> [(stage, op, value)] from every stage's gates."""
        out: dict[str, list[tuple[str, str, float]]] = {}
        from ..policy import parse_threshold

        for stage, gates in (self.policy.get("gates") or {}).items():
            for path, text in (gates.get("thresholds") or {}).items():
                op, value = parse_threshold(text, path)
                out.setdefault(path, []).append((stage, op, value))
        return out


class Source(Protocol):
    """What :func:`gather` needs from a registry (or, later, from an index of it)."""

    stages: tuple[str, ...]

    def policy(self) -> dict[str, Any]: ...

    def model_names(self) -> list[str]: ...

    def version_count(self) -> int: ...

    def model(self, name: str) -> ModelData: ...



def is_move(e: Event) -> bool:
    """An event that changed a stage (promote, rollback, demote, reconcile, clear, and any later action
    that names a stage)."""
    return e.stage is not None


class RegistrySource:
    """The registry's public library API as the site's source."""

    def __init__(self, reg: Registry, cache: Path | None = None) -> None:
        self.reg = reg
        self.stages: tuple[str, ...] = tuple(reg.stages)
        self._policy = reg.policy
        self.cache = cache  # see modelreg.site.cache; None: parse every manifest

    def policy(self) -> dict[str, Any]:
        return self._policy.to_dict()

    def model_names(self) -> list[str]:
        return self.reg.refs.models()

    def version_count(self) -> int:
        """How many versions there are (cheap: directory listings only), to size the build."""
        return sum(len(self.reg.refs.version_names(n)) for n in self.model_names())


    def warm(self, names: list[str], jobs: int) -> None:
        """Parse the manifests missing from the cache, ``jobs`` processes at once (nothing without a cache)."""
        if self.cache is None:
            return
        import multiprocessing as mp

        global _WARMING
        _WARMING = self
        try:
            with mp.get_context("fork").Pool(min(jobs, len(names))) as pool:
                pool.map(_warm_one, names, chunksize=max(1, len(names) // (jobs * 16)))
        finally:
            _WARMING = None

    def _warm(self, name: str) -> None:
        manifests = ManifestCache(self.cache, name)
        digests = self.reg.refs.versions(name)
        for v, d in digests.items():
            if manifests.get(d, name, v) is None:
                try:
                    m = self.reg.manifest(d)
                except ModelregError:
                    continue  # reported by the gathering itself
                if m.get("name") == name and m.get("version") == v:
                    manifests.put(d, m)
        manifests.save(set(digests.values()))

    def _stage_order(self, holders: dict[str, str]) -> list[str]:
        known = [s for s in self.stages if s in holders]
        return known + sorted(s for s in holders if s not in known)

    def model(self, name: str) -> ModelData:
        reg = self.reg
        state = reg.model_state(name)  # the one read of this model's log
        digests = reg.refs.versions(name)
        raw_holders = reg.stage_holders(name)
        order = self._stage_order(raw_holders)
        stages_of: dict[str, list[str]] = {}
        for s in order:
            stages_of.setdefault(raw_holders[s], []).append(s)
        versions: list[VersionData] = []
        problems: list[str] = []
        manifests = ManifestCache(self.cache, name)
        for i, v in enumerate(state.order(list(digests))):
            d = digests[v]
            st = state.versions.get(v)
            problem = None
            m: dict[str, Any] | None = manifests.get(d, name, v)
            if m is None:
                try:
                    m = reg.manifest(d)
                    if m.get("name") != name or m.get("version") != v:
                        problem = f"object {d} holds {m.get('name')}@{m.get('version')}, not {name}@{v}"
                        m = None
                    else:
                        manifests.put(d, m)
                except ModelregError as exc:
                    problem = exc.message
            if problem:
                problems.append(f"{name}@{v}: {problem}")
            manifest_tags = (m or {}).get("tags", [])
            versions.append(VersionData(
                name=name, version=v, digest=d, index=i,
                registered_at=getattr(st, "registered_at", None),
                registered_by=getattr(st, "registered_by", None),
                archived=bool(getattr(st, "archived", False)),
                archived_reason=getattr(st, "archived_reason", None),
                stages=stages_of.get(d, []),
                metrics=getattr(st, "metrics", None) or {},
                approvals=getattr(st, "approvals", None) or {},
                bindings=getattr(st, "bindings", None) or {},
                tags=st.tags(manifest_tags) if st is not None else sorted(manifest_tags),
                manifest=m, problem=problem,
                rating=getattr(st, "rating", None), purged=getattr(st, "purged", None) or {},
            ))
        manifests.save(set(digests.values()))
        by_digest = {v.digest: v for v in versions}
        holders: dict[str, Holder] = {}
        moves = [e for e in state.events if is_move(e)]
        for s in order:
            d = raw_holders[s]
            held = by_digest.get(d)
            h = Holder(s, d, held.version if held else None)
            for e in reversed(moves):
                if e.stage == s and e.to == d:
                    h.since, h.by, h.reason, h.action = e.time, e.actor, e.reason, e.action
                    break
            holders[s] = h
        data = ModelData(name, versions, list(state.events), holders, problems=problems,
                         fields=getattr(state, "fields", None) or {})
        data.checks = self._checks(data)
        return data

    def _checks(self, m: ModelData) -> list[dict[str, Any]]:
        """``modelreg check`` of the newest candidate for each stage that has rules or gates."""
        pol = self._policy
        gated = [s for s in self.stages if s in pol.gates or s in pol.require_previous_stage]
        out = []
        for stage in gated:
            holder = m.holders.get(stage)
            candidate = next((v for v in reversed(m.versions)
                              if not v.archived and (holder is None or v.digest != holder.digest)), None)
            if candidate is None:
                continue
            try:
                out.append(self.reg.check(f"{m.name}@{candidate.digest}", stage).to_dict())
            except ModelregError as exc:
                m.problems.append(f"{m.name}@{candidate.version}: check for {stage}: {exc.message}")
        return out


def gather(source: Source, jobs: int = 1) -> SiteData:
    """Read every model through ``source``. With ``jobs`` > 1, a source that can (``warm``) first parses
    the manifests it has not cached in that many forked processes; the gathering itself runs here, because
    shipping a model's parsed data back from a worker costs more than reading it."""
    names = source.model_names()
    warm = getattr(source, "warm", None)
    if jobs > 1 and len(names) > 1 and can_fork() and warm is not None:
        warm(names, jobs)
    models = [source.model(n) for n in names]
    data = SiteData(stages=tuple(source.stages), policy=source.policy(), models=models,
                    stats=_stats(models, tuple(source.stages)))
    for m in models:
        for v in m.versions:
            data.by_digest[v.digest] = v
            for p in (v.manifest or {}).get("parents", []):
                data.children.setdefault(p["digest"], []).append((v.digest, p.get("relation")))
    return data


def _stats(models: list[ModelData], stages: tuple[str, ...]) -> dict[str, Any]:
    """The counts of ``modelreg stats`` (without the on-disk size, which needs a walk of every file)."""
    per_stage = {s: 0 for s in stages}
    for m in models:
        for s in m.holders:
            per_stage[s] = per_stage.get(s, 0) + 1
    return {"models": len(models), "versions": sum(len(m.versions) for m in models),
            "archived": sum(m.archived for m in models), "stages": per_stage}


_WARMING: RegistrySource | None = None  # the source a forked warm-up worker uses


def _warm_one(name: str) -> None:
    assert _WARMING is not None
    _WARMING._warm(name)


def can_fork() -> bool:
    """Forked workers are used only where fork is the platform's cheap, safe default (Linux)."""
    return hasattr(os, "fork") and os.uname().sysname == "Linux"
