"""What a model's event log says about it and its versions: registration order, archived and purged
state, stage history, the annotations recorded after registration (metrics, tag changes, approvals,
bindings and their observed figures, ratings) and the model's own fields (``model set``).

Pure functions over events; the log itself stays the only copy. Events are folded in the
log's causal order (:mod:`modelreg.lifecycle.order`): stage moves along their ``prev``
chains, everything else by ``(time, id)``, so after a git union merge of two branches the
later write wins and a writer with a skewed clock cannot reorder a stage's moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .lifecycle.order import MOVES
from .lifecycle.undo import rewind, undo_stack
from .log import Event


@dataclass
class VersionState:
    """What the log records about one version.

    ``tags_added``/``tags_removed`` are deltas against the manifest's own tags (see :meth:`tags`).
    """

    version: str
    digest: str | None = None
    registered_at: str | None = None
    registered_by: str | None = None
    archived: bool = False
    archived_reason: str | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags_added: set[str] = field(default_factory=set)
    tags_removed: set[str] = field(default_factory=set)
    approvals: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages_held: set[str] = field(default_factory=set)
    archived_at: str | None = None
    ratings: dict[str, dict[str, Any]] = field(default_factory=dict)  # actor -> {score, comment, time}
    purged: dict[str, dict[str, Any]] = field(default_factory=dict)  # artifact uri -> {sha256, size, time}

    @property
    def rating(self) -> dict[str, Any]:
        """``{"avg": mean score or None, "count": number of actors who rated}`` (one rating per actor)."""
        scores = [r["score"] for r in self.ratings.values()]
        return {"avg": sum(scores) / len(scores) if scores else None, "count": len(scores)}

    def tags(self, manifest_tags: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Current tags: the manifest's, plus those added, minus those removed since."""
        return sorted((set(manifest_tags) | self.tags_added) - self.tags_removed)


@dataclass
class ModelState:
    """A fold of one model's events."""

    versions: dict[str, VersionState] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # the model's own fields (``model set``)
    fields_updated: dict[str, Any] | None = None  # {time, actor} of the last ``model`` event

    def get(self, version: str) -> VersionState:
        return self.versions.setdefault(version, VersionState(version))

    def order(self, names: list[str]) -> list[str]:
        """``names`` ordered by registration time; versions the log does not know come first, by name."""
        def key(v: str) -> tuple[str, str]:
            st = self.versions.get(v)
            return (st.registered_at or "" if st else "", v)

        return sorted(names, key=key)

    def stage_events(self, stage: str) -> list[Event]:
        """Events that moved ``stage``, oldest first (causal order)."""
        return [e for e in self.events if e.stage == stage and e.action in MOVES]

    def head(self, stage: str) -> Event | None:
        """The last move of ``stage``: what a new move of it names as ``prev``."""
        for e in reversed(self.events):
            if e.stage == stage and e.action in MOVES:
                return e
        return None

    def undo_stack(self, stage: str) -> list[Event]:
        """The moves of ``stage`` a rollback could still undo, oldest first (see lifecycle.undo)."""
        return undo_stack(self.stage_events(stage))

    def undo_top(self, stage: str) -> Event | None:
        """The move of ``stage`` a plain rollback undoes (the top of its undo stack), or None."""
        stack = self.undo_stack(stage)
        return stack[-1] if stack else None

    def rewind(self, stage: str, target: str) -> list[Event] | None:
        """What ``rollback --to`` undoes to bring ``stage`` back to digest ``target`` (see lifecycle.undo.rewind)."""
        return rewind(self.undo_stack(stage), target)

    def latest(self, exists: Callable[[str], str | None]) -> tuple[str, str] | None:
        """``(version, digest)`` of the most recently registered version that is not archived and for
        which ``exists`` (the version entry's digest) is not None; None if the log registers no such
        version (then versions the log does not know decide: see ``Registry._resolve_latest``)."""
        live = [(st.registered_at, v) for v, st in self.versions.items() if st.registered_at and not st.archived]
        for _, v in sorted(live, reverse=True):
            digest = exists(v)
            if digest:
                return v, digest
        return None

    def case_variants(self, version: str) -> list[str] | None:
        """Registered versions that differ from ``version`` only by case, or None when this state cannot
        tell without listing the versions directory (a fold in memory does not know every entry)."""
        return None

    def version_events(self, version: str) -> list[Event]:
        """The events that fold into ``version``'s annotations and archived state, in order."""
        return [e for e in self.events if e.version == version and e.action in ANNOTATIONS]


ANNOTATIONS = frozenset({"metrics", "tag", "approve", "bind", "bind-update", "unbind", "archive", "unarchive",
                         "rate", "purge"})
MODEL_FIELDS = "model"  # the action of a model-level event (``version`` null): data {"fields": {K: V}}
BINDING_FIGURES = ("latency_ms", "success_rate", "last_used")  # observed later, updated without rebinding


def _apply(st: VersionState, e: Event) -> None:
    d = e.data
    if e.action == "metrics":
        suite, values = d.get("suite"), d.get("values")
        if isinstance(suite, str) and isinstance(values, dict):
            st.metrics.setdefault(suite, {}).update(values)
    elif e.action == "tag":
        for t in d.get("add") or []:
            st.tags_added.add(t)
            st.tags_removed.discard(t)
        for t in d.get("remove") or []:
            st.tags_removed.add(t)
            st.tags_added.discard(t)
    elif e.action == "approve":
        stage = d.get("stage")
        if isinstance(stage, str):
            st.approvals.setdefault(stage, {})[e.actor] = {"time": e.time, "comment": d.get("comment")}
    elif e.action == "bind":
        provider = d.get("provider")
        if isinstance(provider, str):
            st.bindings[provider] = {
                "id": d.get("id"), "endpoint": d.get("endpoint"), "params": d.get("params") or {},
                "status": d.get("status") or "active",  # bindings recorded before statuses existed are active
                **{k: d.get(k) for k in BINDING_FIGURES},
                "time": e.time, "actor": e.actor, "updated_at": e.time, "updated_by": e.actor,
            }
    elif e.action == "bind-update":  # status, endpoint or observed figures of an existing binding
        b = st.bindings.get(d.get("provider"))  # type: ignore[arg-type]
        if b is not None:
            for key in ("status", "endpoint", *BINDING_FIGURES):
                if key in d:
                    b[key] = d[key]
            b["updated_at"], b["updated_by"] = e.time, e.actor
    elif e.action == "unbind":
        st.bindings.pop(d.get("provider"), None)  # type: ignore[arg-type]
    elif e.action == "rate":
        score = d.get("score")
        if isinstance(score, int) and not isinstance(score, bool):
            st.ratings[e.actor] = {"score": score, "comment": d.get("comment"), "time": e.time}
    elif e.action == "purge":
        for a in d.get("artifacts") or []:
            if isinstance(a, dict) and isinstance(a.get("uri"), str):
                st.purged[a["uri"]] = {"sha256": a.get("sha256"), "size": a.get("size"), "time": e.time}


def _apply_model(state: ModelState, e: Event) -> None:
    """A ``model`` event: its fields are merged into the model's (mappings key by key, a null removes a key)."""
    fields = e.data.get("fields")
    if isinstance(fields, dict):
        _merge(state.fields, fields)
        state.fields_updated = {"time": e.time, "actor": e.actor}


def _merge(into: dict[str, Any], fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = dict(into[key])  # never share a mapping with an event's data
            _merge(into[key], value)
        elif isinstance(value, dict) and value and all(v is None for v in value.values()):
            continue  # removing keys of a mapping the model does not have
        else:
            into[key] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def apply_version_event(st: VersionState, e: Event) -> None:
    """Fold one event about ``st``'s version (register, archive, unarchive, an annotation) into it.

    These events are order-free among themselves except by ``(time, id)``: the first register
    wins, and for archived state and each annotation key the last one wins. So the state of a
    version depends only on its own events taken in ``(time, id)`` order (the causal order puts
    every event that is not a stage move in that order), which is what lets a snapshot keep
    each version's events apart (:mod:`modelreg.derived`).
    """
    if e.action == "register":
        if st.registered_at is None:
            st.registered_at, st.registered_by, st.digest = e.time, e.actor, e.to
    elif e.action == "archive":
        if not st.archived:  # archived since the first of consecutive archive events
            st.archived_at = e.time
        st.archived, st.archived_reason = True, e.reason
    elif e.action == "unarchive":
        st.archived, st.archived_reason, st.archived_at = False, None, None
    elif e.action in ANNOTATIONS:
        _apply(st, e)


def fold(events: list[Event]) -> ModelState:
    """Build the state of one model from its ordered events."""
    state = ModelState(events=events)
    for e in events:
        if e.action == MODEL_FIELDS and e.version is None:
            _apply_model(state, e)
            continue
        if e.version is None:
            continue
        if e.action in MOVES:
            if e.stage and e.to:
                state.get(e.version).stages_held.add(e.stage)
        elif e.action == "register" or e.action in ANNOTATIONS:
            apply_version_event(state.get(e.version), e)
    return state
