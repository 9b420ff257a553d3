"""Causal order of a model's events: a stage move follows the move its ``prev`` names; the rest by (time, id)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..log import Event

MOVES = frozenset({"promote", "rollback", "demote", "reconcile", "clear"})


def _after(e: Event, by_id: dict[str, Event]) -> list[str]:
    """Ids of the events ``e`` must follow: the previous move of its stage, and for a demote its promote."""
    deps = []
    if e.prev is not None and e.action in MOVES:
        p = by_id.get(e.prev)
        if p is not None and p is not e and p.action in MOVES and p.stage == e.stage:
            deps.append(p.id)
    if e.action == "demote":
        by = e.data.get("by")
        if isinstance(by, str) and by != e.id and by in by_id:
            deps.append(by)
    return deps


def causal_order(events: Iterable[Event], broken: list[str] | None = None) -> list[Event]:
    """``events`` (ids unique) in the registry's order, the same whatever order the lines were in.

    The order is the topological order of the links (a move after the move its ``prev``
    names, if that is a move of the same stage; a demote after the promote in its
    ``data.by``) that takes the smallest ``(time, id)`` whenever several events are free.
    So a chain of moves keeps its order whatever the writers' clocks said, two branches
    of a chain (after a git union merge) interleave by ``(time, id)``, and events without
    links (every event but moves, and moves written before ``prev`` existed) go by time.
    A link to an unknown id is ignored; a cycle (only a hand-edited log has one) is broken
    at its smallest ``(time, id)``; its id is appended to ``broken`` when that list is given.
    """
    ordered = sorted(events, key=lambda e: (e.time, e.id))
    by_id = {e.id: e for e in ordered}
    deps = {e.id: _after(e, by_id) for e in ordered if e.prev is not None or e.action == "demote"}
    deps = {k: v for k, v in deps.items() if v}
    if not deps:
        return ordered
    rank = {e.id: i for i, e in enumerate(ordered)}
    waiting = {k: len(v) for k, v in deps.items()}
    children: dict[str, list[str]] = {}
    for k, v in deps.items():
        for p in v:
            children.setdefault(p, []).append(k)
    free = [i for i, e in enumerate(ordered) if e.id not in waiting]
    heapq.heapify(free)
    out: list[Event] = []
    done: set[str] = set()
    while len(out) < len(ordered):
        if not free:  # a cycle: release its earliest member
            i = min(rank[k] for k, n in waiting.items() if n > 0 and k not in done)
            waiting[ordered[i].id] = 0
            if broken is not None:
                broken.append(ordered[i].id)
            free.append(i)
        i = heapq.heappop(free)
        e = ordered[i]
        if e.id in done:
            continue
        done.add(e.id)
        out.append(e)
        for c in children.get(e.id, ()):
            if c in done:
                continue
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(free, rank[c])
    return out
