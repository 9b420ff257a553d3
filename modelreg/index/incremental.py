"""Bringing one model's rows up to date from what changed since they were written (appended log lines, new version entries, refs).

:func:`advance` is tried first for a model already in the index; it raises :class:`Fallback`
for anything but the common case, and the caller then refolds the whole model
(:func:`modelreg.index.refresh.compute`). See the module docstring of
:mod:`modelreg.index.refresh` for the conditions and why they make the result equal to a
refold.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .. import fileio, log
from ..derived import logtail
from ..lifecycle.order import MOVES, causal_order
from ..log import Event
from .records import _DUMP, leaves, manifest_part, row

MANIFEST_KEYS = ("name", "version", "digest", "manifest_tags", "meta", "params", "license", "parents", "parent_names",
                 "fingerprint", "artifacts")


class Fallback(Exception):
    """What changed is not something :func:`advance` can apply: refold the model."""


def key(st: os.stat_result | None) -> list[int] | None:
    return None if st is None else [st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def lstat_at(name: str, fd: int | None, base: Any) -> os.stat_result | None:
    try:
        if fd is not None:
            return os.lstat(name, dir_fd=fd)
        return fileio.lstat(os.path.join(base, name))
    except (FileNotFoundError, NotADirectoryError):
        return None


def entries(reg: Any, model: str) -> dict[str, list[int] | None]:
    """Version name -> stat key of ``versions/<model>/<version>`` ({} if the directory cannot be listed:
    the library's own read says why). Taken before the entries are read, so a later change shows."""
    try:
        with fileio.opendir(os.path.join(reg.refs.versions_dir, model)) as d:
            return {n: key(lstat_at(n, d.fd, d.path)) for n in d.listdir() if not n.startswith(".")}
    except (OSError, fileio.SymlinkError):
        return {}


def links(e: Event) -> list[str]:
    """The ids ``e`` is ordered after (:func:`modelreg.lifecycle.order.causal_order`), if they are in the log."""
    out = [e.prev] if e.prev is not None and e.action in MOVES else []
    if e.action == "demote":
        by = e.data.get("by")
        if isinstance(by, str) and by != e.id:
            out.append(by)
    return out


def _parse(fd: int, start: int) -> tuple[dict[str, Event], int]:
    """Events of the whole lines from ``start`` (the first line of an id wins; bad lines skipped, as
    :func:`log.read` does) and the offset after the last whole line."""
    first: dict[str, Event] = {}
    end = start
    for raw, end in logtail.lines(fd, start):
        if not raw.strip():
            continue
        try:
            e = log.parse_line(raw)
        except ValueError:
            continue
        first.setdefault(e.id, e)
    return first, end


def read_log(reg: Any, model: str) -> tuple[list[Event], dict[str, Any] | None]:
    """The model's events in causal order (what :func:`log.read` gives) and what the next
    :func:`advance` starts from: the log's mark, the number of events, the largest ``(time, id)``
    and the ids events link to that are not in the log. None instead when the log ends with an
    unterminated line (then the next refresh refolds)."""
    fd = logtail.open_log(reg.logs_dir, model)
    if fd is None:
        return [], {"mark": logtail.Mark().to_json(), "n": 0, "last": None, "dangling": []}
    try:
        first, end = _parse(fd, 0)
        if os.fstat(fd).st_size != end:
            return log.read(reg.logs_dir, model)[0], None
        mark = logtail.mark_at(fd, end)
    finally:
        os.close(fd)
    events = causal_order(first.values())
    return events, {"mark": mark.to_json(), "n": len(events),
                    "last": list(max((e.time, e.id) for e in events)) if events else None,
                    "dangling": sorted({t for e in events for t in links(e) if t not in first})}


def put_row(con: Any, model: str, r: tuple[Any, ...], old_vid: int | None) -> None:
    """Write one row of :func:`records.row` (replacing the row ``old_vid``) with its attrs."""
    v, seq, d, record, stages, rec_j, stg_j, info_j, entry_j = r
    if old_vid is not None:
        delete_row(con, old_vid)
    cur = con.execute(
        "INSERT INTO versions (model, version, seq, digest, archived, license, fingerprint, registered_at, "
        "stages, tags, record, info, entry) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (model, v, seq, d, int(record["archived"]), record.get("license"), record.get("fingerprint"),
         record.get("registered_at"), stg_j, json.dumps(record["tags"]), rec_j, info_j, entry_j))
    vid = cur.lastrowid
    con.executemany("INSERT INTO attrs VALUES (?, ?, ?, ?, ?, ?)",
                    [(vid, *leaf) for leaf in leaves({**record, "stages": stages})])


def delete_row(con: Any, vid: int) -> None:
    con.execute("DELETE FROM attrs WHERE vid = ?", (vid,))
    con.execute("DELETE FROM versions WHERE vid = ?", (vid,))


def _tail(reg: Any, model: str, mark: logtail.Mark) -> tuple[list[Event], logtail.Mark]:
    """The events of the lines appended after ``mark`` (in their causal order) and the new mark;
    Fallback if the log changed otherwise (rewritten, shrunk, its prefix edited, an unterminated line)."""
    fd = logtail.open_log(reg.logs_dir, model)
    if fd is None:
        if mark.offset:
            raise Fallback("the log is gone")
        return [], mark
    try:
        if not logtail.holds(fd, mark):
            raise Fallback("the log was rewritten")
        first, end = _parse(fd, mark.offset)
        if os.fstat(fd).st_size != end:
            raise Fallback("an unterminated last line")
        return causal_order(first.values()), logtail.mark_at(fd, end)
    finally:
        os.close(fd)


def advance(con: Any, reg: Any, model: str, old_stamp: str, stamp: str, incr: str | None) -> None:
    """Bring ``model``'s rows from ``old_stamp`` to ``stamp`` by applying only what changed (inside the
    caller's transaction); Fallback (or any error) when that is not a plain append: the caller refolds."""
    if incr is None:
        raise Fallback("nothing to start from")
    old, new = json.loads(old_stamp), json.loads(stamp)
    if old[3] != new[3] or (old[0] is None) != (new[0] is None):
        raise Fallback("config.yaml or the versions directory came or went")
    info = json.loads(incr)
    mark = logtail.Mark.from_json(info.get("mark"))
    if mark is None:
        raise Fallback("no mark")
    n_events, last, dangling = info["n"], info["last"], set(info["dangling"])
    (n_versions, holders_j, fields_j, was_sorted) = con.execute(
        "SELECT n_versions, holders, fields, causal_sorted FROM models WHERE name = ?", (model,)).fetchone()

    # 1. the log's appended lines: they must come after every event already indexed in causal order
    added: list[Event] = []
    if old[1] != new[1]:
        added, mark = _tail(reg, model, mark)
    ids = {e.id for e in added}
    for e in added:
        if last is not None and [e.time, e.id] <= last:
            raise Fallback("an appended event sorts before an indexed one")
        if e.id in dangling:
            raise Fallback("an indexed event links to an appended one")
        if con.execute("SELECT 1 FROM events WHERE model = ? AND id = ?", (model, e.id)).fetchone():
            raise Fallback("an appended event repeats an indexed id")
    for e in added:
        for t in links(e):
            if t not in ids and not con.execute("SELECT 1 FROM events WHERE model = ? AND id = ?",
                                                (model, t)).fetchone():
                dangling.add(t)
    keys = [[e.time, e.id] for e in added]
    is_sorted = bool(was_sorted) and all(a <= b for a, b in zip(keys, keys[1:]))
    if keys:
        last = max(keys)

    # 2. new version entries (an entry removed or changed: refold)
    fresh: dict[str, tuple[str, Any]] = {}
    if old[0] != new[0]:
        listing = entries(reg, model)
        stored = dict(con.execute("SELECT version, entry FROM versions WHERE model = ?", (model,)))
        for v, e in stored.items():
            if e is None or listing.get(v) is None or json.loads(e) != listing[v]:
                raise Fallback(f"version entry {v} removed or changed")
        for v in sorted(set(listing) - set(stored)):
            d = reg.refs.read_version(model, v)  # validates the name and the entry (errors: refold, which says them)
            if d is None:
                raise Fallback(f"version entry {v} went away")
            fresh[v] = (d, listing[v])

    # 3. the model's state (its snapshot, advanced from the log's tail) and fields
    state = reg.model_state(model)
    fields = json.loads(json.dumps(getattr(state, "fields", {}) or {}))
    if json.dumps(fields, **_DUMP) != fields_j:
        raise Fallback("the model's fields changed: every record embeds them")

    # 4. stages (refs are a few small files: read again every time, as a refold does)
    holders: dict[str, str] = reg.stage_holders(model)
    fresh_digests = {d for d, _e in fresh.values()}
    for s, d in holders.items():
        if new[0] is not None and d not in fresh_digests and not con.execute(
                "SELECT 1 FROM versions WHERE model = ? AND digest = ?", (model, d)).fetchone():
            reg._stage_identity(model, s, d)  # raises, saying what the object claims to be
    stage_versions = {s: reg._stage_identity(model, s, d).version for s, d in holders.items()}
    stage_of: dict[str, list[str]] = {}
    for s in reg._stage_order(holders):
        stage_of.setdefault(holders[s], []).append(s)

    # 5. the rows that can differ: versions named by appended events, versions whose stages changed, new ones
    names = {e.version for e in added if e.version is not None}
    touched = set(json.loads(holders_j).values()) | set(holders.values())
    for d in touched:
        names.update(v for (v,) in con.execute("SELECT version FROM versions WHERE model = ? AND digest = ?",
                                                (model, d)))
    for v in sorted(names - set(fresh)):
        found = con.execute("SELECT vid, seq, digest, record, stages, info, entry, registered_at FROM versions "
                            "WHERE model = ? AND version = ?", (model, v)).fetchone()
        if found is None:
            continue  # the log names a version without an entry: no row
        vid, seq, d, rec_j, stg_j, info_j, entry_j, registered_at = found
        st = state.versions.get(v)
        if (st.registered_at if st else None) != registered_at:
            raise Fallback(f"{v} changed its registration time: the order may change")
        rec = json.loads(rec_j)
        part = {k: rec[k] for k in MANIFEST_KEYS}
        r = row(reg, model, seq, v, d, part, state, fields, stage_of.get(d, []),
                None if entry_j is None else json.loads(entry_j))
        if r[5:] != (rec_j, stg_j, info_j, entry_j):
            put_row(con, model, r, vid)
    if fresh:
        newest = con.execute("SELECT registered_at, version FROM versions WHERE model = ? ORDER BY seq DESC LIMIT 1",
                             (model,)).fetchone()
        def order_key(v: str) -> tuple[str, str]:
            st = state.versions.get(v)
            return ((st.registered_at if st else None) or "", v)
        order = sorted(fresh, key=order_key)
        if newest is not None and order_key(order[0]) <= ((newest[0] or ""), newest[1]):
            raise Fallback("a new version sorts before an indexed one")
        if len(fresh) > 8:
            fileio.prefetch([str(reg.objects.path(d)) for d, _e in fresh.values()])
        for i, v in enumerate(order):
            d, entry = fresh[v]
            r = row(reg, model, n_versions + i, v, d, manifest_part(reg, model, v, d), state, fields,
                    stage_of.get(d, []), entry)
            put_row(con, model, r, None)

    # 6. the events and the model's own row
    con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                    [(model, n_events + i, e.id, e.time, json.dumps(e.to_dict(), **_DUMP))
                     for i, e in enumerate(added)])
    latest = con.execute("SELECT version FROM versions WHERE model = ? AND NOT archived ORDER BY seq DESC LIMIT 1",
                         (model,)).fetchone()
    incr_j = json.dumps({"mark": mark.to_json(), "n": n_events + len(added), "last": last,
                         "dangling": sorted(dangling)})
    con.execute("UPDATE models SET stamp = ?, n_versions = ?, latest = ?, holders = ?, stage_versions = ?, "
                "causal_sorted = ?, incr = ? WHERE name = ?",
                (stamp, n_versions + len(fresh), latest[0] if latest else None, json.dumps(holders),
                 json.dumps(stage_versions), int(is_sorted), incr_j, model))
