"""Keeps the site's derived data (parsed manifests; what each model's pages were last built from) in the
user's cache directory, never in the registry or the published site. Losing or failing to use it only costs
time: every entry is re-derived from the registry when missing, unreadable or of another shape."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

FORMAT = 1


def cache_root(registry_path: str | os.PathLike[str]) -> Path | None:
    """``<cache dir of the registry>/site`` (see :mod:`modelreg.cachedir`); None when there is none."""
    try:
        from ..cachedir import cache_dir

        return cache_dir(registry_path) / "site"
    except Exception:  # noqa: BLE001 - no cache only costs time
        return None


def read_json(path: Path) -> Any:
    """A cache file's JSON, or None when it is missing, unreadable, or not ``{"format": FORMAT, ...}``."""
    from ..cachedir import read_json as read

    data = read(path)
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace a cache file (temp + rename, not fsynced: it is derived); failures are ignored."""
    from ..cachedir import write_json as write

    write(path, {**data, "format": FORMAT})


class ManifestCache:
    """Parsed manifests of one model by digest. A digest names immutable bytes, so an entry never goes stale."""

    def __init__(self, root: Path | None, model: str) -> None:
        self.path = root / "manifests" / f"{model}.json" if root is not None else None
        self.entries: dict[str, Any] = {}
        self.dirty = False
        if self.path is not None:
            data = read_json(self.path)
            found = data.get("manifests") if data else None
            if isinstance(found, dict):
                self.entries = found

    def get(self, digest: str, name: str, version: str) -> dict[str, Any] | None:
        """The cached manifest of ``digest`` if it is one of ``name@version`` with the shapes pages rely on."""
        m = self.entries.get(digest)
        if isinstance(m, dict) and m.get("name") == name and m.get("version") == version and _shaped(m):
            return m
        return None

    def put(self, digest: str, manifest: dict[str, Any]) -> None:
        self.entries[digest] = manifest
        self.dirty = True

    def save(self, keep: set[str]) -> None:
        """Write the entries of ``keep`` (the model's current digests) if anything was added."""
        if self.path is None or not (self.dirty or keep != self.entries.keys()):
            return
        write_json(self.path, {"manifests": {d: m for d, m in self.entries.items() if d in keep}})


def _shaped(m: dict[str, Any]) -> bool:
    lists = {"artifacts": dict, "parents": dict, "tags": str}
    for key, item in lists.items():
        value = m.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, item) for x in value):
            return False
    if not all(isinstance(p.get("digest"), str) for p in m.get("parents", [])):
        return False
    return all(isinstance(m.get(k, {}), dict) for k in ("params", "meta"))


def state_path(root: Path | None, out: str | os.PathLike[str]) -> Path | None:
    """Where the build state of one output directory is kept."""
    if root is None:
        return None
    return root / "builds" / (hashlib.sha256(os.path.realpath(out).encode()).hexdigest() + ".json")
