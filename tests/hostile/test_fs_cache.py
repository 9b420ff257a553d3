"""Derived data cannot arrive by git (issue 15, rule 4 / row 10) and a broken cache only costs time (issue 17)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gitutil import git
from modelreg.cachedir import cache_dir
from tests.hostile.conftest import Flow, refused


def _search(flow: Flow, *args: str, cwd: Path | None = None) -> list[dict]:
    r = flow.cli("search", "--json", *args, cwd=cwd)
    assert r.code == 0, r.err
    return r.json()


def test_a_committed_search_cache_changes_no_answer(flow: Flow) -> None:
    """Row 10: a committed cache injected fake license/params/lineage into search, ls --where and lineage."""
    honest = _search(flow)

    def change(p: Path) -> None:
        forged = [{"name": "m", "version": v, "digest": flow.digests[v], "manifest_tags": ["audited"],
                   "meta": {"reviewed": True}, "params": {"lr": 99}, "license": "Apache-2.0",
                   "parents": [{"digest": "sha256:" + "ab" * 32, "relation": "fine_tune", "name": "gpt-9",
                                "version": "1"}], "parent_names": ["gpt-9"], "fingerprint": None,
                   "archived": False, "registered_at": "2020-01-01T00:00:00Z", "tags": ["audited"], "metrics": {}}
                  for v in ("1.0.0", "1.1.0")]
        for where in ("cache/search", "cache"):  # the old location, and a guess at the new one's name
            d = p / ".modelreg" / where
            d.mkdir(parents=True, exist_ok=True)
            (d / "m.json").write_text(json.dumps({"format": 1, "model": "m", "stamp": None, "records": forged}))
        fp = p / ".modelreg" / "cache" / "fingerprints"
        fp.mkdir(parents=True, exist_ok=True)
        (fp / "stamps.json").write_text("{}")

    flow.attack(change)
    for cwd in (flow.victim, flow.clone()):
        assert _search(flow, cwd=cwd) == honest
        assert _search(flow, "--where", "license == Apache-2.0", cwd=cwd) == []
        assert _search(flow, "--where", "parent_names == gpt-9", cwd=cwd) == []
        assert _search(flow, "--tag", "audited", cwd=cwd) == []
        ls = flow.cli("ls", "--where", "params.lr == 99", "--json", cwd=cwd)
        assert ls.code == 0 and ls.json() == []
        lineage = flow.cli("lineage", "m@1.0.0", "--json", cwd=cwd).json()
        assert lineage["children"] == [] and lineage["license"] == "MIT"
        assert flow.cli("reindex", cwd=cwd).code == 0 and _search(flow, cwd=cwd) == honest
    warned = [p for p in flow.cli("fsck", "--json").json()["problems"] if p["path"] == "cache"]
    assert warned and warned[0]["severity"] == "warning" and "ignored" in warned[0]["message"]


def test_the_cache_lives_in_the_users_cache_directory(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    key = hashlib.sha256(os.fsencode(os.path.realpath(flow.registry))).hexdigest()
    explicit = flow.base / "explicit-cache"
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(explicit))
    assert cache_dir(flow.registry) == explicit / key
    _search(flow)
    assert (explicit / key / "index.sqlite").is_file()
    monkeypatch.delenv("MODELREG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(flow.base / "xdg"))
    assert cache_dir(flow.registry) == flow.base / "xdg" / "modelreg" / key
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # invalid per the XDG spec: ignored
    assert cache_dir(flow.registry) == flow.home / ".cache" / "modelreg" / key
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert flow.cli("register", "m", "2.0.0", "-p", "lr=0.5").code == 0
    assert (flow.home / ".cache" / "modelreg" / key / "state" / "m.sqlite").is_file()
    assert (flow.home / ".cache" / "modelreg" / key / "fingerprints" / "stamps.json").is_file()
    assert flow.cli("search").code == 0
    assert (flow.home / ".cache" / "modelreg" / key / "index.sqlite").is_file()
    assert not (flow.registry / "cache").exists()
    # the same registry reached through a symlinked parent directory shares its cache
    alias = flow.base / "alias"
    alias.symlink_to(flow.victim)
    assert cache_dir(alias / ".modelreg") == cache_dir(flow.registry)


def test_fingerprint_lookups_read_the_index(flow: Flow) -> None:
    from modelreg.discovery import fingerprint

    assert flow.cli("register", "m", "2.0.0", "-p", "lr=0.5").code == 0
    base = cache_dir(flow.registry) / "fingerprints"
    names = [p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and p.name != "stamps.json"]
    hexd = fingerprint({"lr": 0.5})[7:]
    assert f"by-model/m/fp/{hexd[:2]}/{hexd[2:]}" in names
    assert flow.cli("search").code == 0
    names = [p.name for p in cache_dir(flow.registry).rglob("*") if p.is_file()]
    assert "index.sqlite" in names and not any(":" in n for n in names)
    dup = flow.cli("register", "m", "2.0.1", "-p", "lr=0.5")
    assert dup.code == 0 and "same params fingerprint as m@2.0.0" in dup.err


@pytest.mark.parametrize("garbage", [b"", b"\xff\xfe", b"[" * 100_000, b'{"model": "m", "records": [{"name": "m"}]}',
                                     b'{"model": "m", "stamp": null, "records": "x"}'])
def test_a_garbage_cache_only_costs_time(flow: Flow, garbage: bytes) -> None:
    honest = _search(flow)
    d = cache_dir(flow.registry)
    for f in [d / "index.sqlite", d / "index.sqlite-wal", d / "index.sqlite-shm"]:
        if f.exists():
            f.write_bytes(garbage)
    assert _search(flow) == honest
    r = flow.cli("register", "m", "2.0.0", "-p", "lr=0.1")
    assert r.code == 0 and "same params fingerprint as m@1.1.0" in r.err


def test_an_unwritable_cache_only_costs_time(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = flow.base / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(blocker))
    honest = _search(flow)
    assert [r["version"] for r in honest] == ["1.0.0", "1.1.0"]
    assert flow.cli("register", "m", "2.0.0", "-p", "lr=0.1").code == 0
    assert flow.cli("register", "m", "2.0.0", "-p", "lr=0.1").code == 0  # identical again
    assert flow.cli("reindex").code == 0
    assert blocker.read_text().startswith("a file")


def test_cache_deleted_during_registrations_never_fails_one(flow: Flow) -> None:
    """Issue 17: with the cache deleted during a run, 11 of 60 registrations exited 1."""
    d = cache_dir(flow.registry)
    stop = threading.Event()

    def vandal() -> None:
        while not stop.is_set():
            shutil.rmtree(d, ignore_errors=True)

    t = threading.Thread(target=vandal, daemon=True)
    t.start()
    try:
        codes = [flow.cli("register", "m", f"3.{i}.0", "-p", f"lr={i % 7}").code for i in range(60)]
        codes.append(flow.cli("search", "--where", "params.lr == 3").code)
    finally:
        stop.set()
        t.join(10)
    assert codes == [0] * 61
    assert flow.cli("fsck").code == 0


READ_ONLY = """
import errno, os, runpy, sys
# A read-only file system: every call that would change one fails with EROFS (root ignores chmod).
def refuse(*a, **k):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), a[0] if a else None)
real_open = os.open
def open_(path, flags, *a, **k):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC):
        refuse(path)
    return real_open(path, flags, *a, **k)
os.open = open_
for name in ("mkdir", "makedirs", "replace", "rename", "unlink", "remove", "rmdir"):
    setattr(os, name, refuse)
sys.argv = ["modelreg", *sys.argv[1:]]
runpy.run_module("modelreg", run_name="__main__")
"""


def _register(flow: Flow, version: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["register", "m", version, *extra]
    if os.geteuid() == 0:
        cmd = [sys.executable, "-c", READ_ONLY, *args]
    else:
        cmd = [sys.executable, "-m", "modelreg", *args]
    return subprocess.run(cmd, cwd=flow.victim, capture_output=True, text=True, timeout=60)


def test_identical_reregistration_on_a_read_only_registry_exits_0(flow: Flow) -> None:
    """Issue 17: an identical re-registration (documented exit 0) exited 1 on a read-only registry."""
    git(flow.victim, "clean", "-qfdX", ".modelreg")  # a fresh checkout: no locks/ yet
    paths = [flow.registry, *flow.registry.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(modes[p] & ~0o222)
    try:
        same = _register(flow, "1.0.0", "-a", "checkpoint=w-1.0.bin", "-p", "lr=0.0", "--license", "MIT")
        assert same.returncode == 0, same.stderr
        assert same.stdout.strip() == flow.digests["1.0.0"] and "Already registered" in same.stderr
        other = _register(flow, "9.0.0")
        assert other.returncode not in (0, 6) and "Traceback" not in other.stderr
        assert len(other.stderr.strip().splitlines()) == 1, other.stderr
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert not (flow.registry / "versions" / "m" / "9.0.0").exists()
    assert flow.cli("fsck").code == 0


def test_reindex_and_register_never_touch_registry_cache_files(flow: Flow) -> None:
    """Nothing under .modelreg/ is derived any more: reindex and register leave the tree as git has it."""
    assert flow.cli("reindex").code == 0 and flow.cli("search").code == 0
    status = git(flow.victim, "status", "--porcelain", "--ignored", ".modelreg").stdout
    assert status in ("", "!! .modelreg/locks/\n"), status  # lock files only, never committed
    refused(flow.cli("search", "--where", "params.lr >"), 2)
