"""A model's log read from a byte offset, and the check that the part before it is unchanged.

Derived data that folds a log remembers how far it read (:class:`Mark`): the offset just
after the last whole line it folded, and SHA-256 digests of the first and the last
``WINDOW`` bytes before that offset. The log only ever grows by appending, so the next
reader checks the mark (two reads of at most ``WINDOW`` bytes) and folds only the lines
after it. Anything else that changes the file shows in the mark: a git merge or rebase
inserts or removes lines, which shifts every byte after them, the last window included; a
checkout of another history, a truncation or ``fsck --repair`` moving bad lines aside
changes a window or the size. Then the reader starts again from the beginning.

What the mark cannot see is an edit that keeps every byte's position (a line replaced by
another of exactly the same length) outside both windows: for a log up to ``2 * WINDOW``
bytes (about 400 events) the windows cover all of it, so the check is exact; for a longer
log such an edit is noticed when the derived data is rebuilt (``modelreg reindex``, or
deleting the cache directory). Only a hand edit does this; git never does.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from .. import fileio, log

WINDOW = 64 << 10
CHUNK = 1 << 20


@dataclass(frozen=True)
class Mark:
    """How much of a log was read: ``offset`` (after a newline, or 0) and digests of the windows before it."""

    offset: int = 0
    head: str = ""
    tail: str = ""

    def to_json(self) -> list[object]:
        return [self.offset, self.head, self.tail]

    @classmethod
    def from_json(cls, value: object) -> Mark | None:
        """A mark read back from a cache file; None unless it has the shape :meth:`to_json` gives."""
        if not (isinstance(value, list) and len(value) == 3):
            return None
        offset, head, tail = value
        if type(offset) is not int or offset < 0 or not isinstance(head, str) or not isinstance(tail, str):
            return None
        return cls(offset, head, tail)


def _digest(fd: int, start: int, end: int) -> str:
    h = hashlib.sha256()
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(CHUNK, end - pos), pos)
        if not chunk:
            break
        h.update(chunk)
        pos += len(chunk)
    return h.hexdigest() if pos == end else ""


def mark_at(fd: int, offset: int) -> Mark:
    """The mark of the first ``offset`` bytes of the open log ``fd``."""
    if offset == 0:
        return Mark()
    return Mark(offset, _digest(fd, 0, min(WINDOW, offset)), _digest(fd, max(0, offset - WINDOW), offset))


def holds(fd: int, mark: Mark) -> bool:
    """True if the open log still begins with the bytes ``mark`` was taken of (only appended to since)."""
    if mark.offset == 0:
        return True
    if os.fstat(fd).st_size < mark.offset:
        return False
    return mark_at(fd, mark.offset) == mark


def lines(fd: int, start: int) -> Iterator[tuple[bytes, int]]:
    """``(line without its newline, offset after the newline)`` for each whole line from ``start``.

    A line still being written (no newline yet) is left for the next reader. A line longer
    than ``log.MAX_LINE`` is yielded cut to ``MAX_LINE + 1`` bytes (the parser refuses it),
    so memory stays bounded whatever the file holds.
    """
    cap = log.MAX_LINE + 1
    pos = start
    parts: list[bytes] = []
    kept = 0
    while True:
        chunk = os.pread(fd, CHUNK, pos)
        if not chunk:
            return
        begin = 0
        while True:
            nl = chunk.find(b"\n", begin)
            if nl < 0:
                break
            if kept < cap:
                parts.append(chunk[begin:min(nl, begin + cap - kept)])
            yield (parts[0] if len(parts) == 1 else b"".join(parts)), pos + nl + 1
            parts, kept = [], 0
            begin = nl + 1
        if begin < len(chunk) and kept < cap:
            piece = chunk[begin:begin + cap - kept]
            parts.append(piece)
            kept += len(piece)
        pos += len(chunk)


def events(fd: int, start: int) -> Iterator[tuple[log.Event | None, int]]:
    """``(event, offset after its line)`` for each whole line from ``start``; ``None`` for a line
    that is not a valid event (a torn or hand-made line: readers skip it, as :func:`log.read` does)."""
    for raw, end in lines(fd, start):
        if not raw.strip():
            continue
        try:
            yield log.parse_line(raw), end
        except ValueError:
            yield None, end


def open_log(logs_dir: os.PathLike[str] | str, model: str) -> int | None:
    """A descriptor of the model's log (confined: never through a symlink); None if it does not exist."""
    try:
        return fileio.open_read(log.path_for(logs_dir, model))  # type: ignore[arg-type]
    except FileNotFoundError:
        return None
