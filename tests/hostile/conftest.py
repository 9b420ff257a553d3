"""Fixtures for tests/hostile (network half): a trap server, a victim with credentials, a project."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelreg.registry import Registry
from tests.conftest import CliResult, run_cli

from .netkit import FAKE_CREDENTIALS, Trap


@pytest.fixture
def trap() -> Iterator[Trap]:
    """An HTTP server on 127.0.0.1 that records every request; tests assert it got none. Stopped at teardown."""
    t = Trap()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def victim_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """CI's environment: cloud credentials set, a private HOME, nothing that allows private addresses."""
    home = tmp_path / "victim-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "MODELREG_S3_ENDPOINT_URL", "MODELREG_ALLOW_PRIVATE_NETWORK", "MODELREG_LOCAL_ROOTS",
                 "MODELREG_TRUSTED_SETTINGS", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELREG_ACTOR", "ci-bot")
    return dict(FAKE_CREDENTIALS)


@pytest.fixture
def victim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, victim_env: dict[str, str]) -> Path:
    """A project with a registry (default policy) as the cwd, in the victim's environment."""
    proj = tmp_path / "victim"
    proj.mkdir()
    Registry.init(proj)
    monkeypatch.chdir(proj)
    return proj


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """``run(*args)`` -> (exit code, stdout, stderr) of ``modelreg ARGS`` in the cwd, in-process."""

    def go(*args: object) -> CliResult:
        return run_cli(capsys, *[str(a) for a in args])

    return go
