"""Roles and names, presigned links (against the moto S3 server), protocol rules with --no-check,
missing credentials, and verify of artifacts with nothing to compare (issue 18, parts 2 and 3)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from servers import BUCKET, sha

from modelreg.registry import Registry


def artifacts_of(cli, ref: str) -> dict[str, dict]:
    code, out, err = cli("show", ref, "--json")
    assert code == 0, err
    return {a["role"]: a for a in json.loads(out)["manifest"].get("artifacts", [])}


# --------------------------------------------------------------------------- default roles


@pytest.mark.parametrize("uri, role", [
    ("s3://b/faq-bot/1.0.0", "model"),
    ("s3://b/faq-bot/v2", "model"),
    ("s3://b/store/sha256/3b/b2abb69ebb27fbfe63c7639624c6ec5e331b841a5bc8c3ebc10b9285e90877", "model"),
    ("s3://b/faq-bot/tokenizer.json", "tokenizer.json"),
    ("hf://acme/llama@main", "model"),
])
def test_default_role_is_never_a_version_or_digest(cli, uri, role):
    code, _, err = cli("register", "faq-bot", "1.0.0", "-a", uri, "--no-check")
    assert code == 0, err
    assert list(artifacts_of(cli, "faq-bot@1.0.0")) == [role]


def test_two_roleless_artifacts_that_default_to_model_need_a_role(cli):
    code, _, err = cli("register", "m", "1", "-a", "s3://b/1.0.0", "-a", "s3://b/2.0.0", "--no-check")
    assert code == 2 and "ROLE=" in err


def test_diff_shows_role_model_not_a_version(cli):
    assert cli("register", "faq-bot", "1.0.0", "-a", "s3://b/faq-bot/1.0.0", "--no-check")[0] == 0
    assert cli("register", "faq-bot", "1.1.0", "-a", "s3://b/faq-bot/1.1.0", "--no-check")[0] == 0
    code, out, _ = cli("diff", "faq-bot@1.0.0", "faq-bot@1.1.0", "--json")
    assert "artifacts.model.uri" in [c["path"] for c in json.loads(out)["changes"]]


# --------------------------------------------------------------------------- protocol rules


@pytest.mark.parametrize("uri", ["ftp://host/m.bin", "weird://x/y", f"simplecache::s3://{BUCKET}/m.bin"])
@pytest.mark.parametrize("flags", [[], ["--no-check"]])
def test_unsupported_and_chained_urls_refused_with_or_without_no_check(cli, project, uri, flags):
    code, out, err = cli("register", "m", "1", "-a", f"w={uri}", *flags)
    assert code == 2 and ("unsupported protocol" in err or "chained" in err)
    assert not (project / ".modelreg" / "versions" / "m").exists()


def test_missing_credentials_exit_7_with_a_hint(s3, cli, monkeypatch, tmp_path):
    import s3fs

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()
    code, _, err = cli("register", "m", "1", "-a", f"w=s3://{BUCKET}/m.bin")
    assert code == 7 and "no credentials" in err and "--no-check" in err and len(err.strip().splitlines()) == 1
    assert cli("register", "m", "1", "-a", f"w=s3://{BUCKET}/m.bin", "--no-check")[0] == 0


def test_verify_hash_with_no_recorded_sha256_says_nothing_to_compare(s3, cli):
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"bytes")
    assert cli("register", "m", "1", "-a", f"w=s3://{BUCKET}/m.bin")[0] == 0
    for flags in ([], ["--hash"]):
        code, out, err = cli("verify", "m@1", *flags, "--json")
        res = json.loads(out)["results"][0]
        assert code == 0 and res["status"] == "unverified" and "nothing to compare" in res["message"]
        code, out, err = cli("verify", "m@1", *flags)
        assert "nothing to compare" in " ".join(out.split()) and " ok " not in out.replace("\n", " ")


# --------------------------------------------------------------------------- presigned links


def test_url_is_a_presigned_link_that_downloads_the_exact_bytes(s3, cli, project):
    data = os.urandom(4096)
    s3.put_object(Bucket=BUCKET, Key="models/w.safetensors", Body=data)
    s3.put_object(Bucket=BUCKET, Key="models/tok.json", Body=b"{}")
    assert cli("register", "m", "1", "-a", f"checkpoint=s3://{BUCKET}/models/w.safetensors",
               "-a", f"tokenizer=s3://{BUCKET}/models/tok.json", "--hash")[0] == 0
    code, out, err = cli("url", "m@1", "--role", "checkpoint", "--expires", "600")
    assert code == 0, err
    link = out.strip()
    assert link.startswith("http") and "Signature" in link  # SigV2 or SigV4, as the endpoint wants
    with urllib.request.urlopen(link, timeout=10) as resp:  # plain HTTP, no credentials
        assert resp.read() == data
    code, out, _ = cli("url", "m@1", "--role", "tokenizer", "--json")
    d = json.loads(out)
    assert code == 0 and d["role"] == "tokenizer" and d["expires"] == 3600 and d["version"] == "1"
    with urllib.request.urlopen(d["url"], timeout=10) as resp:
        assert resp.read() == b"{}"
    # several artifacts and no --role: say which
    code, _, err = cli("url", "m@1")
    assert code == 2 and "--role" in err and "checkpoint" in err
    code, _, err = cli("url", "m@1", "--role", "nope")
    assert code == 3
    code, _, err = cli("url", "m@1", "--role", "tokenizer", "--expires", "0")
    assert code == 2


def test_url_of_a_directory_gives_one_link_per_file(s3, cli):
    s3.put_object(Bucket=BUCKET, Key="run/a.json", Body=b"A")
    s3.put_object(Bucket=BUCKET, Key="run/sub/b.bin", Body=b"BB")
    assert cli("register", "m", "1", "-a", f"model=s3://{BUCKET}/run/", "--hash")[0] == 0
    code, out, err = cli("url", "m@1", "--json")
    assert code == 0, err
    files = {f["path"]: f["url"] for f in json.loads(out)["files"]}
    assert set(files) == {"a.json", "sub/b.bin"}
    with urllib.request.urlopen(files["sub/b.bin"], timeout=10) as resp:
        assert resp.read() == b"BB"
    code, out, _ = cli("url", "m@1")
    assert code == 0 and out.startswith("a.json\t")


def test_url_of_a_local_path_or_memory_store_is_exit_2(cli, project):
    (project / "w.bin").write_bytes(b"w")
    assert cli("register", "m", "1", "-a", "w=w.bin")[0] == 0
    code, _, err = cli("url", "m@1")
    assert code == 2 and "local path" in err and len(err.strip().splitlines()) == 1
    import fsspec

    fsspec.filesystem("memory").pipe("memory://bucket/w.bin", b"w")
    assert cli("register", "m", "2", "-a", "w=memory://bucket/w.bin")[0] == 0
    code, _, err = cli("url", "m@2")
    assert code == 2 and "cannot sign" in err


def test_url_through_the_library(s3, project):
    s3.put_object(Bucket=BUCKET, Key="w.bin", Body=b"lib")
    reg = Registry.open(project / ".modelreg")
    reg.register("m", "1", artifacts=[f"w=s3://{BUCKET}/w.bin"])
    link = reg.url("m@1", expires=60)
    with urllib.request.urlopen(link.url, timeout=10) as resp:
        assert resp.read() == b"lib"
    assert link.to_dict()["uri"] == f"s3://{BUCKET}/w.bin"


del Path, sha
