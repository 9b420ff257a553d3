"""Row 2: a committed S3 endpoint (or proxy) must get neither signed requests nor uploaded weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from servers import BUCKET

from .netkit import add_config, forge_stage, forge_version, leaked


@pytest.mark.parametrize("setting", [
    "storage_options:\n  s3:\n    endpoint_url: {url}\n",
    "storage_options:\n  s3:\n    client_kwargs:\n      endpoint_url: {url}\n",
    "storage_options:\n  s3:\n    config_kwargs:\n      proxies:\n        http: {url}\n        https: {url}\n",
])
def test_committed_s3_endpoint_gets_no_request(victim, trap, run, tmp_path, setting):
    add_config(victim, setting.format(url=trap.url))
    digest = forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": f"s3://{BUCKET}/model.bin", "size": 15,
                                                     "sha256": "0" * 64}])
    forge_stage(victim, "bot", "production", digest)
    for args in (("verify", "bot@1.0.0", "--hash"), ("fetch", "bot@1.0.0", tmp_path / "out"), ("verify", "--all")):
        code, out, err = run(*args)
        assert code == 5 and "modelreg trust" in err, (args, err)
        assert not leaked(out + err)
    assert not (tmp_path / "out").exists()
    assert trap.requests == []


def test_upload_never_goes_to_a_store_or_endpoint_the_committed_config_chose(victim, trap, run):
    add_config(victim, f"artifact_store: s3://{BUCKET}/store\nstorage_options:\n  s3:\n    endpoint_url: {trap.url}\n")
    (victim / "weights.bin").write_bytes(b"the victim's model weights")
    code, _, err = run("register", "bot", "1.0.0", "-a", "weights.bin", "--upload")
    assert code == 5 and "modelreg trust" in err
    assert not (victim / ".modelreg" / "versions" / "bot").exists()
    assert trap.requests == []


def test_approval_records_exact_values_and_a_change_needs_approving_again(victim, trap, run):
    add_config(victim, f"storage_options:\n  s3:\n    endpoint_url: {trap.url}\n")
    forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": f"s3://{BUCKET}/model.bin", "size": 15}])
    code, out, err = run("trust", "--json")
    st = json.loads(out)
    assert code == 0 and st["approved"] and st["changed"] and st["settings"] == {"storage_options.s3.endpoint_url": trap.url}
    record = Path(os.environ["XDG_CONFIG_HOME"]) / "modelreg" / "trusted.json"  # local, never in the repo
    assert st["digest"] in record.read_text() and not (victim / ".modelreg" / "trusted.json").exists()
    run("verify", "bot@1.0.0")
    assert trap.requests, "approved settings are used"
    assert "AKIAFAKEVICTIM000000" in str(trap.requests[0]["headers"])  # the victim chose to send them there
    trap.requests.clear()
    cfg = victim / ".modelreg" / "config.yaml"  # a later pull request moves the endpoint
    cfg.write_text(cfg.read_text().replace(trap.url, trap.url + "/elsewhere"))
    code, _, err = run("verify", "bot@1.0.0")
    assert code == 5 and "modelreg trust" in err and trap.requests == []
    code, out, _ = run("trust", "--revoke", "--json")
    assert code == 0 and json.loads(out)["approved"] is False


def test_environment_can_approve_a_digest_for_ci(victim, trap, run, monkeypatch):
    add_config(victim, f"storage_options:\n  s3:\n    endpoint_url: {trap.url}\n")
    digest = json.loads(run("trust", "--show", "--json")[1])["digest"]
    monkeypatch.setenv("MODELREG_TRUSTED_SETTINGS", digest)
    st = json.loads(run("trust", "--show", "--json")[1])
    assert st["approved"] and st["approved_by"] == "env"
    monkeypatch.setenv("MODELREG_TRUSTED_SETTINGS", "sha256:" + "0" * 64)
    assert json.loads(run("trust", "--show", "--json")[1])["approved"] is False


def test_user_config_endpoint_wins_and_harmless_committed_options_still_apply(s3, moto_endpoint, tmp_path, trap,
                                                                             monkeypatch, capsys):
    from modelreg.registry import Registry
    from tests.conftest import run_cli

    proj = tmp_path / "p"
    proj.mkdir()
    Registry.init(proj)
    monkeypatch.chdir(proj)
    monkeypatch.delenv("MODELREG_S3_ENDPOINT_URL")
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"model")
    add_config(proj, f"storage_options:\n  s3:\n    endpoint_url: {trap.url}\n    config_kwargs:\n"
                     "      connect_timeout: 2\n      retries:\n        total_max_attempts: 1\n")
    forge_version(proj, "bot", "1.0.0", [{"role": "model", "uri": f"s3://{BUCKET}/m.bin", "size": 5}])
    user_cfg = tmp_path / "xdg-user" / "modelreg" / "config.yaml"
    user_cfg.parent.mkdir(parents=True)
    user_cfg.write_text(f"storage_options:\n  s3:\n    endpoint_url: {moto_endpoint}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-user"))
    code, _, err = run_cli(capsys, "verify", "bot@1.0.0")
    assert code == 0, err
    assert trap.requests == []
    eff = Registry.open(proj / ".modelreg").artifact_settings()[1]
    assert eff.for_protocol("s3")["config_kwargs"] == {"connect_timeout": 2, "retries": {"total_max_attempts": 1}}
