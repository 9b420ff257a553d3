"""``modelreg import gto`` against repositories built with the real ``gto`` CLI, compared with ``gto show`` /
``gto history``.

The repository is built once per session (gto takes ~0.7 s a command, and git keeps tag times to the
second, so each command waits for a new second: GTO's own order of same-second tags is not what
these tests are about); each test works on a copy.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import log_lines, snapshot
from gtorepo import GtoRepo, build_template, gto_state
from importtools import require_tool
from modelreg.registry import Registry


@pytest.fixture(scope="session")
def gto_template(tmp_path_factory) -> Path:
    """The scenario of gtorepo.build_template, built once (started early by tests/servers.py)."""
    from servers import early

    exe = require_tool("gto")
    base = early("gto-template")
    if base is None:
        base = build_template(tmp_path_factory.mktemp("gto-template"), exe)
    return base


@pytest.fixture
def gto_repo(gto_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GtoRepo:
    """A copy of the template repository with a fresh modelreg registry in it (the cwd)."""
    shutil.copytree(gto_template / "repo", tmp_path / "repo")
    repo = GtoRepo(tmp_path / "repo", require_tool("gto"), tmp_path)
    repo.last_second = int(time.time())
    Registry.init(repo.path)
    monkeypatch.chdir(repo.path)
    monkeypatch.setenv("MODELREG_ACTOR", "importer@example.com")
    monkeypatch.setenv("HOME", str(tmp_path))
    return repo


def _import(cli, *args: str) -> dict:
    code, out, err = cli("import", "gto", *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def cli(capsys):
    from conftest import run_cli

    return lambda *args: run_cli(capsys, *args)


def _utc(text: str) -> str:
    return datetime.fromisoformat(text).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def assert_same_as_gto(cli, repo: GtoRepo, gto: dict, stage_map: dict[str, str] | None = None) -> None:
    """modelreg ls/show/log --json say what gto show/history --json said (``gto``: a gto_state)."""
    stage_map = stage_map or {}
    shown = gto["show"]
    code, out, _ = cli("ls", "--json")
    models = {m["name"]: m for m in json.loads(out)}
    for artifact, state in shown.items():
        m = models[artifact]
        assert m["stages"] == {stage_map.get(s, s): v for s, v in state["stage"].items() if v}, artifact
        # (not compared: GTO's "latest" is the greatest registered semver; modelreg's NAME@latest is the
        # newest registration that is not archived, which may be a commit GTO assigned without registering)
        versions = {v["version"]: v for v in gto["versions"][artifact]}
        code, out, _ = cli("ls", artifact, "--json")
        mine = {r["version"]: r for r in json.loads(out)}
        assert {v for v, r in mine.items() if not r["archived"]} == set(versions), artifact
        for v, row in versions.items():
            assert sorted(mine[v]["stages"]) == sorted(stage_map.get(s["stage"], s["stage"]) for s in row["stages"])
    for gone in set(models) - set(shown):  # deprecated artifacts: gto show hides them
        code, out, _ = cli("ls", gone, "--json")
        assert all(r["archived"] and not r["stages"] for r in json.loads(out)), gone
        assert models[gone]["stages"] == {}
    history = gto["history"]
    events = [e for name in models for e in log_lines(repo.path, name)]
    by_tag: dict[str, list[dict]] = {}
    for e in sorted(events, key=lambda e: (e["time"], e["id"])):
        by_tag.setdefault(e["data"]["import"].get("tag"), []).append(e)
    assert [h["ref"] for h in history] == [t for t in by_tag if t]  # every GTO event, in GTO's order
    for h in history:
        for e in by_tag[h["ref"]]:
            assert e["time"] == _utc(h["timestamp"]) and e["actor"] == h["author_email"], (h, e)
            assert h["ref"] in e["reason"] and e["data"]["import"]["commit"] == h["commit"]
            assert e["model"] == h["artifact"]
    code, out, err = cli("fsck")
    assert code == 0, out + err


def test_import_matches_gto_show_and_history(cli, gto_repo: GtoRepo, gto_template: Path):
    data = _import(cli)
    assert data["versions_created"] == 5 and sorted(data["stages_added"]) == ["dev", "prod", "qa"]
    assert_same_as_gto(cli, gto_repo, json.loads((gto_template / "gto-state.json").read_text()))
    churn = {e["data"]["import"]["tag"]: e for e in log_lines(gto_repo.path, "churn")}
    assert churn["churn#dev#1"]["action"] == "promote" and churn["churn#dev#1"]["actor"] == "alice@example.com"
    assert churn["churn@v1.1.0"]["actor"] == "bob@example.com"
    assert churn["churn@v1.2.0!"]["action"] in ("clear", "archive")

    # the manifest comes from artifacts.yaml at the registered commit, the bytes from git
    code, out, _ = cli("show", "churn@v1.1.0", "--json")
    info = json.loads(out)
    m = info["manifest"]
    c2 = gto_repo.git("rev-list", "-n1", "churn@v1.1.0")
    assert m["artifacts"] == [{"role": "model", "uri": "models/churn.pkl", "size": 9,
                               "sha256": hashlib.sha256(b"weights-2").hexdigest()}]
    assert m["description"] == "Churn classifier" and m["tags"] == ["tabular", "team-a"]
    assert m["meta"]["commit"] == c2 and m["meta"]["gto"]["type"] == "model"
    assert info["registered_by"] == "bob@example.com"
    code, out, _ = cli("show", "fraud@v0.1.0", "--json")
    fraud = json.loads(out)
    assert fraud["archived"] and fraud["manifest"]["artifacts"] == [{"role": "model", "uri": "models/fraud.pkl"}]
    hexsha = gto_repo.git("rev-parse", "HEAD")
    code, out, _ = cli("resolve", "churn@qa")
    assert out.strip() == hexsha  # as gto show names it

    # again: nothing new, nothing changes
    before = snapshot(gto_repo.path / ".modelreg")
    code, out, err = cli("import", "gto")
    assert code == 0 and "nothing new to import from gto" in err
    assert snapshot(gto_repo.path / ".modelreg") == before


def test_new_tags_import_only_those(cli, gto_repo: GtoRepo):
    _import(cli, "--repo", str(gto_repo.path))
    before = {n: len(log_lines(gto_repo.path, n)) for n in ("churn", "fraud")}
    old_tags = set(gto_repo.git("tag").split())
    gto_repo.as_user("carol")
    gto_repo.commit({"models/churn.pkl": "weights-4"}, "c5")
    gto_repo("register", "churn", "--version", "v1.3.0")
    gto_repo("assign", "churn", "--version", "v1.3.0", "--stage", "prod")
    gto_repo("register", "fraud", "--version", "v0.2.0")  # a new event revives a deprecated artifact in GTO
    data = _import(cli)
    written = [(e["data"]["import"]["tag"], e["action"]) for m in data["models"] for e in m["events"]]
    new_tags = set(gto_repo.git("tag").split()) - old_tags
    assert len(new_tags) == 3 and {t for t, _ in written} == new_tags
    assert data["versions_created"] == 2
    assert len(log_lines(gto_repo.path, "churn")) == before["churn"] + 2
    assert ("fraud@v0.2.0", "unarchive") in written  # fraud v0.1.0 is visible again in gto show, with prod
    assert_same_as_gto(cli, gto_repo, gto_state(gto_repo))
    assert _import(cli)["events_written"] == 0


def test_dry_run_and_stage_map(cli, gto_repo: GtoRepo, gto_template: Path):
    before = snapshot(gto_repo.path / ".modelreg")
    code, out, err = cli("import", "gto", "--dry-run", "--stage-map", "prod=production")
    assert code == 0, err
    assert "churn@production: (empty) -> v1.0.0" in out and "would import" in err
    assert snapshot(gto_repo.path / ".modelreg") == before
    data = _import(cli, "--stage-map", "prod=production", "--stage-map", "qa=none")
    assert sorted(data["stages_added"]) == ["dev"]
    code, out, _ = cli("ls", "--json")
    churn = next(m for m in json.loads(out) if m["name"] == "churn")
    assert churn["stages"] == {"production": "v1.1.0", "dev": "v1.1.0"}
    shown = json.loads((gto_template / "gto-state.json").read_text())["show"]["churn"]["stage"]
    assert shown["prod"] == "v1.1.0" and shown["dev"] == "v1.1.0"


def test_library_call(gto_repo: GtoRepo):
    from modelreg.importers import gto

    reg = Registry.open(gto_repo.path / ".modelreg")
    result = gto.import_repo(reg, gto_repo.path)
    assert {m.name for m in result.models} == {"churn", "fraud"}
    assert reg.resolve("churn@prod").version == "v1.1.0"
    assert gto.import_repo(reg, gto_repo.path).events_written == 0
