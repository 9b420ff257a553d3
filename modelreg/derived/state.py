"""``state_of(reg, model)``: a model's current state from its snapshot, or from the whole log when there is none.

Both answers have the interface of :class:`modelreg.state.ModelState` (``versions``,
``head``, ``undo_stack``, ``undo_top``, ``rewind``, ``latest``, ``order``,
``case_variants``, ``version_events``, ``events``, ``fields``) and give the same results; the
snapshot answers each question with a lookup, so a write costs the same at 10 and at a
million versions. Reads that need every version (``ls``, search) take ``versions`` whole.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .. import cachedir, log
from ..lifecycle.order import MOVES
from ..log import Event
from ..state import ModelState, VersionState, fold

if TYPE_CHECKING:
    from ..registry import Registry
    from .snapshot import Snapshot

_log = logging.getLogger("modelreg.derived")  # a snapshot that cannot be used is only a debug message

def state_of(reg: Registry, model: str) -> ModelState | SnapshotState:
    """The state of ``model`` (a validated name): its snapshot brought up to date with the log, or,
    if the snapshot cannot be used (cache directory unwritable, SQLite missing, a file in the way),
    the fold of the whole log in memory. Errors reading the log itself (a symlink, ...) propagate."""
    fd = _open_log(reg, model)
    try:
        snap = _snapshot(reg, model)
        if snap is not None:
            try:
                snap.sync(fd)
                return SnapshotState(snap, reg, model)
            except Exception as exc:  # noqa: BLE001 - derived data: any failure only costs the full fold below
                _log.debug("snapshot of %s not used; folding the whole log", model, exc_info=True)
                _forget(reg, model, exc)
    finally:
        if fd is not None:
            os.close(fd)
    events, _ = log.read(reg.logs_dir, model)
    return fold(events)


def refresh(reg: Registry, model: str) -> None:
    """Fold what was just appended to ``model``'s log into its snapshot (after a write; never raises
    for the snapshot's sake)."""
    try:
        fd = _open_log(reg, model)
    except Exception:  # noqa: BLE001 - the write is done; the next reader reports the log's trouble
        return
    try:
        snap = _snapshot(reg, model)
        if snap is not None:
            try:
                snap.sync(fd)
            except Exception as exc:  # noqa: BLE001
                _log.debug("snapshot of %s not brought up to date", model, exc_info=True)
                _forget(reg, model, exc)
    finally:
        if fd is not None:
            os.close(fd)


def _open_log(reg: Registry, model: str) -> int | None:
    from .logtail import open_log

    return open_log(reg.logs_dir, model)


def _snapshot(reg: Registry, model: str) -> Snapshot | None:
    """The open snapshot of ``model`` (kept for the Registry's life), or None if it cannot be had."""
    cache: dict[str, Any] = reg.__dict__.setdefault("_snapshots", {})
    if model in cache:
        return cache[model]
    snap = None
    for attempt in (1, 2):
        try:
            from .snapshot import Snapshot, path_for

            path = path_for(cachedir.cache_dir(reg.path), model)
            if cachedir.ensure_dir(path.parent):
                snap = Snapshot(path, model)
            break
        except Exception as exc:  # noqa: BLE001 - no sqlite3, unreadable or locked file: fold the log instead
            _log.debug("no snapshot of %s", model, exc_info=True)
            if attempt == 2 or not _damaged(exc):
                break
            _remove(reg, model)  # garbage where the snapshot should be: start a new one
    cache[model] = snap
    return snap


def _damaged(exc: BaseException) -> bool:
    """True for SQLite's "not a database" and "malformed" (not for a busy or read-only file)."""
    import sqlite3

    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _remove(reg: Registry, model: str) -> None:
    from .snapshot import path_for, remove

    try:
        remove(path_for(cachedir.cache_dir(reg.path), model))
    except OSError:
        pass


def _forget(reg: Registry, model: str, exc: BaseException | None = None) -> None:
    """Stop using ``model``'s snapshot in this process (removing the file if SQLite found it damaged)."""
    snap = reg.__dict__.setdefault("_snapshots", {}).pop(model, None)
    if snap is not None:
        try:
            snap.close()
        except Exception:  # noqa: BLE001
            pass
    if exc is not None and _damaged(exc):
        _remove(reg, model)
    reg.__dict__["_snapshots"][model] = None  # not again in this process


class _Versions(Mapping[str, VersionState]):
    """``versions`` of a :class:`SnapshotState`: ``get`` looks one version up; iterating loads them all once."""

    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap
        self._all: dict[str, VersionState] | None = None
        self._one: dict[str, VersionState | None] = {}

    def _load(self) -> dict[str, VersionState]:
        if self._all is None:
            self._all = self._snap.all_versions()
        return self._all

    def get(self, version: str, default: Any = None) -> Any:  # type: ignore[override]
        if self._all is None and len(self._one) >= 64:  # a reader going through many: one pass is cheaper
            self._load()
        if self._all is not None:
            return self._all.get(version, default)
        if version not in self._one:
            self._one[version] = self._snap.version(version)
        st = self._one[version]
        return default if st is None else st

    def __getitem__(self, version: str) -> VersionState:
        st = self.get(version)
        if st is None:
            raise KeyError(version)
        return st

    def __contains__(self, version: object) -> bool:
        return isinstance(version, str) and self.get(version) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class SnapshotState:
    """A model's state answered from its snapshot (the :class:`modelreg.state.ModelState` interface)."""

    def __init__(self, snap: Snapshot, reg: Registry, model: str) -> None:
        self._snap, self._reg, self._model = snap, reg, model
        self.versions = _Versions(snap)
        self._events: list[Event] | None = None
        self._fields: ModelState | None = None

    @property
    def events(self) -> list[Event]:
        """Every event of the model in causal order (reads the whole log: for reads that show them)."""
        if self._events is None:
            self._events = log.read(self._reg.logs_dir, self._model)[0]
        return self._events

    def get(self, version: str) -> VersionState:
        return self.versions.get(version) or VersionState(version)

    def _model_fields(self) -> ModelState:
        if self._fields is None:
            self._fields = fold(self._snap.model_events())  # a few ``model set`` events, folded as the log's are
        return self._fields

    @property
    def fields(self) -> dict[str, Any]:
        """The model's own fields (``model set``)."""
        return self._model_fields().fields

    @property
    def fields_updated(self) -> dict[str, Any] | None:
        return self._model_fields().fields_updated

    def order(self, names: list[str]) -> list[str]:
        """``names`` ordered by registration time; versions the log does not know come first, by name."""
        if len(names) > 64:  # a listing: the reader goes on to look at each version
            self.versions._load()
        if self.versions._all is not None:
            times = {v: st.registered_at for v, st in self.versions._all.items()}
        else:
            times = self._snap.registered_at()
        return sorted(names, key=lambda v: (times.get(v) or "", v))

    def stage_events(self, stage: str) -> list[Event]:
        return [e for e in self.events if e.stage == stage and e.action in MOVES]

    def head(self, stage: str) -> Event | None:
        return self._snap.head(stage)

    def undo_stack(self, stage: str) -> list[Event]:
        return self._snap.stack(stage)

    def undo_top(self, stage: str) -> Event | None:
        return self._snap.stack_top(stage)

    def rewind(self, stage: str, target: str) -> list[Event] | None:
        return self._snap.rewind(stage, target)

    def latest(self, exists: Callable[[str], str | None]) -> tuple[str, str] | None:
        for v in self._snap.latest():
            digest = exists(v)
            if digest:
                return v, digest
        return None

    def case_variants(self, version: str) -> list[str]:
        return self._snap.case_variants(version.lower())

    def version_events(self, version: str) -> list[Event]:
        return self._snap.version_events(version)
