"""Writes the site's files: only those whose bytes changed, never through a symlink, and removes the
files an earlier build wrote that this build no longer produces.

An output directory is recognised by its marker file, ``.modelreg-site.json``, which lists
every file the last build wrote. A build refuses a non-empty directory without that marker
(it would otherwise mix its files with, or later delete, someone else's), and it only ever
deletes files that the marker lists and that lie inside the directory.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ..errors import UsageError

MARKER = ".modelreg-site.json"
MARKER_FORMAT = 1
_MAX_MARKER = 256 << 20
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _valid_rel(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or "\0" in rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


class Output:
    """One output directory during one build (one instance per process)."""

    def __init__(self, root: Path, previous: frozenset[str] = frozenset()) -> None:
        self.root = str(root)
        self.previous = previous
        self.written = 0
        self.unchanged = 0
        self._dirs: set[str] = {""}
        self._seq = 0

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, out: str | os.PathLike[str], registry_dir: Path | None = None) -> Output:
        """Prepare ``out`` (created if missing); UsageError if it is not ours to write."""
        root = Path(out).absolute()
        if registry_dir is not None:
            reg = Path(os.path.realpath(registry_dir))
            real = Path(os.path.realpath(root))
            if real == reg or reg in real.parents:
                raise UsageError(f"--out {out} is inside the registry directory {registry_dir}; choose another")
        if root.exists() and not root.is_dir():
            raise UsageError(f"--out {out} exists and is not a directory")
        previous: frozenset[str] = frozenset()
        if root.is_dir():
            marker = root / MARKER
            if os.path.lexists(marker):
                previous = _read_marker(marker)
            elif any(True for _ in os.scandir(root)):
                raise UsageError(
                    f"--out {out} is not empty and was not written by 'modelreg site build' "
                    f"(no {MARKER}); remove it or choose another directory"
                )
        else:
            root.mkdir(parents=True)
        return cls(root, previous)

    # ------------------------------------------------------------ writing
    def _ensure_dir(self, rel_dir: str) -> None:
        if rel_dir in self._dirs:
            return
        parent = rel_dir.rpartition("/")[0]
        self._ensure_dir(parent)
        path = os.path.join(self.root, rel_dir)
        try:
            os.mkdir(path)
        except FileExistsError:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                raise UsageError(f"refusing to write through the symlink {path}") from None
            if not stat.S_ISDIR(st.st_mode):
                if rel_dir in self.previous:  # a file of the last build stands where a directory goes now
                    os.unlink(path)
                    os.mkdir(path)
                else:
                    raise UsageError(f"{path} is a file where the site needs a directory") from None
        self._dirs.add(rel_dir)

    def write(self, rel: str, data: bytes) -> bool:
        """Write ``data`` to ``rel`` unless the file already holds exactly these bytes; True if written."""
        if not _valid_rel(rel):
            raise ValueError(f"bad site path {rel!r}")
        rel_dir, _, base = rel.rpartition("/")
        self._ensure_dir(rel_dir)
        path = os.path.join(self.root, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise UsageError(f"{path} is a directory where the site needs a file")
            if stat.S_ISREG(st.st_mode) and st.st_size == len(data) and _read(path) == data:
                self.unchanged += 1
                return False
        self._seq += 1
        tmp = os.path.join(self.root, rel_dir, f".tmp-{os.getpid()}-{self._seq}-{base}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)  # replaces a symlink itself, never writes through it
        self.written += 1
        return True

    # ------------------------------------------------------------ finishing
    def finish(self, files: set[str]) -> int:
        """Remove the previous build's files that ``files`` no longer has; write the marker. Returns the count removed."""
        removed = 0
        for rel in sorted(self.previous - files, reverse=True):
            if rel == MARKER or not self._inside(rel):
                continue
            path = os.path.join(self.root, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            os.unlink(path)
            removed += 1
            d = rel.rpartition("/")[0]
            while d:
                try:
                    os.rmdir(os.path.join(self.root, d))
                except OSError:
                    break
                d = d.rpartition("/")[0]
        body = {"generator": "modelreg site build", "format": MARKER_FORMAT, "files": sorted(files)}
        self.write(MARKER, (json.dumps(body, separators=(",", ":")) + "\n").encode())
        return removed

    def _inside(self, rel: str) -> bool:
        """True if every directory on the way to ``rel`` is a real directory (no symlink leads out)."""
        d = ""
        for part in rel.split("/")[:-1]:
            d = f"{d}/{part}" if d else part
            try:
                if not stat.S_ISDIR(os.lstat(os.path.join(self.root, d)).st_mode):
                    return False
            except FileNotFoundError:
                return False
        return True


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | O_NOFOLLOW)
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def _read_marker(marker: Path) -> frozenset[str]:
    """The files the last build wrote (invalid entries, or an unreadable marker, count as none)."""
    try:
        if not stat.S_ISREG(os.lstat(marker).st_mode) or os.lstat(marker).st_size > _MAX_MARKER:
            return frozenset()
        data = json.loads(_read(str(marker)))
    except (OSError, ValueError):
        return frozenset()
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        return frozenset()
    return frozenset(f for f in files if _valid_rel(f))
