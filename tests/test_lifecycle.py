"""The full life of a model through the CLI: files on disk, exit codes, text and --json output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import ACTOR, log_lines, snapshot

from modelreg.registry import Registry

MODEL = "faq-bot"
LOG_KEYS = {"id", "time", "actor", "action", "model", "version", "stage", "from", "to", "reason"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ref_file(project: Path, *parts: str) -> str:
    return (project / ".modelreg" / Path(*parts)).read_text()


def register_v1(cli, make_artifact) -> str:
    make_artifact("models/v1/model.bin", b"v1-weights")
    make_artifact("models/v1/tokenizer.json", b"{}")
    code, out, err = cli("register", MODEL, "1.0.0", "-a", "checkpoint=models/v1/model.bin",
                         "-a", "models/v1/tokenizer.json", "-p", "lr=0.001", "-m", "team=search")
    assert code == 0, err
    return out.strip()


def register_v2(cli, make_artifact) -> str:
    make_artifact("models/v2/model.bin", b"v2-weights-longer")
    code, out, err = cli("register", MODEL, "2.0.0", "-a", "checkpoint=models/v2/model.bin", "-p", "lr=0.0005")
    assert code == 0, err
    return out.strip()


@pytest.fixture
def two_versions(cli, make_artifact) -> tuple[str, str]:
    d1 = register_v1(cli, make_artifact)
    d2 = register_v2(cli, make_artifact)
    return d1, d2


# ------------------------------------------------------------------ register
def test_register_writes_object_version_and_event(cli, make_artifact, project):
    digest = register_v1(cli, make_artifact)
    assert digest.startswith("sha256:") and len(digest) == 71
    hexd = digest[7:]
    obj = project / ".modelreg" / "objects" / hexd[:2] / hexd[2:]
    assert sha(obj.read_bytes()) == hexd  # object named by the sha256 of its bytes
    assert ref_file(project, "versions", MODEL, "1.0.0") == f"{digest}\n"
    events = log_lines(project, MODEL)
    assert [e["action"] for e in events] == ["register"]
    assert events[0]["to"] == digest and events[0]["version"] == "1.0.0" and events[0]["actor"] == ACTOR


def test_show_json_has_hashed_local_artifacts_with_relative_paths(cli, make_artifact):
    digest = register_v1(cli, make_artifact)
    code, out, err = cli("show", f"{MODEL}@1.0.0", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["digest"] == digest and info["stages"] == [] and info["archived"] is False
    assert info["registered_by"] == ACTOR
    arts = {a["role"]: a for a in info["manifest"]["artifacts"]}
    assert set(arts) == {"checkpoint", "tokenizer.json"}
    assert arts["checkpoint"] == {"role": "checkpoint", "uri": "models/v1/model.bin",
                                  "sha256": sha(b"v1-weights"), "size": len(b"v1-weights")}
    assert arts["tokenizer.json"]["uri"] == "models/v1/tokenizer.json"
    assert arts["tokenizer.json"]["sha256"] == sha(b"{}") and arts["tokenizer.json"]["size"] == 2
    assert info["manifest"]["params"] == {"lr": 0.001}
    assert info["manifest"]["meta"] == {"team": "search"}


def test_show_text(cli, make_artifact):
    digest = register_v1(cli, make_artifact)
    code, out, _ = cli("show", f"{MODEL}@1.0.0")
    assert code == 0
    assert out.startswith(f"{MODEL}@1.0.0\n")
    assert f"digest:      {digest}" in out
    assert "uri: models/v1/model.bin" in out


def test_idempotent_reregister_adds_nothing(cli, make_artifact, project):
    digest = register_v1(cli, make_artifact)
    before = snapshot(project / ".modelreg")
    code, out, err = cli("register", MODEL, "1.0.0", "-a", "checkpoint=models/v1/model.bin",
                         "-a", "models/v1/tokenizer.json", "-p", "lr=0.001", "-m", "team=search", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["created"] is False and res["event"] is None and res["digest"] == digest
    assert snapshot(project / ".modelreg") == before
    assert len(log_lines(project, MODEL)) == 1


def test_conflicting_reregister_names_the_field_and_changes_nothing(cli, make_artifact, project):
    register_v1(cli, make_artifact)
    before = snapshot(project / ".modelreg")
    code, out, err = cli("register", MODEL, "1.0.0", "-a", "checkpoint=models/v1/model.bin",
                         "-a", "models/v1/tokenizer.json", "-p", "lr=0.002", "-m", "team=search")
    assert code == 4
    assert out == ""
    assert err.startswith("modelreg: error: ") and err.count("\n") == 1
    assert "params.lr" in err and "already registered" in err
    assert snapshot(project / ".modelreg") == before


# ------------------------------------------------------------------ promote / rollback
def test_promote_staging_then_production(cli, two_versions, project):
    d1, d2 = two_versions
    code, out, err = cli("promote", f"{MODEL}@1.0.0", "staging", "--expect", "none")
    assert code == 0, err
    assert out.strip() == d1 and "(empty) -> 1.0.0" in err
    code, out, err = cli("promote", f"{MODEL}@1.0.0", "production", "--expect", "none", "--reason", "launch", "--json")
    assert code == 0, err
    move = json.loads(out)
    assert move["from"] is None and move["to"]["digest"] == d1 and move["changed"] is True
    assert move["events"][0]["reason"] == "launch" and move["events"][0]["action"] == "promote"
    assert ref_file(project, "refs", MODEL, "staging") == f"{d1}\n"
    assert ref_file(project, "refs", MODEL, "production") == f"{d1}\n"
    # promoting to the value it already holds changes nothing
    n = len(log_lines(project, MODEL))
    code, out, err = cli("promote", f"{MODEL}@1.0.0", "production")
    assert code == 0 and "nothing changed" in err and len(log_lines(project, MODEL)) == n


def test_promote_cas_then_rollbacks(cli, two_versions, project):
    d1, d2 = two_versions
    assert cli("promote", f"{MODEL}@1.0.0", "production", "--expect", "none")[0] == 0
    code, out, err = cli("promote", f"{MODEL}@2.0.0", "production", "--expect", "1.0.0")
    assert code == 0, err
    assert ref_file(project, "refs", MODEL, "production") == f"{d2}\n"
    assert "1.0.0 -> 2.0.0" in err

    # rollback: back to the value before the latest change
    code, out, err = cli("rollback", MODEL, "production", "--json")
    assert code == 0, err
    move = json.loads(out)
    assert move["from"]["version"] == "2.0.0" and move["to"]["version"] == "1.0.0"
    assert ref_file(project, "refs", MODEL, "production") == f"{d1}\n"
    last = log_lines(project, MODEL)[-1]
    assert last["action"] == "rollback" and last["from"] == d2 and last["to"] == d1 and last["version"] == "1.0.0"

    # rollback again: nothing left to undo (production was empty before 1.0.0), and it never
    # goes back to 2.0.0, the version it just rolled back
    code, out, err = cli("rollback", MODEL, "production")
    assert code == 3 and "--to VERSION" in err and "clear" in err
    assert ref_file(project, "refs", MODEL, "production") == f"{d1}\n"

    # rollback --to an explicit version
    code, out, err = cli("rollback", MODEL, "production", "--to", "2.0.0", "--reason", "bad metrics")
    assert code == 0, err
    assert out.strip() == d2
    assert ref_file(project, "refs", MODEL, "production") == f"{d2}\n"
    last = log_lines(project, MODEL)[-1]
    assert last["action"] == "rollback" and last["reason"] == "bad metrics" and last["to"] == d2
    actions = [e["action"] for e in log_lines(project, MODEL)]
    assert actions == ["register", "register", "promote", "promote", "rollback", "rollback"]


def test_archive_policy(cli, two_versions, project):
    d1, d2 = two_versions
    cli("promote", f"{MODEL}@1.0.0", "production", "--expect", "none")
    before = snapshot(project / ".modelreg")
    code, out, err = cli("archive", f"{MODEL}@1.0.0")
    assert code == 5 and "production" in err and "--force" in err
    assert snapshot(project / ".modelreg") == before

    code, out, err = cli("archive", f"{MODEL}@1.0.0", "--force", "--reason", "superseded", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["changed"] is True and res["event"]["action"] == "archive"
    assert res["event"]["data"] == {"forced": True, "cleared": ["production"]}
    assert (res["name"], res["version"], res["digest"], res["cleared"]) == (MODEL, "1.0.0", d1, ["production"])
    info = json.loads(cli("show", f"{MODEL}@1.0.0", "--json")[1])
    assert info["archived"] is True and info["archived_reason"] == "superseded" and info["stages"] == []
    assert not (project / ".modelreg" / "refs" / MODEL / "production").exists()  # --force cleared it

    # an archived version cannot be promoted
    before = snapshot(project / ".modelreg")
    code, out, err = cli("promote", f"{MODEL}@1.0.0", "staging")
    assert code == 5 and "archived" in err
    assert snapshot(project / ".modelreg") == before

    # archiving again is a no-op; --undo makes it promotable again
    code, _, err = cli("archive", f"{MODEL}@1.0.0", "--force")
    assert code == 0 and "already archived" in err
    assert cli("archive", f"{MODEL}@1.0.0", "--undo")[0] == 0
    assert cli("promote", f"{MODEL}@1.0.0", "staging")[0] == 0


def test_archive_unheld_version_without_force(cli, two_versions):
    code, _, err = cli("archive", f"{MODEL}@2.0.0")
    assert code == 0, err
    assert json.loads(cli("show", f"{MODEL}@2.0.0", "--json")[1])["archived"] is True


# ------------------------------------------------------------------ resolve
def test_resolve_forms(cli, two_versions, project):
    d1, d2 = two_versions
    cli("promote", f"{MODEL}@1.0.0", "production")
    assert cli("resolve", f"{MODEL}@1.0.0") == (0, "1.0.0\n", "")
    assert cli("resolve", f"{MODEL}@production")[1] == "1.0.0\n"
    assert cli("resolve", f"{MODEL}@latest")[1] == "2.0.0\n"
    assert cli("resolve", f"{MODEL}@{d2[:14]}")[1] == "2.0.0\n"  # sha256: + 7 hex digits
    assert cli("resolve", d1[:14])[1] == "1.0.0\n"  # bare digest prefix
    assert cli("resolve", d1)[1] == "1.0.0\n"
    assert cli("resolve", f"{MODEL}@production", "--digest")[1] == f"{d1}\n"
    assert cli("resolve", f"{MODEL}@1.0.0", "--artifact", "checkpoint")[1] == "models/v1/model.bin\n"
    code, out, _ = cli("resolve", f"{MODEL}@production", "--json")
    assert json.loads(out) == {"name": MODEL, "version": "1.0.0", "digest": d1}
    code, out, _ = cli("resolve", f"{MODEL}@1.0.0", "--artifact", "checkpoint", "--json")
    assert json.loads(out)["artifact"]["sha256"] == sha(b"v1-weights")
    code, _, err = cli("resolve", f"{MODEL}@1.0.0", "--artifact", "nope")
    assert code == 3 and "checkpoint" in err

    # @latest skips archived versions
    assert cli("archive", f"{MODEL}@2.0.0")[0] == 0
    assert cli("resolve", f"{MODEL}@latest")[1] == "1.0.0\n"


def test_resolve_latest_all_archived(cli, make_artifact):
    register_v1(cli, make_artifact)
    cli("archive", f"{MODEL}@1.0.0")
    code, out, err = cli("resolve", f"{MODEL}@latest")
    assert code == 3 and "archived" in err and out == ""


# ------------------------------------------------------------------ ls / log / diff
def test_ls(cli, two_versions):
    d1, d2 = two_versions
    cli("promote", f"{MODEL}@1.0.0", "production")
    cli("promote", f"{MODEL}@2.0.0", "staging")
    cli("archive", f"{MODEL}@1.0.0", "--force")  # clears production: an archived version holds no stage
    code, out, err = cli("ls")
    assert code == 0, err
    assert MODEL in out and "staging=2.0.0" in out and "production" not in out
    code, out, _ = cli("ls", "--json")
    assert json.loads(out) == [{"name": MODEL, "versions": 2, "stages": {"staging": "2.0.0"}, "latest": "2.0.0",
                                "description": None, "task": None, "subject": None, "owner": None, "fields": {}}]
    code, out, _ = cli("ls", MODEL, "--json")
    rows = json.loads(out)
    assert [r["version"] for r in rows] == ["1.0.0", "2.0.0"]
    for r in rows:
        assert {"name", "version", "digest", "stages", "archived"} <= set(r)
    assert rows[0]["digest"] == d1 and rows[0]["stages"] == []
    assert rows[0]["archived"] is True
    assert rows[1]["digest"] == d2 and rows[1]["stages"] == ["staging"] and rows[1]["archived"] is False
    code, out, _ = cli("ls", MODEL)
    assert code == 0 and "1.0.0" in out and "2.0.0" in out
    assert cli("ls", "nope")[0] == 3


def test_log_filters_and_json(cli, two_versions):
    d1, d2 = two_versions
    cli("promote", f"{MODEL}@1.0.0", "staging")
    cli("promote", f"{MODEL}@1.0.0", "production", "--reason", "go")
    cli("promote", f"{MODEL}@2.0.0", "production")
    code, out, err = cli("log", MODEL, "--json")
    assert code == 0, err
    events = json.loads(out)
    assert len(events) == 5
    for e in events:
        assert LOG_KEYS <= set(e)
    assert [e["action"] for e in events] == ["promote", "promote", "promote", "register", "register"]  # newest first
    code, out, _ = cli("log", MODEL, "--stage", "production", "--json")
    prod = json.loads(out)
    assert [(e["version"], e["from"], e["to"]) for e in prod] == [("2.0.0", d1, d2), ("1.0.0", None, d1)]
    assert prod[1]["reason"] == "go" and prod[1]["actor"] == ACTOR
    code, out, _ = cli("log", MODEL, "--stage", "production", "--limit", "1", "--json")
    assert [e["version"] for e in json.loads(out)] == ["2.0.0"]
    code, out, _ = cli("log", MODEL, "--limit", "2")
    lines = out.splitlines()
    assert len(lines) == 2 and "promote" in lines[0] and "2.0.0" in lines[0] and f"by {ACTOR}" in lines[0]
    code, out, _ = cli("log", "--json")  # every model
    assert len(json.loads(out)) == 5


def test_diff_text_and_json(cli, two_versions):
    d1, d2 = two_versions
    code, out, err = cli("diff", f"{MODEL}@1.0.0", f"{MODEL}@2.0.0")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"--- {MODEL}@1.0.0") and lines[1].startswith(f"+++ {MODEL}@2.0.0")
    assert "- params.lr: 0.001" in lines and "+ params.lr: 0.0005" in lines
    assert "- artifacts.tokenizer.json.uri: models/v1/tokenizer.json" in lines
    code, out, _ = cli("diff", f"{MODEL}@1.0.0", f"{MODEL}@2.0.0", "--json")
    res = json.loads(out)
    assert res["a"]["digest"] == d1 and res["b"]["digest"] == d2
    changes = {c["path"]: c for c in res["changes"]}
    assert changes["params.lr"] == {"path": "params.lr", "kind": "changed", "old": 0.001, "new": 0.0005}
    assert changes["version"]["old"] == "1.0.0" and changes["version"]["new"] == "2.0.0"
    assert changes["artifacts.tokenizer.json.size"]["kind"] == "removed"
    assert "meta.team" in changes and changes["meta.team"]["kind"] == "removed"
    code, out, _ = cli("diff", f"{MODEL}@1.0.0", f"{MODEL}@1.0.0")
    assert "(manifests are identical)" in out


# ------------------------------------------------------------------ --from-file
def test_register_from_file(cli, project, make_artifact):
    make_artifact("m.bin", b"abc")
    (project / "manifest.yaml").write_text(
        'name: faq-bot\nversion: "1.10"\ndescription: from a file\n'
        "artifacts:\n- role: checkpoint\n  uri: m.bin\ntags:\n- prod\n- nlp\n"
    )
    code, out, err = cli("register", "--from-file", "manifest.yaml", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["version"] == "1.10" and res["created"] is True
    assert (project / ".modelreg" / "versions" / MODEL / "1.10").is_file()
    m = json.loads(cli("show", f"{MODEL}@1.10", "--json")[1])["manifest"]
    assert m["version"] == "1.10" and m["tags"] == ["nlp", "prod"]
    assert m["artifacts"][0]["sha256"] == sha(b"abc") and m["artifacts"][0]["size"] == 3
    # the stored object spells the version quoted, so YAML 1.1 readers keep the string
    hexd = res["digest"][7:]
    assert b'version: "1.10"\n' in (project / ".modelreg" / "objects" / hexd[:2] / hexd[2:]).read_bytes()


@pytest.mark.parametrize(
    "text, needle",
    [
        ("name: faq-bot\nversion: [1, 2]\n", "version must be a string"),
        ('name: faq-bot\nversion: "2.0"\nversion: "2.1"\n', "duplicate key"),
        ('name: &n faq-bot\nversion: "2.0"\ndescription: *n\n', "aliases"),
        ('name: faq-bot\nversion: "2.0"\nbogus: 1\n', "unknown field"),
        ("- a\n- b\n", "mapping"),
    ],
    ids=["list-version", "duplicate-key", "alias", "unknown-field", "not-a-mapping"],
)
def test_register_from_file_refusals(cli, project, text, needle):
    (project / "bad.yaml").write_text(text)
    before = snapshot(project / ".modelreg")
    code, out, err = cli("register", "--from-file", "bad.yaml")
    assert code == 2, err
    assert needle in err and err.startswith("modelreg: error: ") and err.count("\n") == 1
    assert snapshot(project / ".modelreg") == before


def test_from_file_version_is_never_coerced(cli, project):
    """``version: 1.10`` unquoted is the version "1.10" (YAML 1.1 would read the number 1.1)."""
    (project / "m.yaml").write_text("name: faq-bot\nversion: 1.10\n")
    code, out, err = cli("register", "--from-file", "m.yaml", "--json")
    assert code == 0, err
    assert json.loads(out)["version"] == "1.10"


def test_from_file_with_name_is_usage_error(cli, project):
    (project / "m.yaml").write_text('name: faq-bot\nversion: "1"\n')
    assert cli("register", "faq-bot", "--from-file", "m.yaml")[0] == 2
    assert cli("register", "--from-file", "missing.yaml")[0] == 2


# ------------------------------------------------------------------ actor / discovery / config
def test_actor_resolution_order(cli, project, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTOR", "gh-user")
    monkeypatch.setenv("MODELREG_ACTOR", "env-user")
    cli("register", "m", "1", "--actor", "flag-user")
    cli("register", "m", "2")
    monkeypatch.delenv("MODELREG_ACTOR")
    cli("register", "m", "3")
    assert [e["actor"] for e in log_lines(project, "m")] == ["flag-user", "env-user", "gh-user"]


def test_registry_found_from_subdirectory(cli, project, monkeypatch):
    cli("register", "m", "1")
    sub = project / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert cli("resolve", "m@1") == (0, "1\n", "")


def test_registry_via_env_and_flag(cli, project, tmp_path, monkeypatch):
    cli("register", "m", "1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = cli("resolve", "m@1")
    assert code == 3 and "no .modelreg registry" in err
    assert cli("--registry", str(project / ".modelreg"), "resolve", "m@1")[:2] == (0, "1\n")
    assert cli("-R", str(project), "resolve", "m@1")[:2] == (0, "1\n")
    monkeypatch.setenv("MODELREG_DIR", str(project / ".modelreg"))
    assert cli("resolve", "m@1")[:2] == (0, "1\n")
    # --registry wins over MODELREG_DIR
    other = tmp_path / "other"
    Registry.init(other)
    assert cli("--registry", str(other), "resolve", "m@1")[0] == 3
    monkeypatch.setenv("MODELREG_DIR", str(tmp_path / "missing"))
    code, _, err = cli("resolve", "m@1")
    assert code == 3 and "missing" in err


def test_future_format_refused(cli, project):
    cli("register", "m", "1")
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("format: 1", "format: 2"))
    before = snapshot(project / ".modelreg")
    for args in (("resolve", "m@1"), ("register", "m", "2"), ("ls",)):
        code, out, err = cli(*args)
        assert code == 2, (args, err)
        assert err.startswith("modelreg: error: ") and err.count("\n") == 1
        assert "format 2" in err and "upgrade modelreg" in err
    assert snapshot(project / ".modelreg") == before


def test_init_creates_layout(tmp_path, cli):
    target = tmp_path / "fresh"
    target.mkdir()
    code, _, err = cli("init", str(target))
    assert code == 0 and "Initialized empty" in err
    reg = target / ".modelreg"
    for sub in ("objects", "refs", "versions", "logs", "locks"):
        assert (reg / sub).is_dir()
    cfg = (reg / "config.yaml").read_text()
    assert "format: 1" in cfg and "- staging\n- production\n" in cfg
    code, _, err = cli("init", str(target))
    assert code == 0 and "Reinitialized" in err


def test_fsck_clean_after_lifecycle(cli, two_versions):
    cli("promote", f"{MODEL}@1.0.0", "production")
    cli("promote", f"{MODEL}@2.0.0", "production")
    cli("rollback", MODEL, "production")
    code, out, err = cli("fsck", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["ok"] is True and rep["problems"] == []
    assert rep["counts"] == {"objects": 2, "versions": 2, "refs": 1, "events": 5}


def test_init_honours_registry_option_and_env(tmp_path, monkeypatch, capsys):
    from conftest import run_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELREG_DIR", raising=False)
    assert run_cli(capsys, "--registry", "sub/.modelreg", "init")[0] == 0
    assert (tmp_path / "sub" / ".modelreg" / "config.yaml").is_file()
    assert not (tmp_path / ".modelreg").exists()
    monkeypatch.setenv("MODELREG_DIR", str(tmp_path / "env"))
    assert run_cli(capsys, "init")[0] == 0
    assert (tmp_path / "env" / ".modelreg" / "config.yaml").is_file()
    code, _, err = run_cli(capsys, "init", "other")
    assert code == 2 and err.startswith("modelreg: error:") and not (tmp_path / "other").exists()


def test_library_expect_none_checks_nothing_and_empty_is_explicit(reg, make_artifact):
    import modelreg
    from modelreg.errors import Conflict

    reg.register(MODEL, "1.0.0")
    reg.register(MODEL, "2.0.0")
    reg.promote(f"{MODEL}@1.0.0", "production", expect=modelreg.EMPTY)  # empty: allowed
    with pytest.raises(Conflict):
        reg.promote(f"{MODEL}@2.0.0", "production", expect=modelreg.EMPTY)  # no longer empty
    with pytest.raises(Conflict):
        reg.promote(f"{MODEL}@2.0.0", "production", expect="none")  # the CLI spelling, same meaning
    assert reg.resolve(f"{MODEL}@production").version == "1.0.0"
    reg.promote(f"{MODEL}@2.0.0", "production", expect=None)  # None: no compare, as Python users read it
    assert reg.resolve(f"{MODEL}@production").version == "2.0.0"
    reg.promote(f"{MODEL}@1.0.0", "production")  # left out: the same
    assert reg.resolve(f"{MODEL}@production").version == "1.0.0"
