"""Writes the site's files: only those whose bytes changed, never through a symlink, and removes the
files an earlier build wrote that this build no longer produces.

An output directory is recognised by its marker file, ``.modelreg-site.json``, which lists
every file the last build wrote. A build refuses a non-empty directory without that marker
(it would otherwise mix its files with, or later delete, someone else's), and it only ever
deletes files that the marker lists and that lie inside the directory.

Each file is written to ``.modelreg-tmp/`` and renamed into place, so a reader (or a
server) sees the old or the new page, never half of one. Each batch of new paths is
journalled there first; a build that was killed leaves temp files and journals behind, and
the next build counts the journalled paths as its own, removes the leftovers, and ends
with the marker again listing exactly the site's files.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ..errors import UsageError

MARKER = ".modelreg-site.json"
TMP_DIR = ".modelreg-tmp"
MARKER_FORMAT = 1
_MAX_MARKER = 256 << 20
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def valid_rel(rel: object) -> bool:
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
    @staticmethod
    def check(out: str | os.PathLike[str], registry_dir: Path | None = None) -> Path:
        """UsageError unless ``out`` is missing, empty, or a directory an earlier build wrote; changes nothing."""
        root = Path(out).absolute()
        if registry_dir is not None:
            reg = Path(os.path.realpath(registry_dir))
            real = Path(os.path.realpath(root))
            if real == reg or reg in real.parents:
                raise UsageError(f"--out {out} is inside the registry directory {registry_dir}; choose another")
        if root.exists() and not root.is_dir():
            raise UsageError(f"--out {out} exists and is not a directory")
        if root.is_dir() and not os.path.lexists(root / MARKER) and any(True for _ in os.scandir(root)):
            raise UsageError(
                f"--out {out} is not empty and was not written by 'modelreg site build' "
                f"(no {MARKER}); remove it or choose another directory"
            )
        return root

    @classmethod
    def open(cls, out: str | os.PathLike[str], registry_dir: Path | None = None) -> Output:
        """Prepare ``out`` (created if missing); UsageError if it is not ours to write."""
        root = cls.check(out, registry_dir)
        previous: frozenset[str] = frozenset()
        if root.is_dir():
            if os.path.lexists(root / MARKER):
                previous = _read_marker(root / MARKER) | _clear_tmp(root / TMP_DIR)
        else:
            root.mkdir(parents=True)
        if not os.path.lexists(root / MARKER):  # claim the directory before the first file lands in it
            _write_new(str(root / MARKER), _marker_bytes(previous))
        os.makedirs(root / TMP_DIR, exist_ok=True)
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
        if not valid_rel(rel):
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
        tmp = os.path.join(self.root, TMP_DIR, f"{os.getpid()}-{self._seq}")
        _write_new(tmp, data)
        os.replace(tmp, path)  # replaces a symlink itself, never writes through it
        self.written += 1
        return True

    def journal(self, rels: list[str]) -> None:
        """Record paths about to be written that the marker does not list yet (read back after a crash)."""
        new = [r for r in rels if r not in self.previous]
        if not new:
            return
        fd = os.open(os.path.join(self.root, TMP_DIR, f"journal-{os.getpid()}"),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND | O_NOFOLLOW, 0o644)
        try:
            os.write(fd, ("".join(r + "\n" for r in new)).encode("utf-8"))
        finally:
            os.close(fd)

    # ------------------------------------------------------------ finishing
    def finish(self, files: set[str]) -> int:
        """Remove the previous build's files that ``files`` no longer has and write the marker; the count removed."""
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
        self.write(MARKER, _marker_bytes(files))
        _clear_tmp(os.path.join(self.root, TMP_DIR))
        try:
            os.rmdir(os.path.join(self.root, TMP_DIR))
        except OSError:
            pass
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


def _marker_bytes(files: set[str] | frozenset[str]) -> bytes:
    body = {"generator": "modelreg site build", "format": MARKER_FORMAT, "files": sorted(files)}
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def _clear_tmp(tmp: str | os.PathLike[str]) -> frozenset[str]:
    """Remove what an interrupted build left in the temp directory; the paths its journals name."""
    found: set[str] = set()
    try:
        st = os.lstat(tmp)
    except FileNotFoundError:
        return frozenset()
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(tmp)
        return frozenset()
    for entry in os.scandir(tmp):
        if entry.name.startswith("journal-") and entry.is_file(follow_symlinks=False):
            try:
                found.update(r for r in _read(entry.path).decode("utf-8", "replace").splitlines() if valid_rel(r))
            except OSError:
                pass
        if entry.is_dir(follow_symlinks=False):
            continue
        os.unlink(entry.path)
    return frozenset(found)


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
    return frozenset(f for f in files if valid_rel(f))
