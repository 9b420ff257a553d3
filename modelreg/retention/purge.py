"""``prune --purge``: delete from the artifact store the content that only long-archived versions use.

A version is *purgeable* when it has been archived for at least ``policy.retention.purge_after_days``
days (since its archive event). Its artifacts that are content-addressed objects of the artifact
store (``<store>/sha256/ab/cdef...``, what ``register --upload`` writes) are deleted unless any
other version, of any model, that is not being purged has an artifact with the same URI or the
same sha256. Artifacts elsewhere (a project file, a bucket that is not the store) and directory artifacts
are never deleted; a directory artifact's files count as used by its version like any artifact. Each version whose content is deleted gets a ``purge`` event listing the artifacts; the
manifest stays, and ``verify`` then reports those artifacts as ``purged``.

The plan is made twice: once without a lock (reading every manifest once), then again under the
exclusive artifact-store lock (:mod:`.storelock`; a registration holds it shared from its first
look at its artifacts to its event, and so does unarchiving), where only manifests not seen
before are read: nothing can become live while objects are deleted. Objects are
deleted first, then the ``purge`` event is written under the model's lock: an interruption leaves
objects deleted without their event (``verify`` says ``missing``), and running the purge again
records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..errors import ModelregError, UsageError

if TYPE_CHECKING:
    from ..log import Event
    from ..registry import Registry


@dataclass
class PurgeVersion:
    """One purgeable version: the store objects deleted (or to delete) and the artifacts kept, with why."""

    name: str
    version: str
    digest: str
    archived_at: str | None
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # {role, uri, sha256, size}
    kept: list[dict[str, Any]] = field(default_factory=list)  # {role, uri, why}

    @property
    def bytes(self) -> int:
        return sum(a.get("size") or 0 for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest, "archived_at": self.archived_at,
                "artifacts": self.artifacts, "bytes": self.bytes, "kept": self.kept}


@dataclass
class PurgeReport:
    """What ``prune --purge`` deleted (``applied``) or would delete."""

    name: str | None
    applied: bool
    purge_after_days: float | int
    store: str
    versions: list[PurgeVersion] = field(default_factory=list)  # only versions with something to delete
    events: list[Event] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(v.bytes for v in self.versions)

    @property
    def objects(self) -> int:
        return sum(len(v.artifacts) for v in self.versions)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "applied": self.applied, "purge_after_days": self.purge_after_days,
                "store": self.store, "versions": [v.to_dict() for v in self.versions], "objects": self.objects,
                "bytes": self.bytes, "events": [e.to_dict() for e in self.events]}


def store_object_uri(reg: Registry, store: str, sha256: str) -> str:
    """The URI an object with ``sha256`` has in ``store`` as a manifest records it (``register --upload``)."""
    from .. import uris

    target = f"{store.rstrip('/')}/sha256/{sha256[:2]}/{sha256[2:]}"
    return uris.normalize_local_uri(target, reg.root) if uris.is_local(target) else target


def _shas(a: dict[str, Any]) -> set[str]:
    """Every sha256 an artifact entry names: its own, and each file's of a directory artifact (whose
    files are store objects too when uploaded: ``layout: sha256``)."""
    out = {a["sha256"]} if isinstance(a.get("sha256"), str) else set()
    for f in a.get("files") or []:
        if isinstance(f, dict) and isinstance(f.get("sha256"), str):
            out.add(f["sha256"])
    return out


def parse_time(text: str | None) -> datetime | None:
    """An event time (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) as an aware datetime; None if unreadable."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


class _Scan:
    """Every model's versions, fold and artifacts; manifests are read once per digest (they never change)."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.artifacts: dict[str, list[dict[str, Any]]] = {}

    def models(self) -> list[tuple[str, dict[str, str], Any]]:
        out = []
        for model in self.reg.refs.models():
            digests = self.reg.refs.versions(model)
            out.append((model, digests, self.reg.model_state(model)))
        return out

    def of(self, digest: str) -> list[dict[str, Any]]:
        if digest not in self.artifacts:
            try:
                self.artifacts[digest] = list(self.reg.manifest(digest).get("artifacts", []))
            except ModelregError:
                self.artifacts[digest] = []  # fsck names an unreadable manifest; it uses nothing here
        return self.artifacts[digest]


def _plan(reg: Registry, scan: _Scan, name: str | None, days: float, store: str, now: datetime) -> list[PurgeVersion]:
    cutoff = now - timedelta(days=days)
    purgeable: dict[tuple[str, str], PurgeVersion] = {}
    live_uris: set[str] = set()
    live_shas: set[str] = set()
    states = {}
    for model, digests, state in scan.models():
        states[model] = state
        for v, digest in digests.items():
            st = state.versions.get(v)
            at = parse_time(st.archived_at) if st is not None and st.archived else None
            if (name is None or model == name) and at is not None and at <= cutoff:
                purgeable[(model, v)] = PurgeVersion(model, v, digest, st.archived_at)  # type: ignore[union-attr]
                continue
            for a in scan.of(digest):  # a live version (or one not purged now): what it uses stays
                live_uris.add(a["uri"])
                live_shas.update(_shas(a))
    out = []
    def order(key: tuple[str, str]) -> tuple[str, str, str]:
        return key[0], states[key[0]].versions[key[1]].registered_at or "", key[1]

    for (model, v), pv in sorted(purgeable.items(), key=lambda kv: order(kv[0])):
        purged = states[model].versions[v].purged
        for a in scan.of(pv.digest):
            sha = a.get("sha256")
            entry = {"role": a["role"], "uri": a["uri"], "sha256": sha, "size": a.get("size")}
            if a.get("files") is not None:
                pv.kept.append({"role": a["role"], "uri": a["uri"],
                                "why": "a directory artifact: prune --purge deletes single-file objects only"})
            elif not sha or a["uri"] != store_object_uri(reg, store, sha):
                pv.kept.append({"role": a["role"], "uri": a["uri"], "why": "not an object of the artifact store"})
            elif a["uri"] in live_uris or sha in live_shas:
                pv.kept.append({"role": a["role"], "uri": a["uri"], "why": "shared with a version that is kept"})
            elif a["uri"] in purged:
                continue  # purged before
            else:
                pv.artifacts.append(entry)
        if pv.artifacts:
            out.append(pv)
    return out


def purge(reg: Registry, name: str | None = None, *, apply: bool = False, actor: str | None = None,
          now: datetime | None = None) -> PurgeReport:
    """Plan (and with ``apply`` carry out) the purge of model ``name`` (None: every model)."""
    from ..log import Event
    from ..names import check_model
    from ..registry import resolve_actor
    from .rules import from_config
    from .storelock import held

    if name is not None:
        check_model(name)
        reg._require_model(name)
    rule = from_config(reg.config.raw)
    if rule.purge_after_days is None:
        raise UsageError("prune --purge needs policy.retention.purge_after_days in config.yaml "
                         "(how many days a version stays archived before its content is deleted)")
    store, options = reg.artifact_settings()
    if store is None:
        raise UsageError("prune --purge deletes from the artifact store, and config.yaml (or your user config) "
                         "names none: set artifact_store")
    now = now or datetime.now(timezone.utc)
    scan = _Scan(reg)
    report = PurgeReport(name, apply, rule.purge_after_days, store, _plan(reg, scan, name, rule.purge_after_days,
                                                                         store, now))
    if not apply or not report.versions:
        return report
    who = resolve_actor(actor)
    with held(reg.locks_dir, shared=False):
        report.versions = _plan(reg, scan, name, rule.purge_after_days, store, now)  # again, under the lock
        from .. import uris

        for pv in report.versions:
            for a in pv.artifacts:
                uris.delete_artifact(a["uri"], root=reg.root, storage_options=options)
            with reg._locked(pv.name):  # unarchiving takes the store lock too: pv is still archived
                report.events.append(reg._record(Event(
                    "purge", pv.name, who, version=pv.version, to=pv.digest,
                    reason=f"policy.retention: purge_after_days {rule.purge_after_days:g}",
                    data={"artifacts": pv.artifacts, "bytes": pv.bytes,
                          "rule": {"purge_after_days": rule.purge_after_days}},
                )))
    return report
