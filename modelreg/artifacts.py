"""Artifact entries of a manifest: local files hashed at registration, remote URIs as given."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .errors import NotFound, UsageError
from .hashing import sha256_file

ProgressFactory = Callable[[str, int], Callable[[int], None] | None]


def is_local(uri: str) -> bool:
    """True for a plain path or a ``file://`` URI."""
    return uri.startswith("file://") or "://" not in uri


def local_path(uri: str, root: Path) -> Path:
    """The filesystem path of a local artifact URI (relative paths are relative to ``root``)."""
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    p = Path(uri)
    return p if p.is_absolute() else root / p


def store_form(path: Path, root: Path) -> str:
    """How a local path is written in a manifest: relative to the project root if inside it, else file://."""
    real = Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    try:
        return real.relative_to(real_root).as_posix()
    except ValueError:
        return real.as_uri()


def describe(spec: dict[str, Any], root: Path, progress: ProgressFactory | None = None) -> dict[str, Any]:
    """The manifest entry for one artifact spec ``{role, uri[, sha256, size]}``."""
    uri = spec["uri"]
    if not is_local(uri):
        return spec
    path = local_path(uri, root)
    if not path.exists():
        raise NotFound(f"artifact not found: {uri}")
    if not path.is_file():
        raise UsageError(f"artifact {uri} is a directory, not a file")
    cb = progress(str(uri), path.stat().st_size) if progress else None
    sha, size = sha256_file(path, cb)
    if spec.get("sha256") not in (None, sha):
        raise UsageError(f"artifact {uri}: given sha256 does not match the file ({sha[:12]}...)")
    return {"role": spec["role"], "uri": store_form(path, root), "sha256": sha, "size": size}
