"""The state snapshot (modelreg.derived): folding the log's tail gives exactly what folding the whole log gives.

Random logs are built line by line (registrations, annotations, archives, stage moves with
and without their ``prev`` links, forks, rollbacks with and without ``undoes``, demotes,
repeated ids, garbage and torn lines, clocks that go back), with git-merge-like insertions
in the middle, deleted and stale snapshots in between; after every step the snapshot's
answers must equal the in-memory fold of the whole log (``modelreg.state.fold``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelreg import log
from modelreg.cachedir import cache_dir
from modelreg.derived import snapshot as snapshot_mod
from modelreg.derived.state import SnapshotState, state_of
from modelreg.lifecycle.order import MOVES
from modelreg.registry import Registry
from modelreg.state import fold

MODEL = "m"
STAGES = ("staging", "production")
VERSIONS = ("1.0", "1.1", "2.0", "2.0-RC1", "2.0-rc1", "3.0")


def digest(i: int) -> str:
    return f"sha256:{i:064x}"


class LogBuilder:
    """Writes a model's log line by line, like writers on several clones with their own clocks would."""

    def __init__(self, reg: Registry, rnd: random.Random) -> None:
        self.reg, self.rnd = reg, rnd
        self.path = log.path_for(reg.logs_dir, MODEL)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self.t = 1_700_000_000_000_000_000
        self.heads: dict[str, str | None] = {s: None for s in STAGES}
        self.moves: list[dict] = []
        self.lines: list[bytes] = []

    def _time(self) -> tuple[str, str]:
        self.t += self.rnd.randrange(1, 10**9)
        ns = self.t + (self.rnd.choice((0, 0, 0, -3600, 3600)) * 10**9)  # skewed clocks
        secs, frac = divmod(ns, 10**9)
        import datetime as dt

        stamp = dt.datetime.fromtimestamp(secs, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{frac // 1000:06d}Z"
        eid = f"{ns:016x}{self.rnd.randrange(16**8):08x}"
        return stamp, eid[:-1] if self.rnd.random() < 0.05 else eid  # an odd-length id, as a hand-made line may have

    def event(self) -> dict:
        r = self.rnd
        time, eid = self._time()
        v = r.choice(VERSIONS)
        d = {"id": eid, "time": time, "actor": r.choice(("a", "b")), "action": "", "model": MODEL, "version": v,
             "stage": None, "from": None, "to": digest(VERSIONS.index(v)), "reason": None, "data": {}}
        kind = r.choice(("register", "register", "metrics", "tag", "approve", "bind", "unbind", "archive",
                         "unarchive", "move", "move", "move", "import"))
        d["action"] = kind
        if kind == "metrics":
            d["data"] = {"suite": r.choice(("s", "t")), "values": {r.choice("xyz"): r.randrange(5)}}
        elif kind == "tag":
            d["data"] = {"add": [r.choice("pq")], "remove": [r.choice("qr")]}
        elif kind == "approve":
            d["data"] = {"stage": r.choice(STAGES), "comment": None}
        elif kind in ("bind", "unbind"):
            d["data"] = {"provider": r.choice(("p", "q")), "id": "x"}
        elif kind in ("archive", "unarchive"):
            d["reason"] = r.choice((None, "why"))
        elif kind == "import":
            d["to"] = None
        elif kind == "move":
            self._move(d)
        return d

    def _move(self, d: dict) -> None:
        r = self.rnd
        stage = r.choice(STAGES)
        action = r.choice(("promote", "promote", "demote", "clear", "rollback", "rollback", "reconcile"))
        d.update(action=action, stage=stage, **{"from": r.choice((None, digest(r.randrange(len(VERSIONS)))))})
        if action == "clear":
            d["to"] = None
        how = r.random()
        if how < 0.75:
            prev = self.heads[stage]  # a writer that saw the stage's last move
        elif how < 0.9 and self.moves:
            prev = r.choice(self.moves)["id"]  # a fork: another clone's writer saw an older move
        elif how < 0.95:
            prev = f"{r.randrange(16**24):024x}"  # a link to a move this log does not have
        else:
            prev = None  # written before prev existed
        if prev is not None:
            d["prev"] = prev
        if action == "rollback" and self.moves and r.random() < 0.8:
            d["data"] = {"undoes": [m["id"] for m in r.sample(self.moves, min(len(self.moves), r.randrange(1, 3)))]}
        if action == "demote" and self.moves and r.random() < 0.7:
            d["data"] = {"by": r.choice(self.moves + [{"id": f"{r.randrange(16**24):024x}"}])["id"]}
        self.heads[stage] = d["id"]
        self.moves.append(d)

    def line(self) -> bytes:
        r = self.rnd.random()
        if r < 0.04 and self.lines:
            return self.rnd.choice(self.lines)  # a repeated line (same id)
        if r < 0.07 and self.lines:
            try:
                d = json.loads(self.rnd.choice(self.lines))  # a repeated id with other content
            except ValueError:
                d = None
            if isinstance(d, dict) and "id" in d:
                d["reason"] = "other"
                return json.dumps(d).encode() + b"\n"
        if r < 0.09:
            return b'{"not": "an event"}\n'
        if r < 0.10:
            return b"\xff garbage\n"
        return json.dumps(self.event(), separators=(",", ":")).encode() + b"\n"

    def append(self, n: int) -> None:
        new = [self.line() for _ in range(n)]
        with open(self.path, "ab") as f:
            for line in new:
                f.write(line)
        self.lines.extend(new)

    def torn(self) -> None:
        with open(self.path, "ab") as f:
            f.write(b'{"id": "torn')  # a crash mid-line; the next append fences it off
        self.lines.append(b'{"id": "torn\n')
        with open(self.path, "ab") as f:
            f.write(b"\n")

    def merge(self, n: int) -> None:
        """Lines from another branch inserted in the middle (a git union merge)."""
        at = self.rnd.randrange(len(self.lines) + 1)
        new = [self.line() for _ in range(n)]
        self.lines[at:at] = new
        self.path.write_bytes(b"".join(self.lines))


def assert_same(reg: Registry) -> None:
    snap = state_of(reg, MODEL)
    assert isinstance(snap, SnapshotState)
    full = fold(log.read(reg.logs_dir, MODEL)[0])
    for v in (*VERSIONS, "9.9"):
        assert snap.versions.get(v) == full.versions.get(v), v
        assert snap.version_events(v) == full.version_events(v), v
    assert dict(snap.versions) == full.versions
    for stage in (*STAGES, "nowhere"):
        assert snap.head(stage) == full.head(stage), stage
        assert snap.undo_stack(stage) == full.undo_stack(stage), stage
        assert snap.undo_top(stage) == full.undo_top(stage), stage
        for i in range(len(VERSIONS)):
            assert snap.rewind(stage, digest(i)) == full.rewind(stage, digest(i)), (stage, i)

    def exists(v: str) -> str | None:
        return digest(VERSIONS.index(v)) if v != "3.0" else None  # 3.0's entry is missing

    assert snap.latest(exists) == full.latest(exists)
    assert snap.order(list(VERSIONS)) == full.order(list(VERSIONS))
    registered = [v for v, s in full.versions.items() if s.registered_at and v != v.lower()]
    for v in VERSIONS:
        assert sorted(snap.case_variants(v)) == sorted(x for x in registered if x.lower() == v.lower())


def fresh_registry(tmp_path: Path) -> Registry:
    shutil.rmtree(tmp_path / "p", ignore_errors=True)
    return Registry.init(tmp_path / "p")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), steps=st.lists(
    st.sampled_from(("append", "append", "append", "merge", "torn", "delete", "stale", "reopen")), max_size=25))
def test_incremental_fold_equals_full_fold(tmp_path: Path, seed: int, steps: list[str]) -> None:
    rnd = random.Random(seed)
    reg = fresh_registry(tmp_path)
    b = LogBuilder(reg, rnd)
    db = snapshot_mod.path_for(cache_dir(reg.path), MODEL)
    saved = tmp_path / "saved.sqlite"
    saved.unlink(missing_ok=True)
    for step in steps:
        if step == "append":
            b.append(rnd.randrange(1, 6))
        elif step == "merge":
            b.merge(rnd.randrange(1, 4))
        elif step == "torn":
            b.torn()
        elif step == "delete":  # deleting the snapshot only costs time
            reg = Registry(reg.path)
            for p in db.parent.glob(db.name + "*"):
                p.unlink(missing_ok=True)  # a -shm/-wal file can go between glob and unlink
        elif step == "stale":  # an older snapshot comes back (a backup, a copied cache directory)
            reg = Registry(reg.path)
            if saved.exists():
                for p in db.parent.glob(db.name + "*"):
                    p.unlink(missing_ok=True)  # a -shm/-wal file can go between glob and unlink
                shutil.copy(saved, db)
            elif db.exists():
                state_of(reg, MODEL)
                reg._snapshots[MODEL].close()  # checkpoint the WAL into the file before copying it
                reg = Registry(reg.path)
                shutil.copy(db, saved)
        else:
            reg = Registry(reg.path)
        assert_same(reg)


def test_a_long_chain_of_moves_is_folded_from_the_tail(tmp_path: Path) -> None:
    """The usual case: each new move links to the last; the snapshot advances without folding again."""
    reg = fresh_registry(tmp_path)
    b = LogBuilder(reg, random.Random(1))
    refolds = []
    real = snapshot_mod.Snapshot._refold

    def spy(self, fd):  # type: ignore[no-untyped-def]
        refolds.append(1)
        return real(self, fd)

    snapshot_mod.Snapshot._refold = spy  # type: ignore[method-assign]
    try:
        heads: dict[str, str | None] = {s: None for s in STAGES}
        for i in range(40):
            time, eid = b._time()
            stage = STAGES[i % 2]
            d = {"id": eid, "time": time, "actor": "a", "action": "promote", "model": MODEL,
                 "version": VERSIONS[i % 3], "stage": stage, "from": None, "to": digest(i % 3), "reason": None,
                 "data": {}}
            if heads[stage]:
                d["prev"] = heads[stage]
            heads[stage] = eid
            extra = json.dumps({**d, "id": b._time()[1], "action": "metrics", "stage": None, "prev": None,
                                "data": {"suite": "s", "values": {"k": i}}})
            with open(b.path, "ab") as f:
                f.write(json.dumps(d).encode() + b"\n" + extra.encode() + b"\n")
            assert_same(reg)
    finally:
        snapshot_mod.Snapshot._refold = real  # type: ignore[method-assign]
    assert len(refolds) == 1  # the first time only


def test_a_merge_that_inserts_lines_refolds(tmp_path: Path) -> None:
    reg = fresh_registry(tmp_path)
    b = LogBuilder(reg, random.Random(2))
    b.append(30)
    assert_same(reg)
    b.merge(3)
    assert_same(reg)
    b.append(5)
    assert_same(reg)


def test_an_unusable_snapshot_costs_only_time(tmp_path: Path) -> None:
    reg = fresh_registry(tmp_path)
    b = LogBuilder(reg, random.Random(3))
    b.append(40)
    assert_same(reg)
    db = snapshot_mod.path_for(cache_dir(reg.path), MODEL)
    for p in db.parent.glob(db.name + "*"):
        p.unlink(missing_ok=True)  # a -shm/-wal file can go between glob and unlink
    db.write_bytes(b"\x00 not a database" * 100)  # garbage: the state comes from the log
    reg = Registry(reg.path)
    full = fold(log.read(reg.logs_dir, MODEL)[0])
    got = state_of(reg, MODEL)
    assert dict(got.versions) == full.versions and got.head("production") == full.head("production")
    assert isinstance(got, SnapshotState)  # the garbage was replaced by a new snapshot, not kept
    for p in db.parent.glob(db.name + "*"):
        p.unlink(missing_ok=True)  # a -shm/-wal file can go between glob and unlink
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep me")
    db.symlink_to(target)  # a link in the cache is removed, never followed
    reg = Registry(reg.path)
    assert_same(reg)
    assert target.read_bytes() == b"keep me" and not db.is_symlink()


def test_read_only_cache_falls_back_to_the_log(tmp_path: Path) -> None:
    reg = fresh_registry(tmp_path)
    b = LogBuilder(reg, random.Random(4))
    b.append(20)
    state = cache_dir(reg.path) / "state"
    state.mkdir(parents=True)
    os.chmod(state, 0o500)
    try:
        if os.access(state, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        got = state_of(Registry(reg.path), MODEL)
        full = fold(log.read(reg.logs_dir, MODEL)[0])
        assert dict(got.versions) == full.versions
    finally:
        os.chmod(state, 0o700)
