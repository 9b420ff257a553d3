"""The small file primitives every write goes through.

- :func:`atomic_write`: temp file in the same directory, write, fsync, ``os.replace``,
  fsync the directory. Readers see the old bytes or the new bytes, never a mix.
- :func:`append_line`: one whole line per ``write`` with ``O_APPEND``, then fsync. A torn
  last line left by a crash is fenced off with a newline before the next append.
- :func:`read_file`: open without following a symlink in the last component, with a size cap.
- :func:`lock`: an exclusive native lock (``fcntl``/``msvcrt`` through filelock, never a soft lock).

``MODELREG_UNSAFE_NO_FSYNC=1`` skips every fsync (file and directory). It exists only so
the benchmark (``python -m modelreg.bench``) can build large fixture registries quickly;
the writes stay atomic (temp file + rename) but are not durable across power loss.
Never set it for a registry you care about. It is read once, at import.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import Conflict, IntegrityError

TMP_PREFIX = ".tmp-"
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_BINARY = getattr(os, "O_BINARY", 0)
SMALL_READ = 1 << 16
LOCK_POLL = 0.002  # seconds between tries; filelock defaults to 0.05 s, which starves waiters
UNSAFE_NO_FSYNC = os.environ.get("MODELREG_UNSAFE_NO_FSYNC") == "1"  # benchmarks only, see above


def _fsync(fd: int) -> None:
    if not UNSAFE_NO_FSYNC:
        os.fsync(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry change (create, rename) to disk where the OS allows it."""
    if os.name == "nt" or UNSAFE_NO_FSYNC:  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(path: str | os.PathLike[str]) -> None:
    """Create a directory and its parents, fsyncing each parent that gained an entry."""
    path = Path(path)
    if path.is_dir():
        return
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        fsync_dir(d.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # a full device may accept nothing without saying why
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    path = Path(path)
    tmp = path.parent / f"{TMP_PREFIX}{os.urandom(6).hex()}-{path.name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_BINARY, 0o644)
    try:
        try:
            _write_all(fd, data)
            _fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:  # os.write/fsync name no file: say which
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    fsync_dir(path.parent)


def append_line(path: str | os.PathLike[str], line: bytes) -> None:
    """Append one newline-terminated record to ``path`` in a single write, then fsync.

    If the write or the fsync fails (ENOSPC, a short write, EIO), the file is truncated back
    to its size before the call, so it is exactly as it was, and the OSError names the file.
    """
    if not line.endswith(b"\n") or b"\n" in line[:-1]:
        raise ValueError("append_line takes exactly one line ending in a newline")
    path = Path(path)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | O_NOFOLLOW | O_BINARY, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # fence off a torn last line left by a crash
        try:
            _write_all(fd, line)
            _fsync(fd)
        except BaseException as exc:
            try:
                os.ftruncate(fd, size)
                _fsync(fd)
            except OSError:
                pass  # the torn tail is fenced off by the next append and reported by fsck
            if isinstance(exc, OSError) and exc.filename is None:
                raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
            raise
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def read_file(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """Read a whole file without following a final symlink; refuse files over ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_BINARY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntegrityError(f"{path} is a symlink; the registry never contains symlinks") from None
        raise
    try:
        if limit is not None and limit <= SMALL_READ:
            # Ref files, read by the thousand in listings: one read() instead of
            # fstat + read + read-to-EOF (a regular file returns short only at EOF).
            data = os.read(fd, limit + 1)
            if len(data) > limit:
                raise IntegrityError(f"{path} is larger than {limit} bytes")
            return data
        if limit is not None and os.fstat(fd).st_size > limit:
            raise IntegrityError(f"{path} is larger than {limit} bytes")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def lock_timeout() -> float:
    """Seconds to wait for a lock: ``MODELREG_LOCK_TIMEOUT`` (a positive number; UsageError otherwise) or 10."""
    from .settings import lock_timeout as from_environment

    return from_environment()


@contextmanager
def lock(path: str | os.PathLike[str], timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive native lock on ``path`` (created if needed); Conflict on timeout."""
    import filelock

    native = filelock.WindowsFileLock if os.name == "nt" else filelock.UnixFileLock
    timeout = lock_timeout() if timeout is None else timeout
    fl = native(str(path), timeout=timeout, thread_local=False, fallback_to_soft=False)
    try:
        fl.acquire(poll_interval=LOCK_POLL)
    except filelock.Timeout:
        raise Conflict(f"could not take the lock {path} within {timeout:g}s: another writer holds it") from None
    try:
        yield
    finally:
        fl.release()
