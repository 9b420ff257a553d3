"""The index's incremental refresh (modelreg.index.incremental) ends where a rebuild from scratch ends, and costs
what changed: random writes, hand edits and git-like merges, each followed by a refresh, compared table by table."""

from __future__ import annotations

import json
import random
import secrets
import sqlite3
from pathlib import Path

import pytest

from modelreg import log
from modelreg.errors import ModelregError
from modelreg.index import db, incremental, refresh
from modelreg.index.build import reindex
from modelreg.registry import Registry

MODELS = ("a", "b")


def tables(path: Path) -> dict[str, list[tuple]]:
    """Every table of an index file, normalised (no rowids; attrs by model and version)."""
    con = sqlite3.connect(str(path))
    try:
        out = {
            "models": con.execute("SELECT * FROM models ORDER BY name").fetchall(),
            "versions": con.execute(
                "SELECT model, version, seq, digest, archived, license, fingerprint, registered_at, stages, tags, "
                "record, info, entry FROM versions ORDER BY model, version").fetchall(),
            "attrs": sorted(con.execute(
                "SELECT v.model, v.version, a.path, a.kind, a.num, a.txt, a.vkey FROM attrs a "
                "JOIN versions v ON v.vid = a.vid").fetchall(), key=repr),
            "events": con.execute("SELECT * FROM events ORDER BY model, seq").fetchall(),
        }
        assert con.execute("SELECT count(*) FROM attrs WHERE vid NOT IN (SELECT vid FROM versions)").fetchone()[0] == 0
        return out
    finally:
        con.close()


def from_scratch(reg: Registry, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple]]:
    with monkeypatch.context() as m:
        m.setenv("MODELREG_CACHE_DIR", str(tmp))
        fresh = Registry(reg.path)
        reindex(fresh)
        return tables(db.path_of(fresh))


def incremental_tables(reg: Registry) -> dict[str, list[tuple]]:
    idx = db.open_index(reg)
    assert idx is not None
    idx.close()
    return tables(db.path_of(reg))


class Writer:
    """Random writes through the library, and the hand edits git can make to a registry."""

    def __init__(self, reg: Registry, rnd: random.Random) -> None:
        self.reg, self.rnd = reg, rnd
        self.n = 0

    def version(self, model: str) -> str | None:
        names = self.reg.refs.version_names(model) if self.reg.refs.has_versions(model) else []
        return self.rnd.choice(names) if names else None

    def step(self, what: str) -> None:
        reg, rnd = self.reg, self.rnd
        m = rnd.choice(MODELS)
        v = self.version(m)
        stage = rnd.choice(reg.stages[:2])
        self.n += 1
        if what == "register" or v is None:
            reg.register(m, f"1.{self.n}", params={"n": self.n}, tags=["t"] if self.n % 3 else [], new_model=True)
        elif what == "promote":
            reg.promote(f"{m}@{v}", stage, demote=False)
        elif what == "rollback":
            reg.rollback(m, stage)
        elif what == "clear":
            reg.clear(m, stage, reason="freeze")
        elif what == "tag":
            reg.tag(f"{m}@{v}", add=[f"x{self.n % 4}"], remove=[f"x{(self.n + 1) % 4}", "t"][: rnd.randrange(3)])
        elif what == "metrics":
            reg.set_metrics(f"{m}@{v}", "core", {"acc": rnd.random(), "n": self.n})
        elif what == "approve":
            reg.approve(f"{m}@{v}", stage, comment="ok")
        elif what == "archive":
            reg.archive(f"{m}@{v}", reason="old", undo=rnd.random() < 0.4)
        elif what == "model":
            reg.set_model(m, {"owner": f"team{self.n % 3}", "extra": {"k": self.n}})
        elif what == "bind":
            reg.bind(f"{m}@{v}", "serve", id=f"ep{self.n}")
        elif what == "merge":  # git's union merge: another branch's line lands inside the log
            self.insert(m, v, at_end=False)
        elif what == "skew":  # a line appended by a writer whose clock is behind
            self.insert(m, v, at_end=True)
        elif what == "unregister":  # a checkout of an older commit takes a version entry away
            held = set(reg.stage_holders(m).values())
            if reg.refs.read_version(m, v) not in held:
                (reg.path / "versions" / m / v).unlink()

    def insert(self, model: str, version: str, at_end: bool) -> None:
        path = log.path_for(self.reg.logs_dir, model)
        lines = path.read_bytes().splitlines(keepends=True)
        if not lines:
            return
        old = json.loads(lines[0])
        event = {**old, "id": secrets.token_hex(12), "action": "tag", "version": version, "stage": None,
                 "from": None, "to": None, "prev": None, "reason": None, "data": {"add": [f"m{self.n}"], "remove": []}}
        event.pop("sig", None)
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        at = len(lines) if at_end else self.rnd.randrange(len(lines))
        path.write_bytes(b"".join(lines[:at] + [line] + lines[at:]))


STEPS = ("register", "register", "promote", "rollback", "clear", "tag", "tag", "metrics", "approve", "archive",
         "model", "bind", "merge", "skew", "unregister")


@pytest.mark.parametrize("seed", range(4))
def test_incremental_refresh_equals_a_rebuild(project, tmp_path, monkeypatch, seed):
    rnd = random.Random(seed)
    reg = Registry.open(project / ".modelreg")
    taken = {"advance": 0, "fallback": 0}
    real = refresh.advance

    def spy(*args, **kwargs):
        try:
            real(*args, **kwargs)
        except Exception:
            taken["fallback"] += 1
            raise
        taken["advance"] += 1

    monkeypatch.setattr(refresh, "advance", spy)
    w = Writer(reg, rnd)
    for _ in range(6):
        w.step("register")
    for i in range(40):
        what = rnd.choice(STEPS)
        try:
            w.step(what)
        except ModelregError:
            pass  # a refusal (policy, nothing to roll back...) writes nothing
        assert incremental_tables(reg) == from_scratch(reg, tmp_path / f"fresh{i}", monkeypatch), (i, what)
    assert taken["advance"] > taken["fallback"] > 0  # both paths were exercised


def test_one_tag_on_a_large_model_reads_what_changed(tmp_path, monkeypatch):
    from modelreg import bench, records
    from modelreg.refs import Refs

    bench.build_fast(tmp_path / "big", 1, 2000, workers=1)
    reg = Registry(tmp_path / "big" / ".modelreg")
    idx = db.open_index(reg)
    assert idx is not None and len(idx.model_versions("m0000")) == 2000
    idx.close()
    reg.promote("m0000@1.0.7", "staging")
    reg.tag("m0000@1.0.5", add=["x"])

    calls = {"read_version": 0, "versions": 0, "manifest": 0, "lines": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(Refs, "read_version", counting("read_version", Refs.read_version))
    monkeypatch.setattr(Refs, "versions", counting("versions", Refs.versions))
    monkeypatch.setattr(Registry, "manifest", counting("manifest", Registry.manifest))
    monkeypatch.setattr(log, "parse_line", counting("lines", log.parse_line))
    monkeypatch.setattr(refresh, "compute", lambda *a, **k: pytest.fail("the model was refolded"))
    idx = db.open_index(reg)
    assert idx is not None
    rows = {v: info for v, _d, info in idx.model_versions("m0000")}
    idx.close()
    assert "x" in json.loads(json.dumps(reg.search(where=["tags == x"])[0].to_dict()))["tags"]
    assert rows["1.0.7"]["version"] == "1.0.7" and len(rows) == 2000
    assert calls["versions"] == 0 and calls["manifest"] == 0
    assert calls["read_version"] <= 4  # the stage holders' identities, not the 2,000 entries
    assert calls["lines"] <= 6  # the appended lines (the index's and the snapshot's reads), not the 2,000 registrations


def test_unusual_changes_fall_back_to_a_refold(project, monkeypatch):
    reg = Registry.open(project / ".modelreg")
    for i in range(3):
        reg.register("a", f"1.{i}", new_model=True)
    reg.versions("a")
    reasons: list[str] = []
    real = refresh.advance

    def spy(*args, **kwargs):
        try:
            real(*args, **kwargs)
        except incremental.Fallback as exc:
            reasons.append(str(exc))
            raise

    monkeypatch.setattr(refresh, "advance", spy)
    path = log.path_for(reg.logs_dir, "a")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[1], lines[0], *lines[2:]]))  # the same events in another order (a rebase)
    assert [v.version for v in reg.versions("a")] == ["1.0", "1.1", "1.2"]
    (reg.path / "versions" / "a" / "1.1").unlink()
    assert [v.version for v in reg.versions("a")] == ["1.0", "1.2"]
    reg.set_model("a", {"owner": "x"})
    assert reg.search(where=["model.owner == x"])
    assert reasons == ["the log was rewritten", "version entry 1.1 removed or changed",
                       "the model's fields changed: every record embeds them"]
