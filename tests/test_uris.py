"""Tests for modelreg.uris against real servers on loopback: moto's S3 server and a local HTTP server."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import BUCKET, MiB, S3_FAST, closed_port, sha  # tests/servers.py, loaded as a plugin (pyproject)

from modelreg import uris
from modelreg.errors import IntegrityError, NotFound, Unreachable, UsageError
from modelreg.uris import (
    ArtifactInfo,
    check_uri_safe,
    fetch_artifact,
    is_local,
    normalize_local_uri,
    open_artifact,
    resolve_local,
    stat_artifact,
    upload_artifact,
    verify_artifact,
)

@pytest.fixture
def root(tmp_path):
    project = tmp_path / "project"
    (project / ".modelreg").mkdir(parents=True)
    return project


# --------------------------------------------------------------------------- import hygiene


def test_importing_uris_does_not_import_fsspec_or_backends():
    code = (
        "import sys, modelreg.uris\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fsspec', 's3fs', 'aiohttp', 'botocore', 'aiobotocore', 'gcsfs', 'huggingface_hub'))\n"
        "print(bad)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(uris.__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- URI safety


@pytest.mark.parametrize(
    "uri, named",
    [
        ("https://alice:hunter2secret@example.com/model.bin", "user-info"),
        ("https://ghp_tokensecret@example.com/model.bin", "user-info"),
        ("s3://AKIAKEY:hunter2secret@bucket/model.bin", "user-info"),
        ("hf://user:hunter2secret@org/repo/model.bin", "user-info"),
        ("https://b.s3.amazonaws.com/m.bin?X-Amz-Algorithm=AWS4&X-Amz-Signature=hunter2secret", "X-Amz-Signature"),
        ("https://b.s3.amazonaws.com/m.bin?X-Amz-Credential=hunter2secret", "X-Amz-Credential"),
        ("https://b.s3.amazonaws.com/m.bin?x-amz-security-token=hunter2secret", "x-amz-security-token"),
        ("https://storage.googleapis.com/b/m.bin?X-Goog-Signature=hunter2secret", "X-Goog-Signature"),
        ("https://storage.googleapis.com/b/m.bin?X-Goog-Credential=hunter2secret", "X-Goog-Credential"),
        ("https://acct.blob.core.windows.net/c/m.bin?sp=r&se=2030-01-01&sig=hunter2secret", "sig"),
        ("https://example.com/m.bin?TOKEN=hunter2secret", "TOKEN"),
        ("https://example.com/m.bin?access_token=hunter2secret", "access_token"),
        ("https://example.com/m.bin?api_key=hunter2secret", "api_key"),
        ("https://example.com/m.bin?ApiKey=hunter2secret", "ApiKey"),
        ("https://example.com/m.bin?a=1&key=hunter2secret", "key"),
    ],
)
def test_credential_uris_are_refused_without_echoing_the_secret(uri, named):
    with pytest.raises(UsageError) as info:
        check_uri_safe(uri)
    assert named in info.value.message
    assert "hunter2secret" not in info.value.message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/models/m.bin?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "https://acct.blob.core.windows.net/c/m.bin?sp=r&se=2030-01-01",  # no sig=: nothing secret
        "https://example.com/files/model.bin?download=1",
        "hf://org/repo@main/model.safetensors",
        "gs://bucket/m.bin",
        "models/faq/model.bin",
        "file:///data/model.bin",
    ],
)
def test_safe_uris_are_allowed(uri):
    check_uri_safe(uri)


@pytest.mark.parametrize(
    "uri, local",
    [
        ("models/m.bin", True),
        ("/abs/m.bin", True),
        ("file:///abs/m.bin", True),
        ("weird:name.bin", True),
        ("s3://b/k", False),
        ("https://h/p", False),
        ("memory://x", False),
        ("simplecache::s3://b/k", False),
    ],
)
def test_is_local(uri, local):
    assert is_local(uri) is local


# --------------------------------------------------------------------------- local paths


def test_local_path_inside_root_is_stored_relative_and_resolves_back(root, monkeypatch):
    target = root / "models" / "faq" / "model.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    monkeypatch.chdir(root / "models")
    assert normalize_local_uri("faq/model.bin", root) == "models/faq/model.bin"  # relative to cwd
    assert normalize_local_uri(str(target), root) == "models/faq/model.bin"
    assert normalize_local_uri(target.as_uri(), root) == "models/faq/model.bin"
    assert resolve_local("models/faq/model.bin", root) == target.resolve()


def test_local_path_outside_root_is_stored_as_file_uri_and_resolves_back(root, tmp_path, monkeypatch):
    outside = tmp_path / "data dir" / "m.bin"
    outside.parent.mkdir()
    outside.write_bytes(b"x")
    monkeypatch.chdir(root)
    stored = normalize_local_uri("../data dir/m.bin", root)
    assert stored == outside.resolve().as_uri()
    assert stored.startswith("file:///") and ".." not in stored
    assert resolve_local(stored, root) == outside.resolve()


def test_relative_uri_escaping_root_is_refused(root, tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"x")
    (root / "link.bin").symlink_to(tmp_path / "secret.bin")
    for uri in ("../secret.bin", "link.bin"):
        with pytest.raises(UsageError, match="escapes the project directory"):
            resolve_local(uri, root)
    # the symlink is stored by where it really points, so nothing is lost
    assert normalize_local_uri(str(root / "link.bin"), root) == (tmp_path / "secret.bin").resolve().as_uri()


def test_stat_local_file_hashes_and_sizes(root):
    data = b"local weights" * 1000
    (root / "models").mkdir()
    (root / "models" / "m.bin").write_bytes(data)
    seen = []
    info = stat_artifact("models/m.bin", root=root, progress=seen.append)
    assert info == ArtifactInfo("models/m.bin", len(data), sha(data), "computed")
    assert sum(seen) == len(data)
    assert stat_artifact((root / "models" / "m.bin").as_uri(), root=root).uri == "models/m.bin"


def test_stat_local_directory_and_missing(root):
    (root / "models").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        stat_artifact("models", root=root)
    with pytest.raises(NotFound, match="artifact not found: models/nope.bin"):
        stat_artifact("models/nope.bin", root=root)


def test_verify_local_reports_statuses(root):
    data = b"abc"
    (root / "m.bin").write_bytes(data)
    ok = verify_artifact("m.bin", size=3, sha256=sha(data), compute_hash=False, root=root)
    assert (ok.ok, ok.status, ok.actual_sha256) == (True, "ok", sha(data))
    bad = verify_artifact("m.bin", size=3, sha256=sha(b"xyz"), compute_hash=False, root=root)
    assert (bad.ok, bad.status) == (False, "hash-mismatch")
    assert verify_artifact("m.bin", size=4, sha256=None, compute_hash=False, root=root).status == "size-mismatch"
    assert verify_artifact("gone.bin", size=3, sha256=None, compute_hash=False, root=root).status == "missing"
    assert verify_artifact(".modelreg", size=3, sha256=None, compute_hash=False, root=root).status == "not-a-file"


# --------------------------------------------------------------------------- S3 (moto server)


def test_s3_object_size_without_hash(s3, root):
    s3.put_object(Bucket=BUCKET, Key="models/m.bin", Body=b"0123456789")
    info = stat_artifact(f"s3://{BUCKET}/models/m.bin", root=root)
    assert info == ArtifactInfo(f"s3://{BUCKET}/models/m.bin", 10, None, "none")


def test_s3_sha256_checksum_comes_from_the_store(s3, root):
    data = b"checksummed bytes"
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=data, ChecksumAlgorithm="SHA256")
    info = stat_artifact(f"s3://{BUCKET}/m.bin", root=root)
    assert (info.size, info.sha256, info.sha256_source) == (len(data), sha(data), "store")


def test_s3_compute_hash_streams_the_object(s3, root):
    data = os.urandom(3 * MiB + 17)
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=data)
    seen = []
    info = stat_artifact(f"s3://{BUCKET}/m.bin", root=root, compute_hash=True, progress=seen.append)
    assert (info.size, info.sha256, info.sha256_source) == (len(data), sha(data), "computed")
    assert sum(seen) == len(data)


def test_s3_overwritten_object_is_a_hash_mismatch(s3, root):
    uri = f"s3://{BUCKET}/m.bin"
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"original")
    recorded = stat_artifact(uri, root=root, compute_hash=True)
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"tampered")  # same size, other bytes
    res = verify_artifact(uri, size=recorded.size, sha256=recorded.sha256, compute_hash=True, root=root)
    assert (res.ok, res.status) == (False, "hash-mismatch")
    assert res.actual_sha256 == sha(b"tampered") and res.expected_sha256 == sha(b"original")
    # without compute_hash only the size is checked, and the result says so
    quick = verify_artifact(uri, size=recorded.size, sha256=recorded.sha256, compute_hash=False, root=root)
    assert quick.status == "ok" and quick.actual_sha256 is None and "not hashed" in quick.message


def test_s3_multipart_object_verifies_by_content_not_etag(s3, root):
    part1, part2 = os.urandom(5 * MiB), os.urandom(1234)
    mpu = s3.create_multipart_upload(Bucket=BUCKET, Key="big.bin")
    parts = []
    for n, body in enumerate((part1, part2), start=1):
        r = s3.upload_part(Bucket=BUCKET, Key="big.bin", UploadId=mpu["UploadId"], PartNumber=n, Body=body)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="big.bin", UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts}
    )
    etag = s3.head_object(Bucket=BUCKET, Key="big.bin")["ETag"].strip('"')
    assert etag.endswith("-2")  # not an MD5 of the content
    data = part1 + part2
    res = verify_artifact(f"s3://{BUCKET}/big.bin", size=len(data), sha256=sha(data), compute_hash=True, root=root)
    assert (res.ok, res.status, res.actual_sha256) == (True, "ok", sha(data))


def test_s3_multipart_composite_checksum_is_not_taken_as_content_hash(s3, root):
    part1, part2 = os.urandom(5 * MiB), b"tail"
    mpu = s3.create_multipart_upload(Bucket=BUCKET, Key="big.bin", ChecksumAlgorithm="SHA256")
    parts = []
    for n, body in enumerate((part1, part2), start=1):
        r = s3.upload_part(
            Bucket=BUCKET, Key="big.bin", UploadId=mpu["UploadId"], PartNumber=n, Body=body, ChecksumAlgorithm="SHA256"
        )
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="big.bin", UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts}
    )
    info = stat_artifact(f"s3://{BUCKET}/big.bin", root=root)
    # the store's value is a checksum of part checksums, never to be taken as the content hash
    assert (info.size, info.sha256, info.sha256_source) == (len(part1 + part2), None, "none")


def test_s3_version_id_pins_an_old_version(s3, root):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"version one")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"v2")
    info = stat_artifact(f"s3://{BUCKET}/m.bin?versionId={old}", root=root, compute_hash=True)
    assert (info.size, info.sha256) == (len(b"version one"), sha(b"version one"))


def test_s3_fetch_writes_the_file_and_skips_when_present(s3, root, tmp_path):
    data = os.urandom(MiB + 5)
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=data)
    dest = tmp_path / "cache" / "m.bin"
    seen = []
    assert fetch_artifact(f"s3://{BUCKET}/m.bin", dest, sha256=sha(data), size=len(data), root=root, progress=seen.append)
    assert dest.read_bytes() == data and sum(seen) == len(data)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["m.bin"]
    mtime = dest.stat().st_mtime_ns
    assert fetch_artifact(f"s3://{BUCKET}/m.bin", dest, sha256=sha(data), size=len(data), root=root) is False
    assert dest.stat().st_mtime_ns == mtime


def test_s3_fetch_after_overwrite_fails_and_leaves_nothing(s3, root, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"tampered")
    dest_dir = tmp_path / "cache"
    dest_dir.mkdir()
    with pytest.raises(IntegrityError) as info:
        fetch_artifact(f"s3://{BUCKET}/m.bin", dest_dir / "m.bin", sha256=sha(b"original"), size=8, root=root)
    msg = info.value.message
    assert f"s3://{BUCKET}/m.bin" in msg and sha(b"original")[:12] in msg and sha(b"tampered")[:12] in msg
    assert list(dest_dir.iterdir()) == []  # no file, no temp file


def test_s3_fetch_with_wrong_size_fails_and_leaves_nothing(s3, root, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"longer than expected")
    with pytest.raises(IntegrityError, match="bytes"):
        fetch_artifact(f"s3://{BUCKET}/m.bin", tmp_path / "cache" / "m.bin", sha256=sha(b"short"), size=5, root=root)
    assert list((tmp_path / "cache").iterdir()) == []


def test_s3_fetch_missing_object_leaves_nothing(s3, root, tmp_path):
    with pytest.raises(NotFound):
        fetch_artifact(f"s3://{BUCKET}/nope.bin", tmp_path / "cache" / "m.bin", sha256=sha(b"x"), size=1, root=root)
    assert list((tmp_path / "cache").iterdir()) == []


def test_upload_to_s3_store_is_content_addressed_and_skips_when_present(s3, root, tmp_path):
    data = os.urandom(2 * MiB)
    digest = sha(data)
    src = tmp_path / "m.bin"
    src.write_bytes(data)
    store = f"s3://{BUCKET}/store/"
    target = upload_artifact(src, store, sha256=digest)
    assert target == f"s3://{BUCKET}/store/sha256/{digest[:2]}/{digest[2:]}"
    body = s3.get_object(Bucket=BUCKET, Key=f"store/sha256/{digest[:2]}/{digest[2:]}")["Body"].read()
    assert body == data
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"store/sha256/{digest[:2]}/{digest[2:]}"]  # no temp key left behind
    seen = []
    assert upload_artifact(src, store, sha256=digest, progress=seen.append) == target
    assert seen == []  # skipped: nothing read or sent
    assert verify_artifact(target, size=len(data), sha256=digest, compute_hash=True, root=root).ok


def test_upload_with_wrong_sha_does_not_create_the_key(s3, tmp_path):
    src = tmp_path / "m.bin"
    src.write_bytes(b"data")
    with pytest.raises(IntegrityError):
        upload_artifact(src, f"s3://{BUCKET}/store", sha256=sha(b"other"))
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_upload_to_local_store_is_atomic_and_skips_when_present(tmp_path):
    data = b"weights" * 100
    digest = sha(data)
    src = tmp_path / "m.bin"
    src.write_bytes(data)
    store = tmp_path / "store"
    target = upload_artifact(src, store.as_uri(), sha256=digest)
    final = store / "sha256" / digest[:2] / digest[2:]
    assert target == f"{store.as_uri()}/sha256/{digest[:2]}/{digest[2:]}"
    assert final.read_bytes() == data
    assert os.listdir(final.parent) == [digest[2:]]
    mtime = final.stat().st_mtime_ns
    assert upload_artifact(src, str(store), sha256=digest) == f"{store}/sha256/{digest[:2]}/{digest[2:]}"
    assert final.stat().st_mtime_ns == mtime


def test_s3_prefix_and_bucket_are_not_files(s3, root):
    s3.put_object(Bucket=BUCKET, Key="models/faq/m.bin", Body=b"x")
    for uri in (f"s3://{BUCKET}/models/faq", f"s3://{BUCKET}/models/faq/", f"s3://{BUCKET}"):
        with pytest.raises(UsageError, match="is a directory/prefix, not a file"):
            stat_artifact(uri, root=root)
    res = verify_artifact(f"s3://{BUCKET}/models", size=1, sha256=None, compute_hash=False, root=root)
    assert res.status == "not-a-file"


def test_s3_missing_object_and_bucket_are_not_found(s3, root):
    with pytest.raises(NotFound, match=f"artifact not found: s3://{BUCKET}/nope.bin"):
        stat_artifact(f"s3://{BUCKET}/nope.bin", root=root)
    with pytest.raises(NotFound):
        stat_artifact("s3://no-such-bucket-here/m.bin", root=root)
    res = verify_artifact(f"s3://{BUCKET}/nope.bin", size=1, sha256=None, compute_hash=True, root=root)
    assert (res.ok, res.status) == (False, "missing")


def test_s3_closed_port_is_unreachable_not_missing(s3, root, monkeypatch):
    monkeypatch.setenv(uris.S3_ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(Unreachable, match="cannot reach s3://.*connection refused") as info:
        stat_artifact(f"s3://{BUCKET}/m.bin", root=root, storage_options=S3_FAST)
    assert info.value.exit_code == 7
    res = verify_artifact(f"s3://{BUCKET}/m.bin", size=1, sha256=None, compute_hash=False, root=root, storage_options=S3_FAST)
    assert res.status == "unreachable"


def test_storage_options_endpoint_wins_over_env(s3, moto_endpoint, root, monkeypatch):
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"abc")
    monkeypatch.setenv(uris.S3_ENDPOINT_ENV, f"http://127.0.0.1:{closed_port()}")
    info = stat_artifact(f"s3://{BUCKET}/m.bin", root=root, storage_options={"s3": {"endpoint_url": moto_endpoint}})
    assert info.size == 3


def test_open_artifact_streams_s3_bytes(s3, root):
    s3.put_object(Bucket=BUCKET, Key="m.bin", Body=b"stream me")
    with open_artifact(f"s3://{BUCKET}/m.bin", root=root) as f:
        assert f.read() == b"stream me"


# --------------------------------------------------------------------------- HTTP


def test_http_stat_and_compute_hash(http_server, root):
    base, served = http_server
    data = os.urandom(2 * MiB + 3)
    (served / "m.bin").write_bytes(data)
    assert stat_artifact(f"{base}/m.bin", root=root) == ArtifactInfo(f"{base}/m.bin", len(data), None, "none")
    info = stat_artifact(f"{base}/m.bin", root=root, compute_hash=True)
    assert (info.sha256, info.sha256_source) == (sha(data), "computed")


def test_http_fetch_and_missing(http_server, root, tmp_path):
    base, served = http_server
    (served / "f.bin").write_bytes(b"over http")
    dest = tmp_path / "f.bin"
    assert fetch_artifact(f"{base}/f.bin", dest, sha256=sha(b"over http"), size=None, root=root)
    assert dest.read_bytes() == b"over http"
    with pytest.raises(NotFound, match="artifact not found"):
        stat_artifact(f"{base}/nope.bin", root=root)
    assert verify_artifact(f"{base}/nope.bin", size=1, sha256=None, compute_hash=True, root=root).status == "missing"


def test_http_closed_port_is_unreachable_not_missing(root):
    uri = f"http://127.0.0.1:{closed_port()}/m.bin"
    with pytest.raises(Unreachable, match="connection refused"):
        stat_artifact(uri, root=root)
    assert verify_artifact(uri, size=1, sha256=None, compute_hash=True, root=root).status == "unreachable"


# --------------------------------------------------------------------------- protocols


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed")
def test_protocol_without_backend_names_the_package(root):
    with pytest.raises(UsageError) as info:
        stat_artifact("gs://bucket/m.bin", root=root)
    assert info.value.message == "gs:// needs gcsfs: pip install 'modelreg[gcs]'"


def test_missing_backend_is_detected_before_fsspec_is_asked(root, monkeypatch):
    monkeypatch.setitem(uris._BACKENDS, "s3", ("modelreg_no_such_backend", "s3fs", "s3"))
    with pytest.raises(UsageError) as info:
        stat_artifact("s3://bucket/m.bin", root=root)
    assert info.value.message == "s3:// needs s3fs: pip install 'modelreg[s3]'"


@pytest.mark.parametrize("uri", ["ftp://host/m.bin", "simplecache::s3://b/m.bin"])
def test_unknown_protocol_is_a_usage_error(uri, root):
    with pytest.raises(UsageError, match="not supported|unsupported protocol"):
        stat_artifact(uri, root=root)


def test_memory_protocol_end_to_end(root, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/modelreg-test/m.bin", b"in memory")
    info = stat_artifact("memory://modelreg-test/m.bin", root=root)
    assert (info.size, info.sha256) == (9, None)
    digest = sha(b"in memory")
    assert verify_artifact(info.uri, size=9, sha256=digest, compute_hash=True, root=root).ok
    assert fetch_artifact(info.uri, tmp_path / "m.bin", sha256=digest, size=9, root=root)
    target = upload_artifact(tmp_path / "m.bin", "memory://modelreg-store", sha256=digest)
    assert fs.cat(target) == b"in memory"
    assert fs.ls(target.rsplit("/", 1)[0], detail=False) == [target.removeprefix("memory:/")]
    with pytest.raises(UsageError, match="directory/prefix"):
        stat_artifact("memory://modelreg-test", root=root)
    fs.rm("/modelreg-test", recursive=True)
    fs.rm("/modelreg-store", recursive=True)


def test_uri_functions_refuse_credentials_before_any_io(root, tmp_path):
    uri = "https://user:hunter2secret@127.0.0.1:9/m.bin"
    for call in (
        lambda: stat_artifact(uri, root=root),
        lambda: verify_artifact(uri, size=1, sha256=None, compute_hash=True, root=root),
        lambda: fetch_artifact(uri, tmp_path / "x", sha256=sha(b""), size=0, root=root),
        lambda: upload_artifact(tmp_path, "s3://k:hunter2secret@b/store", sha256=sha(b"")),
    ):
        with pytest.raises(UsageError) as info:
            call()
        assert "hunter2secret" not in info.value.message
