"""The artifact-store lock: registrations share it, ``prune --purge`` holds it alone while it deletes."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..errors import StorageError

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
    stack = ExitStack()
    try:
        fileio.makedirs(locks_dir)
        stack.enter_context(fileio.lock(path, shared=shared))  # only the taking: the body's errors are its own
    except OSError as exc:
        if not (shared and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)):
            raise StorageError(f"could not take the lock {path}: {exc.strerror or exc}") from exc
        # a registry this process cannot write: no purge runs through it, and it writes nothing
    with stack:
        yield
