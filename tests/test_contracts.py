"""Small contracts, each once broken: --json on every outcome, non-UTF-8 arguments, log text,
--strict re-registration, log --stage typos, and the Python meaning of ``expect``."""

from __future__ import annotations

import json
import pydoc
import subprocess
import sys

import pytest
from conftest import log_lines, snapshot, subprocess_env

import modelreg
from modelreg import cli as cli_mod

MODEL = "m"


@pytest.fixture
def populated(cli, project):
    """m 1.0.0 (in production) and 2.0.0, each with params lr=0.1."""
    for v in ("1.0.0", "2.0.0"):
        assert cli("register", MODEL, v, "-p", "lr=0.1")[0] == 0
    assert cli("promote", f"{MODEL}@1.0.0", "production")[0] == 0
    return project


# ------------------------------------------------------------- --json on every outcome
FAILING = {  # command -> an invocation that fails, and its exit code
    "init": (["-R", "elsewhere", "init", "x", "--json"], 2),
    "register": (["register", "BAD", "1", "--json"], 2),
    "promote": (["promote", f"{MODEL}@2.0.0", "production", "--expect", "none", "--json"], 4),
    "rollback": (["rollback", MODEL, "staging", "--json"], 3),
    "clear": (["clear", MODEL, "production", "--reason", "x", "--expect", "2.0.0", "--json"], 4),
    "archive": (["archive", f"{MODEL}@1.0.0", "--json"], 5),
    "resolve": (["resolve", f"{MODEL}@9", "--json"], 3),
    "show": (["show", f"{MODEL}@9", "--json"], 3),
    "search": (["search", "--where", "nonsense", "--json"], 2),
    "ls": (["ls", "nosuch", "--json"], 3),
    "log": (["log", MODEL, "--stage", "prodd", "--json"], 2),
    "diff": (["diff", f"{MODEL}@1.0.0", f"{MODEL}@9", "--json"], 3),
    "fsck": (["fsck", "--hash", "--json"], 2),
    "verify": (["verify", "--json"], 2),
    "fetch": (["fetch", f"{MODEL}@9", "dest", "--json"], 3),
    "url": (["url", f"{MODEL}@1.0.0", "--json"], 2),  # a version without artifacts: nothing to sign
    "metrics": (["metrics", "show", f"{MODEL}@1.0.0", "--suite", "nosuch", "--json"], 3),
    "policy": (["-R", "nowhere", "policy", "show", "--json"], 3),
    "tag": (["tag", f"{MODEL}@1.0.0", "bogus", "x", "--json"], 2),
    "approve": (["approve", f"{MODEL}@1.0.0", "--stage", "prodd", "--json"], 2),
    "version": (["version", "--bogus", "--json"], 2),
    "completion": (["completion", "tcsh", "--json"], 2),
    "bind": (["bind", f"{MODEL}@1.0.0", "--provider", "p", "--id", " ", "--json"], 2),
    "unbind": (["unbind", f"{MODEL}@9", "--provider", "p", "--json"], 3),
    "check": (["check", f"{MODEL}@9", "production", "--json"], 3),
    "prune": (["prune", "nosuch", "--keep", "1", "--json"], 3),
    "stats": (["-R", "nowhere", "stats", "--json"], 3),
    "sync": (["-R", "nowhere", "sync", "--json"], 3),
    "git-setup": (["-R", "nowhere", "git-setup", "--json"], 3),
    "reindex": (["-R", "nowhere", "reindex", "--json"], 3),
    "lineage": (["lineage", f"{MODEL}@9", "--json"], 3),
    "license-check": (["license-check", f"{MODEL}@9", "--json"], 3),
    "licenses": (["licenses", "--bogus", "--json"], 2),
    "audit": (["audit", "--base", "HEAD", "--json"], 3),  # not a git work tree
    "trust": (["trust", "--show", "--revoke", "--json"], 2),
    "model": (["model", "show", "nosuch", "--json"], 3),
    "bindings": (["bindings", "--status", "bogus", "--json"], 2),
    "rate": (["rate", f"{MODEL}@1.0.0", "6", "--json"], 2),
    "import": (["import", "gto", "--repo", "nosuch-dir", "--json"], 3),
    "site": (["site", "build", "--out", "site", "--base-url", "ftp://x", "--json"], 2),
}


def test_every_command_has_a_failing_json_case():
    names = {c.name for c in cli_mod.app.registered_commands if not c.hidden}
    names |= {g.typer_instance.info.name for g in cli_mod.app.registered_groups}
    assert names == set(FAILING)


@pytest.mark.parametrize("command", sorted(FAILING))
def test_json_error_object_on_every_refusal(cli, populated, command):
    args, want = FAILING[command]
    before = snapshot(populated / ".modelreg")
    code, out, err = cli(*args)
    assert code == want, (args, err)
    doc = json.loads(out)  # exactly one JSON document on stdout
    assert isinstance(doc, dict) and doc["error"]["code"] == want
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    assert err.startswith("modelreg: error:") and err.count("\n") == 1  # and the line for humans
    assert snapshot(populated / ".modelreg") == before


@pytest.mark.parametrize("args", [["promote", "--json"], ["nosuchcommand", "--json"], ["ls", "--bogus", "--json"]])
def test_json_error_for_parse_errors(cli, populated, args):
    code, out, err = cli(*args)
    assert code == 2 and json.loads(out)["error"]["code"] == 2


def test_gate_refusal_json_is_one_object_with_the_report(tmp_path, monkeypatch, capsys):
    from conftest import run_cli

    from modelreg.registry import Registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELREG_ACTOR", "a")
    Registry.init(tmp_path).register(MODEL, "1")
    code, out, _ = run_cli(capsys, "promote", f"{MODEL}@1", "production", "--json")  # never in staging
    doc = json.loads(out)
    assert code == 5 and doc["error"]["code"] == 5 and doc["passed"] is False and doc["results"]
    # a report that ends in a non-zero exit carries the error object too
    code, out, _ = run_cli(capsys, "check", f"{MODEL}@1", "production", "--json")
    doc = json.loads(out)
    assert code == 5 and doc["error"]["code"] == 5 and "never was in staging" in doc["error"]["message"]
    assert "error" not in json.loads(run_cli(capsys, "check", f"{MODEL}@1", "staging", "--json")[1])
    (tmp_path / ".modelreg" / "versions" / MODEL / "1").write_text("torn")
    code, out, _ = run_cli(capsys, "fsck", "--json")
    doc = json.loads(out)
    assert code == 6 and doc["ok"] is False and doc["error"]["code"] == 6


def test_successes_print_one_object(cli, populated, tmp_path):
    code, out, _ = cli("init", str(tmp_path / "new"), "--json")
    assert code == 0 and json.loads(out) == {"path": str(tmp_path / "new" / ".modelreg"), "created": True}
    digest = cli("resolve", f"{MODEL}@2.0.0", "--digest")[1].strip()
    code, out, _ = cli("archive", f"{MODEL}@2.0.0", "--json")
    doc = json.loads(out)
    assert (doc["name"], doc["version"], doc["digest"], doc["changed"], doc["archived"]) == (
        MODEL, "2.0.0", digest, True, True)
    code, out, _ = cli("tag", f"{MODEL}@2.0.0", "add", "nlp", "--json")
    doc = json.loads(out)
    assert (doc["name"], doc["version"], doc["digest"], doc["changed"], doc["tags"]) == (
        MODEL, "2.0.0", digest, True, ["nlp"])
    code, out, _ = cli("tag", f"{MODEL}@2.0.0", "add", "nlp", "--json")
    assert json.loads(out)["changed"] is False and json.loads(out)["version"] == "2.0.0"


# ------------------------------------------------------------- arguments that are not UTF-8
def test_non_utf8_argument_is_a_one_line_usage_error(populated):
    env = subprocess_env(MODELREG_ACTOR="t")
    before = snapshot(populated / ".modelreg")
    for extra in ([], [b"--json"]):
        proc = subprocess.run([sys.executable, "-m", "modelreg", "register", MODEL, "3.0.0", "-m", b"k=\xff\xfe",
                               *extra], cwd=populated, env=env, capture_output=True, timeout=60)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert "not valid UTF-8" in err and "\\xff\\xfe" in err
        if extra:
            assert json.loads(proc.stdout)["error"]["code"] == 2
    assert snapshot(populated / ".modelreg") == before


# ------------------------------------------------------------- log
def test_log_text_shows_versions_and_json_digests(cli, populated):
    assert cli("promote", f"{MODEL}@2.0.0", "production")[0] == 0
    assert cli("rollback", MODEL, "production")[0] == 0
    code, out, _ = cli("log", MODEL, "--stage", "production")
    lines = out.splitlines()
    assert f"{MODEL}@production: 2.0.0 -> 1.0.0" in lines[0] and "rollback" in lines[0]
    assert f"{MODEL}@production: 1.0.0 -> 2.0.0" in lines[1]
    assert f"{MODEL}@production: (empty) -> 1.0.0" in lines[2]
    assert "sha256:" not in out
    events = json.loads(cli("log", MODEL, "--stage", "production", "--json")[1])
    assert events[0]["from"].startswith("sha256:") and events[0]["to"].startswith("sha256:")


def test_log_stage_typo_is_a_usage_error_but_history_of_a_retired_stage_reads(cli, populated):
    code, out, err = cli("log", MODEL, "--stage", "prodd")
    assert code == 2 and out == "" and "did you mean 'production'" in err
    cfg = populated / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("- production\n", "- live\n"))  # production retired
    code, out, _ = cli("log", MODEL, "--stage", "production")
    assert code == 0 and "1.0.0" in out


# ------------------------------------------------------------- register --strict
def test_strict_identical_reregistration_is_exit_0(cli, populated):
    before = snapshot(populated / ".modelreg")
    code, out, err = cli("register", MODEL, "1.0.0", "-p", "lr=0.1", "--strict", "--json")
    assert code == 0, err
    assert json.loads(out)["created"] is False
    assert snapshot(populated / ".modelreg") == before
    # other content under the same version is still a conflict, and a new look-alike is refused
    assert cli("register", MODEL, "1.0.0", "-p", "lr=0.2", "--strict")[0] == 4
    assert cli("register", MODEL, "3.0.0", "-p", "lr=0.1", "--strict")[0] == 4
    assert len(log_lines(populated, MODEL)) == 3


# ------------------------------------------------------------- Python: expect=None checks nothing
def test_expect_reads_clearly_in_help():
    from modelreg.registry import Registry

    text = pydoc.render_doc(Registry.promote, renderer=pydoc.plaintext)
    assert "expect: 'str | Empty | None' = None" in text
    assert "``None`` (the default)" in text and "checks nothing" in text and "modelreg.EMPTY" in text
    assert repr(modelreg.EMPTY) == "modelreg.EMPTY" and modelreg.EMPTY is modelreg.EMPTY
    import pickle

    assert pickle.loads(pickle.dumps(modelreg.EMPTY)) is modelreg.EMPTY
