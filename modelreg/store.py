"""Content-addressed object store: ``objects/ab/cdef...`` holds bytes whose SHA-256 is ``abcdef...``."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from . import canonical, fileio
from .errors import IntegrityError, NotFound, UsageError
from .hashing import sha256_bytes
from .names import check_digest

MAX_OBJECT = canonical.MAX_BYTES


class ObjectStore:
    """Immutable objects named by the SHA-256 of their exact bytes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        """The file that holds ``digest`` (validated before it becomes a path)."""
        hexd = check_digest(digest)[7:]
        return self.root / hexd[:2] / hexd[2:]

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its digest; storing existing bytes is a no-op."""
        if len(data) > MAX_OBJECT:
            raise UsageError(f"object larger than {MAX_OBJECT} bytes")
        digest = "sha256:" + sha256_bytes(data)
        path = self.path(digest)
        st = fileio.lstat(path)
        if st is not None and st.st_size == len(data):
            return digest
        fileio.makedirs(path.parent)
        fileio.atomic_write(path, data)
        return digest

    def exists(self, digest: str) -> bool:
        """True if the object file is present (its content is checked on read)."""
        st = fileio.lstat(self.path(digest))
        return st is not None and stat.S_ISREG(st.st_mode)

    def get(self, digest: str) -> bytes:
        """Return the bytes of ``digest``, refusing them if they do not hash to it."""
        path = self.path(digest)
        try:
            data = fileio.read_file(path, MAX_OBJECT)
        except FileNotFoundError:
            raise NotFound(f"object {digest} is missing from the store") from None
        if "sha256:" + sha256_bytes(data) != digest:
            raise IntegrityError(f"object {digest} is corrupt: its bytes do not match its name ({path})")
        return data

    def find(self, prefix: str) -> list[str]:
        """All digests starting with ``prefix`` (``sha256:`` and at least two hex digits)."""
        hexp = prefix[7:]
        shard = self.root / hexp[:2]
        try:
            names = fileio.listdir(shard)
        except (FileNotFoundError, NotADirectoryError):
            return []
        rest = hexp[2:]
        return sorted(
            f"sha256:{hexp[:2]}{n}" for n in names if n.startswith(rest) and not n.startswith(fileio.TMP_PREFIX)
        )

    def __iter__(self) -> Iterator[str]:
        """Every digest in the store (file names only; contents are not read)."""
        try:
            shards = sorted(fileio.listdir(self.root))
        except FileNotFoundError:
            return
        for shard in shards:
            d = self.root / shard
            if len(shard) != 2 or not fileio.is_dir(d):
                continue
            for name in sorted(fileio.listdir(d)):
                if not name.startswith(fileio.TMP_PREFIX):
                    yield f"sha256:{shard}{name}"
