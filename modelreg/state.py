"""What a model's event log says about its versions: registration order, archived state, stage history,
and the annotations recorded after registration (metrics, tag changes, approvals, bindings).

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
        st.archived, st.archived_reason = True, e.reason
    elif e.action == "unarchive":
        st.archived, st.archived_reason = False, None
    elif e.action in ANNOTATIONS:
        _apply(st, e)


def fold(events: list[Event]) -> ModelState:
    """Build the state of one model from its ordered events."""
    state = ModelState(events=events)
    for e in events:
        if e.version is None:
            continue
        if e.action in MOVES:
            if e.stage and e.to:
                state.get(e.version).stages_held.add(e.stage)
        elif e.action == "register" or e.action in ANNOTATIONS:
            apply_version_event(state.get(e.version), e)
    return state
