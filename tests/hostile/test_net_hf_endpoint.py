"""Row 1: a committed `storage_options.hf.endpoint` (or http headers) must not send the victim's token anywhere."""

from __future__ import annotations

import json

from .netkit import add_config, forge_stage, forge_version, leaked


def test_committed_hf_endpoint_is_refused_and_gets_no_request(victim, trap, run, tmp_path):
    add_config(victim, f"storage_options:\n  hf:\n    endpoint: {trap.url}\n")
    digest = forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": "hf://org/repo/model.safetensors",
                                                     "size": 15, "sha256": "0" * 64}])
    forge_stage(victim, "bot", "production", digest)
    for args in (("verify", "bot@1.0.0"), ("verify", "bot@1.0.0", "--hash"), ("verify", "--all"),
                 ("fetch", "bot@1.0.0", tmp_path / "out")):
        code, out, err = run(*args)
        assert code == 5, (args, err)
        assert "storage_options.hf.endpoint" in err and "modelreg trust" in err and len(err.splitlines()) == 1
        assert not leaked(out + err)
    code, out, _ = run("fsck", "--artifacts")
    assert code == 6 and "modelreg trust" in out
    assert not (tmp_path / "out").exists()
    assert trap.requests == []


def test_trust_show_names_the_setting_and_its_value_without_approving(victim, trap, run):
    add_config(victim, f"storage_options:\n  hf:\n    endpoint: {trap.url}\n    block_size: 65536\n")
    code, out, _ = run("trust", "--show", "--json")
    st = json.loads(out)
    assert code == 0 and st["approved"] is False and st["digest"].startswith("sha256:")
    assert st["settings"] == {"storage_options.hf.endpoint": trap.url}  # block_size is harmless: not listed
    assert json.loads(run("trust", "--show", "--json")[1])["approved"] is False  # --show approves nothing


def test_committed_http_headers_need_approval(victim, trap, run, tmp_path):
    add_config(victim, "storage_options:\n  https:\n    headers:\n      X-Team: ml\n")
    forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": f"{trap.url}/model.bin", "size": 15}])
    code, _, err = run("verify", "bot@1.0.0")
    assert code == 5 and "storage_options.http.headers.X-Team" in err
    assert trap.requests == []


def test_committed_authorization_header_is_refused_outright(victim, trap, run, tmp_path):
    add_config(victim, "storage_options:\n  http:\n    headers:\n      Authorization: Bearer attacker-chosen\n")
    forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": f"{trap.url}/model.bin", "size": 15}])
    for args in (("verify", "bot@1.0.0"), ("trust",), ("fetch", "bot@1.0.0", tmp_path / "o", "--allow-unverified")):
        code, _, err = run(*args)
        assert code == 2 and "storage_options.http.headers.Authorization" in err, (args, err)
        assert "attacker-chosen" not in err
    assert trap.requests == []
