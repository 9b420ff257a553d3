"""One model's state snapshot: a SQLite file in the cache directory, folded from the log and advanced from its tail.

``cache_dir(registry)/state/<model>.sqlite`` holds what writes ask of a model's history,
each answer one indexed lookup: every version's registration (first ``register`` by
``(time, id)``), its other events (archive, annotations: few per version, refolded on
read with :func:`modelreg.state.apply_version_event`), the stages it ever held, each
stage's last move and undo stack, the model's own ``model`` events (its fields), the versions whose names have upper-case letters (for
the case-collision check) and the id of every event folded (a repeated id is dropped,
as readers of the log do).

The snapshot records how far it read the log (:class:`logtail.Mark`). Bringing it up to
date (:meth:`Snapshot.sync`) checks that mark and folds only the lines after it; when the
log changed other than by appending, or the new lines cannot be folded onto the snapshot
(a move that does not follow its stage's last move, as after a git merge of two
branches' moves; an event an earlier one links to), it folds the whole log again. So
folding the tail gives exactly what folding the whole log gives (tests/test_snapshot.py
checks this on random logs with merges, forks and skewed clocks):

- a version's state depends only on its own events in ``(time, id)`` order (see
  :func:`modelreg.state.apply_version_event`), so they are stored apart and sorted on read;
- a stage's moves are folded in causal order: a tail move is folded only if its ``prev`` is
  the stage's last move (or the stage has none), which puts it last in causal order; adding
  events that nothing links to never reorders the others.

The file is derived data: any failure to open, read or write it is the caller's cue to fold
the log in memory instead (:func:`modelreg.derived.state.state_of`). It is written with
``synchronous=OFF`` (no fsync: a killed process leaves SQLite's journal, which rolls the
transaction back); it is trusted only within the boot that wrote it (Linux ``boot_id``),
since a power cut can leave unsynced pages half written; elsewhere it is written with
``synchronous=NORMAL``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..lifecycle.order import MOVES, causal_order
from ..log import Event
from ..state import ANNOTATIONS, MODEL_FIELDS, VersionState, apply_version_event
from . import logtail

SCHEMA = 3  # PRAGMA user_version (3: model fields, ratings, purges, binding updates); a file with another value is emptied and folded again
BUSY_SECONDS = 30.0  # waiting for another process folding the same model
BATCH = 5000  # rows per executemany while folding a whole log

_TABLES = """
CREATE TABLE IF NOT EXISTS meta(one INTEGER PRIMARY KEY CHECK (one = 1), model TEXT NOT NULL, boot TEXT NOT NULL,
  off INTEGER NOT NULL, head TEXT NOT NULL, tail TEXT NOT NULL, cyclic INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ids(id PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dangling(id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions(version TEXT PRIMARY KEY, reg_time TEXT, reg_id TEXT, reg_actor TEXT,
  reg_to BLOB, archived INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS versions_latest ON versions(reg_time, version) WHERE archived = 0 AND reg_time IS NOT NULL;
CREATE TABLE IF NOT EXISTS vevents(version TEXT, time TEXT, id TEXT, action TEXT, line TEXT,
  PRIMARY KEY (version, time, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held(version TEXT, stage TEXT, PRIMARY KEY (version, stage)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS folded(folded TEXT, version TEXT, PRIMARY KEY (folded, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads(stage TEXT PRIMARY KEY, line TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stack(stage TEXT, seq INTEGER, id TEXT, frm TEXT, line TEXT NOT NULL,
  PRIMARY KEY (stage, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stack_id ON stack(id);
CREATE TABLE IF NOT EXISTS mevents(time TEXT, id TEXT, line TEXT, PRIMARY KEY (time, id)) WITHOUT ROWID;
"""
_DATA_TABLES = ("ids", "dangling", "versions", "vevents", "held", "folded", "heads", "stack", "mevents")


class Refold(Exception):
    """The log's tail cannot be folded onto the snapshot: fold the whole log again."""


def boot_id() -> str:
    """This boot of the machine (Linux), or "" where the kernel does not say."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return f.read(64).decode("ascii", "replace").strip()
    except OSError:
        return ""


def path_for(cache: Path, model: str) -> Path:
    """The snapshot file of ``model`` (a validated name) in a registry's cache directory."""
    return cache / "state" / f"{model}.sqlite"


def _key(event_id: str) -> bytes | str:
    """An event id as stored in ``ids``: an even-length id (all modelreg writes) as its bytes, half the
    size; an odd-length one as text (SQLite never finds a text value equal to a blob)."""
    return bytes.fromhex(event_id) if len(event_id) % 2 == 0 else event_id


def _blob(digest: str | None) -> bytes | None:
    return None if digest is None else bytes.fromhex(digest[7:])


def _digest(blob: bytes | None) -> str | None:
    return None if blob is None else "sha256:" + blob.hex()


def _line(e: Event) -> str:
    return json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":"))


def _event(line: str) -> Event:
    return Event.from_dict(json.loads(line))  # validated again: a cache file is input too


@dataclass
class _Meta:
    model: str
    boot: str
    off: int
    head: str
    tail: str
    cyclic: int
    seq: int

    @property
    def mark(self) -> logtail.Mark:
        return logtail.Mark(self.off, self.head, self.tail)


class Snapshot:
    """An open snapshot file of one model (see the module docstring). Methods raise ``sqlite3.Error``
    or ``OSError`` on any trouble with the file; callers fall back to folding the log."""

    def __init__(self, path: Path, model: str) -> None:
        self.path, self.model = path, model
        self.boot = boot_id()
        _check_files(path)
        self.db = sqlite3.connect(str(path), timeout=BUSY_SECONDS, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'OFF' if self.boot else 'NORMAL'}")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA:
                self._reset_schema()
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def _reset_schema(self) -> None:
        """Empty a file of another schema (or a new one) and create the tables, in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:  # not done meanwhile by another process
                names = self.db.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index') "
                                        "AND name NOT LIKE 'sqlite_%'").fetchall()
                for kind, name in sorted(names, key=lambda r: r[0] != "index"):
                    self.db.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
                for statement in _TABLES.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={SCHEMA}")
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ bringing it up to date
    def _meta(self) -> _Meta | None:
        row = self.db.execute("SELECT model, boot, off, head, tail, cyclic, seq FROM meta").fetchone()
        if row is None:
            return None
        meta = _Meta(*row)
        if meta.model != self.model or meta.boot != self.boot or meta.cyclic:
            return None
        return meta

    def sync(self, fd: int | None) -> None:
        """Bring the snapshot up to date with the log open at ``fd`` (None: the log does not exist)."""
        meta = self._meta()
        if meta is not None and (meta.off == 0 if fd is None else
                                 os.fstat(fd).st_size == meta.off and logtail.holds(fd, meta.mark)):
            return  # nothing appended since
        self.db.execute("BEGIN IMMEDIATE")
        try:
            meta = self._meta()  # again, under the write lock: another process may have folded it meanwhile
            try:
                if meta is None or fd is None or not logtail.holds(fd, meta.mark):
                    raise Refold
                self._advance(fd, meta)
            except Refold:
                self.db.execute("ROLLBACK")
                self.db.execute("BEGIN IMMEDIATE")
                self._refold(fd)
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _advance(self, fd: int, meta: _Meta) -> None:
        """Fold the lines after ``meta.off`` onto the snapshot (in a write transaction); Refold if they cannot be."""
        dangling = {i for (i,) in self.db.execute("SELECT id FROM dangling")}
        fold = _Fold(self)
        end = meta.off
        for e, end in logtail.events(fd, meta.off):
            if e is not None:
                if e.id in dangling:
                    raise Refold  # an earlier event links to this one: what was folded may be reordered
                fold.add(e)
        if end == meta.off:
            return
        fold.flush()
        seq = meta.seq
        for e in causal_order(fold.moves):
            if e.stage is None:
                continue
            head = self.head(e.stage)
            if head is not None and e.prev != head.id:
                raise Refold  # a fork (two branches' moves merged by git) or a move that does not link
            if head is None and e.prev is not None and not self._known(e.prev):
                self.db.execute("INSERT OR IGNORE INTO dangling VALUES (?)", (e.prev,))
            by = e.data.get("by") if e.action == "demote" else None
            if isinstance(by, str) and by != e.id and not self._known(by):
                self.db.execute("INSERT OR IGNORE INTO dangling VALUES (?)", (by,))
            seq = self._fold_move(e, seq)
        self._settle(fold.dirty)
        self._write_meta(fd, end, seq, cyclic=False)

    def _known(self, event_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM ids WHERE id = ?", (_key(event_id),)).fetchone() is not None

    def _settle(self, dirty: Iterable[str]) -> None:
        """Recompute the archived flag of versions that got an archive or unarchive event."""
        for v in dirty:
            row = self.db.execute(
                "SELECT action FROM vevents WHERE version = ? AND action IN ('archive', 'unarchive') "
                "ORDER BY time DESC, id DESC LIMIT 1", (v,)).fetchone()
            self.db.execute("UPDATE versions SET archived = ? WHERE version = ?",
                            (1 if row and row[0] == "archive" else 0, v))

    def _fold_move(self, e: Event, seq: int) -> int:
        """Fold one move of a stage, in causal order: it becomes the stage's last move and pushes onto
        or pops from the undo stack (:func:`modelreg.lifecycle.undo.undo_stack`, one step)."""
        stage, line = e.stage, _line(e)
        self.db.execute("INSERT OR REPLACE INTO heads VALUES (?, ?)", (stage, line))
        if e.to and e.version is not None:
            self.db.execute("INSERT OR IGNORE INTO versions(version) VALUES (?)", (e.version,))
            self.db.execute("INSERT OR IGNORE INTO held VALUES (?, ?)", (e.version, stage))
        if e.action == "rollback":
            undoes = e.data.get("undoes")
            if isinstance(undoes, list):
                gone = [i for i in undoes if isinstance(i, str)]
                for i in range(0, len(gone), 500):
                    part = gone[i:i + 500]
                    self.db.execute(f"DELETE FROM stack WHERE stage = ? AND id IN ({','.join('?' * len(part))})",
                                    (stage, *part))
                return seq
            row = self.db.execute("SELECT max(seq) FROM stack WHERE stage = ? AND frm IS ?", (stage, e.to)).fetchone()
            if row[0] is not None:
                self.db.execute("DELETE FROM stack WHERE stage = ? AND seq >= ?", (stage, row[0]))
                return seq
        self.db.execute("INSERT INTO stack VALUES (?, ?, ?, ?, ?)", (stage, seq, e.id, e.from_, line))
        return seq + 1

    def _write_meta(self, fd: int | None, end: int, seq: int, cyclic: bool) -> None:
        mark = logtail.mark_at(fd, end) if fd is not None else logtail.Mark()
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                        (self.model, self.boot, mark.offset, mark.head, mark.tail, int(cyclic), seq))

    def _refold(self, fd: int | None) -> None:
        """Fold the whole log again (in a write transaction), streaming: memory holds the stage moves only."""
        for table in _DATA_TABLES:
            self.db.execute(f"DELETE FROM {table}")
        end = 0
        fold = _Fold(self)
        if fd is not None:
            for e, end in logtail.events(fd, 0):
                if e is not None:
                    fold.add(e)
        fold.flush()
        moves = fold.moves
        ids = {e.id for e in moves}
        wanted = {by for e in moves if e.action == "demote" and isinstance(by := e.data.get("by"), str)
                  and by not in ids and by != e.id}
        linked: list[Event] = []
        if fd is not None and any(self._known(i) for i in wanted):
            seen: set[str] = set()  # a demote linked to an event that is not a move (a hand edit): it orders too
            for e, _ in logtail.events(fd, 0):
                if e is not None and e.id in wanted and e.id not in seen:
                    seen.add(e.id)
                    linked.append(e)
        broken: list[str] = []
        seq = 0
        for e in causal_order([*moves, *linked], broken=broken):
            if e.id in ids and e.stage is not None:
                seq = self._fold_move(e, seq)
        for e in moves:
            links = [e.prev] if e.prev is not None else []
            if e.action == "demote" and isinstance(e.data.get("by"), str):
                links.append(e.data["by"])
            for link in links:
                if link != e.id and not self._known(link):
                    self.db.execute("INSERT OR IGNORE INTO dangling VALUES (?)", (link,))
        self._settle(fold.dirty)
        self._write_meta(fd, end, seq, cyclic=bool(broken))

    # ------------------------------------------------------------------ reading
    def head(self, stage: str) -> Event | None:
        row = self.db.execute("SELECT line FROM heads WHERE stage = ?", (stage,)).fetchone()
        return _event(row[0]) if row else None

    def stack(self, stage: str, since_seq: int | None = None) -> list[Event]:
        """The undo stack of ``stage``, oldest first (from the move at ``since_seq`` on, if given)."""
        rows = self.db.execute("SELECT line FROM stack WHERE stage = ? AND seq >= ? ORDER BY seq",
                               (stage, since_seq if since_seq is not None else -1))
        return [_event(line) for (line,) in rows]

    def stack_top(self, stage: str) -> Event | None:
        row = self.db.execute("SELECT line FROM stack WHERE stage = ? ORDER BY seq DESC LIMIT 1", (stage,)).fetchone()
        return _event(row[0]) if row else None

    def rewind(self, stage: str, target: str) -> list[Event] | None:
        """The stack down to its topmost move whose ``from`` is ``target``, newest first; None if there is none."""
        row = self.db.execute("SELECT max(seq) FROM stack WHERE stage = ? AND frm = ?", (stage, target)).fetchone()
        if row[0] is None:
            return None
        return list(reversed(self.stack(stage, row[0])))

    def version(self, v: str) -> VersionState | None:
        row = self.db.execute("SELECT reg_time, reg_actor, reg_to FROM versions WHERE version = ?", (v,)).fetchone()
        if row is None:
            return None
        st = _registered(v, row)
        for (line,) in self.db.execute("SELECT line FROM vevents WHERE version = ? ORDER BY time, id", (v,)):
            apply_version_event(st, _event(line))
        st.stages_held = {s for (s,) in self.db.execute("SELECT stage FROM held WHERE version = ?", (v,))}
        return st

    def version_events(self, v: str) -> list[Event]:
        return [_event(line) for (line,) in
                self.db.execute("SELECT line FROM vevents WHERE version = ? ORDER BY time, id", (v,))]

    def all_versions(self) -> dict[str, VersionState]:
        """Every version the log mentions, with its state (one pass over each table)."""
        out = {v: _registered(v, (t, a, d)) for v, t, a, d in
               self.db.execute("SELECT version, reg_time, reg_actor, reg_to FROM versions")}
        for v, line in self.db.execute("SELECT version, line FROM vevents ORDER BY version, time, id"):
            apply_version_event(out[v], _event(line))
        for v, s in self.db.execute("SELECT version, stage FROM held"):
            out[v].stages_held.add(s)
        return out

    def registered_at(self) -> dict[str, str | None]:
        return dict(self.db.execute("SELECT version, reg_time FROM versions"))

    def latest(self) -> Iterator[str]:
        """Versions registered in the log and not archived, the most recently registered first."""
        for (v,) in self.db.execute("SELECT version FROM versions WHERE archived = 0 AND reg_time IS NOT NULL "
                                    "ORDER BY reg_time DESC, version DESC"):
            yield v

    def model_events(self) -> list[Event]:
        """The model's own ``model`` events (``model set``), in ``(time, id)`` order."""
        return [_event(line) for (line,) in self.db.execute("SELECT line FROM mevents ORDER BY time, id")]

    def case_variants(self, folded: str) -> list[str]:
        return [v for (v,) in self.db.execute("SELECT version FROM folded WHERE folded = ?", (folded,))]


class _Fold:
    """Events read from the log, stored in batches: ids first (a repeated id is dropped, the first line
    wins), then registrations and version events (order-free); stage moves are kept for the caller."""

    def __init__(self, snap: Snapshot) -> None:
        self.db = snap.db
        self.batch: list[Event] = []
        self.moves: list[Event] = []
        self.dirty: set[str] = set()

    def add(self, e: Event) -> None:
        self.batch.append(e)
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        first: dict[bytes | str, Event] = {}
        for e in batch:
            first.setdefault(_key(e.id), e)
        old: set[bytes | str] = set()
        keys = list(first)
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            old.update(r[0] for r in self.db.execute(f"SELECT id FROM ids WHERE id IN ({','.join('?' * len(part))})", part))
        fresh = [e for k, e in first.items() if k not in old]
        self.db.executemany("INSERT INTO ids VALUES (?)", ((_key(e.id),) for e in fresh))
        registers, vevents, folded, mevents = [], [], [], []
        for e in fresh:
            if e.action in MOVES:
                self.moves.append(e)
            elif e.version is None:
                if e.action == MODEL_FIELDS:
                    mevents.append((e.time, e.id, _line(e)))
            elif e.action == "register":
                registers.append((e.version, e.time, e.id, e.actor, _blob(e.to)))
                if e.version != e.version.lower():
                    folded.append((e.version.lower(), e.version))
            elif e.action in ANNOTATIONS:
                vevents.append((e.version, e.time, e.id, e.action, _line(e)))
                if e.action in ("archive", "unarchive"):
                    self.dirty.add(e.version)
        if registers:  # the first registration by (time, id) wins
            self.db.executemany(
                "INSERT INTO versions(version, reg_time, reg_id, reg_actor, reg_to) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(version) DO UPDATE SET reg_time = excluded.reg_time, reg_id = excluded.reg_id, "
                "reg_actor = excluded.reg_actor, reg_to = excluded.reg_to "
                "WHERE reg_time IS NULL OR (excluded.reg_time, excluded.reg_id) < (reg_time, reg_id)", registers)
        if mevents:
            self.db.executemany("INSERT OR IGNORE INTO mevents VALUES (?, ?, ?)", mevents)
        if folded:
            self.db.executemany("INSERT OR IGNORE INTO folded VALUES (?, ?)", folded)
        if vevents:
            self.db.executemany("INSERT OR IGNORE INTO versions(version) VALUES (?)", ((r[0],) for r in vevents))
            self.db.executemany("INSERT OR IGNORE INTO vevents VALUES (?, ?, ?, ?, ?)", vevents)


def _registered(v: str, row: tuple[str | None, str | None, bytes | None]) -> VersionState:
    st = VersionState(v)
    if row[0] is not None:
        st.registered_at, st.registered_by, st.digest = row[0], row[1], _digest(row[2])
    return st


def _siblings(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def remove(path: Path) -> None:
    """Delete a snapshot and SQLite's files beside it (links are removed, never followed)."""
    for p in _siblings(path):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _check_files(path: Path) -> None:
    """The snapshot and SQLite's files beside it must be regular files (a link is removed, never followed)."""
    for p in _siblings(path):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            os.unlink(p)
