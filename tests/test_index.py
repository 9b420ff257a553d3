"""The query index (modelreg.index) never changes an answer: index-backed reads equal direct reads."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sqlite3

import pytest
from conftest import ACTOR, run_cli

from modelreg.index import db
from modelreg.registry import Registry


@pytest.fixture
def reg(project):
    r = Registry.open(project / ".modelreg")
    for m in ("alpha", "beta", "gamma"):
        for i in range(4):
            r.register(m, f"1.{i}", params={"i": i, "m": m}, meta={"team": m[0]}, tags=["t"] if i % 2 else [],
                       new_model=True)
    r.promote("alpha@1.1", "staging")
    r.promote("alpha@1.2", "production")
    r.promote("beta@1.3", "production")
    r.clear("beta", "production", reason="freeze")
    r.archive("gamma@1.0")
    r.set_metrics("gamma@1.2", "core", {"score": 0.5})
    r.tag("alpha@1.0", add=["late"])
    return r


def direct(monkeypatch, fn):
    """``fn()`` with the index switched off: what the registry says by itself."""
    with monkeypatch.context() as m:
        m.setattr(db, "open_index", lambda *a, **k: None)
        return fn()


def dicts(items):
    return [x.to_dict() for x in items]


def test_reads_through_the_index_equal_direct_reads(reg, monkeypatch):
    for _ in range(2):  # built, then current
        assert dicts(reg.models()) == dicts(direct(monkeypatch, reg.models))
        for m in ("alpha", "beta", "gamma"):
            assert dicts(reg.versions(m)) == dicts(direct(monkeypatch, lambda m=m: reg.versions(m)))
        for k in (0, 1, 5, 50, 1000):
            assert dicts(reg.events(limit=k)) == dicts(direct(monkeypatch, lambda k=k: reg.events(limit=k)))
        assert dicts(reg.search()) == dicts(direct(monkeypatch, reg.search))
    assert db.path_of(reg).is_file()


def test_every_change_is_seen(reg, monkeypatch, project):
    reg.models(), reg.versions("alpha"), reg.events(limit=3)
    reg.register("alpha", "2.0", params={"i": 9})
    reg.promote("alpha@2.0", "production")
    reg.archive("beta@1.0")
    reg.register("delta", "1", new_model=True)
    assert [m.name for m in reg.models()] == ["alpha", "beta", "delta", "gamma"]
    assert reg.versions("alpha")[-1].stages == ["production"]
    assert reg.events(limit=1)[0].model == "delta"
    assert [r.version for r in reg.search(archived=True)] == ["1.0", "1.0"]
    # a model removed by hand (a git checkout of an older commit) leaves the index too
    import shutil

    shutil.rmtree(project / ".modelreg" / "versions" / "delta")
    (project / ".modelreg" / "logs" / "delta.jsonl").unlink()
    assert [m.name for m in reg.models()] == ["alpha", "beta", "gamma"]
    assert dicts(reg.events(limit=100)) == dicts(direct(monkeypatch, lambda: reg.events(limit=100)))


def test_a_log_rewritten_in_place_is_refolded(reg, project, monkeypatch):
    reg.versions("gamma")
    path = project / ".modelreg" / "logs" / "gamma.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(x for x in lines if b'"archive"' not in x))  # same model, one event fewer
    assert [v.archived for v in reg.versions("gamma")] == [False] * 4
    assert dicts(reg.events(limit=100)) == dicts(direct(monkeypatch, lambda: reg.events(limit=100)))


def test_skewed_clock_events_are_read_from_the_logs(reg, project, monkeypatch):
    import modelreg.log as log_mod

    real = log_mod._now_ns
    monkeypatch.setattr(log_mod, "_now_ns", lambda: real() - 3600 * 10**9)
    reg.promote("alpha@1.3", "production")  # linked after the previous move, but an hour "earlier"
    monkeypatch.setattr(log_mod, "_now_ns", real)
    assert dicts(reg.events(limit=20)) == dicts(direct(monkeypatch, lambda: reg.events(limit=20)))


def test_a_forged_ref_is_refused_with_or_without_the_index(reg, project, capsys):
    from modelreg.errors import IntegrityError

    reg.models()
    other = reg.resolve("beta@1.0").digest
    (project / ".modelreg" / "refs" / "alpha" / "production").write_text(other + "\n")
    for fn in (reg.models, lambda: reg.events(limit=5), reg.search):
        with pytest.raises(IntegrityError):
            fn()
    code, out, err = run_cli(capsys, "ls", "--json")
    assert code == 6 and json.loads(out)["error"]["code"] == 6


def test_cli_reads_equal_with_the_index_deleted_between_calls(reg, capsys):
    outs = []
    for _ in range(2):
        outs.append([run_cli(capsys, *a) for a in (["ls", "--json"], ["ls", "alpha", "--json"],
                                                    ["log", "--limit", "7", "--json"], ["search", "--json"])])
        for suffix in ("", "-wal", "-shm"):
            p = db.path_of(reg)
            q = p.with_name(p.name + suffix)
            if q.exists():
                q.unlink()
    assert outs[0] == outs[1]
    assert all(code == 0 for code, _, _ in outs[0])


def _writer(path: str, model: str, n: int) -> None:
    os.environ["MODELREG_ACTOR"] = ACTOR
    r = Registry(path)
    for i in range(n):
        r.register(model, f"9.{i}", params={"w": i}, new_model=True)
        r.search(where=[f"params.w == {i}"])


def test_concurrent_writers_and_readers_keep_it_current(reg, project, monkeypatch):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(project / ".modelreg"), m, 8)) for m in ("alpha", "beta", "w3")]
    for p in procs:
        p.start()
    for _ in range(5):
        reg.search(where=["params.w >= 0"])
        reg.models()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert dicts(reg.search()) == dicts(direct(monkeypatch, reg.search))
    assert dicts(reg.models()) == dicts(direct(monkeypatch, reg.models))
    assert len(reg.search(where=["params.w >= 0"])) == 24


def test_index_of_another_registry_is_not_used(reg, project, tmp_path):
    reg.search()
    con = sqlite3.connect(db.path_of(reg))
    con.execute("UPDATE meta SET value = '/elsewhere' WHERE key = 'registry'")
    con.commit()
    con.close()
    assert len(reg.search()) == 12
    con = sqlite3.connect(db.path_of(reg))
    assert con.execute("SELECT value FROM meta WHERE key = 'registry'").fetchone()[0] == os.path.realpath(reg.path)
    con.close()


def test_a_symlink_where_the_index_belongs_is_replaced(reg, tmp_path):
    target = tmp_path / "elsewhere.sqlite"
    target.write_bytes(b"precious")
    path = db.path_of(reg)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    path.symlink_to(target)
    assert len(reg.search()) == 12
    assert target.read_bytes() == b"precious" and not path.is_symlink()


def test_refolds_spread_over_processes_give_the_same_index(reg, project, monkeypatch):
    from modelreg.index import refresh

    one = (dicts(reg.search()), dicts(reg.models()), dicts(reg.events(limit=100)))
    monkeypatch.setattr(refresh, "POOL_MIN", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    reg.reindex()
    assert (dicts(reg.search()), dicts(reg.models()), dicts(reg.events(limit=100))) == one
    # a model a worker cannot read is refolded in this process, which raises the library's error
    other = reg.resolve("beta@1.0").digest
    (project / ".modelreg" / "refs" / "alpha" / "production").write_text(other + "\n")
    from modelreg.errors import IntegrityError

    with pytest.raises(IntegrityError, match="refs/alpha/production"):
        reg.reindex()


def test_site_data_is_what_the_commands_show(reg, monkeypatch):
    from modelreg.index.export import site_data

    data = site_data(reg, events=10)
    assert data == direct(monkeypatch, lambda: site_data(reg, events=10))
    assert [m["name"] for m in data["models"]] == ["alpha", "beta", "gamma"]
    assert len(data["versions"]) == 12 and len(data["events"]) == 10
    json.dumps(data)  # JSON-ready
