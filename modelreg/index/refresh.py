"""Bringing the index up to date from what changed: per-model stamps of the log, versions and refs.

Every call stats, per model, ``versions/<model>/`` (a new or removed version entry changes
it), ``logs/<model>.jsonl`` (inode, size, mtime, ctime: an append, a rewrite by git or
fsck --repair) and ``refs/<model>/`` with each ref file in it, plus ``config.yaml`` (stage
order). A model whose stamp differs from the stored one is brought up to date in its own
``BEGIN IMMEDIATE`` transaction (so two processes never interleave one model's rows; the
second finds it done).

First incrementally (:func:`modelreg.index.incremental.advance`), at a cost that follows
what changed: the log is read only after the mark the index kept (offset after the last whole
line plus digests of the windows before it, checked with :mod:`modelreg.derived.logtail` as
the state snapshot does); ``versions/<model>/`` is listed and ``lstat``'ed only if it changed,
and only new entries are read; refs are read again; only the rows of versions named by the
appended events, versions whose stages changed and new versions are rebuilt, from the model's
state snapshot (``Registry.model_state``). That equals a refold because the appended events
all sort after the indexed ones by ``(time, id)`` and none is linked to by an indexed event,
so the causal order of the whole log is the old order followed by theirs
(:func:`modelreg.lifecycle.order.causal_order`); a version's row depends only on its own
events, its manifest, its stages and the model's fields; and a new version sorting after every
indexed one keeps the registration order (``seq``) of the others.

Otherwise (:class:`~modelreg.index.incremental.Fallback` or any error) the model is refolded
by :func:`compute`: the log rewritten, shrunk, its prefix changed or an unterminated last line;
an appended event sorting before an indexed one, repeating an indexed id, or one an indexed
event links to; a version entry removed or replaced; a new version registered before the
newest indexed one or a registration time changed; the model's fields changed (every record
embeds them); config.yaml changed; no mark (a new model, an older index). A refold reads and
folds the log, parses manifests only for digests the index has not seen (manifests are
immutable) and writes only the rows that changed.

Stamps are taken before the registry is read, and the log is read before the state, so a write
that lands meanwhile leaves a stale stamp (and lines past the mark) picked up by the next call:
the index can lag a racing write exactly as a direct read can, never more.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import fileio, log
from ..names import check_model
from ..refs import _valid
from .incremental import MANIFEST_KEYS as _MANIFEST_KEYS
from .incremental import Fallback, advance, delete_row, entries, put_row, read_log
from .incremental import key as _key
from .incremental import lstat_at as _lstat
from .records import _DUMP, manifest_part, row

if TYPE_CHECKING:
    from .db import Index

_log = logging.getLogger("modelreg.index")
_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _valid_name(name: str) -> bool:
    try:
        check_model(name)
        return True
    except Exception:  # noqa: BLE001 - an odd name is the library's to refuse, not the index's
        return False


def scan(reg: Any, only: str | None = None, before: dict[str, str] | None = None) -> dict[str, str]:
    """Model -> a JSON stamp of everything its rows are derived from (see the module docstring);
    with ``only``, that one model (if it has versions or a log). ``before`` (the stored stamps) lets
    an unchanged ``refs/<model>/`` directory skip its listing: its files are still stat'ed one by one."""
    config = _key(fileio.lstat(reg.path / "config.yaml"))
    out: dict[str, dict[str, Any]] = {}
    for sub, suffix in (("versions", ""), ("logs", log.LOG_SUFFIX)):
        try:
            with fileio.opendir(reg.path / sub) as d:
                for name in (d.listdir() if only is None else [only + suffix]):
                    if name.startswith(".") or not name.endswith(suffix):
                        continue
                    model = name[: len(name) - len(suffix)] if suffix else name
                    if sub == "versions":
                        _valid(d.path, model, check_model)  # refused like Refs.models() does (exit 6)
                    elif not _valid_name(model):
                        continue  # Registry.events() names it; search never reads logs alone
                    st = _lstat(name, d.fd, d.path)
                    if sub == "versions":
                        if st is not None and stat.S_ISLNK(st.st_mode):
                            raise fileio.SymlinkError(os.path.join(d.path, name))
                        if st is None or not stat.S_ISDIR(st.st_mode):
                            continue
                    out.setdefault(model, {})[sub] = _key(st)
        except (FileNotFoundError, NotADirectoryError):
            pass
    try:
        with fileio.opendir(reg.path / "refs") as d:
            for model, entry in out.items():
                old = None
                if before and model in before:
                    try:
                        old = json.loads(before[model])[2]
                    except (ValueError, IndexError, TypeError):
                        old = None
                entry["refs"] = _refs_stamp(d, model, old)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return {m: json.dumps([e.get("versions"), e.get("logs"), e.get("refs"), config]) for m, e in out.items()}


def _refs_stamp(d: fileio.Dir, model: str, old: Any = None) -> Any:
    if d.fd is None:  # pragma: no cover - no directory descriptors: stat through the confined paths
        st = fileio.lstat(os.path.join(d.path, model))
        if st is None:
            return None
        names = sorted(fileio.listdir(os.path.join(d.path, model)))
        return [_key(st), [[n, _key(fileio.lstat(os.path.join(d.path, model, n)))] for n in names]]
    st = _lstat(model, d.fd, None)
    if st is None:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return ["unreadable", _key(st)]  # a link or a file: the library refuses it when the model is refolded
    key = _key(st)
    if isinstance(old, list) and len(old) == 2 and old[0] == key and isinstance(old[1], list):
        names = [n for n, _k in old[1]]  # the directory did not change: same entries
        return [key, [[n, _key(_lstat(f"{model}/{n}", d.fd, None))] for n in names]]
    try:
        fd = os.open(model, _O_DIR, dir_fd=d.fd)
    except OSError:
        return ["unreadable", key]
    try:
        return [_key(os.fstat(fd)), [[n, _key(_lstat(n, fd, None))] for n in sorted(os.listdir(fd))]]
    finally:
        os.close(fd)


def refresh(idx: Index, only: str | None = None) -> None:
    """Refold every model whose stamp changed (or just ``only``); drop models that are gone."""
    con = idx.con
    stored = dict(con.execute("SELECT name, COALESCE(stamp, '') FROM models").fetchall())
    current = scan(idx.reg, only, stored)
    todo = [(m, current[m]) for m in sorted(current) if stored.get(m) != current[m]]
    if len(todo) >= POOL_MIN and (os.cpu_count() or 1) > 1:
        with _build_lock(idx):  # one big build at a time: a second process waits, then finds it done
            stored = dict(con.execute("SELECT name, COALESCE(stamp, '') FROM models").fetchall())
            todo = [(m, s) for m, s in todo if stored.get(m) != s]
            if len(todo) >= POOL_MIN:
                for model, stamp, plan in _plans(idx.reg, todo):
                    _update(idx, model, stamp, plan)  # a model a worker could not read is refolded here (its error)
                todo = []
    for model, stamp in todo:
        _update(idx, model, stamp)
    gone = [m for m in stored if m not in current and (only is None or m == only)]
    if gone:
        con.execute("BEGIN IMMEDIATE")
        try:
            for m in gone:
                _drop(con, m)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _drop(con: Any, model: str) -> None:
    con.execute("DELETE FROM attrs WHERE vid IN (SELECT vid FROM versions WHERE model = ?)", (model,))
    con.execute("DELETE FROM versions WHERE model = ?", (model,))
    con.execute("DELETE FROM events WHERE model = ?", (model,))
    con.execute("DELETE FROM models WHERE name = ?", (model,))


def _fold(reg: Any, model: str, has_versions: bool) -> tuple[dict[str, str], Any]:
    """``(version -> digest, model state)`` read from the registry (the snapshot hook, see above)."""
    digests = reg.refs.versions(model) if has_versions else {}
    return digests, reg.model_state(model)


POOL_MIN = 50  # models to refold before the work is spread over processes (reindex, a big git pull)
BUILD_WAIT = 900.0  # seconds a process waits for another's big build before building itself


class _build_lock:
    """``index.lock`` beside the index, held (flock) while many models are refolded at once."""

    def __init__(self, idx: Index) -> None:
        from .db import path_of

        self.path = str(path_of(idx.reg)) + ".lock"
        self.fd: int | None = None

    def __enter__(self) -> None:
        try:
            import fcntl
            import time

            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            deadline = time.monotonic() + BUILD_WAIT
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        return  # build anyway: the per-model transactions keep the rows consistent
                    time.sleep(0.05)
        except (ImportError, OSError):
            return  # no lock to be had: only duplicated work, never wrong rows

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock


def _update(idx: Index, model: str, stamp: str, plan: dict[str, Any] | None = None) -> None:
    con, reg = idx.con, idx.reg
    con.execute("BEGIN IMMEDIATE")
    try:
        found = con.execute("SELECT stamp, incr FROM models WHERE name = ?", (model,)).fetchone()
        if found is not None and found[0] == stamp:  # another process refreshed it meanwhile
            con.execute("COMMIT")
            return
        if plan is None and found is not None and found[0]:
            con.execute("SAVEPOINT advance")
            try:
                advance(con, reg, model, found[0], stamp, found[1])
                con.execute("RELEASE advance")
                con.execute("COMMIT")
                return
            except Exception as exc:  # noqa: BLE001 - anything unusual: the refold below (which reports errors)
                _log.debug("index: refolding %s (%s)", model, exc if isinstance(exc, Fallback) else repr(exc))
                con.execute("ROLLBACK TO advance")
                con.execute("RELEASE advance")
        existing = {v: (vid, rec, stg, seq, info, entry) for vid, v, rec, stg, seq, info, entry in con.execute(
            "SELECT vid, version, record, stages, seq, info, entry FROM versions WHERE model = ?", (model,))}
        if plan is None:
            known = {}  # manifest fields of digests already indexed (manifests are immutable): no YAML again
            for _vid, rec, *_rest in existing.values():
                r = json.loads(rec)
                known[r["digest"]] = {k: r[k] for k in _MANIFEST_KEYS}
            plan = compute(reg, model, stamp, known)
        _apply(con, model, stamp, plan, existing)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def compute(reg: Any, model: str, stamp: str, known: dict[str, Any]) -> dict[str, Any]:
    """Everything the index holds about ``model``, read from the registry (no database access):
    safe to run in another process."""
    has_versions = json.loads(stamp)[0] is not None
    listing = entries(reg, model) if has_versions else {}  # stat'ed before they are read (see incremental)
    if listing:
        vdir = os.path.join(reg.refs.versions_dir, model)
        fileio.prefetch([os.path.join(vdir, n) for n in listing])
    events, incr = read_log(reg, model)  # before the state: the rows then reflect at least these lines
    digests, state = _fold(reg, model, has_versions)
    order = state.order(list(digests))
    holders: dict[str, str] = reg.checked_holders(model, digests) if has_versions else reg.stage_holders(model)
    stage_versions = {}
    for s, d in holders.items():  # what `ls` and `log` check: raises for a manifest nobody registered
        stage_versions[s] = reg._stage_identity(model, s, d).version
    stage_of: dict[str, list[str]] = {}
    for s in reg._stage_order(holders):
        stage_of.setdefault(holders[s], []).append(s)
    latest = None
    for v in reversed(order):
        st = state.versions.get(v)
        if not (st and st.archived):
            latest = v
            break
    missing = [d for d in digests.values() if d not in known]
    if len(missing) > 8:
        fileio.prefetch([str(reg.objects.path(d)) for d in missing])  # one wait on the disk, not one per file
    model_fields = json.loads(json.dumps(getattr(state, "fields", {}) or {}))  # the model's own fields (a copy)
    rows = []
    for seq, v in enumerate(order):
        d = digests[v]
        part = known.get(d)
        if part is None or part.get("name") != model or part.get("version") != v:
            part = manifest_part(reg, model, v, d)
        rows.append(row(reg, model, seq, v, d, part, state, model_fields, stage_of.get(d, []), listing.get(v)))
    times = [(e.time, e.id) for e in events]
    return {
        "rows": rows, "n": len(digests), "latest": latest, "holders": holders, "stage_versions": stage_versions,
        "fields": model_fields,
        "sorted": all(a <= b for a, b in zip(times, times[1:])), "has_versions": has_versions,
        "events": [(e.id, e.time, json.dumps(e.to_dict(), **_DUMP)) for e in events],
        "incr": None if incr is None else json.dumps(incr),
    }


def _apply(con: Any, model: str, stamp: str, plan: dict[str, Any], existing: dict[str, Any]) -> None:
    _events(con, model, plan["events"])
    for r in plan["rows"]:
        old = existing.pop(r[0], None)
        if old is not None and old[1:] == (r[5], r[6], r[1], r[7], r[8]):
            continue
        put_row(con, model, r, None if old is None else old[0])
    for vid, *_ in existing.values():  # versions no longer there (a git checkout removed them)
        delete_row(con, vid)
    con.execute("INSERT OR REPLACE INTO models (name, stamp, n_versions, latest, holders, stage_versions, fields, "
                "causal_sorted, has_versions, incr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (model, stamp, plan["n"], plan["latest"], json.dumps(plan["holders"]),
                 json.dumps(plan["stage_versions"]), json.dumps(plan["fields"], **_DUMP), int(plan["sorted"]),
                 int(plan["has_versions"]), plan["incr"]))


_WORKER_REG: Any = None


def _worker_init(path: str) -> None:
    global _WORKER_REG
    from ..registry import Registry

    _WORKER_REG = Registry(path)


def _worker(job: tuple[str, str]) -> tuple[str, dict[str, Any] | None]:
    model, stamp = job
    try:
        return model, compute(_WORKER_REG, model, stamp, {})
    except Exception:  # noqa: BLE001 - the parent refolds this model itself and raises the library's error
        return model, None


def _plans(reg: Any, jobs: list[tuple[str, str]]) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
    """``(model, stamp, plan or None)`` for many models, computed by one process per core."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    stamps = dict(jobs)
    with ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=mp.get_context(method),
                             initializer=_worker_init, initargs=(str(reg.path),)) as pool:
        for model, plan in pool.map(_worker, jobs, chunksize=8):
            yield model, stamps[model], plan


def _events(con: Any, model: str, events: list[tuple[str, str, str]]) -> None:
    """The model's events (id, time, JSON) in causal order: the rows after the common prefix are replaced."""
    old = [i for (i,) in con.execute("SELECT id FROM events WHERE model = ? ORDER BY seq", (model,))]
    k = 0
    while k < len(old) and k < len(events) and old[k] == events[k][0]:
        k += 1
    if k < len(old):
        con.execute("DELETE FROM events WHERE model = ? AND seq >= ?", (model, k))
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                    [(model, i, *e) for i, e in enumerate(events[k:], start=k)])

