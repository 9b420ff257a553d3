"""fsck's object pass: every object hashed and parsed in a process pool, and ``--quick``'s memory of it.

Each object is read once, its SHA-256 compared with its name and its bytes parsed as a
canonical manifest (strict YAML, validated, re-dumped byte for byte), in worker processes,
one per core, in chunks. A worker returns, per object, what the later checks need (name,
version, parent digests; the whole manifest only for ``--artifacts``) or the problem.

``fsck --quick`` remembers the objects that passed, keyed by inode, size, mtime and ctime
(nanoseconds) in ``fsck-quick.sqlite`` in the registry's cache directory, and does not read
an object again while all four are unchanged. What it can miss (docs/format.md): bytes that
change on disk without their metadata changing (bit rot, a tool that restores mtime *and*
ctime, which needs root), and a filesystem that reuses inodes and times coarsely. The
memory is derivable and lives outside the registry, so git can never deliver a forged one.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

CHUNK = 256
POOL_MIN = 2000  # fewer objects than this: checked in this process (a pool costs ~0.1 s to start)
CHECKS_VERSION = 1  # bump when the object checks change: --quick then re-reads everything

Summary = dict[str, Any]


def _summary(m: dict[str, Any], full: bool) -> Summary:
    if full:
        return m
    return {"name": m["name"], "version": m["version"],
            "parents": [{"digest": p["digest"]} for p in m.get("parents", [])]}


def check_one(store: Any, digest: str, full: bool) -> tuple[str, Any]:
    """``("ok", summary)`` or ``("error", message)`` for one object."""
    from . import manifest
    from .errors import ModelregError

    try:
        return "ok", _summary(manifest.from_object(store.get(digest), what="manifest"), full)
    except ModelregError as exc:
        return "error", exc.message


def _worker_init(registry: str) -> None:
    from . import fileio

    fileio.confine(registry)


def _check_chunk(registry: str, digests: list[str], full: bool) -> list[tuple[str, str, Any]]:
    from .fileio import prefetch
    from .store import ObjectStore

    store = ObjectStore(os.path.join(registry, "objects"))
    prefetch([str(store.path(d)) for d in digests])  # the disk reads them while this process parses
    return [(d, *check_one(store, d, full)) for d in digests]


def check_all(registry: str, store: Any, digests: list[str], full: bool,
              advance: Callable[[int], None] | None = None) -> Iterable[tuple[str, str, Any]]:
    """``(digest, "ok"|"error", summary|message)`` for every digest; in a process pool when there are many."""
    workers = os.cpu_count() or 1
    if len(digests) < POOL_MIN or workers < 2:
        for i, d in enumerate(digests):
            yield (d, *check_one(store, d, full))
            if advance is not None and (i + 1) % CHUNK == 0:
                advance(CHUNK)
        if advance is not None and len(digests) % CHUNK:
            advance(len(digests) % CHUNK)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    chunks = [digests[i:i + CHUNK] for i in range(0, len(digests), CHUNK)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                             initializer=_worker_init, initargs=(registry,)) as pool:
        for results in pool.map(_check_chunk, [registry] * len(chunks), chunks, [full] * len(chunks)):
            yield from results
            if advance is not None:
                advance(len(results))


# ------------------------------------------------------------------ --quick
class QuickState:
    """Objects that passed an earlier fsck, by digest, with the stat of their file then."""

    def __init__(self, registry_path: Any) -> None:
        from . import cachedir

        self.path = cachedir.cache_dir(registry_path) / "fsck-quick.sqlite"
        self.con: sqlite3.Connection | None = None
        self.known: dict[str, tuple[list[int], str]] = {}
        try:
            if not cachedir._makedirs(self.path.parent) or os.path.islink(self.path):
                return
            self.con = sqlite3.connect(str(self.path), timeout=10)
            self.con.execute("PRAGMA journal_mode = WAL")
            version = self.con.execute("PRAGMA user_version").fetchone()[0]
            if version != CHECKS_VERSION:
                self.con.execute("DROP TABLE IF EXISTS objects")
                self.con.execute("CREATE TABLE objects (digest TEXT PRIMARY KEY, stat TEXT NOT NULL, summary TEXT NOT NULL)")
                self.con.execute(f"PRAGMA user_version = {CHECKS_VERSION}")
                self.con.commit()
            self.known = {d: (json.loads(s), m) for d, s, m in self.con.execute("SELECT digest, stat, summary FROM objects")}
        except (sqlite3.Error, ValueError, OSError):
            self.close()
            self.known = {}

    @staticmethod
    def key(st: os.stat_result) -> list[int]:
        return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]

    def unchanged(self, digest: str, st: os.stat_result | None, full: bool) -> Summary | None:
        """The summary remembered for ``digest`` if its file has the same stat as when it passed."""
        got = self.known.get(digest)
        if got is None or st is None or got[0] != self.key(st):
            return None
        try:
            summary = json.loads(got[1])
        except ValueError:
            return None
        if full and summary.get("_full") is not True:  # --artifacts needs the whole manifest
            return None
        summary.pop("_full", None)
        return summary

    def remember(self, passed: list[tuple[str, os.stat_result, Summary, bool]]) -> None:
        if self.con is None:
            return
        try:
            self.con.executemany("INSERT OR REPLACE INTO objects VALUES (?, ?, ?)",
                                 [(d, json.dumps(self.key(st)), json.dumps({**s, "_full": full}, ensure_ascii=False))
                                  for d, st, s, full in passed])
            self.con.commit()
        except (sqlite3.Error, ValueError):
            pass

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
