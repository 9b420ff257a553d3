"""Streaming SHA-256 of files and streams in constant memory."""

from __future__ import annotations

import os
from collections.abc import Callable
TYPE_CHECKING = False  # typing is not imported at run time: this module is on the start-up path
if TYPE_CHECKING:
    from typing import BinaryIO

CHUNK = 1 << 20  # 1 MiB: large enough to keep hashlib at full speed, small enough to stay flat in memory

Progress = Callable[[int], None]
"""Called with the number of bytes just consumed."""


def sha256_stream(stream: BinaryIO, progress: Progress | None = None) -> tuple[str, int]:
    """Return (hex digest, byte count) of everything left in a binary stream."""
    import hashlib  # OpenSSL's SHA-256 (SHA-NI where present): the fast one for payloads

    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            h.update(view[:n])
        else:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            n = len(chunk)
            h.update(chunk)
        size += n
        if progress is not None:
            progress(n)
    return h.hexdigest(), size


def sha256_file(path: str | os.PathLike[str], progress: Progress | None = None) -> tuple[str, int]:
    """Return (hex digest, size) of a local file, read in chunks."""
    with open(path, "rb", buffering=0) as f:
        return sha256_stream(f, progress)


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of a bytes object.

    Small inputs (manifests, read on every ``resolve``) use CPython's built-in ``_sha256``,
    which costs nothing to import; ``hashlib`` loads OpenSSL (~2.5 ms of a cold start).
    """
    if len(data) <= _SMALL and _builtin_sha256 is not None:
        return _builtin_sha256(data).hexdigest()
    import hashlib

    return hashlib.sha256(data).hexdigest()


_SMALL = 1 << 16
try:
    from _sha256 import sha256 as _builtin_sha256  # CPython <= 3.11
except ImportError:  # pragma: no cover - 3.12+ names it _sha2
    try:
        from _sha2 import sha256 as _builtin_sha256  # type: ignore[no-redef]
    except ImportError:
        _builtin_sha256 = None
