"""typer without an upper pin: completion works without typer's private modules, and the pin is a floor only."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelreg import completion


def test_typer_is_not_pinned_from_above():
    deps = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    typer = [d for d in deps if d.startswith("typer")]
    assert typer == ["typer>=0.26"], typer


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_without_typer_private_modules(monkeypatch, shell):
    pytest.importorskip("click")
    monkeypatch.setattr(completion, "_typer_private", lambda module, attribute: None)
    text = completion.script(shell)
    assert "_MODELREG_COMPLETE" in text and "modelreg" in text
    completion.prepare()  # a no-op then: never raises


def test_completion_install_without_typer_private_modules(monkeypatch, tmp_path):
    pytest.importorskip("click")
    monkeypatch.setattr(completion, "_typer_private", lambda module, attribute: None)
    monkeypatch.setenv("HOME", str(tmp_path))
    shell, path = completion.install("bash")
    assert shell == "bash" and path.is_file() and path.is_relative_to(tmp_path)
    assert f"source {path}" in (tmp_path / ".bashrc").read_text()
    completion.install("bash")  # twice: one line in .bashrc
    assert (tmp_path / ".bashrc").read_text().count(f"source {path}") == 1


def test_typer_private_modules_are_used_when_present():
    assert completion._typer_private("_completion_shared", "get_completion_script") is not None
    assert completion._typer_private("_no_such_module", "x") is None
