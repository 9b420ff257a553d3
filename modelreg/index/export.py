"""What a static site (or any reader of the whole registry) needs, in one call, from the index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..registry import Registry


def site_data(reg: Registry, events: int = 200) -> dict[str, Any]:
    """``{"models": [...], "versions": [...], "events": [...]}`` as plain JSON-ready dicts.

    ``models`` are :meth:`Registry.models` (name, version count, stages, latest), ``versions``
    every version's search record (name, version, digest, stages, archived, tags, meta, params,
    metrics, license, parents, registered_at, fingerprint), models in name order and versions
    in registration order, and ``events`` the newest ``events`` events of every model, oldest
    first. Everything comes from the query index when it can be used (current with the
    registry's stamps), else from the registry itself; the answer is the same either way.
    """
    return {
        "models": [m.to_dict() for m in reg.models()],
        "versions": [r.to_dict() for r in reg.search()],
        "events": [e.to_dict() for e in reg.events(limit=events)],
    }
