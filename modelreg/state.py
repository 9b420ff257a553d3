"""What a model's event log says about its versions: registration order, archived state, stage history,
and the annotations recorded after registration (metrics, tag changes, approvals, bindings).

Pure functions over events; the log itself stays the only copy. Events are folded in the
log's causal order (:mod:`modelreg.lifecycle.order`): stage moves along their ``prev``
chains, everything else by ``(time, id)``, so after a git union merge of two branches the
later write wins and a writer with a skewed clock cannot reorder a stage's moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .lifecycle.order import MOVES
from .lifecycle.undo import undo_stack
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

    def tags(self, manifest_tags: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Current tags: the manifest's, plus those added, minus those removed since."""
        return sorted((set(manifest_tags) | self.tags_added) - self.tags_removed)


@dataclass
class ModelState:
    """A fold of one model's events."""

    versions: dict[str, VersionState] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

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

ANNOTATIONS = frozenset({"metrics", "tag", "approve", "bind", "unbind", "archive", "unarchive"})


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
                "time": e.time, "actor": e.actor,
            }
    elif e.action == "unbind":
        st.bindings.pop(d.get("provider"), None)  # type: ignore[arg-type]


def fold(events: list[Event]) -> ModelState:
    """Build the state of one model from its ordered events."""
    state = ModelState(events=events)
    for e in events:
        if e.version is None:
            continue
        if e.action == "register":
            st = state.get(e.version)
            if st.registered_at is None:
                st.registered_at, st.registered_by, st.digest = e.time, e.actor, e.to
        elif e.action == "archive":
            st = state.get(e.version)
            st.archived, st.archived_reason = True, e.reason
        elif e.action == "unarchive":
            st = state.get(e.version)
            st.archived, st.archived_reason = False, None
        elif e.action in MOVES:
            if e.stage and e.to:
                state.get(e.version).stages_held.add(e.stage)
        elif e.action in ANNOTATIONS:
            _apply(state.get(e.version), e)
    return state
