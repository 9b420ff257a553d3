"""The conventions of a serious CLI: --version, completion, did-you-mean, --quiet, colour, missing registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, subprocess_env

import modelreg
from modelreg import completion
from modelreg.config import FORMAT


def mr(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelreg", *args], cwd=cwd, env=subprocess_env(**env),
                          capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------------ version
def test_version_option_and_command(bare_project, capsys):
    code, out, err = run_cli(capsys, "--version")
    assert (code, out) == (0, f"modelreg {modelreg.__version__} (registry format {FORMAT})\n")
    assert run_cli(capsys, "version")[1] == out
    code, out, _ = run_cli(capsys, "version", "--json")
    assert code == 0 and json.loads(out) == {"version": modelreg.__version__, "format": FORMAT}


def test_version_matches_the_installed_distribution():
    from importlib.metadata import version

    assert version("modelreg") == modelreg.__version__


# ------------------------------------------------------------------ completion
@pytest.mark.parametrize("shell, needle", [
    ("bash", "complete -o default -F _modelreg_completion modelreg"),
    ("zsh", "compdef _modelreg_completion modelreg"),
    ("fish", "complete --command modelreg"),
])
def test_completion_scripts(bare_project, capsys, shell, needle):
    for args in (["completion", shell], ["--show-completion", shell], [f"--show-completion={shell}"]):
        code, out, err = run_cli(capsys, *args)
        assert code == 0 and needle in out and "_MODELREG_COMPLETE" in out, (args, err)


def test_completion_shell_from_env_and_refusals(bare_project, capsys, monkeypatch):
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    code, out, _ = run_cli(capsys, "--show-completion")
    assert code == 0 and "compdef" in out
    code, _, err = run_cli(capsys, "completion", "tcsh")
    assert code == 2 and "unsupported shell 'tcsh'; one of bash, zsh, fish" in err
    monkeypatch.setenv("SHELL", "/bin/sh")
    monkeypatch.setattr(completion, "detect_shell", lambda: None)
    code, _, err = run_cli(capsys, "completion")
    assert code == 2 and "name it: one of bash, zsh, fish" in err


def test_install_completion_writes_under_home_only(bare_project, capsys, monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    code, _, err = run_cli(capsys, "--install-completion", "bash")
    assert code == 0, err
    assert "complete -o default" in (home / ".bash_completions" / "modelreg.sh").read_text()
    assert "modelreg.sh" in (home / ".bashrc").read_text() and "Installed bash completion" in err
    code, _, err = run_cli(capsys, "completion", "fish", "--install")
    assert code == 0 and (home / ".config" / "fish" / "completions" / "modelreg.fish").is_file()


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    from modelreg.registry import Registry

    root = tmp_path_factory.mktemp("completion")
    reg = Registry.init(root)
    for name, version in (("faq-bot", "1.0.0"), ("faq-bot", "1.1.0"), ("sentiment", "0.9")):
        reg.register(name, version, actor="t")
    reg.promote("faq-bot@1.0.0", "staging", actor="t")
    return root


def complete(cwd: Path, capsys, monkeypatch, instruction: str = "complete_bash", line: str = "", **env: str) -> str:
    """Ask for completions in-process, as the shell script does (environment in, words on stdout)."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("_MODELREG_COMPLETE", instruction)
    if instruction.endswith("bash") or instruction.startswith("bash"):
        monkeypatch.setenv("COMP_WORDS", line)
        monkeypatch.setenv("COMP_CWORD", str(len(line.split(" ")) - 1))
    else:
        monkeypatch.setenv("_TYPER_COMPLETE_ARGS", line)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, out, err = run_cli(capsys)
    assert code == 0, err
    return out


def test_completion_words_from_the_registry(populated, capsys, monkeypatch):
    def words(line: str) -> list[str]:
        return complete(populated, capsys, monkeypatch, line=line).split()

    assert "promote" in words("modelreg pro")
    assert words("modelreg promote ") == ["faq-bot@", "sentiment@"]
    assert words("modelreg promote faq") == ["faq-bot@staging", "faq-bot@latest", "faq-bot@1.1.0", "faq-bot@1.0.0"]
    assert words("modelreg show faq-bot@1.") == ["faq-bot@1.1.0", "faq-bot@1.0.0"]
    assert words("modelreg promote faq-bot@1.1.0 ") == ["staging", "production"]
    assert words("modelreg ls --stage pr") == ["production"]
    assert words("modelreg rollback s") == ["sentiment"]
    assert words("modelreg resolve --j") == ["--json"]
    assert words("modelreg tag faq-bot@1.0.0 ") == ["add", "rm"]
    assert words(f"modelreg -R {populated} show sent") == ["sentiment@latest", "sentiment@0.9"]


def test_completion_in_zsh_and_fish_protocols(populated, capsys, monkeypatch):
    assert "sentiment@latest" in complete(populated, capsys, monkeypatch, "complete_zsh", "modelreg show sent")
    assert "sentiment@latest" in complete(populated, capsys, monkeypatch, "complete_fish", "modelreg show sent",
                                          _TYPER_COMPLETE_FISH_ACTION="get-args")


def test_completion_accepts_clicks_instruction_order(populated, capsys, monkeypatch):
    assert complete(populated, capsys, monkeypatch, "bash_complete", "modelreg rollback s").split() == ["sentiment"]


def test_completion_through_a_real_process(populated):
    """The same request as a shell makes it: a fresh process, the environment, words on stdout."""
    proc = subprocess.run([sys.executable, "-m", "modelreg"], cwd=populated, capture_output=True, text=True,
                          timeout=60, env=subprocess_env(_MODELREG_COMPLETE="complete_bash",
                                                         COMP_WORDS="modelreg show faq-bot@1.1", COMP_CWORD="2"))
    assert proc.returncode == 0 and proc.stdout.split() == ["faq-bot@1.1.0"], proc.stderr


def test_completion_outside_a_registry_completes_nothing(tmp_path, capsys, monkeypatch):
    assert complete(tmp_path, capsys, monkeypatch, line="modelreg show ").split() == []


# ------------------------------------------------------------------ did you mean
@pytest.mark.parametrize("args, needle", [
    (["promte", "m@1", "staging"], "unknown command 'promte' for 'modelreg' (did you mean 'promote'"),
    (["metrics", "shw"], "unknown command 'shw' for 'modelreg metrics' (did you mean 'show'?)"),
    (["resolve", "m@1", "--jsn"], "no such option --jsn for 'modelreg resolve' (did you mean '--json'?); "
                                  "see 'modelreg resolve --help'"),
    (["--regsitry", "x", "ls"], "no such option --regsitry for 'modelreg' (did you mean '--registry'?)"),
    (["promote", "faq-bot@1.1.0", "prod"], "unknown stage 'prod' (did you mean 'production'?); "
                                           "configured stages: staging, production"),
    (["resolve", "faq-bt@1"], "no model named 'faq-bt' (did you mean 'faq-bot'?)"),
    (["resolve", "zzz@1"], "no model named 'zzz'; see 'modelreg ls'"),
    (["resolve", "faq-bot@1.1"], "faq-bot has no version '1.1' (did you mean '1.1.0'?)"),
    (["resolve", "faq-bot@prodution"], "faq-bot has no version or stage 'prodution' (did you mean 'production'?)"),
    (["resolve", "faq-bot@1.2.3"], "faq-bot has no version '1.2.3'"),
    (["resolve", "faq-bot@prod"], "did you mean 'production'?"),
    (["resolve", "faq-bot@production"], "faq-bot@production is empty (nothing has been promoted to it); put a "
                                        "version there with 'modelreg promote faq-bot@VERSION production'"),
])
def test_mistakes_suggest_the_closest(project, capsys, args, needle):
    from modelreg.registry import Registry

    Registry.open().register("faq-bot", "1.1.0")
    code, out, err = run_cli(capsys, *args)
    assert code in (2, 3), err
    assert needle in err and err.startswith("modelreg: error: ") and err.count("\n") == 1, err


def test_unknown_model_in_an_empty_registry_says_how_to_register(project, capsys):
    code, _, err = run_cli(capsys, "ls", "faq-bot")
    assert code == 3 and "the registry has no models yet ('modelreg register NAME VERSION')" in err


def test_missing_registry_says_where_it_looked_and_how_to_create_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "ls")
    assert code == 3
    assert f"no .modelreg registry in {tmp_path} or any parent directory" in err
    assert "'modelreg init'" in err and "--registry PATH or MODELREG_DIR" in err
    code, _, err = run_cli(capsys, "-R", str(tmp_path / "elsewhere"), "ls")
    assert code == 3 and f"{tmp_path / 'elsewhere' / '.modelreg' / 'config.yaml'} does not exist" in err
    assert f"'modelreg init {tmp_path / 'elsewhere'}'" in err and "(from --registry)" in err
    monkeypatch.setenv("MODELREG_DIR", str(tmp_path / "env"))
    code, _, err = run_cli(capsys, "ls")
    assert code == 3 and "(from MODELREG_DIR)" in err and "create one with 'modelreg init'" in err
    assert run_cli(capsys, "init")[0] == 0 and run_cli(capsys, "ls")[0] == 0  # the advice works


# ------------------------------------------------------------------ --quiet
def test_quiet_silences_messages_not_data_or_warnings(project, capsys):
    code, out, err = run_cli(capsys, "register", "m", "1", "-p", "lr=0.1", "-q")
    assert code == 0 and out.startswith("sha256:") and err == ""
    code, out, err = run_cli(capsys, "--quiet", "register", "m", "2", "-p", "lr=0.1")
    assert code == 0 and out.startswith("sha256:") and err.startswith("modelreg: warning: same params fingerprint")
    for args in (["promote", "m@1", "staging", "-q"], ["metrics", "set", "m@1", "--suite", "s", "a=1", "-q"],
                 ["tag", "m@1", "add", "x", "--quiet"], ["archive", "m@2", "-q"], ["fsck", "-q"],
                 ["approve", "m@1", "-q"], ["prune", "m", "--keep", "5", "-q"], ["reindex", "-q"]):
        code, out, err = run_cli(capsys, *args)
        assert code == 0 and err == "", (args, err)
    code, _, err = run_cli(capsys, "promote", "m@2", "production", "-q")
    assert code == 5 and err.startswith("modelreg: error:")  # refusals still print


# ------------------------------------------------------------------ colour
def _on_a_tty(cwd: Path, args: list[str], **env: str) -> bytes:
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "modelreg", *args], cwd=cwd, stdout=slave,
                              stderr=subprocess.DEVNULL, env=subprocess_env(**env), timeout=60)
        os.close(slave)
        slave = -1
        data = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        assert proc.returncode == 0, data
        return data
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


@pytest.mark.skipif(sys.platform == "win32", reason="pty")
def test_colour_only_on_a_tty_and_never_with_no_color(tmp_path):
    env = {"MODELREG_ACTOR": "t", "TERM": "xterm-256color"}
    env_clean = {k: v for k, v in os.environ.items()}
    for k in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE"):
        env_clean.pop(k, None)
    assert mr(tmp_path, "init").returncode == 0
    assert mr(tmp_path, "register", "m", "1", "-p", "lr=0.1", **env).returncode == 0
    assert mr(tmp_path, "register", "m", "2", "-p", "lr=0.2", **env).returncode == 0
    os.environ.pop("NO_COLOR", None)
    try:
        coloured = _on_a_tty(tmp_path, ["diff", "m@1", "m@2"], **env)
        assert b"\x1b[" in coloured
        plain = _on_a_tty(tmp_path, ["diff", "m@1", "m@2"], NO_COLOR="1", **env)
        assert b"\x1b[" not in plain and b"+ params.lr: 0.2" in plain
        for args in (["--help"], ["resolve", "--help"], ["lineage", "m@2"], ["verify", "m@1"], ["search"]):
            out = _on_a_tty(tmp_path, args, NO_COLOR="1", **env)
            assert b"\x1b[" not in out, (args, out[:200])
    finally:
        os.environ.clear()
        os.environ.update(env_clean)
    piped = mr(tmp_path, "diff", "m@1", "m@2", **env)
    assert "\x1b[" not in piped.stdout and "+ params.lr: 0.2" in piped.stdout


# ------------------------------------------------------------------ start-up stays light
def test_conventions_add_nothing_to_the_read_path(tmp_path):
    code = ("import sys, modelreg.cli\n"
            "print(sorted(m for m in ('modelreg.completion', 'modelreg.suggest', 'modelreg.values')"
            " if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
