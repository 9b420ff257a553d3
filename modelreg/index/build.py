"""``reindex``: drop the registry's derived data in the cache directory and build the index anew."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import cachedir

if TYPE_CHECKING:
    from ..registry import Registry


def reindex(reg: Registry) -> dict[str, int]:
    """Rebuild the index from the registry alone; model -> number of versions.

    Everything derived in the registry's cache directory goes (older releases' JSON search cache
    and fingerprint files too); never anything under ``.modelreg/``.
    """
    from .db import Index, Unavailable, connect
    from .refresh import refresh

    base = cachedir.cache_dir(reg.path)
    for old in ("search", "fingerprints"):
        cachedir.clear(base / old)
    try:
        con = connect(reg, fresh=True)
    except Unavailable:
        from .. import discovery

        counts: dict[str, int] = {}
        for r in discovery.record_dicts(reg):
            counts[r["name"]] = counts.get(r["name"], 0) + 1
        return {m: counts.get(m, 0) for m in reg.refs.models()}
    idx = Index(reg, con)
    try:
        refresh(idx)
        return {m["name"]: m["n_versions"] for m in idx.models()}
    finally:
        con.close()
