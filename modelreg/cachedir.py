"""Where derived data lives: the user's cache directory, never inside the registry.

Anything under ``.modelreg/`` can arrive by git, so a cache kept there could be forged by a
pull request (fake licenses, params or lineage in ``search``) or booby-trapped with symlinks.
Caches and indexes therefore live in :func:`cache_dir`: ``MODELREG_CACHE_DIR``, else
``$XDG_CACHE_HOME/modelreg``, else ``~/.cache/modelreg``, then a subdirectory named by the
SHA-256 of the registry's real path (so each clone has its own).

A cache only ever saves time. The helpers here never raise: a cache that cannot be read
(missing, deleted mid-run, garbage) reads as absent, and one that cannot be written
(read-only, full disk) is simply not written. Callers validate what they read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

ENV = "MODELREG_CACHE_DIR"
MAX_FILE = 256 << 20  # a search cache of 100k versions is ~60 MB
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


def base_dir() -> Path:
    """``MODELREG_CACHE_DIR``, else ``$XDG_CACHE_HOME/modelreg``, else ``~/.cache/modelreg``."""
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(os.path.abspath(os.path.expanduser(explicit)))
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative value is invalid and ignored
        return Path(xdg) / "modelreg"
    try:
        return Path.home() / ".cache" / "modelreg"
    except (RuntimeError, KeyError):  # no HOME and no passwd entry
        return Path(tempfile.gettempdir()) / f"modelreg-cache-{getattr(os, 'getuid', lambda: 0)()}"


def cache_dir(registry_path: str | os.PathLike[str]) -> Path:
    """The directory for derived data of the registry at ``registry_path`` (not created here)."""
    real = os.path.realpath(registry_path)
    return base_dir() / hashlib.sha256(os.fsencode(real)).hexdigest()


def _open_read(path: str | os.PathLike[str]) -> int | None:
    """A descriptor of ``path`` opened for reading without following a link or blocking on a FIFO, or None."""
    try:
        return os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None


def read_bytes(path: str | os.PathLike[str], limit: int = MAX_FILE) -> bytes | None:
    """The bytes of a cache file, or None if it is missing, unreadable, too big or not a regular file."""
    fd = _open_read(path)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        if not _is_reg(st) or st.st_size > limit:
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_bytes_at_end(path: str | os.PathLike[str], size: int) -> bytes | None:
    """The last ``size`` bytes of a cache file (all of it if shorter), or None as :func:`read_bytes`."""
    fd = _open_read(path)
    if fd is None:
        return None
    try:
        st = os.fstat(fd)
        if not _is_reg(st):
            return None
        start = max(0, st.st_size - size)
        chunks, pos = [], start
        while pos < st.st_size:
            chunk = os.pread(fd, st.st_size - pos, pos)
            if not chunk:
                break
            chunks.append(chunk)
            pos += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str]) -> Any:
    """A cache file parsed as JSON, or None when it cannot be read or parsed."""
    data = read_bytes(path)
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _is_reg(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode)


def _makedirs(path: Path) -> bool:
    """Create ``path`` and missing parents, each private to the user (0700); False on failure."""
    missing = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        if p.parent == p:
            return False
        p = p.parent
    try:
        for d in reversed(missing):
            try:
                os.mkdir(d, 0o700)
            except FileExistsError:
                pass
        return True
    except OSError:
        return False


def ensure_dir(path: str | os.PathLike[str]) -> bool:
    """Create directory ``path`` (and parents) private to the user if missing; False if that failed
    or ``path`` is not a real directory (a link is never used)."""
    p = Path(path)
    if not _makedirs(p):
        return False
    try:
        import stat

        return stat.S_ISDIR(os.lstat(p).st_mode)
    except OSError:
        return False


def write_bytes(path: str | os.PathLike[str], data: bytes) -> bool:
    """Replace a cache file (temp file + rename, no fsync: it is derivable); False if that failed."""
    path = Path(path)
    if not _makedirs(path.parent):
        return False
    tmp = path.parent / f".tmp-{os.urandom(6).hex()}-{path.name}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False


def write_json(path: str | os.PathLike[str], value: Any) -> bool:
    """Write ``value`` as compact JSON (see :func:`write_bytes`)."""
    return write_bytes(path, json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def append_line(path: str | os.PathLike[str], line: bytes) -> bool:
    """Append one line to a cache file (created if needed); False if that failed."""
    path = Path(path)
    if not _makedirs(path.parent):
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY, 0o600)
    except OSError:
        return False
    try:
        if not _is_reg(os.fstat(fd)):
            return False
        os.write(fd, line)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def clear(path: str | os.PathLike[str]) -> None:
    """Remove a cache directory and everything in it (links are removed, never followed)."""
    shutil.rmtree(path, ignore_errors=True)
