"""fsck over a process pool, and fsck --quick: the same report, fewer objects read."""

from __future__ import annotations

import json
import os

import pytest
from conftest import run_cli

from modelreg import fsckobjects
from modelreg.cachedir import cache_dir
from modelreg.fsck import fsck


@pytest.fixture
def filled(reg):
    for i in range(6):
        reg.register("m", f"1.{i}", params={"i": i})
    reg.promote("m@1.5", "production")
    return reg


def reads(monkeypatch):
    calls = []
    real = fsckobjects.check_one

    def counting(store, digest, full):
        calls.append(digest)
        return real(store, digest, full)

    monkeypatch.setattr(fsckobjects, "check_one", counting)
    return calls


def corrupt_one(reg) -> str:
    digest = reg.resolve("m@1.2").digest
    p = reg.objects.path(digest)
    data = bytearray(p.read_bytes())
    data[-2] = ord("9") if data[-2] != ord("9") else ord("8")
    os.chmod(p, 0o644)
    p.write_bytes(bytes(data))  # same size, new content (mtime and ctime move)
    return digest


def test_quick_skips_unchanged_objects_and_catches_changed_ones(filled, monkeypatch, capsys):
    full = fsck(filled)
    assert full.ok
    calls = reads(monkeypatch)
    quick = fsck(filled, quick=True)
    assert calls == [] and quick.to_dict() == full.to_dict()
    digest = corrupt_one(filled)
    code, out, _ = run_cli(capsys, "fsck", "--quick", "--json")
    report = json.loads(out)
    assert code == 6 and report["error"]["code"] == 6
    assert [p["path"] for p in report["problems"] if p["severity"] == "error"][:1] == [
        f"objects/{digest[7:9]}/{digest[9:]}"]
    assert len(calls) == 1  # only the changed object was read again
    code2, out2, _ = run_cli(capsys, "fsck", "--json")
    assert code2 == 6 and json.loads(out2)["problems"] == report["problems"]


def test_quick_state_lives_in_the_cache_directory(filled):
    fsck(filled, quick=True)
    assert (cache_dir(filled.path) / "fsck-quick.sqlite").is_file()
    assert not any("fsck" in p.name for p in filled.path.rglob("*"))


def test_pool_gives_the_report_of_one_process(filled, monkeypatch):
    corrupt_one(filled)
    one = fsck(filled).to_dict()
    monkeypatch.setattr(fsckobjects, "POOL_MIN", 1)
    monkeypatch.setattr(fsckobjects, "CHUNK", 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert fsck(filled).to_dict() == one
    assert not one["ok"]


def test_progress_callback_counts_every_object(filled):
    seen = []

    def progress(label, total):
        seen.append(total)
        return lambda n: seen.append(-n)

    rep = fsck(filled, progress=progress)
    assert seen[0] == rep.counts["objects"] and -sum(x for x in seen[1:]) == seen[0]


def test_quick_state_garbage_only_costs_time(filled, monkeypatch):
    fsck(filled, quick=True)
    path = cache_dir(filled.path) / "fsck-quick.sqlite"
    for suffix in ("-wal", "-shm"):
        q = path.with_name(path.name + suffix)
        if q.exists():
            q.unlink()
    path.write_bytes(b"garbage")
    assert fsck(filled, quick=True).ok
