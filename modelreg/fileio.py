"""The small file primitives every read and write of a registry goes through.

- :func:`atomic_write`: temp file in the same directory, write, fsync, ``os.replace``,
  fsync the directory. Readers see the old bytes or the new bytes, never a mix.
- :func:`append_line`: one whole line per ``write`` with ``O_APPEND``, then fsync. A torn
  last line left by a crash is fenced off with a newline before the next append.
- :func:`read_file`: a whole regular file, with a size cap.
- :func:`lock`: an exclusive native lock (``flock``; on Windows through filelock, never a soft lock).
- :func:`makedirs`, :func:`unlink`, :func:`listdir`, :func:`lstat`, :func:`opendir`, :func:`walk`.

**Confinement.** Everything under ``.modelreg/`` arrives by git and is untrusted: a committed
symlink comes back from ``git clone`` and can point anywhere. A registry directory is
registered with :func:`confine` (``Registry`` does it on open); from then on every path
below it is reached component by component from a descriptor of that directory, each
directory opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent (``dir_fd``) and
the last component with ``O_NOFOLLOW``, like CPython's ``shutil._rmtree_safe_fd``. A
symlink anywhere on the way, the registry directory itself included, raises
:class:`SymlinkError` (exit 6): nothing is ever read or written through one. Paths
outside every confined directory (a user's ``--file``) are opened as usual. Platforms
without ``dir_fd`` (Windows) check each component with ``lstat`` instead.

``MODELREG_UNSAFE_NO_FSYNC=1`` skips every fsync (file and directory). It exists only so
the benchmark (``python -m modelreg.bench``) can build large fixture registries quickly;
the writes stay atomic (temp file + rename) but are not durable across power loss.
Never set it for a registry you care about. It is read once, at import.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import Conflict, IntegrityError

TMP_PREFIX = ".tmp-"
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_BINARY = getattr(os, "O_BINARY", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO planted in a registry must not hang
SMALL_READ = 1 << 16
MAX_DEPTH = 16  # the registry layout is three levels deep; a deeper tree is hostile
LOCK_POLL = 0.002  # seconds between tries; filelock defaults to 0.05 s, which starves waiters
UNSAFE_NO_FSYNC = os.environ.get("MODELREG_UNSAFE_NO_FSYNC") == "1"  # benchmarks only, see above

_FD_WALK = os.name != "nt" and bool(O_DIRECTORY) and os.open in os.supports_dir_fd
_DIR_FLAGS = os.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
_ROOTS: set[str] = set()


class SymlinkError(IntegrityError):
    """A symlink inside a registry: refused, never followed."""

    def __init__(self, path: str, advice: str | None = None) -> None:
        super().__init__(
            f"{path} is a symlink; modelreg never reads or writes through one (a committed symlink can point "
            "anywhere): " + (advice or "run 'modelreg fsck' to list every symlink, then replace each with the real "
                             "file or directory (git rm the link)")
        )
        self.path = path


def confine(path: str | os.PathLike[str]) -> str:
    """Declare ``path`` a registry directory: every later call on a path below it never follows a symlink.

    Returns the absolute path. ``path`` itself may not be a symlink either (checked on each use).
    """
    p = os.path.abspath(path)
    if p in _ROOTS:
        return p
    _ROOTS.add(p)
    try:
        real = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
        _ROOTS.add(real)  # the same directory spelled through its parents' real names
    except OSError:  # pragma: no cover - realpath does not fail on Linux/macOS
        pass
    return p


def _locate(path: str | os.PathLike[str]) -> tuple[str, list[str]] | None:
    """``(registry directory, components below it)`` if ``path`` lies in a confined directory."""
    if not _ROOTS:
        return None
    raw = os.fspath(path)
    if not os.path.isabs(raw):
        raw = os.path.join(os.getcwd(), raw)
    head, parts = raw, []
    while True:
        norm = os.path.normpath(head)
        if norm in _ROOTS:
            break
        parent, tail = os.path.split(head)
        if parent == head:
            return None
        if tail not in ("", "."):
            parts.append(tail)
        head = parent
    parts.reverse()
    if ".." in parts:
        raise IntegrityError(f"{raw} leaves the registry directory {norm}")
    return norm, parts


def _shown(root: str, parts: list[str]) -> str:
    return os.path.join(root, *parts)


def _is_link(dir_fd: int | None, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _refuse_link(exc: OSError, dir_fd: int | None, name: str, shown: str) -> None:
    """Turn the error of a no-follow open into SymlinkError when a link was in the way."""
    if exc.errno in (errno.ELOOP, errno.EMLINK) or (exc.errno == errno.ENOTDIR and _is_link(dir_fd, name)):
        raise SymlinkError(shown) from None
    if exc.filename is None or exc.filename == name:
        exc.filename = shown


def _open_root(root: str, create: bool) -> int:
    try:
        return os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        if not create:
            raise
        os.makedirs(os.path.dirname(root), exist_ok=True)  # the project's own directories
        try:
            os.mkdir(root)
        except FileExistsError:
            pass
        fsync_dir(os.path.dirname(root))
        return os.open(root, _DIR_FLAGS)
    except OSError as exc:
        _refuse_link(exc, None, root, root)
        raise


def _open_sub(fd: int, name: str, shown: str, create: bool) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), shown) from None
    except OSError as exc:
        _refuse_link(exc, fd, name, shown)
        raise
    try:
        os.mkdir(name, 0o777, dir_fd=fd)
    except FileExistsError:
        pass
    _fsync(fd)  # the new entry in its parent
    return _open_sub(fd, name, shown, False)


@contextmanager
def _dir_fd(path: str | os.PathLike[str], create: bool = False) -> Iterator[int | None]:
    """A descriptor of directory ``path`` reached without following links (None where unsupported)."""
    where = _locate(path)
    if not _FD_WALK:
        if where is not None:
            _lstat_walk(*where, create=create)
        elif create:
            os.makedirs(path, exist_ok=True)
        yield None
        return
    if where is None:
        if create:
            makedirs_plain(path)
        fd = os.open(path, os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    else:
        root, parts = where
        fd = _open_root(root, create)
        try:
            for i, name in enumerate(parts):
                nfd = _open_sub(fd, name, _shown(root, parts[: i + 1]), create)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
    try:
        yield fd
    finally:
        os.close(fd)


def _lstat_walk(root: str, parts: list[str], create: bool) -> None:  # pragma: no cover - Windows
    """Where directory descriptors are not available: refuse a link on the way, one lstat per component."""
    p = root
    for name in ["", *parts]:
        p = os.path.join(p, name) if name else p
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(p)
            continue
        if stat.S_ISLNK(st.st_mode) or getattr(st, "st_reparse_tag", 0):
            raise SymlinkError(p)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), p)


@contextmanager
def _parent(path: str | os.PathLike[str], create: bool = False) -> Iterator[tuple[int | None, str, str]]:
    """``(descriptor of the parent directory, last component, path for messages)``."""
    p = os.fspath(path)
    parent, name = os.path.split(p)
    if not name:
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), p)
    with _dir_fd(parent or ".", create) as fd:
        yield fd, (name if fd is not None else p), p


def _open_at(fd: int | None, name: str, flags: int, shown: str, mode: int = 0o644) -> int:
    """Open the last component, never following it when the path is confined."""
    try:
        return os.open(name, flags | O_NOFOLLOW | O_CLOEXEC | O_BINARY, mode, dir_fd=fd)
    except OSError as exc:
        _refuse_link(exc, fd, name, shown)
        raise


def _regular(fd: int, shown: str) -> os.stat_result:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown)
    if not stat.S_ISREG(st.st_mode):
        raise IntegrityError(f"{shown} is not a regular file (a registry holds only files and directories)")
    return st


def _fsync(fd: int) -> None:
    if not UNSAFE_NO_FSYNC:
        os.fsync(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry change (create, rename) to disk where the OS allows it."""
    if os.name == "nt" or UNSAFE_NO_FSYNC:  # pragma: no cover - directories cannot be opened on Windows
        return
    with _dir_fd(path) as fd:
        if fd is not None:
            os.fsync(fd)


def makedirs_plain(path: str | os.PathLike[str]) -> None:
    """Create a directory and its parents (outside a registry), fsyncing each parent that gained an entry."""
    missing = []
    p = os.path.abspath(path)
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        if not UNSAFE_NO_FSYNC and os.name != "nt":
            fd = os.open(os.path.dirname(d), os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def makedirs(path: str | os.PathLike[str]) -> None:
    """Create a directory and its parents, fsyncing each parent that gained an entry."""
    with _dir_fd(path, create=True):
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # a full device may accept nothing without saying why
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with _parent(path) as (dfd, name, shown):
        base = os.path.basename(name)
        tmp_name = f"{TMP_PREFIX}{os.urandom(6).hex()}-{base}"
        tmp = tmp_name if dfd is not None else os.path.join(os.path.dirname(name), tmp_name)
        fd = _open_at(dfd, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, shown)
        try:
            try:
                _write_all(fd, data)
                _fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException as exc:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            if isinstance(exc, OSError) and exc.filename is None:  # os.write/fsync name no file: say which
                raise OSError(exc.errno, exc.strerror or str(exc), shown) from exc
            raise
        if dfd is not None:
            _fsync(dfd)


def append_line(path: str | os.PathLike[str], line: bytes) -> None:
    """Append one newline-terminated record to ``path`` in a single write, then fsync.

    If the write or the fsync fails (ENOSPC, a short write, EIO), the file is truncated back
    to its size before the call, so it is exactly as it was, and the OSError names the file.
    """
    if not line.endswith(b"\n") or b"\n" in line[:-1]:
        raise ValueError("append_line takes exactly one line ending in a newline")
    with _parent(path) as (dfd, name, shown):
        created = False
        try:
            fd = _open_at(dfd, name, os.O_RDWR | os.O_APPEND | O_NONBLOCK, shown)
        except FileNotFoundError:
            fd = _open_at(dfd, name, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, shown)
            created = True
        try:
            size = _regular(fd, shown).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # fence off a torn last line left by a crash
            try:
                _write_all(fd, line)
                _fsync(fd)
            except BaseException as exc:  # ENOSPC, a short write, EIO: leave the file exactly as it was
                try:
                    os.ftruncate(fd, size)
                    _fsync(fd)
                except OSError:
                    pass  # the torn tail is fenced off by the next append and reported by fsck
                if isinstance(exc, OSError) and exc.filename is None:
                    raise OSError(exc.errno, exc.strerror or str(exc), shown) from exc
                raise
        finally:
            os.close(fd)
        if created and dfd is not None:
            _fsync(dfd)


def open_read(path: str | os.PathLike[str]) -> int:
    """A descriptor of regular file ``path`` for reading (the caller closes it)."""
    with _parent(path) as (dfd, name, shown):
        fd = _open_at(dfd, name, os.O_RDONLY | O_NONBLOCK, shown)
    try:
        _regular(fd, shown)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_fd(fd: int, shown: str, limit: int | None) -> bytes:
    if limit is not None and limit <= SMALL_READ:
        # Ref files, read by the thousand in listings: one read() instead of
        # fstat + read + read-to-EOF (a regular file returns short only at EOF).
        data = os.read(fd, limit + 1)
        if len(data) > limit:
            raise IntegrityError(f"{shown} is larger than {limit} bytes")
        return data
    size = os.fstat(fd).st_size
    if limit is not None and size > limit:
        raise IntegrityError(f"{shown} is larger than {limit} bytes")
    chunks = []
    while True:
        chunk = os.read(fd, max(size + 1, 1 << 16) if not chunks else 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_file(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """Read a whole regular file; refuse files over ``limit`` bytes."""
    with _parent(path) as (dfd, name, shown):
        return _read_at(dfd, name, shown, limit)


def _read_at(dfd: int | None, name: str, shown: str, limit: int | None) -> bytes:
    """The bytes of ``name`` under ``dfd`` (not followed if a link), a regular file of at most ``limit``."""
    fd = _open_at(dfd, name, os.O_RDONLY | O_NONBLOCK, shown)
    try:
        if limit is None or limit > SMALL_READ:
            _regular(fd, shown)
        try:
            return _read_fd(fd, shown, limit)
        except IsADirectoryError:
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown) from None
    finally:
        os.close(fd)


def read_lines(path: str | os.PathLike[str], max_line: int) -> Iterator[tuple[int, bytes, bool]]:
    """Stream ``(line number, line without its newline, is the last line)`` of a file.

    Memory stays bounded by ``max_line``: a longer line is yielded cut to ``max_line + 1`` bytes
    (callers treat it as unreadable) and the rest of it is skipped.
    """
    fd = open_read(path)
    try:
        buf = b""
        lineno = 0
        skipping = False
        pending: tuple[int, bytes] | None = None
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            buf += chunk
            start = 0
            while True:
                nl = buf.find(b"\n", start)
                if nl < 0:
                    break
                if skipping:
                    skipping = False
                else:
                    lineno += 1
                    if pending is not None:
                        yield pending[0], pending[1], False
                    pending = (lineno, buf[start:nl])
                start = nl + 1
            buf = buf[start:]
            if len(buf) > max_line:
                if not skipping:
                    lineno += 1
                    if pending is not None:
                        yield pending[0], pending[1], False
                    pending = (lineno, buf[: max_line + 1])
                    skipping = True
                buf = b""
        if buf and not skipping:
            lineno += 1
            if pending is not None:
                yield pending[0], pending[1], False
            pending = (lineno, buf)
        if pending is not None:
            yield pending[0], pending[1], True
    finally:
        os.close(fd)


def unlink(path: str | os.PathLike[str], missing_ok: bool = False) -> None:
    """Remove a file (a link is removed, never followed); fsync its directory."""
    with _parent(path) as (dfd, name, shown):
        try:
            os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            if missing_ok:
                return
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), shown) from None
        if dfd is not None:
            _fsync(dfd)


def lstat(path: str | os.PathLike[str]) -> os.stat_result | None:
    """``lstat`` of ``path`` (None if it does not exist); the directories on the way are not followed."""
    try:
        with _parent(path) as (dfd, name, _shown_path):
            return os.lstat(name, dir_fd=dfd)
    except (FileNotFoundError, NotADirectoryError):
        return None


def exists(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` exists (a link counts as existing and is not followed)."""
    return lstat(path) is not None


def is_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a real directory (not a link to one)."""
    st = lstat(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def listdir(path: str | os.PathLike[str]) -> list[str]:
    """The names in directory ``path`` (FileNotFoundError / NotADirectoryError as usual)."""
    with _dir_fd(path) as fd:
        return os.listdir(fd if fd is not None else path)


def has_entries(path: str | os.PathLike[str]) -> bool:
    """True if directory ``path`` holds a name not starting with ``.``; False if it holds none or
    does not exist. Stops at the first such name: one ``getdents`` of a directory of any size."""
    try:
        with _dir_fd(path) as fd:
            with os.scandir(fd if fd is not None else path) as it:  # type: ignore[type-var]
                return any(not e.name.startswith(".") for e in it)
    except (FileNotFoundError, NotADirectoryError):
        return False


class Dir:
    """An open directory: read and list many entries with one walk to it (see :func:`opendir`)."""

    def __init__(self, fd: int | None, path: str) -> None:
        self.fd, self.path = fd, path

    def _name(self, name: str) -> str:
        return name if self.fd is not None else os.path.join(self.path, name)

    def listdir(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.path)

    def read(self, name: str, limit: int | None = None) -> bytes:
        return _read_at(self.fd, self._name(name), os.path.join(self.path, name), limit)

    def lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.lstat(self._name(name), dir_fd=self.fd)
        except FileNotFoundError:
            return None


@contextmanager
def opendir(path: str | os.PathLike[str]) -> Iterator[Dir]:
    """Open directory ``path`` once (without following links) for many reads of its entries."""
    with _dir_fd(path) as fd:
        yield Dir(fd, os.fspath(path))


def walk(top: str | os.PathLike[str]) -> Iterator[tuple[str, list[str], list[tuple[str, os.stat_result]]]]:
    """Walk a directory tree without following links: ``(dirpath, dirnames, [(name, lstat)])``.

    Links and other non-directories come in the second list with their ``lstat`` (callers
    decide: fsck reports them, other commands refuse). Removing a name from ``dirnames``
    prunes it. A tree deeper than MAX_DEPTH raises IntegrityError.
    """
    with _dir_fd(top) as fd:
        if fd is None:  # pragma: no cover - Windows
            for dirpath, dirnames, filenames in os.walk(top):
                entries = []
                for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                    entries.append((n, os.lstat(os.path.join(dirpath, n))))
                dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
                yield dirpath, dirnames, entries
            return
        yield from _walk_fd(fd, os.fspath(top), 0)


def _walk_fd(fd: int, path: str, depth: int) -> Iterator[tuple[str, list[str], list[tuple[str, os.stat_result]]]]:
    if depth > MAX_DEPTH:
        raise IntegrityError(f"{path} is nested more than {MAX_DEPTH} directories deep")
    dirs: dict[str, os.stat_result] = {}
    others: list[tuple[str, os.stat_result]] = []
    for name in sorted(os.listdir(fd)):
        try:
            st = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            dirs[name] = st
        else:
            others.append((name, st))
    dirnames = list(dirs)
    yield path, dirnames, others
    for name in dirnames:
        shown = os.path.join(path, name)
        try:
            cfd = _open_sub(fd, name, shown, False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            if not os.path.samestat(dirs[name], os.fstat(cfd)):  # swapped since the lstat
                raise SymlinkError(shown)
            yield from _walk_fd(cfd, shown, depth + 1)
        finally:
            os.close(cfd)


def rmtree(path: str | os.PathLike[str]) -> None:
    """Remove a directory and everything below it; links are removed, never followed."""
    with _dir_fd(path) as fd:
        if fd is None:  # pragma: no cover - Windows
            import shutil

            shutil.rmtree(path)
            return
        _rmtree_fd(fd, os.fspath(path), 0)
    with _parent(path) as (dfd, name, _shown_path):
        os.rmdir(name, dir_fd=dfd)


def _rmtree_fd(fd: int, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise IntegrityError(f"{path} is nested more than {MAX_DEPTH} directories deep")
    for name in os.listdir(fd):
        try:
            st = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=fd)
            continue
        cfd = _open_sub(fd, name, os.path.join(path, name), False)
        try:
            if not os.path.samestat(st, os.fstat(cfd)):
                raise SymlinkError(os.path.join(path, name))
            _rmtree_fd(cfd, os.path.join(path, name), depth + 1)
        finally:
            os.close(cfd)
        os.rmdir(name, dir_fd=fd)


def lock_timeout() -> float:
    """Seconds to wait for a lock: ``MODELREG_LOCK_TIMEOUT`` (a positive number; UsageError otherwise) or 10."""
    from .settings import lock_timeout as from_environment

    return from_environment()


@contextmanager
def lock(path: str | os.PathLike[str], timeout: float | None = None, *, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive native lock on ``path`` (created if needed); Conflict on timeout.

    POSIX: ``flock`` on the file opened without following a link (the kernel releases it
    when the holder dies, so a lock file left on disk never blocks anyone). ``shared``: a
    shared lock, held by many at once and excluding an exclusive one (Windows: exclusive).
    """
    timeout = lock_timeout() if timeout is None else timeout
    if os.name == "nt":  # pragma: no cover
        yield from _filelock(path, timeout)
        return
    import fcntl

    with _parent(path, create=False) as (dfd, name, shown):
        fd = _open_at(dfd, name, os.O_RDWR | os.O_CREAT | O_NONBLOCK, shown)
    try:
        _regular(fd, shown)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Conflict(
                        f"could not take the lock {path} within {timeout:g}s: another writer holds it"
                    ) from None
                time.sleep(LOCK_POLL)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _filelock(path: str | os.PathLike[str], timeout: float) -> Iterator[None]:  # pragma: no cover - Windows
    import filelock

    fl = filelock.WindowsFileLock(str(path), timeout=timeout, thread_local=False, fallback_to_soft=False)
    try:
        fl.acquire(poll_interval=LOCK_POLL)
    except filelock.Timeout:
        raise Conflict(f"could not take the lock {path} within {timeout:g}s: another writer holds it") from None
    try:
        yield
    finally:
        fl.release()


def prefetch(paths: list[str], threads: int = 16) -> None:
    """Ask the kernel to start reading many small files (``posix_fadvise(WILLNEED)``), from a few
    threads, so a pass that then reads them one by one (fsck, an index build) waits on the disk
    once instead of once per file. A hint only: nothing is read into Python, a failure is ignored,
    and the last component is opened without following a link."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None or not paths:
        return

    def one(p: str) -> None:
        try:
            fd = os.open(p, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        except OSError:
            return
        try:
            advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, paths))
