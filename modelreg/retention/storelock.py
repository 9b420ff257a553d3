"""The artifact-store lock: registrations share it, ``prune --purge`` holds it alone while it deletes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import Conflict, StorageError

# Not a valid model name (those start with a letter or digit), so never a model's lock file.
NAME = "_artifact-store.lock"


@contextmanager
def held(locks_dir: Path, *, shared: bool) -> Iterator[None]:
    """Hold ``locks/_artifact-store.lock``: shared (many registrations at once) or exclusive (a purge).

    A registration holds it from the moment it looks at its artifacts until its event is written,
    so a purge never deletes an object that a registration in flight is about to reference, and a
    registration never records an object a purge is deleting. ``flock`` where the OS has it (the
    kernel releases it when a holder dies); elsewhere an exclusive native lock. Waiting is bounded
    by ``MODELREG_LOCK_TIMEOUT`` (a Conflict, exit 4, like a model's lock).
    """
    from .. import fileio

    path = locks_dir / NAME
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no shared locks through filelock
        fileio.makedirs(locks_dir)
        with fileio.lock(path):
            yield
        return
    timeout = fileio.lock_timeout()
    try:
        fileio.makedirs(locks_dir)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | fileio.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise StorageError(f"could not take the lock {path}: {exc.strerror or exc}") from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    who = "a purge holds it" if shared else "a registration or purge holds it"
                    raise Conflict(f"could not take the lock {path} within {timeout:g}s: {who}") from None
                time.sleep(fileio.LOCK_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock
