"""Fixtures of the hostile-registry corpus: a registry that arrives by pull request.

Network half: ``trap`` (an HTTP server on 127.0.0.1 that records every request; tests assert
it got none), ``victim_env`` (CI's environment with fake credentials), ``victim`` (a project
with a registry as the cwd) and ``run`` (the CLI in-process). See netkit.py.

Filesystem half, attacked with real git:

The ``flow`` fixture builds the scene every test starts from:

- a victim project (git repo, branch main) with a committed registry: model ``m`` with
  versions ``1.0.0`` and ``1.1.0`` (local artifacts), ``1.0.0`` in staging and production;
- a bare remote it is pushed to;
- an attacker's clone of that remote.

``flow.attack(change)`` runs ``change(attacker_project)`` in the attacker's clone (any bytes
of ``.modelreg/``, symlinks included), commits everything, pushes, and the victim ``git pull``s
it, as a merged pull request reaches CI. ``flow.clone()`` gives a fresh clone instead (what
a CI checkout sees). ``flow.cli(...)`` runs modelreg in-process in the victim's project,
``flow.proc(...)`` as a subprocess. ``flow.outside()`` snapshots every file outside the
victim's registry (the victim's home with its ``.bashrc.d`` and ssh key included), so a
test can assert nothing there changed.

The environment has a private HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME, no system git
config, and MODELREG_ACTOR set. Everything is generic: other hostile tests (credentials,
requests) can use the same flow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gitutil import ROOT, Run, cli, configure, git
from modelreg.registry import Registry
from tests.conftest import CliResult, run_cli

from .netkit import FAKE_CREDENTIALS, Trap

ACTOR = "victim@example.com"


@dataclass
class Flow:
    """Victim project, bare remote and attacker clone (see the module docstring)."""

    base: Path
    victim: Path
    remote: Path
    attacker: Path
    home: Path
    capsys: pytest.CaptureFixture[str]
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def registry(self) -> Path:
        return self.victim / ".modelreg"

    # ------------------------------------------------------------ running modelreg
    def cli(self, *args: str, cwd: Path | None = None) -> Run:
        """modelreg ARGS in-process, in the victim's project (or ``cwd``)."""
        return cli(self.capsys, cwd or self.victim, *[str(a) for a in args])

    def proc(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 60) -> Run:
        """modelreg ARGS as a subprocess (the installed package's code from this worktree)."""
        p = subprocess.run([sys.executable, "-m", "modelreg", *[str(a) for a in args]], cwd=cwd or self.victim,
                           capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
        return Run(p.returncode, p.stdout, p.stderr)

    # ------------------------------------------------------------------- the attack
    def attack(self, change: Callable[[Path], None], message: str = "hostile change") -> None:
        """Apply ``change`` in the attacker's clone, commit, push; the victim pulls it."""
        git(self.attacker, "pull", "-q", "--no-rebase", "origin", "main")
        change(self.attacker)
        git(self.attacker, "add", "-A", "-f", ".modelreg")
        git(self.attacker, "add", "-A")
        git(self.attacker, "commit", "-q", "--allow-empty", "-m", message)
        git(self.attacker, "push", "-q", "origin", "main")
        git(self.victim, "pull", "-q", "--no-rebase", "origin", "main")

    def clone(self, name: str = "ci") -> Path:
        """A fresh clone of the remote (a CI checkout), configured like the victim's."""
        dest = self.base / name
        git(self.base, "clone", "-q", str(self.remote), str(dest))
        configure(dest, "ci")
        return dest

    # --------------------------------------------------------------------- checks
    def outside(self) -> dict[str, bytes]:
        """Every file and link under the test's base directory except the victim's registry and
        the cache: relative path -> bytes (``link:TARGET`` for a link)."""
        out: dict[str, bytes] = {}
        skip = {self.registry, self.base / "cache", self.victim / ".git", self.attacker / ".git",
                self.remote}
        for dirpath, dirnames, filenames in os.walk(self.base):
            d = Path(dirpath)
            dirnames[:] = [n for n in dirnames if d / n not in skip]
            for n in filenames + [n for n in dirnames if (d / n).is_symlink()]:
                p = d / n
                rel = p.relative_to(self.base).as_posix()
                out[rel] = b"link:" + os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
        return out


def one_line(run: Run) -> str:
    """The single stderr line of a refused command (asserting it is one line, without a traceback)."""
    assert "Traceback" not in run.err, run.err
    lines = [x for x in run.err.splitlines() if x.strip()]
    assert len(lines) == 1, run.err
    return lines[0]


def refused(run: Run, code: int = 6, *words: str) -> str:
    """Assert ``run`` exited ``code`` with one line on stderr containing ``words``; return that line."""
    assert run.code == code, (run.code, run.out, run.err)
    line = one_line(run)
    for w in words:
        assert w in line, line
    return line


def write_object(project: Path, data: bytes) -> str:
    """Store raw bytes as an object of the project's registry (as an attacker would commit them)."""
    import hashlib

    hexd = hashlib.sha256(data).hexdigest()
    p = project / ".modelreg" / "objects" / hexd[:2] / hexd[2:]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return "sha256:" + hexd


def forged_manifest(project: Path, name: str, version: str, uri: str = "evil.bin") -> str:
    """A canonical manifest declaring NAME@VERSION that nobody registered; returns its digest."""
    from modelreg import manifest

    m = manifest.validate({"name": name, "version": version, "artifacts": [{"role": "checkpoint", "uri": uri}]})
    return write_object(project, manifest.to_bytes(m))


def symlink_dir(path: Path, target: Path | str) -> None:
    """Replace ``path`` (a file or a directory, if any) with a symlink to ``target``."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


@pytest.fixture
def hostile_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private HOME / XDG dirs / cache, no system git config, PYTHONPATH on this worktree."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nvictim's key\n")
    (home / ".bashrc.d").mkdir()
    (home / ".bashrc.d" / "00-path.sh").write_text("export PATH=$PATH\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELREG_CACHE_DIR", str(tmp_path / "cache" / "modelreg"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("MODELREG_ACTOR", ACTOR)
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "MODELREG_DIR", "GIT_CONFIG_GLOBAL"):
        monkeypatch.delenv(var, raising=False)
    pp = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + (os.pathsep + pp if pp else ""))
    return tmp_path


@pytest.fixture
def flow(hostile_env: Path, capsys: pytest.CaptureFixture[str]) -> Flow:
    """The victim / remote / attacker scene (see the module docstring)."""
    from gitutil import new_repo

    base = hostile_env
    victim = new_repo(base / "victim")
    (victim / "w-1.0.bin").write_bytes(b"weights 1.0")
    (victim / "w-1.1.bin").write_bytes(b"weights 1.1")
    f = Flow(base, victim, base / "remote.git", base / "attacker", base / "home", capsys)
    for version in ("1.0.0", "1.1.0"):
        r = f.cli("register", "m", version, "-a", f"checkpoint=w-{version[:3]}.bin", "-p", f"lr=0.{version[2]}",
                  "--license", "MIT")
        assert r.code == 0, r.err
        f.digests[version] = r.out.strip()
    for stage in ("staging", "production"):
        assert f.cli("promote", "m@1.0.0", stage).code == 0
    git(victim, "add", "-A")
    git(victim, "commit", "-q", "-m", "m 1.0.0 in production, 1.1.0 registered")
    git(base, "init", "-q", "--bare", "-b", "main", str(f.remote))
    git(victim, "remote", "add", "origin", str(f.remote))
    git(victim, "push", "-q", "origin", "main")
    git(base, "clone", "-q", str(f.remote), str(f.attacker))
    configure(f.attacker, "mallory")
    return f


# ------------------------------------------------------------ network half
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
