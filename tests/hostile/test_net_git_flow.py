"""The whole path: attacker clone -> bare remote -> victim `git pull` -> CI runs audit/verify/fetch/promote
with credentials in its environment. The trap server must get no request and no secret may leak."""

from __future__ import annotations

from pathlib import Path

from gitutil import cli, configure, git, git_env  # noqa: F401  (git_env is a fixture)

from modelreg import manifest
from modelreg.log import Event
from modelreg.registry import Registry

from .netkit import FAKE_CREDENTIALS, add_config, forge_event, forge_version, leaked

CONFIG = """\
format: 1
stages: [staging, production]
policy:
  require_previous_stage: {}
  gates:
    production:
      require_approvals: 2
      require_signatures: true
"""


def _commit_all(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def test_hostile_pull_request_reaches_ci_and_achieves_nothing(git_env, tmp_path, trap, capsys, monkeypatch):
    # the team's repository, pushed to a bare remote
    maint = tmp_path / "maint"
    maint.mkdir()
    git(maint, "init", "-q", "-b", "main")
    configure(maint, "maintainer")
    Registry.init(maint)
    (maint / ".modelreg" / "config.yaml").write_text(CONFIG)
    (maint / "w.bin").write_bytes(b"reviewed weights")
    assert cli(capsys, maint, "register", "bot", "1.0.0", "-a", "w.bin").code == 0
    assert cli(capsys, maint, "promote", "bot@1.0.0", "staging").code == 0
    _commit_all(maint, "bot 1.0.0")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(maint, "remote", "add", "origin", str(origin))
    git(maint, "push", "-q", "origin", "main")

    victim = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(origin), str(victim))
    before = git(victim, "rev-parse", "HEAD").stdout.strip()

    # the attacker's clone: every byte of .modelreg/ is theirs
    attacker = tmp_path / "attacker"
    git(tmp_path, "clone", "-q", str(origin), str(attacker))
    configure(attacker, "mallory")
    add_config(attacker, f"storage_options:\n  s3:\n    endpoint_url: {trap.url}\n  hf:\n    endpoint: {trap.url}\n")
    d11 = forge_version(attacker, "bot", "1.1.0", [{"role": "model", "uri": "s3://team-models/bot/1.1.0.bin",
                                                    "size": 15, "sha256": "0" * 64}])
    forge_version(attacker, "evil", "1.0.0", [{"role": "env", "uri": "/proc/self/environ"}])
    for who in ("alice@example.com", "bob@example.com"):
        forge_event(attacker, Event("approve", "bot", who, version="1.1.0", to=d11, data={"stage": "production"}))
    reg = Registry(attacker / ".modelreg")
    swapped = reg.objects.put(manifest.to_bytes(manifest.validate({
        "name": "bot", "version": "1.0.0",
        "artifacts": [{"role": "model", "uri": f"http://127.0.0.1:{trap.port}/w.bin", "size": 15}]})))
    (attacker / ".modelreg" / "refs" / "bot" / "staging").write_text(swapped + "\n")
    _commit_all(attacker, "innocent-looking update")
    git(attacker, "push", "-q", "origin", "HEAD:main")

    # CI: pull, then run modelreg with credentials in the environment
    git(victim, "pull", "-q", "--no-rebase", "origin", "main")
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODELREG_ACTOR", "ci-bot")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "ci-config"))
    outputs = []

    def ci(*args: str) -> int:
        res = cli(capsys, victim, *args)
        outputs.append(res.out + res.err)
        return res.code

    assert ci("audit", "--base", before) == 6
    assert "ref-unregistered" in outputs[-1] and "refs/bot/staging" in outputs[-1]
    assert ci("verify", "--all") != 0
    assert ci("verify", "bot@1.1.0", "--hash") == 5 and "modelreg trust" in outputs[-1]
    assert ci("fetch", "bot@1.1.0", str(tmp_path / "out1")) == 5
    assert ci("fetch", "evil@1.0.0", str(tmp_path / "out2"), "--allow-unverified") == 5
    assert ci("fetch", "bot@staging", str(tmp_path / "out3")) != 0
    assert ci("fsck", "--artifacts") != 0
    assert ci("promote", "bot@1.1.0", "production") == 5 and "require_signatures" in outputs[-1]
    assert ci("check", "bot@1.1.0", "production") == 5

    assert trap.requests == []
    assert not any((tmp_path / f"out{i}").exists() for i in (1, 2, 3))
    assert not leaked("\n".join(outputs))
    assert not (victim / ".modelreg" / "refs" / "bot" / "production").exists()
