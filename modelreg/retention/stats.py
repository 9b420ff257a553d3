"""``modelreg stats [NAME]``: versions, archived, purged, stage holders, bytes and what retention archives next."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..registry import Registry


def _key(a: dict[str, Any]) -> str:
    return a.get("sha256") or a.get("tree") or a["uri"]  # the same bytes (or tree) stored twice count once


def model_stats(reg: Registry, name: str, keep: int | None) -> tuple[dict[str, Any], dict[str, int], dict[str, int]]:
    """One model's figures, and its distinct artifacts (key -> size) stored and live, for the totals."""
    from ..discovery import model_records
    from .rules import plan

    digests = reg.refs.versions(name)
    state = reg.model_state(name)
    holders = reg.stage_holders(name)
    stages = {}
    for s in reg._stage_order(holders):
        try:
            stages[s] = reg._identity(holders[s]).version
        except Exception:  # noqa: BLE001 - an unreadable holder is fsck's to name; stats still count
            stages[s] = None
    stored: dict[str, int] = {}
    live: dict[str, int] = {}
    purged_bytes: dict[str, int] = {}
    for rec in model_records(reg, name):
        st = state.versions.get(rec["version"])
        for a in rec.get("artifacts") or []:
            size = a.get("size") or 0
            if st is not None and a["uri"] in st.purged:
                purged_bytes[_key(a)] = size
                continue
            stored[_key(a)] = size
            if not (st and st.archived):
                live[_key(a)] = size
    archived = sum(1 for v in digests if state.versions.get(v) and state.versions[v].archived)
    purged = sum(1 for v in digests if state.versions.get(v) and state.versions[v].purged)
    would = [r.version for r in plan(reg, name, keep, state, digests, holders)] if keep is not None else []
    return {
        "name": name,
        "versions": len(digests),
        "archived": archived,
        "purged": purged,
        "stages": stages,
        "bytes": sum(stored.values()),
        "live_bytes": sum(live.values()),
        "purged_bytes": sum(purged_bytes.values()),
        "would_archive": would,
    }, stored, live


def stats(reg: Registry, name: str | None = None) -> dict[str, Any]:
    """Per model (``name``: that model only) and in total; see docs/policy.md, "Statistics"."""
    from ..names import check_model
    from .rules import from_config

    rule = from_config(reg.config.raw)
    if name is not None:
        check_model(name)
        reg._require_model(name)
        out, _, _ = model_stats(reg, name, rule.keep)
        out["retention"] = rule.to_dict()
        return out
    models = reg.refs.models()
    per_model: dict[str, Any] = {}
    stored: dict[str, int] = {}
    live: dict[str, int] = {}
    per_stage: dict[str, int] = {s: 0 for s in reg.stages}
    for m in models:
        figures, s, lv = model_stats(reg, m, rule.keep)
        per_model[m] = figures
        stored.update(s)
        live.update(lv)
        for stage in figures["stages"]:
            per_stage[stage] = per_stage.get(stage, 0) + 1
    size, files = _disk(reg)
    return {
        "models": len(models),
        "versions": sum(f["versions"] for f in per_model.values()),
        "archived": sum(f["archived"] for f in per_model.values()),
        "purged": sum(f["purged"] for f in per_model.values()),
        "stages": per_stage,
        "bytes": sum(stored.values()),
        "live_bytes": sum(live.values()),
        "purged_bytes": sum(f["purged_bytes"] for f in per_model.values()),
        "size_bytes": size,
        "files": files,
        "retention": rule.to_dict(),
        "would_archive": [f"{m}@{v}" for m, f in per_model.items() for v in f["would_archive"]],
        "per_model": per_model,
    }


def _disk(reg: Registry) -> tuple[int, int]:
    """Bytes and files of ``.modelreg/`` itself, locks and the cache left out."""
    size = files = 0
    for dirpath, dirnames, filenames in os.walk(reg.path):
        if Path(dirpath) in (reg.locks_dir, reg.path / "cache"):
            dirnames[:] = []
            continue
        for f in filenames:
            try:
                size += os.lstat(os.path.join(dirpath, f)).st_size
                files += 1
            except FileNotFoundError:
                pass
    return size, files
