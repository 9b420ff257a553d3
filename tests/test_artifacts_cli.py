"""Artifacts end to end, through the CLI (in-process) and the library, against moto S3 and a local HTTP server.

hf:// is not exercised here (no Hugging Face server on loopback); https:// takes the same code path
as the plain-HTTP server tests (fsspec's HTTPFileSystem). See docs/artifacts.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import BUCKET, MiB, closed_port, sha  # tests/servers.py, loaded as a plugin (pyproject)

from modelreg import cli as cli_mod
from modelreg import uris
from modelreg.registry import Registry

WORKTREE = Path(__file__).resolve().parent.parent
FAST_S3_CONFIG = """\
storage_options:
  s3:
    config_kwargs:
      connect_timeout: 2
      read_timeout: 5
      retries:
        total_max_attempts: 1
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("MODELREG_DIR", "MODELREG_TRACEBACK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MODELREG_ACTOR", "tester@example.com")


@pytest.fixture
def project(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    proj.mkdir()
    Registry.init(proj)
    monkeypatch.chdir(proj)
    return proj


@pytest.fixture
def cli(project, capsys):
    """Run ``modelreg ARGS`` in-process; return (exit code, stdout, stderr)."""

    def run(*args):
        capsys.readouterr()
        try:
            cli_mod.main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def add_config(project: Path, text: str) -> None:
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + text)


def artifacts_of(cli, ref: str) -> dict[str, dict]:
    code, out, err = cli("show", ref, "--json")
    assert code == 0, err
    return {a["role"]: a for a in json.loads(out)["manifest"].get("artifacts", [])}


def versions_dir(project: Path) -> list[str]:
    base = project / ".modelreg" / "versions"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------- register


def test_register_s3_records_size_and_hash_only_with_flag(s3, cli):
    data = b"s3 weights" * 100
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=data)
    uri = f"s3://{BUCKET}/m.bin"
    assert cli("register", "faq", "1.0.0", "-a", f"weights={uri}")[0] == 0
    assert artifacts_of(cli, "faq@1.0.0")["weights"] == {"role": "weights", "uri": uri, "size": len(data)}
    assert cli("register", "faq", "1.0.1", "-a", f"weights={uri}", "--hash")[0] == 0
    assert artifacts_of(cli, "faq@1.0.1")["weights"] == {
        "role": "weights", "uri": uri, "size": len(data), "sha256": sha(data)
    }


def test_overwritten_s3_object_fails_verify_hash_and_fetch_leaves_nothing(s3, cli, project, tmp_path):
    uri = f"s3://{BUCKET}/m.bin"
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"original")
    (project / "tok.json").write_bytes(b"{}")
    assert cli("register", "faq", "1.0.0", "-a", "tok.json", "-a", f"weights={uri}", "--hash")[0] == 0
    assert cli("verify", "faq@1.0.0", "--hash")[0] == 0

    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"tampered")  # same size, other bytes
    code, out, err = cli("verify", "faq@1.0.0", "--hash")
    assert code == 6
    assert "hash-mismatch" in out and "weights" in out
    assert f"artifact weights ({uri})" in err and sha(b"original")[:12] in err
    # without --hash only the size is checked, and the table says the content was not hashed
    code, out, _ = cli("verify", "faq@1.0.0")
    assert code == 0 and "not hashed" in " ".join(out.split())  # the table may wrap the cell

    dest = tmp_path / "out"
    code, out, err = cli("fetch", "faq@1.0.0", dest)
    assert code == 6
    assert uri in one_line(err)
    assert not dest.exists()  # tok.json was fetched first, then removed with the failed weights
    dest.mkdir()
    assert cli("fetch", "faq@1.0.0", dest)[0] == 6
    assert list(dest.iterdir()) == []


def test_multipart_s3_object_verifies_by_content(s3, cli, tmp_path):
    part1, part2 = os.urandom(5 * MiB), os.urandom(999)
    mpu = s3.create_multipart_upload(Bucket=BUCKET, Key="big.bin")
    parts = []
    for n, body in enumerate((part1, part2), start=1):
        r = s3.upload_part(Bucket=BUCKET, Key="big.bin", UploadId=mpu["UploadId"], PartNumber=n, Body=body)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=BUCKET, Key="big.bin", UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": parts})
    assert s3.head_object(Bucket=BUCKET, Key="big.bin")["ETag"].strip('"').endswith("-2")
    data = part1 + part2
    assert cli("register", "big", "1.0.0", "-a", f"s3://{BUCKET}/big.bin", "--hash")[0] == 0
    assert artifacts_of(cli, "big@1.0.0")["big.bin"]["sha256"] == sha(data)
    code, out, _ = cli("verify", "big@1.0.0", "--hash", "--json")
    assert code == 0
    assert json.loads(out)["results"][0]["actual_sha256"] == sha(data)
    code, out, _ = cli("fetch", "big@1.0.0", tmp_path / "out")
    assert code == 0 and (tmp_path / "out" / "big.bin").read_bytes() == data


def test_store_provided_sha256_is_recorded_without_hash_flag(s3, cli):
    data = b"checksummed"
    s3.put_object(Bucket=BUCKET, Key="c.bin", Body=data, ChecksumAlgorithm="SHA256")
    assert cli("register", "c", "1.0.0", "-a", f"s3://{BUCKET}/c.bin")[0] == 0
    assert artifacts_of(cli, "c@1.0.0")["c.bin"]["sha256"] == sha(data)


# --------------------------------------------------------------------------- upload


def test_upload_to_s3_store_records_store_uri_and_skips_second_upload(s3, project, cli):
    add_config(project, f"artifact_store: s3://{BUCKET}/store\n")
    data = os.urandom(MiB + 1)
    digest = sha(data)
    (project / "model.bin").write_bytes(data)
    # a remote store named by the committed config receives uploads only once this machine approved it
    code, _, err = cli("register", "faq", "1.0.0", "-a", "model.bin", "--upload")
    assert code == 5 and "modelreg trust" in err and not versions_dir(project)
    assert cli("trust")[0] == 0
    assert cli("register", "faq", "1.0.0", "-a", "model.bin", "--upload")[0] == 0
    target = f"s3://{BUCKET}/store/sha256/{digest[:2]}/{digest[2:]}"
    assert artifacts_of(cli, "faq@1.0.0")["model.bin"] == {
        "role": "model.bin", "uri": target, "size": len(data), "sha256": digest, "name": "model.bin"
    }
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"store/sha256/{digest[:2]}/{digest[2:]}"]

    # the library: a second upload of the same bytes sends nothing
    sent: dict[str, int] = {}

    def factory(label, total):
        sent.setdefault(label, 0)
        return lambda n: sent.__setitem__(label, sent[label] + n)

    reg = Registry.open(project / ".modelreg")
    reg.register("faq", "1.0.1", artifacts=["model.bin"], upload=True, progress=factory)
    assert sent == {str(project / "model.bin"): len(data), "upload model.bin": 0}  # hashed, not sent

    os.remove(project / "model.bin")  # the store copy is what is fetched and verified
    assert cli("verify", "faq@1.0.1", "--hash")[0] == 0
    code, out, _ = cli("fetch", "faq@1.0.1", project / "out")
    assert code == 0 and (project / "out" / "model.bin").read_bytes() == data


def test_upload_to_a_local_store_outside_the_project_is_refused(project, cli, tmp_path):
    # config.yaml is committed: it may not choose where --upload writes outside the project
    for store in ("../shared store", str(tmp_path / "elsewhere")):
        add_config(project, f"artifact_store: {store}\n")
        (project / "w.bin").write_bytes(b"weights")
        code, _, err = cli("register", "faq", "1.0.0", "-a", "w.bin", "--upload")
        assert code == 2 and "outside the project" in one_line(err)
        assert versions_dir(project) == [] and not (tmp_path / "shared store").exists()
        assert not (tmp_path / "elsewhere").exists()
        cfg = project / ".modelreg" / "config.yaml"
        cfg.write_text(cfg.read_text().replace(f"artifact_store: {store}\n", ""))


@pytest.mark.parametrize("store, inside", [("artifact-store", True), ("../shared store", False)])
def test_upload_to_local_dir_store(project, cli, store, inside, monkeypatch):
    add_config(project, f"artifact_store: {store}\n")
    (project / "w.bin").write_bytes(b"weights")
    digest = sha(b"weights")
    if not inside:  # outside the project only with the user's say (docs/security.md)
        monkeypatch.setenv("MODELREG_LOCAL_ROOTS", str((project / store).resolve()))
    assert cli("register", "faq", "1.0.0", "-a", "w.bin", "--upload")[0] == 0
    final = (project / store / "sha256" / digest[:2] / digest[2:]).resolve()
    assert final.read_bytes() == b"weights"
    uri = artifacts_of(cli, "faq@1.0.0")["w.bin"]["uri"]
    if inside:  # the local-path rule: relative inside the project, file:/// outside
        assert uri == f"artifact-store/sha256/{digest[:2]}/{digest[2:]}"
    else:
        assert uri.startswith("file:///") and uri.endswith(digest[2:]) and ".." not in uri
    mtime = final.stat().st_mtime_ns
    assert cli("register", "faq", "1.0.1", "-a", "w.bin", "--upload")[0] == 0
    assert final.stat().st_mtime_ns == mtime  # skipped
    assert os.listdir(final.parent) == [digest[2:]]  # no temp file left
    os.remove(project / "w.bin")
    if not inside:  # reading outside the project needs the user's say (docs/security.md)
        monkeypatch.delenv("MODELREG_LOCAL_ROOTS")
        code, out, _ = cli("fsck", "--artifacts")
        assert code == 6 and "outside the project" in out
        monkeypatch.setenv("MODELREG_LOCAL_ROOTS", str((project / store).resolve()))
    assert cli("fsck", "--artifacts")[0] == 0


def test_upload_needs_a_configured_store(project, cli):
    (project / "w.bin").write_bytes(b"w")
    code, _, err = cli("register", "faq", "1.0.0", "-a", "w.bin", "--upload")
    assert code == 2 and "artifact_store" in one_line(err)
    assert versions_dir(project) == []


@pytest.mark.parametrize(
    "text, named",
    [
        ("artifact_store: 5\n", "'artifact_store' must be"),
        ("artifact_store: https://u:hunter2@example.com/store\n", "credentials"),
        ("storage_options: [s3]\n", "'storage_options' must map"),
        ("storage_options:\n  s3:\n    secret: hunter2\n", "storage_options.s3.secret"),
    ],
)
def test_bad_artifact_config_is_a_one_line_usage_error(project, cli, text, named):
    add_config(project, text)
    (project / "w.bin").write_bytes(b"w")
    code, _, err = cli("register", "faq", "1.0.0", "-a", "w.bin")
    assert code == 2 and named in one_line(err) and "hunter2" not in err


# --------------------------------------------------------------------------- verify --all, fsck


def test_verify_all_by_stage_and_fsck_artifacts(s3, project, cli):
    s3.put_object(Bucket=BUCKET, Key="good.bin", Body=b"good")
    s3.put_object(Bucket=BUCKET, Key="bad.bin", Body=b"bad!")
    assert cli("register", "good", "1.0.0", "-a", f"s3://{BUCKET}/good.bin", "--hash")[0] == 0
    assert cli("register", "bad", "1.0.0", "-a", f"s3://{BUCKET}/bad.bin", "--hash")[0] == 0
    assert cli("promote", "good@1.0.0", "staging")[0] == 0
    assert cli("promote", "good@1.0.0", "production")[0] == 0
    assert cli("promote", "bad@1.0.0", "staging")[0] == 0
    assert cli("fsck", "--artifacts", "--hash")[0] == 0

    s3.put_object(Bucket=BUCKET, Key="bad.bin", Body=b"evil")
    code, out, _ = cli("verify", "--all", "--stage", "production", "--hash", "--json")
    assert code == 0
    assert [(r["name"], r["ok"]) for r in json.loads(out)] == [("good", True)]
    code, out, err = cli("verify", "--all", "--hash", "--json")
    assert code == 6
    assert [(r["name"], r["ok"]) for r in json.loads(out)] == [("bad", False), ("good", True)]  # good once

    assert cli("fsck")[0] == 0  # artifacts only with --artifacts
    assert cli("fsck", "--artifacts")[0] == 0  # same size: only --hash sees it
    code, out, err = cli("fsck", "--artifacts", "--hash")
    assert code == 6 and "bad@1.0.0 artifact bad.bin" in out and "hash-mismatch" in out
    s3.delete_object(Bucket=BUCKET, Key="bad.bin")
    code, out, _ = cli("fsck", "--artifacts", "--json")
    assert code == 6
    report = json.loads(out)
    assert report["counts"]["artifacts"] == 2
    assert [p["message"].split(":")[0] for p in report["problems"]] == ["missing"]


def test_verify_usage(cli, project):
    assert cli("verify")[0] == 2
    assert cli("verify", "x@1", "--all")[0] == 2
    assert cli("verify", "x@1", "--stage", "production")[0] == 2
    assert cli("verify", "--all", "--stage", "nope")[0] == 2
    assert cli("fsck", "--hash")[0] == 2
    code, _, err = cli("verify", "--all")
    assert code == 0 and "0 artifact(s) of 0 version(s)" in err


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "uri",
    [
        "https://alice:hunter2@127.0.0.1:9/m.bin",
        f"s3://AKIA:hunter2@{BUCKET}/m.bin",
        "https://b.s3.amazonaws.com/m.bin?X-Amz-Credential=x&X-Amz-Signature=hunter2",
        "https://acct.blob.core.windows.net/c/m.bin?sp=r&sig=hunter2",
    ],
)
@pytest.mark.parametrize("flags", [(), ("--no-check",)])
def test_credential_uris_are_refused_and_nothing_is_written(project, cli, uri, flags):
    before = versions_dir(project)
    code, out, err = cli("register", "faq", "1.0.0", "-a", uri, *flags)
    assert code == 2 and "refusing" in one_line(err) and "hunter2" not in err + out
    assert versions_dir(project) == before == []
    assert not any((project / ".modelreg" / "objects").rglob("*.*")) and not list((project / ".modelreg" / "logs").iterdir())


def test_prefix_without_slash_is_a_directory_artifact(s3, cli, project):
    # once refused as "not a file"; now a prefix is a directory artifact (tests/test_trees.py)
    s3.put_object(Bucket=BUCKET, Key="models/faq/m.bin", Body=b"x")
    code, _, err = cli("register", "faq", "1.0.0", "-a", f"s3://{BUCKET}/models/faq")
    assert code == 0, err
    art = artifacts_of(cli, "faq@1.0.0")["faq"]
    assert art["uri"] == f"s3://{BUCKET}/models/faq/" and [f["path"] for f in art["files"]] == ["m.bin"]


def test_missing_object_is_not_found(s3, cli, project):
    code, _, err = cli("register", "faq", "1.0.0", "-a", f"s3://{BUCKET}/nope.bin")
    assert code == 3 and one_line(err) == f"modelreg: error: artifact not found: s3://{BUCKET}/nope.bin"
    assert versions_dir(project) == []


def test_closed_port_is_unreachable_not_missing(s3, cli, project, monkeypatch):
    add_config(project, FAST_S3_CONFIG)
    monkeypatch.setenv(uris.S3_ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    code, _, err = cli("register", "faq", "1.0.0", "-a", f"s3://{BUCKET}/m.bin")
    assert code == 7 and "connection refused" in one_line(err)
    code, _, err = cli("register", "faq", "1.0.0", "-a", f"http://127.0.0.1:{closed_port()}/m.bin")
    assert code == 7 and "connection refused" in one_line(err)
    assert versions_dir(project) == []


def test_verify_exit_7_when_unreachable_and_nothing_mismatched(s3, cli, project, monkeypatch):
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"x")
    add_config(project, FAST_S3_CONFIG)
    assert cli("register", "faq", "1.0.0", "-a", f"s3://{BUCKET}/m.bin")[0] == 0
    (project / "local.bin").write_bytes(b"local")
    assert cli("register", "faq", "2.0.0", "-a", f"s3://{BUCKET}/m.bin", "-a", "local.bin")[0] == 0
    monkeypatch.setenv(uris.S3_ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    code, out, _ = cli("verify", "faq@1.0.0")
    assert code == 7 and "unreachable" in out
    code, _, _ = cli("fsck", "--artifacts")
    assert code == 7  # only a warning for the registry, but not a pass
    os.remove(project / "local.bin")
    assert cli("verify", "faq@2.0.0")[0] == 6  # a missing artifact outranks an unreachable one


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_protocol_without_backend_names_the_extra(cli, project):
    code, _, err = cli("register", "faq", "1.0.0", "-a", "gs://bucket/m.bin")
    assert code == 2 and one_line(err) == "modelreg: error: gs:// needs gcsfs: pip install 'modelreg[gcs]'"
    assert versions_dir(project) == []


def test_backend_missing_for_s3_names_the_extra(cli, project, monkeypatch):
    monkeypatch.setitem(uris._BACKENDS, "s3", ("modelreg_no_such_backend", "s3fs", "s3"))
    code, _, err = cli("register", "faq", "1.0.0", "-a", f"s3://{BUCKET}/m.bin")
    assert code == 2 and "pip install 'modelreg[s3]'" in one_line(err)


def test_no_check_and_hash_contradict(cli, project):
    code, _, err = cli("register", "faq", "1.0.0", "-a", f"s3://{BUCKET}/m.bin", "--no-check", "--hash")
    assert code == 2 and "--no-check" in one_line(err)


def test_local_file_with_wrong_given_sha256_is_an_integrity_error(cli, project):
    (project / "w.bin").write_bytes(b"w")
    (project / "m.yaml").write_text(
        f"name: faq\nversion: '1.0.0'\nartifacts:\n- role: w\n  uri: w.bin\n  sha256: '{sha(b'other')}'\n"
    )
    code, _, err = cli("register", "--from-file", "m.yaml")
    assert code == 6 and "does not match" in one_line(err)


# --------------------------------------------------------------------------- https (local HTTP server)


def test_http_artifact_register_verify_fetch(http_server, cli, tmp_path):
    base, served = http_server
    data = os.urandom(2 * MiB + 7)
    (served / "h.safetensors").write_bytes(data)
    uri = f"{base}/h.safetensors"
    assert cli("register", "h", "1.0.0", "-a", f"model={uri}", "--hash")[0] == 0
    assert artifacts_of(cli, "h@1.0.0")["model"]["sha256"] == sha(data)
    assert cli("verify", "h@1.0.0", "--hash")[0] == 0
    code, out, _ = cli("fetch", "h@1.0.0", tmp_path / "out", "--json")
    assert code == 0
    files = json.loads(out)["files"]
    assert [(f["role"], Path(f["path"]).name, f["status"]) for f in files] == [("model", "model.safetensors", "downloaded")]
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == data
    code, out, _ = cli("fetch", "h@1.0.0", tmp_path / "out")
    assert code == 0 and out.split()[0] == "present"


def test_unhashed_remote_artifact_is_fetched_unverified_with_size_check(http_server, cli, tmp_path):
    base, served = http_server
    (served / "u.bin").write_bytes(b"unhashed")
    assert cli("register", "u", "1.0.0", "-a", f"{base}/u.bin")[0] == 0
    code, out, err = cli("fetch", "u@1.0.0", tmp_path / "out")  # nothing to verify against: refused
    assert code == 6 and "--allow-unverified" in one_line(err) and not (tmp_path / "out").exists()
    code, out, err = cli("fetch", "u@1.0.0", tmp_path / "out", "--allow-unverified")
    assert code == 0 and out.split()[0] == "unverified" and "no recorded sha256" in err
    (served / "u.bin").write_bytes(b"longer now")
    code, _, err = cli("fetch", "u@1.0.0", tmp_path / "out2", "--allow-unverified")
    assert code == 6 and "bytes" in one_line(err)
    assert not (tmp_path / "out2").exists()


# --------------------------------------------------------------------------- no network, no fsspec


def _run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "MODELREG_DIR"}
    full_env.update(PYTHONPATH=str(WORKTREE), MODELREG_ACTOR="tester@example.com", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=60)


_FSSPEC_CHECK = """
import sys
from modelreg.cli import main
for argv in {argvs!r}:
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), (argv, exc.code)
bad = sorted(m for m in sys.modules if m.split('.')[0] in
             ('fsspec', 's3fs', 'aiohttp', 'botocore', 'aiobotocore', 'gcsfs', 'huggingface_hub'))
print(bad)
"""


def test_local_register_resolve_show_and_no_check_do_not_import_fsspec(project):
    (project / "w.bin").write_bytes(b"w")
    argvs = [
        ["register", "faq", "1.0.0", "-a", "w.bin"],
        # --no-check: a missing object behind a closed port, and no network library is even imported
        ["register", "faq", "2.0.0", "-a", f"s3://{BUCKET}/nope.bin", "--no-check"],
        ["resolve", "faq@1.0.0"],
        ["resolve", "faq@2.0.0", "--artifact", "nope.bin"],
        ["show", "faq@2.0.0"],
    ]
    out = _run_python(_FSSPEC_CHECK.format(argvs=argvs), project,
                      **{uris.S3_ENDPOINT_ENV: f"http://127.0.0.1:{closed_port()}"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    m = Registry.open(project / ".modelreg").show("faq@2.0.0").manifest
    assert m["artifacts"] == [{"role": "nope.bin", "uri": f"s3://{BUCKET}/nope.bin"}]


def test_fetch_names_and_clashes(project, tmp_path):
    from modelreg.artifacts import fetch_name

    assert fetch_name({"role": "model.bin", "uri": "s3://b/x/model.bin"}) == "model.bin"
    assert fetch_name({"role": "checkpoint", "uri": "s3://b/x/model.safetensors?versionId=1"}) == "checkpoint.safetensors"
    assert fetch_name({"role": "checkpoint", "uri": "s3://b/store/sha256/ab/cdef"}) == "checkpoint"
    assert fetch_name({"role": "w", "uri": "https://h/odd.na$me"}) == "w"
    (project / "x.bin").write_bytes(b"1")
    (project / "y").write_bytes(b"2")
    reg = Registry.open(project / ".modelreg")
    reg.register("faq", "1.0.0", artifacts=["a=x.bin", "a.bin=y"])
    with pytest.raises(Exception, match="both be fetched as a.bin") as info:
        reg.fetch("faq@1.0.0", tmp_path / "out")
    assert info.value.exit_code == 2 and not (tmp_path / "out").exists()
