"""Listing and versioning: paging with --sort/--limit/--offset in a stable order, register --next picking
the next semantic version in the lock (also from concurrent processes), and the same artifact bytes
under two versions of one model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import log_lines, snapshot, subprocess_env

from modelreg.errors import Conflict, UsageError
from modelreg.semver import next_version

MODEL = "m"


# ------------------------------------------------------------------ paging
@pytest.fixture
def many(reg):
    """m with 12 versions (scores 0.0 .. 0.5, each twice) and n with 3."""
    for i in range(12):
        reg.register(MODEL, f"1.{i}.0", params={"score": (i % 6) / 10})
    for i in range(3):
        reg.register("n", f"0.{i}", params={"score": 0.3}, new_model=True)
    return reg


def pages(cli, *args, size):
    out, offset = [], 0
    while True:
        page = json.loads(cli("search", *args, "--limit", str(size), "--offset", str(offset), "--json")[1])
        out += [(r["name"], r["version"]) for r in page]
        if len(page) < size:
            return out
        offset += size


def test_pages_cover_everything_once_in_the_same_order(cli, many):
    everything = [(r["name"], r["version"]) for r in json.loads(cli("search", "--json")[1])]
    assert len(everything) == 15
    assert everything[:2] == [(MODEL, "1.0.0"), (MODEL, "1.1.0")] and everything[-1] == ("n", "0.2")
    for size in (1, 4, 7, 15, 20):
        assert pages(cli, size=size) == everything
    # sorted by a value with ties: the default order breaks them, so pages never skip or repeat
    by_score = [(r["name"], r["version"]) for r in json.loads(cli("search", "--sort", "-params.score", "--json")[1])]
    assert by_score[:2] == [(MODEL, "1.5.0"), (MODEL, "1.11.0")]  # 0.5 twice, in registration order
    for size in (2, 5):
        assert pages(cli, "--sort", "-params.score", size=size) == by_score
    assert json.loads(cli("search", "--offset", "100", "--json")[1]) == []


def test_ls_name_pages_too(cli, many):
    code, out, _ = cli("ls", MODEL, "--limit", "3", "--offset", "3", "--json")
    assert code == 0 and [r["version"] for r in json.loads(out)] == ["1.3.0", "1.4.0", "1.5.0"]
    code, out, _ = cli("ls", MODEL, "--offset", "10")
    assert code == 0 and [line.split()[1] for line in out.splitlines()[1:]] == ["1.10.0", "1.11.0"]
    code, out, _ = cli("ls", MODEL, "--sort", "-version", "--limit", "2", "--json")
    assert [r["version"] for r in json.loads(out)] == ["1.11.0", "1.10.0"]
    assert cli("ls", MODEL, "--offset", "-1")[0] == 2


def test_library_offset(many):
    assert [r.version for r in many.search(name_regex="^n$", offset=1)] == ["0.1", "0.2"]
    assert [r.version for r in many.search(name_regex="^n$", offset=1, limit=1)] == ["0.1"]
    with pytest.raises(UsageError):
        many.search(offset=-2)


# ------------------------------------------------------------------ --next
@pytest.mark.parametrize("existing, part, want", [
    ([], "patch", "0.0.1"), ([], "minor", "0.1.0"), ([], "major", "1.0.0"),
    (["1.2.3", "1.10.0", "1.9.9"], "patch", "1.10.1"),
    (["1.2.3", "1.10.0"], "minor", "1.11.0"),
    (["1.2.3", "1.10.0"], "major", "2.0.0"),
    (["v1.2.3", "v1.3.0"], "patch", "v1.3.1"),  # the prefix is kept
    (["1.0", "2"], "patch", "2.0.1"),  # missing parts are 0
    (["1.2.0", "1.3.0-rc.1", "exp-a", "2024-05"], "minor", "1.3.0"),  # pre-releases and other names ignored
])
def test_next_version(existing, part, want):
    assert next_version(existing, part) == want


def test_register_next_prints_the_version_it_picked(cli, project):
    code, out, err = cli("register", MODEL, "--next", "minor")
    assert code == 0 and out == "0.1.0\n" and "Registered m@0.1.0" in err
    assert cli("register", MODEL, "1.4.2")[0] == 0
    code, out, _ = cli("register", MODEL, "--next", "patch", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["version"] == "1.4.3" and doc["created"] is True
    assert cli("register", MODEL, "--next", "major", "-q")[1] == "2.0.0\n"
    assert [e["version"] for e in log_lines(project, MODEL)] == ["0.1.0", "1.4.2", "1.4.3", "2.0.0"]


def test_register_next_from_a_manifest_file(cli, project):
    (project / "m.yaml").write_text("name: m\nparams: {lr: 0.1}\n")
    code, out, err = cli("register", "--from-file", "m.yaml", "--next", "patch")
    assert code == 0 and out == "0.0.1\n", err
    (project / "v.yaml").write_text("name: m\nversion: 3.0.0\n")
    assert cli("register", "--from-file", "v.yaml", "--next", "patch")[0] == 2


@pytest.mark.parametrize("args", [
    ["register", MODEL, "1.0.0", "--next", "patch"], ["register", MODEL, "--next", "micro"], ["register", MODEL],
])
def test_register_next_refusals(cli, project, args):
    before = snapshot(project / ".modelreg")
    code, out, err = cli(*args, "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == 2 and err.count("\n") == 1
    assert snapshot(project / ".modelreg") == before


def test_four_concurrent_next_patch_get_four_distinct_versions(project):
    assert subprocess.run([sys.executable, "-m", "modelreg", "register", MODEL, "1.0.0"], cwd=project,
                          env=subprocess_env(MODELREG_ACTOR="t"), capture_output=True, timeout=60).returncode == 0
    env = subprocess_env(MODELREG_ACTOR="t", MODELREG_LOCK_TIMEOUT="60")
    procs = [subprocess.Popen([sys.executable, "-m", "modelreg", "register", MODEL, "--next", "patch",
                               "-p", f"worker={i}"], cwd=project, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    printed = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        printed.append(out.strip())
    assert sorted(printed) == ["1.0.1", "1.0.2", "1.0.3", "1.0.4"]
    versions = sorted((project / ".modelreg" / "versions" / MODEL).iterdir())
    assert [v.name for v in versions] == ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"]


# ------------------------------------------------------------------ same bytes, two versions
def test_same_artifact_bytes_warn_naming_the_other_version(cli, project, make_artifact):
    make_artifact("a.bin", b"weights")
    make_artifact("copy.bin", b"weights")
    make_artifact("other.bin", b"other weights")
    assert cli("register", MODEL, "1.0.0", "-a", "model=a.bin")[0] == 0
    code, out, err = cli("register", MODEL, "1.1.0", "-a", "model=copy.bin")
    assert code == 0 and "warning: artifact model has the same bytes as m@1.0.0" in err
    code, out, err = cli("register", MODEL, "1.2.0", "-a", "weights=a.bin", "--json")
    doc = json.loads(out)
    assert code == 0 and [(s["version"], s["role"], s["other_role"]) for s in doc["same_artifacts"]] == [
        ("1.0.0", "weights", "model"), ("1.1.0", "weights", "model")]
    # --strict refuses (exit 4) and writes nothing
    before = snapshot(project / ".modelreg")
    code, out, err = cli("register", MODEL, "1.3.0", "-a", "a.bin", "--strict", "--json")
    assert code == 4 and "same bytes as m@1.0.0" in err and "--strict" in err
    assert json.loads(out)["error"]["same_artifacts"][0]["version"] == "1.0.0"
    assert snapshot(project / ".modelreg") == before
    # other bytes, another model, or an identical re-registration: no warning, no refusal
    code, _, err = cli("register", MODEL, "1.3.0", "-a", "other.bin", "--strict")
    assert code == 0 and "warning" not in err
    code, _, err = cli("register", "other", "1.0.0", "-a", "a.bin", "--strict", "--new-model")
    assert code == 0 and "warning" not in err
    code, _, err = cli("register", MODEL, "1.0.0", "-a", "model=a.bin", "--strict")
    assert code == 0 and "Already registered" in err


def test_same_bytes_library(reg, make_artifact):
    make_artifact("a.bin", b"x")
    reg.register(MODEL, "1", artifacts=["a.bin"])
    res = reg.register(MODEL, "2", artifacts=["a.bin"])
    assert [s.version.version for s in res.same_artifacts] == ["1"]
    with pytest.raises(Conflict):
        reg.register(MODEL, "3", artifacts=["a.bin"], strict=True)
    with pytest.raises(Conflict):
        reg.register(MODEL, next="patch", artifacts=["a.bin"], strict=True)
