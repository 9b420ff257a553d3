"""Recording events that happened elsewhere (imports) with their own time and actor, through the write protocol."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import manifest as manifest_mod
from .errors import Conflict, NotFound, UsageError
from .log import Event
from .names import check_key, check_stage
from .state import MOVES, fold

if TYPE_CHECKING:
    from .registry import Registry

ACTION_NOTE = "import"
"""A source event that changed nothing in modelreg (so that the log still shows it, and a re-run skips it)."""

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc(moment: datetime | float | int) -> str:
    """A datetime (aware; naive means UTC) or POSIX seconds as the log's time format."""
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def _nanoseconds(time: str) -> int:
    moment = datetime.strptime(time, _TIME_FORMAT).replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


@dataclass(frozen=True)
class Origin:
    """When, by whom and why a past event happened, and where it comes from.

    ``source`` lands in the event's ``data.import`` (``{"source": "gto", "tag": ...}``);
    it is how a later import recognises what it already brought over.
    """

    time: str
    actor: str
    reason: str
    source: dict[str, Any] = field(default_factory=dict)


class HistoryWriter:
    """Writes one model's past events. Made by :meth:`Registry.history`, which holds the model's lock.

    Every method follows the registry's write order (object -> version entry or stage ref ->
    event line) and returns the event written, or None when the registry already is in the
    state asked for. Events keep their original time, except that the log never goes back in
    time: an event older than the model's newest event is written at that newest time, with
    the original kept in ``data.import.time``. Ids grow with the writes, so readers (which
    order by time, then id) see the events in the order they were written.

    With ``dry_run`` nothing is written; the events are built and the writer's view of the
    model changes as if they had been.

    Inside :meth:`batch` the writes of one source event are held back and made together when
    the batch ends, each event marked ``data.import.batch``, the last one also
    ``data.import.last``: a batch without its last event was cut short (a crash), which is
    how :meth:`complete` tells a caller what to apply again (every method here is idempotent).
    """

    def __init__(self, reg: Registry, name: str, *, dry_run: bool = False) -> None:
        self.reg, self.name, self.dry_run = reg, name, dry_run
        events, _bad = _read_log(reg, name)
        state = fold(events)
        self.versions: dict[str, str] = reg.refs.versions(name)
        self.stages: dict[str, str] = reg.refs.stages(name)
        self.archived: set[str] = {v for v, st in state.versions.items() if st.archived}
        self.registered: set[str] = {v for v, st in state.versions.items() if st.registered_at}
        self.logged_moves: dict[str, str | None] = {}  # stage -> ``to`` of its last logged move
        self.moves: dict[str, list[Event]] = {}  # stage -> its moves, in the log's (causal) order
        for e in events:
            if e.action in MOVES and e.stage:
                self.logged_moves[e.stage] = e.to
                self.moves.setdefault(e.stage, []).append(e)
        self.log_events: list[Event] = events  # the model's log when the writer was made
        self.last: tuple[str, str] = max(((e.time, e.id) for e in events), default=("", ""))
        self.events: list[Event] = []
        self.objects: set[str] = set()  # digests this writer stored (dry run: would store)
        self.skipped: list[str] = []  # changes the caller asked for and left out, said why
        self._pending: list[Callable[[], None] | Event] | None = None
        self._batch: str | None = None
        self._folded: dict[str, list[str]] | None = None

    # ------------------------------------------------------------------ batches
    @contextmanager
    def batch(self) -> Iterator[list[Event]]:
        """Hold back the writes of one source event; make them when the block ends (not on an error).

        Yields the list the batch's events are appended to as they are written.
        """
        assert self._pending is None, "batches do not nest"
        self._pending, self._batch = [], os.urandom(6).hex()
        written: list[Event] = []
        try:
            yield written
            pending = self._pending
        finally:
            self._pending, self._batch = None, None
        events = [i for i, op in enumerate(pending) if isinstance(op, Event)]
        if events:
            last = pending[events[-1]]
            assert isinstance(last, Event)
            pending[events[-1]] = replace(last, data={**last.data, "import": {**last.data["import"], "last": True}})
            if self.events and self.events[-1].id == last.id:
                self.events[-1] = pending[events[-1]]  # type: ignore[assignment]
        for op in pending:
            if isinstance(op, Event):
                if not self.dry_run:
                    self.reg._record(op)
                written.append(op)
            elif not self.dry_run:
                op()

    def complete(self, events: list[Event]) -> list[Event]:
        """``events`` (of this model's log) less those of batches that were cut short."""
        done = {(e.data.get("import") or {}).get("batch") for e in events
                if (e.data.get("import") or {}).get("last")}
        return [e for e in events if (e.data.get("import") or {}).get("batch") in done
                or not (e.data.get("import") or {}).get("batch")]

    def _do(self, op: Callable[[], None]) -> None:
        if self._pending is not None:
            self._pending.append(op)
        elif not self.dry_run:
            op()

    # ------------------------------------------------------------------ helpers
    def version_of(self, digest: str | None) -> str | None:
        if digest is None:
            return None
        for v, d in self.versions.items():
            if d == digest:
                return v
        return None

    def holds(self, version: str) -> list[str]:
        """Stages that point at ``version`` now."""
        digest = self.versions.get(version)
        return sorted(s for s, d in self.stages.items() if d == digest)

    def _digest(self, version: str) -> str:
        try:
            return self.versions[version]
        except KeyError:
            raise NotFound(f"{self.name} has no version {version!r}") from None

    def _event(self, action: str, origin: Origin, *, version: str | None = None, stage: str | None = None,
               from_: str | None = None, to: str | None = None, data: dict[str, Any] | None = None,
               prev: str | None = None) -> Event:
        time, source = origin.time, dict(origin.source)
        if time < self.last[0]:
            source["time"] = time  # the original time; the line goes at the end of the log
            time = self.last[0]
        ns = _nanoseconds(time)
        if time == self.last[0] and self.last[1]:
            ns = max(ns, int(self.last[1][:16], 16) + 1)
        eid = f"{ns:016x}{os.urandom(4).hex()}"
        if self._batch:
            source["batch"] = self._batch
        event = Event(action, self.name, origin.actor, version=version, stage=stage, from_=from_, to=to,
                      reason=origin.reason, data={**(data or {}), "import": source}, id=eid, time=time, prev=prev)
        if self._pending is not None:
            self._pending.append(event)
        elif not self.dry_run:
            self.reg._record(event)
        self.last = (time, eid)
        self.events.append(event)
        return event

    # ------------------------------------------------------------------ writes
    def register(self, raw: dict[str, Any], origin: Origin) -> Event | None:
        """Register the manifest ``raw`` as given: artifacts already described (no file is read here).

        An identical version already there is not written again (its register event is, if a
        crash lost it); other content under the same version is a Conflict.
        """
        from .hashing import sha256_bytes

        m = manifest_mod.validate(raw, set(self.reg.stages))
        if m["name"] != self.name:
            raise UsageError(f"manifest of {m['name']} given to the history of {self.name}")
        data = manifest_mod.to_bytes(m)
        digest = "sha256:" + sha256_bytes(data)
        version = m["version"]
        existing = self.versions.get(version)
        if existing is not None and existing != digest:
            raise Conflict(f"{self.name}@{version} is already registered with other content ({existing[:19]})")
        if existing is None:
            if self._folded is None:  # every version, by lower-case name: the case check looks up, never lists
                self._folded = {}
                for v in self.versions:
                    self._folded.setdefault(v.lower(), []).append(v)
            variants = list(self._folded.get(version.lower(), []))
            self.reg.refs.check_new_version(self.name, version, variants)

            def write() -> None:
                self.reg.objects.put(data)
                self.reg.refs.add_version(self.name, version, digest, variants)

            self._do(write)
            self.objects.add(digest)
            self.versions[version] = digest
            self._folded.setdefault(version.lower(), []).append(version)
        elif version in self.registered:
            return None
        self.registered.add(version)
        return self._event("register", origin, version=version, to=digest)

    def move(self, stage: str, version: str | None, origin: Origin, *, fallback: bool = False,
             only_if: str | None | type[Ellipsis] = ..., data: dict[str, Any] | None = None) -> Event | None:
        """Point ``stage`` at ``version`` (None: empty it, a ``clear`` event); the event names the
        stage's previous move as ``prev``.

        ``only_if``: a version name (or None for an empty stage) the stage must hold now, else
        nothing happens; leave it out to move whatever the stage holds. ``fallback``: the stage
        goes back because what it held left it; when an earlier move of the stage put ``version``
        there and is still on the undo stack, this is a ``rollback`` undoing the moves since
        (``data.undoes``), else a ``promote``.
        """
        check_stage(stage)
        target = None if version is None else self._digest(version)
        current = self.stages.get(stage)
        lost = current == target and self.logged_moves.get(stage) != target  # moved, but a crash lost the event
        if only_if is not ... and not lost:
            if current != (None if only_if is None else self.versions.get(only_if)):  # type: ignore[arg-type]
                return None
        if target is not None and version in self.archived:
            raise UsageError(f"{self.name}@{version} is archived: unarchive it before it takes {stage}")
        if current == target:
            if self.logged_moves.get(stage) == target:
                return None
            current = self.logged_moves.get(stage)  # the ref moved but a crash lost the event: log it now
        else:
            old = current
            self._do(lambda: self.reg.refs.set_stage_if_equals(self.name, stage, old, target))
        data = dict(data or {})
        action = "promote"
        if target is None:
            self.stages.pop(stage, None)
            action = "clear"
        else:
            self.stages[stage] = target
            if fallback:
                from .lifecycle.undo import rewind, undo_stack

                undone = rewind(undo_stack(self.moves.get(stage, [])), target)
                if undone:
                    action, data["undoes"] = "rollback", [e.id for e in undone]
        self.logged_moves[stage] = target
        head = self.moves.get(stage, [])[-1:] or [None]
        event = self._event(action, origin, version=version if target else self.version_of(current), stage=stage,
                            from_=current, to=target, data=data, prev=head[0].id if head[0] else None)
        self.moves.setdefault(stage, []).append(event)
        return event

    def archive(self, version: str, origin: Origin, *, undo: bool = False) -> list[Event]:
        """Archive ``version`` (clearing, first, each stage it holds) or with ``undo`` unarchive it."""
        digest = self._digest(version)
        if (version in self.archived) != undo:
            return []
        out: list[Event] = []
        held = [] if undo else self.holds(version)
        for stage in held:  # as Registry.archive does: a clear per stage held, then the archive event
            ev = self.move(stage, None, origin, data={"archive": True})
            if ev:
                out.append(ev)
        if undo:
            self.archived.discard(version)
        else:
            self.archived.add(version)
        out.append(self._event("unarchive" if undo else "archive", origin, version=version, to=digest,
                               data={"cleared": held} if held else None))
        return out

    def metrics(self, version: str, suite: str, values: dict[str, Any], origin: Origin) -> Event:
        """Record ``values`` for ``suite`` of ``version`` (a ``metrics`` event, merged per key as usual)."""
        from .registry import _check_json

        check_key("suite", suite)
        _check_json(values, f"metrics for suite {suite}")
        return self._event("metrics", origin, version=version, to=self._digest(version),
                           data={"suite": suite, "values": values})

    def note(self, origin: Origin, *, version: str | None = None, stage: str | None = None) -> Event:
        """An ``import`` event: the source recorded something that changes nothing here."""
        to = self.versions.get(version) if version else None
        return self._event(ACTION_NOTE, origin, version=version if to else None, stage=stage, to=to)


def _read_log(reg: Registry, name: str) -> tuple[list[Event], list[Any]]:
    from . import log

    return log.read(reg.logs_dir, name)
