"""The GTO importer's rules on repositories written with plain git (GTO's tag format, exact tag times).

These need no gto install: they pin down what the real-gto comparisons cannot reach quickly
(tags in one second, tags that arrive late, deleted tags, refusals, artifact description).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import log_lines, run_cli, snapshot
from modelreg.importers import gto
from modelreg.registry import Registry

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


class TagRepo:
    """A git repository with GTO-style annotated tags at chosen times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update(HOME=str(path.parent), GIT_CONFIG_NOSYSTEM="1")
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Alice")
        self.git("config", "user.email", "alice@example.com")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(["git", *args], cwd=self.path, env={**self.env, **(env or {})}, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(self, files: dict[str, str | bytes], message: str = "c") -> str:
        for rel, content in files.items():
            p = self.path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content.encode() if isinstance(content, str) else content)
        self.git("add", "-A")
        self.git("commit", "-qm", message, env={"GIT_COMMITTER_DATE": f"@{T0} +0000", "GIT_AUTHOR_DATE": f"@{T0} +0000"})
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, commit: str, at: int, who: str = "alice", message: str | None = None) -> None:
        self.git("tag", "-a", name, commit, "-m", message or name,
                 env={"GIT_COMMITTER_DATE": f"@{T0 + at} +0000", "GIT_COMMITTER_NAME": who.title(),
                      "GIT_COMMITTER_EMAIL": f"{who}@example.com"})


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TagRepo:
    r = TagRepo(tmp_path / "repo")
    Registry.init(r.path)
    monkeypatch.chdir(r.path)
    monkeypatch.setenv("MODELREG_ACTOR", "importer@example.com")
    return r


@pytest.fixture
def cli(capsys):
    return lambda *args: run_cli(capsys, *args)


def _reg(repo: TagRepo) -> Registry:
    return Registry.open(repo.path / ".modelreg")


def _stages(reg: Registry, model: str) -> dict[str, str]:
    return {s: reg._identity(d).version for s, d in reg.stage_holders(model).items()}


def _archived(reg: Registry, model: str) -> set[str]:
    return {v.version for v in reg.versions(model) if v.archived}


def test_tags_in_one_second_follow_gtos_priority(repo: TagRepo):
    c1 = repo.commit({"artifacts.yaml": "m:\n  path: w.bin\n", "w.bin": "one"})
    # all in one second: GTO orders deprecation < registration < deregistration < assignment < unassignment
    repo.tag("m#prod#1", c1, 5)
    repo.tag("m@v1.0.0", c1, 5)
    c2 = repo.commit({"w.bin": "two"})
    repo.tag("m@v2.0.0", c2, 6)
    repo.tag("m#prod#3", c2, 6)
    repo.tag("m#prod!#2", c2, 6)  # unassignment after the assignment of the same second, whatever the counter
    result = gto.import_repo(_reg(repo), repo.path)
    order = [(e.data["import"]["tag"], e.action) for e in result.models[0].events]
    assert order[:2] == [("m@v1.0.0", "register"), ("m#prod#1", "promote")]
    assert [t for t, _ in order[2:]] == ["m@v2.0.0", "m#prod#3", "m#prod!#2"]
    reg = _reg(repo)
    assert _stages(reg, "m") == {"prod": "v1.0.0"}  # v2 left prod again: back to v1.0.0, as gto show says
    assert [e.time for e in reg.events("m")] == sorted(e.time for e in reg.events("m"))


def test_a_tag_that_arrives_late_is_reconciled(repo: TagRepo, cli):
    c1 = repo.commit({"w.bin": "one"})
    repo.tag("m@v1.0.0", c1, 10)
    repo.tag("m#prod#1", c1, 11)
    c2 = repo.commit({"w.bin": "two"})
    repo.tag("m@v2.0.0", c2, 20)
    repo.tag("m#prod#2", c2, 40)
    assert gto.import_repo(_reg(repo), repo.path).events_written == 4
    assert _stages(_reg(repo), "m") == {"prod": "v2.0.0"}
    # pushed later, but made before m#prod#2: v2.0.0 was deregistered at 30, so gto show now puts prod back
    # on v1.0.0 (its assignment is the newest one of a version still registered)
    repo.tag("m@v2.0.0!", c2, 30, who="bob")
    code, out, err = cli("import", "gto", "--json")
    assert code == 0, err
    data = json.loads(out)
    events = data["models"][0]["events"]
    assert events[0]["action"] == "import" and events[0]["data"]["import"]["tag"] == "m@v2.0.0!"
    assert events[0]["data"]["import"]["time"] == "2023-11-14T22:13:50.000000Z"  # its own time, kept
    assert [(e["action"], e["stage"]) for e in events[1:]] == [("promote", "prod"), ("archive", None)]
    assert all(e["actor"] == "importer@example.com" and "late" in e["reason"] for e in events[1:])
    reg = _reg(repo)
    assert _stages(reg, "m") == {"prod": "v1.0.0"} and _archived(reg, "m") == {"v2.0.0"}
    times = [e.time for e in reg.events("m")]
    assert times == sorted(times)  # the log never goes back in time
    code, out, err = cli("fsck")
    assert code == 0 and "warning" not in out, out + err
    assert gto.import_repo(_reg(repo), repo.path).events_written == 0


def test_deprecation_archives_everything_and_a_new_event_revives(repo: TagRepo):
    c1 = repo.commit({"w.bin": "one"})
    repo.tag("m@v1.0.0", c1, 1)
    repo.tag("m#prod#1", c1, 2)
    repo.tag("m@deprecated#2", c1, 3)
    gto.import_repo(_reg(repo), repo.path)
    reg = _reg(repo)
    assert _stages(reg, "m") == {} and _archived(reg, "m") == {"v1.0.0"}
    repo.tag("m#staging#3", c1, 4)
    gto.import_repo(_reg(repo), repo.path)
    reg = _reg(repo)
    assert _archived(reg, "m") == set() and _stages(reg, "m") == {"prod": "v1.0.0", "staging": "v1.0.0"}


def test_a_deleted_tag_is_reported_and_nothing_changes(repo: TagRepo, cli):
    c1 = repo.commit({"w.bin": "one"})
    repo.tag("m@v1.0.0", c1, 1)
    repo.tag("m#prod#1", c1, 2)
    gto.import_repo(_reg(repo), repo.path)
    repo.git("tag", "-d", "m#prod#1")
    before = snapshot(repo.path / ".modelreg")
    code, out, err = cli("import", "gto")
    assert code == 0 and "m#prod#1 was imported before but is gone" in err
    assert snapshot(repo.path / ".modelreg") == before


def test_artifacts_are_described_from_git(repo: TagRepo, http_server):
    base_url, served = http_server
    (served / "remote.bin").write_bytes(b"remote weights")
    lfs = (b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 12345\n")
    c1 = repo.commit({
        "artifacts.yaml": (f"small:\n  path: models/s.bin\n  type: Model\n  labels: [NLP/Text, x]\n"
                           f"  description: the small one\n  custom: {{k: 1}}\n"
                           f"big:\n  path: models/b.bin\nremote:\n  path: {base_url}/remote.bin\n"
                           f"outside:\n  path: ../elsewhere/o.bin\nfolder:\n  path: models\n"),
        "models/s.bin": "small weights", "models/b.bin": lfs,
    })
    for i, name in enumerate(("small", "big", "remote", "outside", "folder")):
        repo.tag(f"{name}@v1.0.0", c1, i)
    (repo.path / "models" / "s.bin").write_text("changed in the work tree since")
    result = gto.import_repo(_reg(repo), repo.path)
    reg = _reg(repo)

    def art(model: str) -> dict:
        return reg.show(f"{model}@v1.0.0").manifest["artifacts"][0]

    small = reg.show("small@v1.0.0").manifest
    assert small["artifacts"] == [{"role": "model", "uri": "models/s.bin", "size": 13,
                                   "sha256": hashlib.sha256(b"small weights").hexdigest()}]  # the bytes at the commit
    assert small["tags"] == ["nlp-text", "x"] and small["description"] == "the small one"
    assert small["meta"]["gto"] == {"artifact": "small", "tag": "small@v1.0.0", "type": "Model", "custom": {"k": 1},
                                    "labels": ["NLP/Text", "x"]}
    assert art("big") == {"role": "model", "uri": "models/b.bin", "sha256": "a" * 64, "size": 12345}  # LFS pointer
    assert art("remote") == {"role": "model", "uri": f"{base_url}/remote.bin", "size": 14}
    assert art("outside")["uri"] == (repo.path.parent / "elsewhere" / "o.bin").resolve().as_uri()
    assert art("folder") == {"role": "model", "uri": "models"}
    assert any("o.bin" in w and "recorded as given" in w for w in result.warnings)


def test_remote_artifacts_are_checked_unless_no_check(repo: TagRepo, cli, http_server):
    base_url, _served = http_server
    c1 = repo.commit({"artifacts.yaml": f"m:\n  path: {base_url}/missing.bin\n"})
    repo.tag("m@v1.0.0", c1, 1)
    before = snapshot(repo.path / ".modelreg")
    code, out, err = cli("import", "gto")
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    assert snapshot(repo.path / ".modelreg") == before  # nothing is written before every artifact is checked
    code, out, err = cli("import", "gto", "--no-check")
    assert code == 0, err
    assert _reg(repo).show("m@v1.0.0").manifest["artifacts"] == [{"role": "model", "uri": f"{base_url}/missing.bin"}]


def test_refusals_change_nothing(repo: TagRepo, cli, tmp_path: Path):
    c1 = repo.commit({"w.bin": "one"})
    repo.tag("m@v1.0.0", c1, 1)
    reg = _reg(repo)
    reg.register("m", "0.9", actor="someone")  # a model modelreg already has, with its own history
    before = snapshot(repo.path / ".modelreg")
    (tmp_path / "plain").mkdir()
    cases = [
        ([], 4, "already exists in this registry"),
        (["--repo", str(tmp_path / "nope")], 3, "no such directory"),
        (["--repo", str(tmp_path / "plain")], 2, "not a git repository"),
        (["--stage-map", "prod"], 2, "--stage-map"),
        (["--stage-map", "prod=Bad Name"], 2, "--stage-map"),
        (["--stage-map", "prod=archived"], 2, "archived"),
    ]
    for args, code_wanted, text in cases:
        code, out, err = cli("import", "gto", *args)
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == code_wanted and len(lines) == 1 and text in lines[0], (args, code, err)
    assert snapshot(repo.path / ".modelreg") == before


def test_names_that_collide_or_cannot_be_mapped(repo: TagRepo, cli):
    c1 = repo.commit({"w.bin": "one"})
    repo.tag("Churn@v1.0.0", c1, 1)
    repo.tag("churn@v1.0.0", c1, 2)
    code, out, err = cli("import", "gto")
    assert code == 2 and "'Churn' and 'churn' would both become 'churn'" in err
    repo.git("tag", "-d", "Churn@v1.0.0")
    repo.tag("churn#Prod#1", c1, 3)
    repo.tag("churn#prod#2", c1, 4)
    code, out, err = cli("import", "gto")
    assert code == 2 and "--stage-map" in err
    code, out, err = cli("import", "gto", "--stage-map", "Prod=production")
    assert code == 0, err
    assert _stages(_reg(repo), "churn") == {"prod": "v1.0.0", "production": "v1.0.0"}
    kinds = [e.action for e in _reg(repo).events("churn")]
    assert kinds == ["register", "promote", "promote"]


def test_ambiguous_commit_and_nested_names(repo: TagRepo, cli):
    c1 = repo.commit({"w.bin": "one"})
    repo.tag("team/models=churn@v1.0.0", c1, 1)  # GTO's "dirname:name" spelling
    repo.tag("m@v1.0.0", c1, 2)
    repo.tag("m@v1.0.1", c1, 3)
    repo.tag("m#prod#1", c1, 4)
    code, out, err = cli("import", "gto")
    assert code == 2 and "cannot tell which one it assigns" in err
    repo.git("tag", "-d", "m#prod#1")
    code, out, err = cli("import", "gto")
    assert code == 0, err
    reg = _reg(repo)
    assert reg.show("team-models-churn@v1.0.0").manifest["meta"]["gto"]["artifact"] == "team/models:churn"


def test_no_gto_tags(repo: TagRepo, cli):
    repo.commit({"w.bin": "one"})
    repo.git("tag", "release-1")
    code, out, err = cli("import", "gto", "--json")
    assert code == 0 and json.loads(out)["changed"] is False


def test_log_order_matches_tag_order_across_many_tags(repo: TagRepo):
    commits = [repo.commit({"w.bin": f"w{i}"}) for i in range(3)]
    made, at = [], 0
    for i, c in enumerate(commits):
        for name in (f"m@v1.{i}.0", *(f"m#{stage}#{i * 3 + k}" for k, stage in enumerate(("dev", "staging", "prod")))):
            repo.tag(name, c, at := at + 1)
            made.append(name)
    gto.import_repo(_reg(repo), repo.path)
    assert [e["data"]["import"]["tag"] for e in log_lines(repo.path, "m")] == made
    assert _stages(_reg(repo), "m") == {"dev": "v1.2.0", "staging": "v1.2.0", "prod": "v1.2.0"}


def test_progress_counts_every_tag(repo: TagRepo):
    c1 = repo.commit({"w.bin": "one"})
    for i, name in enumerate(("m@v1.0.0", "m#dev#1", "m#prod#2", "n@v1.0.0")):
        repo.tag(name, c1, i)
    calls: list = []

    def factory(label: str, total: int):
        calls.append((label, total))
        return lambda n: calls.append(n)

    gto.import_repo(_reg(repo), repo.path, progress=factory)
    assert calls[0] == ("import gto", 6)  # 3 + 1 tags, and one closing step per model
    assert calls[1:] == [1] * 6


def test_imported_history_passes_audit(repo: TagRepo, cli):
    c1 = repo.commit({"w.bin": "one"})
    repo.tag("m@v1.0.0", c1, 1)
    repo.tag("m#prod#1", c1, 2)
    repo.git("add", "-A")
    repo.git("commit", "-q", "--allow-empty", "-m", "registry")
    assert gto.import_repo(_reg(repo), repo.path).events_written == 2
    repo.git("add", "-A")
    repo.git("commit", "-qm", "import")
    code, out, err = cli("audit", "--base", "HEAD~1")
    assert code == 0, out + err
    c2 = repo.commit({"w.bin": "two"})
    repo.tag("m@v2.0.0", c2, 3)
    repo.tag("m#prod#2", c2, 0)  # late: older than what was imported
    assert gto.import_repo(_reg(repo), repo.path).events_written
    repo.git("add", "-A")
    repo.git("commit", "-qm", "import again")
    code, out, err = cli("audit", "--base", "HEAD~1")
    assert code == 0, out + err  # the log never went back in time


def test_new_stages_follow_gtos_declared_order(repo: TagRepo):
    c1 = repo.commit({"w.bin": "one", ".gto": "stages: [dev, qa, prod]\n"})
    repo.tag("m@v1.0.0", c1, 1)
    repo.tag("m#prod#1", c1, 2)
    repo.tag("m#uat#2", c1, 3)  # not declared: after the declared ones, in the order first used
    repo.tag("m#dev#3", c1, 4)
    result = gto.import_repo(_reg(repo), repo.path)
    assert result.stages_added == ["dev", "prod", "uat"]
    assert _reg(repo).stages == ("staging", "production", "dev", "prod", "uat")


def test_a_bare_clone_imports_the_same(repo: TagRepo, tmp_path: Path):
    c1 = repo.commit({"artifacts.yaml": "m:\n  path: w.bin\n", "w.bin": "one"})
    repo.tag("m@v1.0.0", c1, 1)
    repo.tag("m#prod#1", c1, 2)
    bare = tmp_path / "bare.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))
    result = gto.import_repo(_reg(repo), bare)
    assert result.versions_created == 1
    art = _reg(repo).show("m@v1.0.0").manifest["artifacts"][0]
    assert art["sha256"] == hashlib.sha256(b"one").hexdigest()


def test_a_stage_that_falls_back_is_a_rollback_in_the_undo_stack(repo: TagRepo, cli):
    c1 = repo.commit({"w.bin": "one"})
    repo.tag("m@v1.0.0", c1, 1)
    c2 = repo.commit({"w.bin": "two"})
    repo.tag("m@v2.0.0", c2, 2)
    repo.tag("m#prod#1", c1, 3)
    repo.tag("m#prod#2", c2, 4)
    repo.tag("m#prod!#3", c2, 5)  # v2.0.0 unassigned: gto show puts prod back on v1.0.0
    gto.import_repo(_reg(repo), repo.path)
    moves = [e for e in log_lines(repo.path, "m") if e["stage"] == "prod"]
    assert [(e["action"], e["version"]) for e in moves] == [("promote", "v1.0.0"), ("promote", "v2.0.0"),
                                                            ("rollback", "v1.0.0")]
    assert moves[2]["data"]["undoes"] == [moves[1]["id"]]
    assert [e.get("prev") for e in moves] == [None, moves[0]["id"], moves[1]["id"]]  # one causal chain
    code, out, err = cli("rollback", "m", "prod")  # what is left to undo put v1.0.0 into an empty stage
    assert code == 3 and "nothing left to undo" in err
    code, out, err = cli("fsck")
    assert code == 0 and "warning" not in out, out + err


def test_json_errors(repo: TagRepo, cli, tmp_path: Path):
    code, out, err = cli("import", "gto", "--repo", str(tmp_path / "nope"), "--json")
    assert code == 3 and json.loads(out)["error"] == {"code": 3, "message": f"--repo {tmp_path / 'nope'}: no such directory"}
