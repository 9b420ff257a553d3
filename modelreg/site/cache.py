"""Keeps the site's derived data (parsed manifests; what each model's pages were last built from) in the
user's cache directory, never in the registry or the published site. Losing or failing to use it only costs
time: every entry is re-derived from the registry when missing, unreadable or of another shape."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

FORMAT = 1


def cache_root(registry_path: str | os.PathLike[str]) -> Path | None:
    """``<cache dir of the registry>/site``, created; None when no usable cache directory exists."""
    try:
        try:
            from ..cachedir import cache_dir  # type: ignore[import-not-found]  # the shared location
        except ImportError:
            cache_dir = _cache_dir
        root = Path(cache_dir(registry_path)) / "site"
        _private_dir(root)
        return root
    except Exception:  # noqa: BLE001 - a cache that cannot be used is only slower
        return None


def _cache_dir(registry_path: str | os.PathLike[str]) -> Path:
    """The documented location (see docs/format.md): ``MODELREG_CACHE_DIR``, else ``$XDG_CACHE_HOME/modelreg``
    or ``~/.cache/modelreg``, then the SHA-256 of the registry's real path."""
    base = os.environ.get("MODELREG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "modelreg")
    path = Path(base) / hashlib.sha256(os.path.realpath(registry_path).encode()).hexdigest()
    _private_dir(path)
    return path


def _private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if needed; OSError unless it is a real directory owned by this user."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        raise OSError(f"{path} is not a private directory")


def read_json(path: Path) -> Any:
    """A cache file's JSON, or None when it is missing, unreadable, or not ``{"format": FORMAT, ...}``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace a cache file (temp + rename, not fsynced: it is derived); errors are ignored."""
    try:
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        tmp.write_text(json.dumps({**data, "format": FORMAT}, ensure_ascii=False, separators=(",", ":")),
                       encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


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
        m = self.entries.get(digest)
        if isinstance(m, dict) and m.get("name") == name and m.get("version") == version:
            return m
        return None

    def put(self, digest: str, manifest: dict[str, Any]) -> None:
        self.entries[digest] = manifest
        self.dirty = True

    def save(self, keep: set[str]) -> None:
        """Write the entries of ``keep`` (the model's current digests) if anything was added."""
        if self.path is None or not (self.dirty or keep != self.entries.keys()):
            return
        try:
            self.path.parent.mkdir(exist_ok=True)
        except OSError:
            return
        write_json(self.path, {"manifests": {d: m for d, m in self.entries.items() if d in keep}})


def state_path(root: Path | None, out: str | os.PathLike[str]) -> Path | None:
    """Where the build state of one output directory is kept."""
    if root is None:
        return None
    try:
        (root / "builds").mkdir(exist_ok=True)
    except OSError:
        return None
    return root / "builds" / (hashlib.sha256(os.path.realpath(out).encode()).hexdigest() + ".json")
