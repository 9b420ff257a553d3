"""Credential refusal, complete: one check (uris.check_uri_safe) wherever a URL is accepted or read."""

from __future__ import annotations

import pytest

from .netkit import forge_version

SECRET = "hunter2SECRETvalue"


@pytest.mark.parametrize("uri", [
    f"https://example.com/m.bin?a=1;token={SECRET}",
    f"https://example.com/m.bin#access_token={SECRET}",
    f"hf://hf_{SECRET}{SECRET}{SECRET}@org/repo/m.bin",
    f"hf://{SECRET}@org/repo/m.bin",
    f"s3://{SECRET}@bucket/m.bin",
    f"gs://user:{SECRET}@bucket/m.bin",
    f"https://gitlab.example.com/m.bin?private_token={SECRET}",
    f"https://example.com/m.bin?auth={SECRET}",
    f"https://example.com/m.bin?password={SECRET}",
    f"https://example.com/m.bin?client_secret={SECRET}",
    f"https://example.com/m.bin?accessToken={SECRET}",
    f"https://b.s3.amazonaws.com/m.bin?X-Amz-Signature={SECRET}",
    f"https://acct.blob.core.windows.net/c/m.bin?sv=1&sig={SECRET}",
    f"https://storage.googleapis.com/b/m.bin?GoogleAccessId={SECRET}&Expires=1&Signature={SECRET}",
    f"https://d111.cloudfront.net/m.bin?Expires=1&Signature={SECRET}&Key-Pair-Id=K",
    f"https://example.com/ghp_{SECRET}{SECRET}{SECRET}/m.bin",
])
def test_register_refuses_credentials_everywhere_in_a_uri(victim, run, uri):
    code, out, err = run("register", "bot", "1.0.0", "-a", f"model={uri}", "--no-check")
    assert code == 2 and "refusing" in err and SECRET not in out + err
    assert not (victim / ".modelreg" / "versions" / "bot").exists()


def test_bind_endpoint_and_params_are_checked(victim, run):
    (victim / "w.bin").write_bytes(b"w")
    assert run("register", "bot", "1.0.0", "-a", "w.bin")[0] == 0
    code, out, err = run("bind", "bot@1.0.0", "--provider", "sm", "--id", "x",
                         "--endpoint", f"https://api.example.com/invoke?api_key={SECRET}")
    assert code == 2 and SECRET not in out + err
    code, out, err = run("bind", "bot@1.0.0", "--provider", "sm", "--id", "x", "--param", f"auth_token={SECRET}")
    assert code == 2 and "auth_token" in err and SECRET not in out + err
    assert run("bind", "bot@1.0.0", "--provider", "sm", "--id", "x", "--endpoint", "https://api.example.com/v1")[0] == 0


def test_a_credential_uri_read_from_the_registry_is_refused_without_a_request(victim, trap, run, tmp_path):
    forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": f"http://u:{SECRET}@127.0.0.1:{trap.port}/m.bin"}])
    for args in (("verify", "bot@1.0.0"), ("fetch", "bot@1.0.0", tmp_path / "d", "--allow-unverified")):
        code, out, err = run(*args)
        assert code == 2 and SECRET not in out + err
    assert trap.requests == []


@pytest.mark.parametrize("text", [
    "artifact_store: https://u:{s}@store.example.com/m\n",
    "storage_options:\n  s3:\n    endpoint_url: https://u:{s}@minio.example.com\n",
    "storage_options:\n  s3:\n    aws_secret_access_key: {s}\n",
    "storage_options:\n  gs:\n    token: {s}\n",
])
def test_committed_config_may_not_hold_credentials(victim, run, text):
    cfg = victim / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + text.format(s=SECRET))
    (victim / "w.bin").write_bytes(b"w")
    code, out, err = run("register", "bot", "1.0.0", "-a", "w.bin")
    assert code == 2 and SECRET not in out + err
