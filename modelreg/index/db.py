"""The index file: SQLite in WAL mode, schema version in ``PRAGMA user_version``, and the queries that read it.

The file is ``index.sqlite`` in :func:`modelreg.cachedir.cache_dir`. It is opened only if it
is a regular file (never through a link); a file of another schema version, or one SQLite
cannot read, is deleted and rebuilt. Any SQLite error while reading or writing it makes the
caller fall back to reading the registry itself (:class:`Unavailable`): the index only ever
saves time, it never refuses a command and never decides an answer (every model's rows are
used only while the model's stamps, taken from the registry on every call, still match).
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import cachedir

if TYPE_CHECKING:
    from ..registry import Registry

SCHEMA_VERSION = 6  # 6: what an incremental refresh starts from (models.incr, versions.entry); bump when a table or a derived field changes: older files are rebuilt
FILENAME = "index.sqlite"
BUSY_MS = 10_000

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE models (
    name TEXT PRIMARY KEY,
    stamp TEXT,
    n_versions INTEGER NOT NULL DEFAULT 0,
    latest TEXT,
    holders TEXT NOT NULL DEFAULT '{}',
    stage_versions TEXT NOT NULL DEFAULT '{}',
    fields TEXT NOT NULL DEFAULT '{}',
    causal_sorted INTEGER NOT NULL DEFAULT 1,
    has_versions INTEGER NOT NULL DEFAULT 0,
    incr TEXT
);
CREATE TABLE versions (
    vid INTEGER PRIMARY KEY,
    model TEXT NOT NULL, version TEXT NOT NULL, seq INTEGER NOT NULL, digest TEXT NOT NULL,
    archived INTEGER NOT NULL, license TEXT, fingerprint TEXT, registered_at TEXT,
    stages TEXT NOT NULL, tags TEXT NOT NULL,
    record TEXT NOT NULL, info TEXT NOT NULL, entry TEXT,
    UNIQUE (model, version)
);
CREATE INDEX versions_order ON versions (model, seq);
CREATE INDEX versions_fingerprint ON versions (fingerprint);
CREATE INDEX versions_digest ON versions (digest);
CREATE TABLE attrs (
    vid INTEGER NOT NULL, path TEXT NOT NULL, kind INTEGER NOT NULL, num, txt TEXT, vkey TEXT
);
CREATE INDEX attrs_num ON attrs (path, kind, num);
CREATE INDEX attrs_txt ON attrs (path, kind, txt);
CREATE INDEX attrs_vid ON attrs (vid, path);
CREATE TABLE events (
    model TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, time TEXT NOT NULL, event TEXT NOT NULL,
    PRIMARY KEY (model, seq)
);
CREATE INDEX events_time ON events (time, id, model);
CREATE INDEX events_id ON events (model, id);
"""

class Unavailable(Exception):
    """The index cannot be used right now (SQLite error, locked too long, unwritable cache)."""


def path_of(reg: Registry) -> Path:
    return cachedir.cache_dir(reg.path) / FILENAME


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
    con.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    return con


def _usable_file(path: Path) -> bool:
    """False if ``path`` exists but is not a regular file we may open (a link, a directory...)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if stat.S_ISREG(st.st_mode):
        return True
    try:  # never follow or keep a link or special file where the index belongs
        if stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode):
            cachedir.clear(path)
        else:
            os.unlink(path)
    except OSError:
        return False
    return not os.path.lexists(path)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{path}{suffix}")
        except OSError:
            pass


def _create(con: sqlite3.Connection, registry_real: str) -> None:
    con.execute("BEGIN IMMEDIATE")
    try:
        if con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:  # another process just did it
            con.execute("COMMIT")
            return
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                   "AND name NOT LIKE 'sqlite_%'").fetchall():
            con.execute(f'DROP TABLE IF EXISTS "{name}"')  # a file of another schema version
        for statement in SCHEMA.split(";"):
            if statement.strip():
                con.execute(statement)
        con.execute("INSERT INTO meta VALUES ('registry', ?)", (registry_real,))
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def connect(reg: Registry, fresh: bool = False) -> sqlite3.Connection:
    """A connection to the registry's index with the current schema (created, or rebuilt when its
    version differs or SQLite cannot read it); Unavailable if that is not possible."""
    path = path_of(reg)
    if fresh:
        _remove(path)
    if not cachedir._makedirs(path.parent) or not _usable_file(path):
        raise Unavailable(f"cannot use {path}")
    real = os.path.realpath(reg.path)
    for attempt in (1, 2):
        try:
            con = _connect(path)
            try:
                mode = con.execute("PRAGMA journal_mode").fetchone()[0]
                if mode != "wal":
                    con.execute("PRAGMA journal_mode = WAL")
                con.execute("PRAGMA synchronous = OFF")  # derivable: a lost write is rebuilt, never wrong
                if con.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    _create(con, real)
                row = con.execute("SELECT value FROM meta WHERE key = 'registry'").fetchone()
                if row is None or row[0] != real:
                    raise sqlite3.DatabaseError("index of another registry")
                return con
            except BaseException:
                con.close()
                raise
        except sqlite3.Error as exc:
            if attempt == 2 or isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise Unavailable(str(exc)) from None
            _remove(path)  # unreadable, foreign or corrupt: start again
    raise Unavailable(f"cannot use {path}")  # pragma: no cover


class Index:
    """An open, current index of one registry (see :func:`open_index`)."""

    def __init__(self, reg: Registry, con: sqlite3.Connection) -> None:
        self.reg = reg
        self.con = con

    def close(self) -> None:
        self.con.close()

    # ---------------------------------------------------------------- reads
    def models(self) -> list[dict[str, Any]]:
        """Every model with versions: ``name, n_versions, latest, holders`` (stage -> digest), by name."""
        rows = self.con.execute("SELECT name, n_versions, latest, holders, stage_versions, fields FROM models "
                                "WHERE has_versions ORDER BY name").fetchall()
        return [{"name": n, "n_versions": k, "latest": latest, "holders": json.loads(h), "stage_versions": json.loads(sv),
                 "fields": json.loads(f)} for n, k, latest, h, sv, f in rows]

    def model_versions(self, model: str) -> list[tuple[str, str, dict[str, Any]]] | None:
        """``(version, digest, info)`` of every version of ``model`` in registration order; None if it has none."""
        rows = self.con.execute("SELECT version, digest, info FROM versions WHERE model = ? ORDER BY seq",
                                (model,)).fetchall()
        return [(v, d, json.loads(i)) for v, d, i in rows] or None

    def holders(self, model: str) -> dict[str, str]:
        row = self.con.execute("SELECT holders FROM models WHERE name = ?", (model,)).fetchone()
        return json.loads(row[0]) if row else {}

    def records(self, models: list[str] | None, sql: str = "", params: tuple[Any, ...] = (),
                vids: str = "", vid_params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Decoded search records (``stages`` included) of the versions among ``vids`` (a SELECT of
        candidate vids; empty: all) that satisfy ``sql`` (a condition on ``versions`` aliased ``v``),
        models in name order, versions in registration order."""
        where = []
        args: list[Any] = list(vid_params)
        if models is not None:
            if not models:
                return []
            where.append(f"v.model IN ({','.join('?' * len(models))})")
            args += models
        if sql:
            where.append(sql)
            args += params
        if vids:  # the candidates drive the query: one lookup per candidate, not a scan of every version
            q = f"SELECT v.record, v.stages FROM ({vids}) c CROSS JOIN versions v ON v.vid = c.vid"
        else:
            q = "SELECT v.record, v.stages FROM versions v"
        q += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY v.model, v.seq"
        out = []
        for record, stages in self.con.execute(q, args):
            r = json.loads(record)
            del r["manifest_tags"]
            r["stages"] = json.loads(stages)
            out.append(r)
        return out

    def all_sorted(self) -> bool:
        return self.con.execute("SELECT count(*) FROM models WHERE NOT causal_sorted").fetchone()[0] == 0

    def latest_events(self, limit: int | None, since: str | None) -> list[str] | None:
        """The JSON of the newest ``limit`` events across models (after event ``since``), oldest first,
        in the order :meth:`Registry.events` merges them; None when that order is not a plain sort
        (a log whose causal order is not its time order) or ``since`` is not unique."""
        if not self.all_sorted():
            return None
        where, args = "", []
        if since is not None:
            rows = self.con.execute("SELECT time, id, model FROM events WHERE id = ?", (since,)).fetchall()
            if len(rows) != 1:
                return None
            where = "WHERE (time, id, model) > (?, ?, ?)"
            args = list(rows[0])
        q = f"SELECT event FROM events {where} ORDER BY time DESC, id DESC, model DESC"
        if limit is not None:
            q += " LIMIT ?"
            args.append(limit)
        return [e for (e,) in self.con.execute(q, args)][::-1]


def open_index(reg: Registry, only: str | None = None) -> Index | None:
    """The registry's index, brought up to date with the registry (``only``: just that model);
    None if it cannot be used (the caller reads the registry instead). Errors about the registry
    itself (a symlink, a ref to a manifest nobody registered) propagate, as from a direct read."""
    from .refresh import refresh

    try:
        con = connect(reg)
    except Unavailable:
        return None
    idx = Index(reg, con)
    try:
        refresh(idx, only)
    except (Unavailable, sqlite3.Error):
        con.close()
        return None
    except BaseException:
        con.close()
        raise
    return idx
