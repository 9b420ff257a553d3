"""Row 7 (network): URIs read from the registry may not reach loopback, link-local or private addresses,
checked on every resolved address and on redirects, unless the user's environment allows it."""

from __future__ import annotations

import hashlib
import json

import pytest

from .netkit import Trap, forge_stage, forge_version, leaked

BODY = b"attacker bytes\n"  # what the trap serves


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::ffff:127.0.0.1]:{port}",
                                  "0.0.0.0:{port}", "2130706433:{port}", "169.254.169.254", "10.0.0.1", "[::1]:{port}"])
def test_private_addresses_are_refused_before_any_request(victim, trap, run, tmp_path, host):
    uri = f"http://{host.format(port=trap.port)}/internal/model.bin"
    digest = forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": uri, "size": len(BODY),
                                                     "sha256": hashlib.sha256(BODY).hexdigest()}])
    forge_stage(victim, "bot", "production", digest)
    for args in (("verify", "bot@1.0.0", "--hash"), ("fetch", "bot@1.0.0", tmp_path / "d"), ("verify", "--all")):
        code, out, err = run(*args)
        assert code == 5 and "MODELREG_ALLOW_PRIVATE_NETWORK" in err, (args, err)
        assert not leaked(out + err)
    code, out, _ = run("fsck", "--artifacts")
    assert code == 6 and "private" in out
    assert not (tmp_path / "d").exists()
    assert trap.requests == []


@pytest.mark.parametrize("target", ["127.0.0.1:{port}", "localhost:{port}"])
def test_a_redirect_to_a_private_address_is_refused(victim, trap, run, tmp_path, monkeypatch, target):
    front = Trap()  # an allowed server that redirects to the trap
    try:
        front.redirects["/model.bin"] = f"http://{target.format(port=trap.port)}/steal"
        monkeypatch.setenv("MODELREG_ALLOW_PRIVATE_NETWORK", f"127.0.0.1:{front.port}")
        forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": f"{front.url}/model.bin", "size": len(BODY),
                                                "sha256": hashlib.sha256(BODY).hexdigest()}])
        code, _, err = run("fetch", "bot@1.0.0", tmp_path / "d")
        assert code == 5 and "refusing to contact" in err, err
        assert front.requests and trap.requests == []
        assert not (tmp_path / "d").exists()
    finally:
        front.close()


def test_the_environment_can_allow_private_addresses(victim, trap, run, tmp_path, monkeypatch):
    forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": f"{trap.url}/model.bin", "size": len(BODY),
                                            "sha256": hashlib.sha256(BODY).hexdigest()}])
    monkeypatch.setenv("MODELREG_ALLOW_PRIVATE_NETWORK", "1")
    code, out, err = run("fetch", "bot@1.0.0", tmp_path / "d", "--json")
    assert code == 0, err
    assert json.loads(out)["files"][0]["status"] == "downloaded"
    assert trap.requests


def test_user_config_can_allow_one_host(victim, trap, run, tmp_path, monkeypatch):
    forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": f"{trap.url}/model.bin", "size": len(BODY),
                                            "sha256": hashlib.sha256(BODY).hexdigest()}])
    cfg = tmp_path / "xdg" / "modelreg" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"allow_private_network:\n- 127.0.0.1:{trap.port}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert run("verify", "bot@1.0.0", "--hash")[0] == 0
    assert trap.requests


def test_a_uri_the_user_types_is_the_users_choice(victim, trap, run):
    code, _, err = run("register", "bot", "1.0.0", "-a", f"{trap.url}/model.bin", "--hash")
    assert code == 0, err
    assert trap.requests
