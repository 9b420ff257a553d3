"""The append-only event log: one JSON object per line in ``logs/<model>.jsonl``.

Format and parsing are pure; :func:`append` and :func:`read` do the I/O. Readers tolerate
a torn or garbled line (reporting it), drop repeated ids (a git union merge may interleave
lines or keep an identical line once) and put events in the registry's causal order
(:func:`modelreg.lifecycle.order.causal_order`: stage moves follow their ``prev`` links,
everything else goes by ``(time, id)``), so a writer with a skewed clock reorders nothing.

A log arrives by git, so every line is untrusted input: a line that is not one JSON object
of the documented shape (names valid, digests and ids well formed, numbers finite, nesting
at most MAX_NESTING deep, at most MAX_LINE bytes) is a bad line, skipped by readers, named
by fsck and moved aside by ``fsck --repair``. :func:`read` streams the file line by line,
so a large log costs the memory of its events, not of its bytes as well.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time as _time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import fileio
from .errors import UsageError
from .names import check_model, check_stage, check_version, is_full_digest

LOG_SUFFIX = ".jsonl"
KEYS = ("id", "time", "actor", "action", "model", "version", "stage", "from", "to", "reason", "data", "prev")
SIG_KEY = "sig"  # optional, last: an SSH signature over the other keys (modelreg.trust.signing)
MAX_LINE = 1 << 20  # one event is a few hundred bytes; a longer line is refused, not parsed
MAX_NESTING = 32  # containers inside ``data``
MAX_ACTOR = 256
MAX_REASON = 10_000
_ID_RE = re.compile(r"[0-9a-f]{8,64}\Z")
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]{1,24}Z\Z")  # printable, sortable; UTC
_ACTION_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")


def _now_ns() -> int:
    """The wall clock every event time and id is taken from (one place, so tests can skew it)."""
    return _time.time_ns()


def new_id() -> str:
    """A unique, time-ordered event id: 16 hex digits of nanoseconds and 8 random ones."""
    return f"{_now_ns():016x}{os.urandom(4).hex()}"


def utc_now() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    ns = _now_ns()
    return datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{(ns // 1000) % 1_000_000:06d}Z"
    )


@dataclass(frozen=True, slots=True)
class Event:
    """One change to the registry."""

    action: str
    model: str
    actor: str
    version: str | None = None
    stage: str | None = None
    from_: str | None = None
    to: str | None = None
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Stage moves only: the id of the previous move of the same stage this one followed
    # (None for the first move of a stage, and for events written before the field existed).
    prev: str | None = None
    id: str = field(default_factory=lambda: new_id())  # looked up at call time: tests skew _now_ns
    time: str = field(default_factory=lambda: utc_now())
    sig: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the stable keys listed in KEYS (``prev`` only when set), and ``sig``
        last when the event is signed (the signature covers every other key, ``prev`` included)."""
        d = {
            "id": self.id,
            "time": self.time,
            "actor": self.actor,
            "action": self.action,
            "model": self.model,
            "version": self.version,
            "stage": self.stage,
            "from": self.from_,
            "to": self.to,
            "reason": self.reason,
            "data": self.data,
        }
        if self.prev is not None:
            d["prev"] = self.prev
        if self.sig is not None:
            d[SIG_KEY] = self.sig
        return d

    def line(self) -> bytes:
        """The event as one log line (compact JSON, keys in fixed order, newline-terminated)."""
        return (json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        """Build an event from its JSON form; ValueError if a field is missing, mistyped or malformed.

        Names are checked with the rules of :mod:`modelreg.names`, digests must be full,
        ``id``/``time``/``action`` must have the shape modelreg writes: a log line can come
        from anyone who can push, and its fields are printed and used to look things up.
        """
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        get = d.get
        id_, time_, actor, action, model = get("id"), get("time"), get("actor"), get("action"), get("model")
        version, stage, from_, to, reason = get("version"), get("stage"), get("from"), get("to"), get("reason")
        prev = get("prev")
        data = get("data") or {}
        if not (type(id_) is str and _ID_RE.match(id_)):
            raise ValueError("missing or invalid 'id'")
        if not (type(time_) is str and _TIME_RE.match(time_)):
            raise ValueError("missing or invalid 'time'")
        if not (type(action) is str and _ACTION_RE.match(action)):
            raise ValueError("missing or invalid 'action'")
        if type(actor) is not str or not actor or len(actor) > MAX_ACTOR:
            raise ValueError(f"missing or invalid 'actor' (a string of 1 to {MAX_ACTOR} characters)")
        if reason is not None and (type(reason) is not str or len(reason) > MAX_REASON):
            raise ValueError(f"invalid 'reason' (a string of at most {MAX_REASON} characters)")
        if prev is not None and not (type(prev) is str and _ID_RE.match(prev)):
            raise ValueError("invalid 'prev' (the id of an earlier move)")
        if type(data) is not dict:
            raise ValueError("invalid 'data'")
        _name("model", model, check_model)
        if version is not None:
            _name("version", version, check_version)
        if stage is not None:
            _name("stage", stage, check_stage)
        if from_ is not None:
            _name("from", from_, _check_digest)
        if to is not None:
            _name("to", to, _check_digest)
        if data:
            _check_values(data, 0)
        sig = get(SIG_KEY)
        intern = sys.intern
        return cls(
            id=id_, time=time_, actor=intern(actor), action=intern(action), model=intern(model), version=version,
            stage=intern(stage) if stage is not None else None, from_=from_, to=to, reason=reason, data=data,
            prev=prev, sig=sig if type(sig) is str else None,
        )


_VALID: dict[tuple[str, str], str] = {}  # names already checked: a log repeats a handful of them


def _name(kind: str, value: Any, check: Any) -> None:
    if type(value) is not str:
        raise ValueError(f"missing or invalid {kind!r}")
    if (kind, value) in _VALID:
        return
    try:
        check(value)
    except UsageError as exc:
        raise ValueError(exc.message) from None
    if len(_VALID) > 100_000:
        _VALID.clear()
    _VALID[(kind, value)] = value


def _check_digest(value: str) -> str:
    if not is_full_digest(value):
        raise UsageError("not a sha256 digest")
    return value


def _check_values(value: Any, depth: int) -> None:
    """ValueError if containers nest deeper than MAX_NESTING or a number is not finite.

    Recursion is bounded by MAX_NESTING (the JSON parser has already refused anything deeper
    than Python's own limit, as a RecursionError).
    """
    if depth >= MAX_NESTING:
        raise ValueError(f"'data' is nested more than {MAX_NESTING} levels deep")
    for v in (value.values() if type(value) is dict else value):
        t = type(v)
        if t is dict or t is list:
            _check_values(v, depth + 1)
        elif t is float and not math.isfinite(v):
            raise ValueError("a number in 'data' is out of range")


@dataclass(frozen=True)
class BadLine:
    """A log line that could not be parsed (torn by a crash, or edited by hand)."""

    path: str
    lineno: int
    text: str
    problem: str
    last: bool


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number modelreg writes")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def parse_line(raw: bytes) -> Event:
    """One log line (without its newline) as an Event; ValueError if it is not a valid event."""
    if len(raw) > MAX_LINE:
        raise ValueError(f"line longer than {MAX_LINE} bytes")
    try:
        return Event.from_dict(_DECODER.decode(raw.decode("utf-8")))
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (TypeError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None


def _collect(lines: Iterable[tuple[int, bytes, bool]], path: str) -> tuple[list[Event], list[BadLine]]:
    events: dict[str, Event] = {}
    bad: list[BadLine] = []
    for lineno, raw, last in lines:
        if not raw.strip():
            continue
        try:
            ev = parse_line(raw)
        except ValueError as exc:
            bad.append(BadLine(path, lineno, raw[:200].decode("utf-8", "replace"), str(exc)[:200], last))
            continue
        events.setdefault(ev.id, ev)
    from .lifecycle.order import causal_order

    return causal_order(events.values()), bad


def parse(data: bytes, path: str = "") -> tuple[list[Event], list[BadLine]]:
    """Parse log bytes into events in causal order without duplicates, plus the bad lines."""
    lines = data.split(b"\n")
    last_index = len(lines) - 1 if lines and lines[-1] else len(lines) - 2
    return _collect(((i + 1, raw, i == last_index) for i, raw in enumerate(lines)), path)


def path_for(logs_dir: Path, model: str) -> Path:
    """The log file of one model (the name must already be validated)."""
    return logs_dir / f"{model}{LOG_SUFFIX}"


def append(logs_dir: Path, event: Event) -> None:
    """Append one event to its model's log durably (caller holds the model's lock)."""
    fileio.makedirs(logs_dir)
    fileio.append_line(path_for(logs_dir, event.model), event.line())


def read(logs_dir: Path, model: str) -> tuple[list[Event], list[BadLine]]:
    """All events of one model, ordered, plus unparseable lines."""
    path = path_for(logs_dir, model)
    try:
        return _collect(fileio.read_lines(path, MAX_LINE), str(path))
    except FileNotFoundError:
        return [], []


def models(logs_dir: Path) -> list[str]:
    """Models that have a log file."""
    try:
        names = fileio.listdir(logs_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n[: -len(LOG_SUFFIX)] for n in names if n.endswith(LOG_SUFFIX) and not n.startswith("."))


def after(events: list[Event], event_id: str) -> list[Event]:
    """The events (ordered) that come after the one with ``event_id``; NotFound if it is not among them."""
    from .errors import NotFound, UsageError

    if not isinstance(event_id, str) or not event_id or len(event_id) > 64 or not event_id.isalnum():
        raise UsageError(f"--since takes an event id (the 'id' of an event in 'modelreg log --json'), not {event_id[:40]!r}")
    for i, e in enumerate(events):
        if e.id == event_id:
            return events[i + 1:]
    raise NotFound(f"no event with id {event_id} in this log (see 'modelreg log --json')")


class Tail:
    """Follow log files as lines are appended, cheaply: a stat per file per poll, only new bytes read.

    ``initial`` holds the events present when it was created (ordered); :meth:`poll` returns events
    that appeared since, never one twice. A file that shrank or was replaced (a git merge or pull
    rewrote it) is read again from the start, and only events not seen before are returned.
    """

    def __init__(self, logs_dir: Path, model: str | None = None) -> None:
        self.logs_dir = logs_dir
        self.model = model
        self._files: dict[str, tuple[int, int]] = {}  # model -> (inode, offset after the last whole line)
        self._seen: set[str] = set()
        self.initial = self.poll()

    def _models(self) -> list[str]:
        return [self.model] if self.model else models(self.logs_dir)

    def poll(self) -> list[Event]:
        """New events since the last poll: each model's in causal order, models merged by (time, id)."""
        import heapq

        per_model = [self._read(m) for m in self._models()]  # each in its log's causal order
        return list(heapq.merge(*per_model, key=lambda e: (e.time, e.id)))

    def _read(self, model: str) -> list[Event]:
        path = path_for(self.logs_dir, model)
        try:
            fd = fileio.open_read(path)  # confined: never through a symlink in the registry
        except FileNotFoundError:
            return []
        try:
            st = os.fstat(fd)
            ino, offset = self._files.get(model, (st.st_ino, 0))
            if ino != st.st_ino or st.st_size < offset:
                offset = 0  # replaced or rewritten: read it all again; seen ids are skipped
            if st.st_size == offset:
                self._files[model] = (st.st_ino, offset)
                return []
            chunks = []
            pos = offset
            while pos < st.st_size:
                chunk = os.pread(fd, min(1 << 20, st.st_size - pos), pos)
                if not chunk:
                    break
                chunks.append(chunk)
                pos += len(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._files[model] = (st.st_ino, offset + end)
        events, _bad = parse(data[:end], str(path))
        fresh = [e for e in events if e.id not in self._seen]
        self._seen.update(e.id for e in fresh)
        return fresh

    def follow(self, interval: float = 0.25) -> Iterator[Event]:
        """Yield new events forever, polling every ``interval`` seconds."""
        while True:
            yield from self.poll()
            _time.sleep(interval)
