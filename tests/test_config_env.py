"""Configuration mistakes are refused, never ignored: config.yaml's schema and the MODELREG_* settings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import snapshot, subprocess_env

from modelreg import canonical
from modelreg.config import SCHEMA, TOP_LEVEL_KEYS
from modelreg.errors import UsageError
from modelreg.registry import Registry

MODEL = "m"


@pytest.fixture
def populated(cli, project):
    assert cli("register", MODEL, "1.0.0")[0] == 0
    assert cli("promote", f"{MODEL}@1.0.0", "production")[0] == 0
    return project


def add_config(project, text: str) -> None:
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + text)


# ---------------------------------------------------------------- config.yaml schema
KEY_TYPOS = [
    ("polices:\n  gates: {}\n", "polices", "policy"),
    ("stage: [qa]\n", "stage", "stages"),
    ("artifact_stor: s3://bucket\n", "artifact_stor", "artifact_store"),
    ('"strange key": 1\n', "strange key", None),  # quoted: the quick scan sees it too
]
COMMANDS = [
    ("promote", f"{MODEL}@1.0.0", "staging"), ("check", f"{MODEL}@1.0.0", "staging"), ("ls",), ("log", MODEL),
    ("show", f"{MODEL}@1.0.0"), ("fsck",), ("policy", "show"), ("register", MODEL, "2.0.0"),
]


@pytest.mark.parametrize("line, key, closest, args", [
    *[(*typo, COMMANDS[0]) for typo in KEY_TYPOS],  # every typo through one command ...
    *[(*KEY_TYPOS[i % len(KEY_TYPOS)], args) for i, args in enumerate(COMMANDS[1:])],  # ... every command
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_unknown_top_level_key_is_refused_everywhere(cli, populated, line, key, closest, args):
    add_config(populated, line)
    before = snapshot(populated / ".modelreg")
    code, out, err = cli(*args)
    assert code == 2, (args, err)
    assert out == "" and err.count("\n") == 1
    assert "config.yaml" in err and repr(key) in err
    if closest:
        assert f"did you mean {closest!r}" in err
    assert snapshot(populated / ".modelreg") == before


@pytest.mark.parametrize("args", [("resolve", f"{MODEL}@production"), ("stats",), ("rollback", MODEL, "production")])
def test_unknown_key_refused_by_fast_commands_and_in_json(cli, populated, args):
    add_config(populated, "polices: {}\n")
    code, out, err = cli(*args, "--json")
    assert code == 2, err
    error = json.loads(out)["error"]
    assert error["code"] == 2 and error["key"] == "polices" and error["closest"] == "policy"
    assert error["file"].endswith("config.yaml") and "format" in error["valid"]


def test_schema_is_in_one_place_and_policy_show_prints_it_whole(cli, project):
    assert TOP_LEVEL_KEYS == ("format", "stages", "policy", "artifact_store", "storage_options")
    code, out, err = cli("policy", "show", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert list(data) == list(TOP_LEVEL_KEYS)
    assert data["policy"] == {"require_previous_stage": {}, "demote_to": {}, "gates": {},  # relaxed by conftest
                              "retention": {"keep": None, "auto": False, "purge_after_days": None}}
    assert data["artifact_store"] is None and data["storage_options"] == {} and data["format"] == 1
    code, text, _ = cli("policy", "show")
    assert canonical.load(text.encode(), what="policy show") == data  # the text is that same config as YAML
    assert all(k.doc for k in SCHEMA)


def test_policy_show_fills_defaults(tmp_path, capsys, monkeypatch):
    from conftest import run_cli

    Registry.init(tmp_path)
    monkeypatch.chdir(tmp_path)
    data = json.loads(run_cli(capsys, "policy", "show", "--json")[1])
    assert data["stages"] == ["staging", "production"]
    assert data["policy"]["demote_to"] == {"production": "staging"}
    assert data["policy"]["require_previous_stage"] == {"production": ["staging"]}


def test_archived_is_not_a_stage_name(cli, project):
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("- production\n", "- production\n- archived\n"))
    code, _, err = cli("policy", "show")
    assert code == 2 and "'archived'" in err


def test_library_refuses_unknown_keys_on_open(project):
    add_config(project, "polices: {}\n")
    with pytest.raises(UsageError, match="did you mean 'policy'"):
        Registry.open(project / ".modelreg")


# ---------------------------------------------------------------- MODELREG_* settings
@pytest.mark.parametrize("value", ["abc", "-1", "0", "inf", "nan", " ", "1e400"])
def test_lock_timeout_must_be_a_positive_number(cli, populated, monkeypatch, value):
    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", value)
    before = snapshot(populated / ".modelreg")
    for args in (("promote", f"{MODEL}@1.0.0", "staging"), ("resolve", f"{MODEL}@production")):
        code, out, err = cli(*args)
        assert code == 2 and out == "" and err.count("\n") == 1, (value, err)
        assert "MODELREG_LOCK_TIMEOUT" in err and "positive number" in err
    assert snapshot(populated / ".modelreg") == before


def test_lock_timeout_library_and_good_values(populated, monkeypatch):
    from modelreg import fileio

    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", "abc")
    reg = Registry.open(populated / ".modelreg")
    with pytest.raises(UsageError, match="MODELREG_LOCK_TIMEOUT"):
        reg.promote(f"{MODEL}@1.0.0", "staging")
    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", "2.5")
    assert fileio.lock_timeout() == 2.5
    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", "")  # empty means unset
    assert fileio.lock_timeout() == 10.0


@pytest.mark.parametrize("var, value, needle", [
    ("MODELREG_TRACEBACK", "maybe", "expected 1 or 0"),
    ("MODELREG_UNSAFE_NO_FSYNC", "yes", "expected 1"),
    ("MODELREG_ACTOR", "a\nb", "printable"),
    ("MODELREG_ACTOR", "x" * 201, "200"),
    ("MODELREG_S3_ENDPOINT_URL", "localhost:9000", "http://"),
])
def test_every_setting_is_validated(cli, populated, monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    code, out, err = cli("ls", "--json")
    assert code == 2 and needle in err and var in err and err.count("\n") == 1
    assert json.loads(out)["error"]["variable"] == var


def test_a_path_setting_cannot_hold_nul():
    from modelreg.settings import check_environment

    with pytest.raises(UsageError, match="NUL"):
        check_environment({"MODELREG_DIR": "a\x00b"})


def test_traceback_accepts_boolean_words(cli, populated, monkeypatch):
    monkeypatch.setenv("MODELREG_TRACEBACK", "0")
    assert cli("ls")[0] == 0


def test_unknown_modelreg_variable_is_a_warning_with_the_closest_name(cli, populated, monkeypatch):
    monkeypatch.setenv("MODELREG_LOCK_TIMOUT", "5")  # a typo: the real setting would be ignored silently
    code, out, err = cli("resolve", f"{MODEL}@production")
    assert code == 0 and out == "1.0.0\n"
    assert err == ("modelreg: warning: unknown environment variable MODELREG_LOCK_TIMOUT ignored "
                   "(did you mean MODELREG_LOCK_TIMEOUT?)\n")


def test_settings_through_a_real_process(populated):
    env = subprocess_env(MODELREG_LOCK_TIMEOUT="-1", MODELREG_ACTOR="t")
    proc = subprocess.run([sys.executable, "-m", "modelreg", "promote", f"{MODEL}@1.0.0", "staging"],
                          cwd=populated, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
