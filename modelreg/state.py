"""What a model's event log says about its versions: registration order, archived state, stage history.

Pure functions over events; the log itself stays the only copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .log import Event


@dataclass
class VersionState:
    """What the log records about one version."""

    version: str
    digest: str | None = None
    registered_at: str | None = None
    registered_by: str | None = None
    archived: bool = False
    archived_reason: str | None = None


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
        """Events that moved ``stage``, oldest first."""
        return [e for e in self.events if e.stage == stage and e.action in MOVES]


MOVES = frozenset({"promote", "rollback", "demote", "reconcile", "clear"})


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
    return state
