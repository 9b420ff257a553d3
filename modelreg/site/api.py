"""Builds the static JSON API written beside the pages (``api/…``): plain documents a gateway can poll.

Shapes are specified in docs/site.md. Every document carries ``"api": 1``; nothing in them
depends on when the build ran, so an unchanged registry produces byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .data import Holder, ModelData, SiteData, VersionData

API_VERSION = 1
PER_PAGE = 1000


def dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def page_name(page: int) -> str:
    """``versions.json`` for the first page, ``versions-N.json`` after it."""
    return "versions.json" if page == 1 else f"versions-{page}.json"


def _holder(h: Holder | None) -> dict[str, Any] | None:
    return None if h is None else {"version": h.version, "digest": h.digest, "since": h.since, "by": h.by,
                                   "reason": h.reason, "action": h.action}


def _stages(m: ModelData, site: SiteData) -> dict[str, Any]:
    names = list(site.stages) + [s for s in m.holders if s not in site.stages]
    return {s: _holder(m.holders.get(s)) for s in names}


def model_entry(m: ModelData, site: SiteData) -> dict[str, Any]:
    latest = m.latest
    return {
        "name": m.name,
        "description": m.fields.get("description"),
        "versions": len(m.versions),
        "archived": m.archived,
        "latest": latest.version if latest else None,
        "stages": _stages(m, site),
        "href": f"{m.name}.json",
    }


def models_doc(site: SiteData) -> dict[str, Any]:
    return {"api": API_VERSION, "stages": list(site.stages), "models": [model_entry(m, site) for m in site.models]}


def model_doc(m: ModelData, site: SiteData) -> dict[str, Any]:
    latest = m.latest
    registered = [v.registered_at for v in m.versions if v.registered_at]
    pages = max(1, -(-len(m.versions) // PER_PAGE))
    stage_names = list(site.stages) + [s for s in m.holders if s not in site.stages]
    return {
        "api": API_VERSION,
        "name": m.name,
        "fields": m.fields,
        "versions": len(m.versions),
        "archived": m.archived,
        "events": len(m.events),
        "latest": latest.listing() if latest else None,
        "first_registered": min(registered) if registered else None,
        "last_registered": max(registered) if registered else None,
        "stages": _stages(m, site),
        "checks": m.checks,
        "links": {
            "versions": f"{m.name}/versions.json",
            "pages": pages,
            "stages": {s: f"{m.name}/{s}.json" for s in stage_names},
            "html": f"../{m.name}/index.html",
        },
    }


def version_pages(m: ModelData) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(file name, document)`` for every page of a model's versions, oldest first."""
    total = len(m.versions)
    pages = max(1, -(-total // PER_PAGE))
    for page in range(1, pages + 1):
        chunk = m.versions[(page - 1) * PER_PAGE: page * PER_PAGE]
        yield page_name(page), {
            "api": API_VERSION,
            "name": m.name,
            "page": page,
            "pages": pages,
            "per_page": PER_PAGE,
            "total": total,
            "order": "registration",
            "prev": page_name(page - 1) if page > 1 else None,
            "next": page_name(page + 1) if page < pages else None,
            "versions": [v.listing() for v in chunk],
        }


def stage_doc(m: ModelData, stage: str) -> dict[str, Any]:
    h = m.holders.get(stage)
    v: VersionData | None = None
    if h is not None:
        v = next((x for x in m.versions if x.digest == h.digest), None)
    return {
        "api": API_VERSION,
        "name": m.name,
        "stage": stage,
        "version": h.version if h else None,
        "digest": h.digest if h else None,
        "since": h.since if h else None,
        "by": h.by if h else None,
        "reason": h.reason if h else None,
        "action": h.action if h else None,
        "archived": v.archived if v else None,
        "manifest": v.manifest if v else None,
        "metrics": v.metrics if v else None,
        "bindings": v.bindings if v else None,
    }


def stats_doc(site: SiteData) -> dict[str, Any]:
    return {
        "api": API_VERSION,
        "registry": site.stats,
        "models": {
            m.name: {
                "versions": len(m.versions),
                "archived": m.archived,
                "events": len(m.events),
                "stages": {s: h.version for s, h in m.holders.items()},
            }
            for m in site.models
        },
    }
