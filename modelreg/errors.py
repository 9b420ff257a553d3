"""The exception hierarchy: every error carries a one-line user message and an exit code.

Exit codes (documented in README.md):
  0 success, 1 other error, 2 usage error, 3 not found, 4 conflict,
  5 refused by policy, 6 integrity failure, 7 storage unreachable,
  8 the git work tree blocks the command (rebase/merge in progress, stale git lock,
  interrupted sync), 9 push contention (the remote kept moving until the time budget ran out).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the start-up path
if TYPE_CHECKING:
    from typing import Any


class ModelregError(Exception):
    """Root of every error modelreg raises on purpose.

    ``info`` holds machine-readable fields about the refusal (the stage, what it holds, what
    was expected...); ``--json`` prints them in the ``error`` object beside code and message.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, details: list[str] | None = None, info: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.info = info or {}


class UsageError(ModelregError):
    """Bad input: a malformed name, reference, option value or file."""

    exit_code = 2


class NotFound(ModelregError):
    """A model, version, stage, object or registry that does not exist."""

    exit_code = 3


class Conflict(ModelregError):
    """A compare-and-swap mismatch, a version that exists with other content, or a lock timeout."""

    exit_code = 4


class PolicyRefused(ModelregError):
    """A rule or gate refused the operation; ``report`` is the GateReport when gates were evaluated."""

    exit_code = 5

    def __init__(
        self, message: str, *, details: list[str] | None = None, report: Any = None, info: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details, info=info)
        self.report = report


class IntegrityError(ModelregError):
    """Stored data does not match its hash, is torn, or otherwise fails verification."""

    exit_code = 6


class StorageError(ModelregError):
    """The registry's own files could not be written (disk full, I/O error); exit 1."""

    exit_code = 1


class Unreachable(ModelregError):
    """A storage backend could not be reached (connection refused, TLS failure, timeout)."""

    exit_code = 7


def stdout_gone() -> None:
    """After a BrokenPipeError (``modelreg ... | head``): point stdout at /dev/null so nothing more
    written to it (a JSON error object, the flush at exit) raises again."""
    import os
    import sys

    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def os_message(exc: OSError) -> str:
    """One line for an operating-system error: what failed and on which file."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return f"{what}: {where}" if where else what


class WorkTreeBlocked(ModelregError):
    """The git work tree holding the registry is mid-rebase/merge/cherry-pick, mid-sync, or has a stale git lock."""

    exit_code = 8


class PushContention(ModelregError):
    """``sync --push`` ran out of time (or attempts) while other clones kept moving the remote branch."""

    exit_code = 9


def storage_error(exc: OSError) -> StorageError:
    """An operating-system error (disk full, EIO, permission denied...) as a StorageError naming the file."""
    err = StorageError(f"registry I/O failed: {os_message(exc)}")
    err.__cause__ = exc
    return err


def os_errors(fn: Any) -> Any:
    """Decorate a library entry point so that an OSError leaves it as a StorageError (exit 1), never raw."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            raise storage_error(exc) from exc

    return wrapper
