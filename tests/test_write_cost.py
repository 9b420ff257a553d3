"""Writes cost the same whatever the size of a model's history (issue 20).

Every write command, through the CLI: it never reads the whole log (the state comes from the
snapshot, which reads only what was appended since it was last brought up to date), never
lists the versions directory (existence and case-collision checks look up paths), and after
the snapshot is deleted or made stale by a merge, still does the right thing.
The figures are in docs/bench.md (``python -m modelreg.bench --writes``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from modelreg import fileio, log
from modelreg.cachedir import cache_dir
from modelreg.derived import logtail
from modelreg.registry import Registry
from modelreg.refs import Refs

N = 120


@pytest.fixture
def big(project: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """One model with N versions and some stage history, default policy (demotion into staging)."""
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text().split("policy:")[0])  # the default policy: staging before production
    monkeypatch.setenv("MODELREG_UNSAFE_NO_FSYNC", "1")
    monkeypatch.setattr(fileio, "UNSAFE_NO_FSYNC", True)
    reg = Registry.open(project / ".modelreg")
    for i in range(N):
        reg.register("m", f"1.0.{i}", params={"lr": 0.1, "epochs": i % 3}, actor="fixture")
        if i % 10 == 9:
            reg.set_metrics(f"m@1.0.{i}", "eval", {"score": i / N}, actor="fixture")
    for v in ("1.0.100", "1.0.101"):
        reg.promote(f"m@{v}", "staging", actor="fixture")
    reg.promote("m@1.0.101", "production", actor="fixture")
    monkeypatch.setattr(fileio, "UNSAFE_NO_FSYNC", False)
    return reg


class Reads:
    """What a command read: whole-log reads, directory listings of versions/, and where each tail read began."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
        self.whole: list[str] = []
        self.listed: list[str] = []
        self.tails: list[int] = []
        versions = str(project / ".modelreg" / "versions")
        real_read, real_lines = log.read, logtail.lines
        real_listdir, real_names, real_versions = fileio.listdir, Refs.version_names, Refs.versions

        def read(logs_dir, model):  # type: ignore[no-untyped-def]
            self.whole.append(model)
            return real_read(logs_dir, model)

        def lines(fd, start):  # type: ignore[no-untyped-def]
            self.tails.append(start)
            return real_lines(fd, start)

        def listdir(path):  # type: ignore[no-untyped-def]
            if str(path).startswith(versions + os.sep):
                self.listed.append(str(path))
            return real_listdir(path)

        def names(refs, model):  # type: ignore[no-untyped-def]
            self.listed.append(f"version_names({model})")
            return real_names(refs, model)

        def all_versions(refs, model):  # type: ignore[no-untyped-def]
            self.listed.append(f"versions({model})")
            return real_versions(refs, model)

        monkeypatch.setattr(log, "read", read)
        monkeypatch.setattr(logtail, "lines", lines)
        monkeypatch.setattr(fileio, "listdir", listdir)
        monkeypatch.setattr(Refs, "version_names", names)
        monkeypatch.setattr(Refs, "versions", all_versions)


WRITES = [
    ("register", "m", "2.0.0", "-p", "lr=0.1", "-p", "epochs=1"),
    ("register", "m", "2.0.1"),
    ("promote", "m@2.0.0", "staging"),
    ("promote", "m@latest", "staging"),
    ("promote", "m@2.0.0", "production"),  # demotes 1.0.101 into staging, which holds... 2.0.1: refused
    ("promote", "m@2.0.0", "production", "--replace-staging"),
    ("rollback", "m", "production"),
    ("rollback", "m", "staging", "--to", "1.0.100"),
    ("clear", "m", "staging", "--reason", "cost"),
    ("tag", "m@2.0.0", "add", "fast"),
    ("tag", "m@2.0.0", "rm", "fast"),
    ("approve", "m@2.0.0", "--stage", "production"),
    ("metrics", "set", "m@2.0.0", "--suite", "eval", "score=0.9"),
    ("bind", "m@2.0.0", "--provider", "sagemaker", "--id", "ep-1"),
    ("bind", "m@2.0.0", "--provider", "sagemaker", "--status", "inactive"),
    ("rate", "m@2.0.0", "4"),
    ("unbind", "m@2.0.0", "--provider", "sagemaker"),
    ("archive", "m@2.0.1"),
    ("archive", "m@2.0.1", "--undo"),
    ("promote", "m@2.0.1", "archived", "--reason", "cost"),
    ("register", "m", "2.0.A"),
    ("register", "m", "2.0.a"),  # differs only by case: refused without a listing
]


def test_no_write_reads_the_history(big: Registry, project: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path = log.path_for(big.logs_dir, "m")
    reads = Reads(monkeypatch, project)
    codes = []
    for argv in WRITES:
        size = path.stat().st_size
        reads.whole.clear(), reads.listed.clear(), reads.tails.clear()
        code, _, err = cli(*argv)
        codes.append(code)
        assert reads.whole == [], (argv, "read the whole log")
        assert reads.listed == [], (argv, reads.listed)
        # only what was appended since: the snapshot's last command, or the fingerprint index's last registration
        assert all(size - 8192 <= start and start > 0 for start in reads.tails), (argv, size, reads.tails)
    assert codes == [0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4], codes


def test_writes_after_the_snapshot_is_deleted_or_made_stale(big: Registry, project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    state = cache_dir(big.path) / "state"
    assert (state / "m.sqlite").is_file()
    shutil.rmtree(state)
    assert cli("promote", "m@1.0.5", "staging")[0] == 0
    assert cli("rollback", "m", "staging")[0] == 0
    assert cli("resolve", "m@staging")[1].strip() == "1.0.101"
    # a merge inserts another branch's lines in the middle: the snapshot folds the whole log again
    path = log.path_for(big.logs_dir, "m")
    lines = path.read_bytes().splitlines(keepends=True)
    digest = big.refs.read_version("m", "1.0.3")
    when = json.loads(lines[5])["time"]
    merged = log.Event("archive", "m", "other-branch", version="1.0.3", to=digest, reason="merged", time=when).line()
    path.write_bytes(b"".join(lines[:6] + [merged] + lines[6:]))
    code, _, err = cli("promote", "m@1.0.3", "staging")
    assert code == 5 and "archived" in err  # the merged-in archive event is seen
    assert cli("show", "m@1.0.3", "--json")[1].count('"archived": true') == 1
    assert cli("archive", "m@1.0.3", "--undo")[0] == 0
    assert cli("promote", "m@1.0.3", "staging")[0] == 0
    assert cli("fsck")[0] == 0


def test_case_collisions_are_found_by_lookups_and_by_fsck(project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from modelreg import manifest

    assert cli("register", "m", "1.0.0-RC1")[0] == 0
    # another clone registered 1.0.0-Rc2 and was pulled: its entry, object and log line arrive
    other = project.parent / "other"
    shutil.copytree(project, other)
    clone = Registry(other / ".modelreg")
    clone.register("m", "1.0.0-Rc2", actor="other")
    regdir = project / ".modelreg"
    for rel in ("versions/m/1.0.0-Rc2", "logs/m.jsonl"):
        shutil.copy(other / ".modelreg" / rel, regdir / rel)
    digest = clone.refs.read_version("m", "1.0.0-Rc2")
    obj = clone.objects.path(digest)
    (regdir / obj.relative_to(other / ".modelreg")).parent.mkdir(exist_ok=True)
    shutil.copy(obj, regdir / obj.relative_to(other / ".modelreg"))
    for v, other_v in (("1.0.0-rc1", "1.0.0-RC1"), ("1.0.0-RC2", "1.0.0-Rc2"), ("1.0.0-rc2", "1.0.0-Rc2")):
        code, _, err = cli("register", "m", v)
        assert code == 4 and f"differs only by case from the existing version {other_v!r}" in err, (v, err)
    # a case twin that arrived without the log noticing (written by hand): fsck names it
    reg = Registry(regdir)
    twin = manifest.to_bytes(manifest.validate({"name": "m", "version": "1.0.0-rc1"}))
    (regdir / "versions" / "m" / "1.0.0-rc1").write_text(reg.objects.put(twin) + "\n")
    code, out, _ = cli("fsck")
    assert code == 6 and "differs only by case from version '1.0.0-RC1'" in out


def test_many_versions_with_the_same_params_name_five_and_say_there_are_more(project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    for i in range(7):
        assert cli("register", "m", f"1.{i}", "-p", "lr=0.1", "-q")[0] == 0
    code, out, err = cli("register", "m", "2.0", "-p", "lr=0.1", "--json")
    got = json.loads(out)
    assert code == 0 and got["more_duplicates"] is True
    assert [d["version"] for d in got["duplicates"]] == ["1.2", "1.3", "1.4", "1.5", "1.6"]  # the newest five
    assert err.count("same params fingerprint as") == 5 and "more versions have the same params" in err
    code, out, err = cli("register", "m", "3.0", "-p", "lr=0.2", "--json")
    assert json.loads(out)["more_duplicates"] is False and json.loads(out)["duplicates"] == []
