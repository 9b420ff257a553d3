"""The append-only event log: one JSON object per line in ``logs/<model>.jsonl``.

Format and parsing are pure; :func:`append` and :func:`read` do the I/O. Readers tolerate
a torn or garbled line (reporting it), order events by ``(time, id)`` and drop exact
duplicates, because a git union merge may interleave lines or keep an identical line once.
"""

from __future__ import annotations

import json
import os
import time as _time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import fileio

LOG_SUFFIX = ".jsonl"
KEYS = ("id", "time", "actor", "action", "model", "version", "stage", "from", "to", "reason", "data")
SIG_KEY = "sig"  # optional, last: an SSH signature over the other keys (modelreg.trust.signing)


def new_id() -> str:
    """A unique, time-ordered event id: 16 hex digits of nanoseconds and 8 random ones."""
    return f"{_time.time_ns():016x}{os.urandom(4).hex()}"


def utc_now() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
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
    id: str = field(default_factory=new_id)
    time: str = field(default_factory=utc_now)
    sig: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the stable keys listed in KEYS (and ``sig`` when the event is signed)."""
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
        if self.sig is not None:
            d[SIG_KEY] = self.sig
        return d

    def line(self) -> bytes:
        """The event as one log line (compact JSON, keys in fixed order, newline-terminated)."""
        return (json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        """Build an event from its JSON form; ValueError if required fields are missing or mistyped."""
        for key in ("id", "time", "actor", "action", "model"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise ValueError(f"missing or invalid {key!r}")
        for key in ("version", "stage", "from", "to", "reason"):
            if d.get(key) is not None and not isinstance(d[key], str):
                raise ValueError(f"invalid {key!r}")
        data = d.get("data") or {}
        if not isinstance(data, dict):
            raise ValueError("invalid 'data'")
        sig = d.get(SIG_KEY)
        return cls(
            id=d["id"], time=d["time"], actor=d["actor"], action=d["action"], model=d["model"],
            version=d.get("version"), stage=d.get("stage"), from_=d.get("from"), to=d.get("to"),
            reason=d.get("reason"), data=data, sig=sig if isinstance(sig, str) else None,
        )


@dataclass(frozen=True)
class BadLine:
    """A log line that could not be parsed (torn by a crash, or edited by hand)."""

    path: str
    lineno: int
    text: str
    problem: str
    last: bool


def parse(data: bytes, path: str = "") -> tuple[list[Event], list[BadLine]]:
    """Parse log bytes into events sorted by (time, id) without duplicates, plus the bad lines."""
    events: dict[str, Event] = {}
    bad: list[BadLine] = []
    lines = data.split(b"\n")
    last_index = len(lines) - 1 if lines and lines[-1] else len(lines) - 2
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            ev = Event.from_dict(json.loads(raw))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            bad.append(BadLine(path, i + 1, raw[:200].decode("utf-8", "replace"), str(exc), i == last_index))
            continue
        events.setdefault(ev.id, ev)
    return sorted(events.values(), key=lambda e: (e.time, e.id)), bad


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
        data = fileio.read_file(path)
    except FileNotFoundError:
        return [], []
    return parse(data, str(path))


def models(logs_dir: Path) -> list[str]:
    """Models that have a log file."""
    try:
        names = os.listdir(logs_dir)
    except FileNotFoundError:
        return []
    return sorted(n[: -len(LOG_SUFFIX)] for n in names if n.endswith(LOG_SUFFIX) and not n.startswith("."))
