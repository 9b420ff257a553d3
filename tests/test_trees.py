"""Directory artifacts end to end through the CLI and the library: local folders, the moto S3 server
(prefixes) and a fake Hugging Face layout (fsspec's memory filesystem under the hf protocol)."""

from __future__ import annotations

import hashlib
import json
import os

from pathlib import Path

import pytest
from servers import BUCKET, sha

from modelreg import trees, uris
from modelreg.registry import Registry


def make_tree(base: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return base


HF_FILES = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer/tokenizer.json": b'{"vocab": {}}',
    "tokenizer/special_tokens_map.json": b"{}",
    "model-00001-of-00002.safetensors": os.urandom(3000),
    "model-00002-of-00002.safetensors": os.urandom(2000),
    "model.safetensors.index.json": b'{"weight_map": {}}',
}


@pytest.fixture
def hf_dir(project: Path) -> Path:
    return make_tree(project / "hf-model", HF_FILES)


def manifest_of(cli, ref: str) -> dict:
    code, out, err = cli("show", ref, "--json")
    assert code == 0, err
    return json.loads(out)["manifest"]


def art(cli, ref: str, role: str) -> dict:
    return {a["role"]: a for a in manifest_of(cli, ref)["artifacts"]}[role]


# --------------------------------------------------------------------------- register


def test_register_local_directory_lists_every_file_with_tree_digest(cli, hf_dir):
    (hf_dir / ".cache").mkdir()
    (hf_dir / ".cache" / "x.lock").write_bytes(b"hidden")
    (hf_dir / ".gitattributes").write_bytes(b"hidden")
    code, out, err = cli("register", "llama", "1.0", "-a", "model=hf-model/")
    assert code == 0, err
    a = art(cli, "llama@1.0", "model")
    assert a["uri"] == "hf-model/"
    assert [f["path"] for f in a["files"]] == sorted(HF_FILES)  # hidden files follow the documented rule
    for f in a["files"]:
        assert f["size"] == len(HF_FILES[f["path"]]) and f["sha256"] == sha(HF_FILES[f["path"]])
    assert a["size"] == sum(len(v) for v in HF_FILES.values())
    expected = b"".join(f"{sha(HF_FILES[p])} {len(HF_FILES[p])} {p}\n".encode() for p in sorted(HF_FILES))
    assert a["tree"] == hashlib.sha256(expected).hexdigest() == trees.tree_digest(a["files"])
    # identical content again is exit 0; the default role of a directory is its name
    assert cli("register", "llama", "1.0", "-a", "model=hf-model/")[0] == 0
    assert cli("register", "llama", "1.1", "-a", "hf-model")[0] == 0
    assert art(cli, "llama@1.1", "hf-model")["tree"] == a["tree"]


def test_library_registers_a_directory(reg, hf_dir):
    r = reg.register("llama", "1.0", artifacts=[f"model={hf_dir}"])
    m = reg.manifest(r.version.digest)
    assert m["artifacts"][0]["uri"] == "hf-model/" and len(m["artifacts"][0]["files"]) == len(HF_FILES)
    rep = reg.verify("llama@1.0")
    assert rep.ok and rep.results[0].files == []


@pytest.mark.parametrize("shape, message", [
    ("empty-dir", "empty directory"),
    ("only-hidden", "empty directory"),
    ("outside-symlink", "leaves the directory"),
    ("fifo", "special file"),
    ("empty-root", "has no files"),
])
def test_refused_shapes_change_nothing(cli, project, shape, message, tmp_path):
    d = make_tree(project / "d", {"a.bin": b"a"})
    if shape == "empty-dir":
        (d / "sub").mkdir()
    elif shape == "only-hidden":
        make_tree(d, {"sub/.DS_Store": b"x"})
    elif shape == "outside-symlink":
        (tmp_path / "secret").write_bytes(b"s")
        (d / "link.bin").symlink_to(tmp_path / "secret")
    elif shape == "fifo":
        os.mkfifo(d / "pipe")
    elif shape == "empty-root":
        (d / "a.bin").unlink()
    before = sorted(p.name for p in (project / ".modelreg" / "objects").rglob("*"))
    code, out, err = cli("register", "m", "1", "-a", "model=d/")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in (project / ".modelreg" / "objects").rglob("*")) == before
    assert not (project / ".modelreg" / "versions" / "m").exists()


def test_symlink_inside_the_tree_is_hashed_as_its_target(cli, project):
    d = make_tree(project / "d", {"a.bin": b"aaa"})
    (d / "b.bin").symlink_to("a.bin")
    assert cli("register", "m", "1", "-a", "model=d/")[0] == 0
    assert [(f["path"], f["size"]) for f in art(cli, "m@1", "model")["files"]] == [("a.bin", 3), ("b.bin", 3)]


def test_parallel_hashing_uses_a_pool_and_one_bar(project, monkeypatch):
    d = make_tree(project / "d", {f"f{i:03d}.bin": os.urandom(1000 + i) for i in range(50)})
    bars = []

    def factory(label, total):
        bars.append([label, total, 0])

        def cb(n):
            bars[-1][2] += n

        return cb

    reg = Registry.open(project / ".modelreg")
    import threading

    threads = set()
    real = trees.hash_local

    def spy(files, progress=None):
        from modelreg import hashing

        orig = hashing.sha256_file

        def wrapped(path, prog=None):
            threads.add(threading.current_thread().name)
            return orig(path, prog)

        monkeypatch.setattr(hashing, "sha256_file", wrapped)
        return real(files, progress)

    monkeypatch.setattr(trees, "hash_local", spy)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    reg.register("m", "1", artifacts=[f"model={d}"], progress=factory)
    assert len(bars) == 1 and bars[0][1] == bars[0][2] == sum(1000 + i for i in range(50))
    assert len(threads) > 1 and all("ThreadPool" in t for t in threads)


# --------------------------------------------------------------------------- verify


def test_verify_names_added_missing_and_changed_files(cli, hf_dir):
    assert cli("register", "llama", "1.0", "-a", "model=hf-model/")[0] == 0
    assert cli("verify", "llama@1.0")[0] == 0
    (hf_dir / "config.json").unlink()
    (hf_dir / "extra.bin").write_bytes(b"new")
    (hf_dir / "tokenizer" / "tokenizer.json").write_bytes(b'{"vocab": {"a"}}')
    data = bytearray(HF_FILES["model-00002-of-00002.safetensors"])
    data[0] ^= 1
    (hf_dir / "model-00002-of-00002.safetensors").write_bytes(bytes(data))
    code, out, err = cli("verify", "llama@1.0")
    assert code == 6
    assert "missing: llama@1.0 artifact model file config.json" in err
    assert "added: llama@1.0 artifact model file extra.bin" in err
    assert "size-mismatch: llama@1.0 artifact model file tokenizer/tokenizer.json" in err
    assert "hash-mismatch: llama@1.0 artifact model file model-00002-of-00002.safetensors" in err
    code, out, _ = cli("verify", "llama@1.0", "--json")
    res = json.loads(out)["results"][0]
    assert code == 6 and not res["ok"]
    assert {(f["path"], f["status"]) for f in res["files"]} == {
        ("config.json", "missing"), ("extra.bin", "added"), ("tokenizer/tokenizer.json", "size-mismatch"),
        ("model-00002-of-00002.safetensors", "hash-mismatch")}


def test_tree_moved_away_is_missing(cli, hf_dir):
    assert cli("register", "llama", "1.0", "-a", "model=hf-model/")[0] == 0
    hf_dir.rename(hf_dir.parent / "elsewhere")
    code, out, err = cli("verify", "llama@1.0")
    assert code == 6 and "missing" in out


# --------------------------------------------------------------------------- fetch


def test_fetch_writes_dest_role_path_and_is_idempotent(cli, hf_dir, project):
    (project / "tok.json").write_bytes(b"{}")
    assert cli("register", "llama", "1.0", "-a", "model=hf-model/", "-a", "tokenizer=tok.json")[0] == 0
    code, out, err = cli("fetch", "llama@1.0", "out")
    assert code == 0, err
    for rel, data in HF_FILES.items():
        assert (project / "out" / "model" / rel).read_bytes() == data
    assert (project / "out" / "tokenizer.json").read_bytes() == b"{}"
    assert "model" in out and "6 files" in out
    code, out, _ = cli("fetch", "llama@1.0", "out", "--json")
    files = json.loads(out)["files"]
    assert code == 0 and {f["status"] for f in files} == {"present"}
    assert sorted(f["file"] for f in files if f["role"] == "model") == sorted(HF_FILES)
    # --role picks artifacts (repeatable); an unknown role is exit 3
    code, out, _ = cli("fetch", "llama@1.0", "only-tok", "--role", "tokenizer", "--json")
    assert code == 0 and [f["role"] for f in json.loads(out)["files"]] == ["tokenizer"]
    assert sorted(os.listdir(project / "only-tok")) == ["tokenizer.json"]
    code, _, err = cli("fetch", "llama@1.0", "x", "--role", "nope")
    assert code == 3 and "has no artifact with role 'nope'" in err and not (project / "x").exists()


def test_fetch_is_all_or_nothing(cli, hf_dir, project):
    assert cli("register", "llama", "1.0", "-a", "model=hf-model/")[0] == 0
    (hf_dir / "tokenizer" / "tokenizer.json").write_bytes(b'{"vocab": {"x"}}')  # a later file changed
    code, _, err = cli("fetch", "llama@1.0", "out")
    assert code == 6 and "do not match" in err
    assert not (project / "out").exists()  # every file written and every directory created is gone
    (project / "out2").mkdir()
    (project / "out2" / "keep.txt").write_bytes(b"mine")
    assert cli("fetch", "llama@1.0", "out2")[0] == 6
    assert sorted(p.name for p in (project / "out2").rglob("*")) == ["keep.txt"]
    assert not [p for p in project.rglob("*modelreg-tmp*")]


def test_fetch_never_writes_through_a_symlink_in_dest(cli, hf_dir, project, tmp_path):
    assert cli("register", "llama", "1.0", "-a", "model=hf-model/")[0] == 0
    victim = tmp_path / "victim"
    victim.mkdir()
    (project / "out" / "model").mkdir(parents=True)
    (project / "out" / "model" / "tokenizer").symlink_to(victim)
    code, _, err = cli("fetch", "llama@1.0", "out")
    assert code == 2 and "symlink" in err
    assert list(victim.iterdir()) == []


def hostile_manifest(project: Path, files: list[dict], uri: str = "hf-model/", tree: str | None = None) -> Path:
    """A manifest object written straight into the store, as a pull request could (valid names, hostile list)."""
    from modelreg import canonical

    m = {"name": "evil", "version": "1", "artifacts": [
        {"role": "model", "uri": uri, "files": files, "size": sum(f["size"] for f in files),
         "tree": tree or "0" * 64}]}
    data = canonical.dump(m, ordered=("name", "version"))
    digest = hashlib.sha256(data).hexdigest()
    obj = project / ".modelreg" / "objects" / digest[:2] / digest[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)
    (project / ".modelreg" / "versions" / "evil").mkdir(parents=True, exist_ok=True)
    (project / ".modelreg" / "versions" / "evil" / "1").write_text(f"sha256:{digest}\n")
    return obj


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "a/../../x", "a//b", ".ssh/id_rsa", "a\\..\\b"])
def test_hostile_file_list_is_refused_before_any_read_or_write(cli, hf_dir, project, path):
    hostile_manifest(project, [{"path": path, "size": 1, "sha256": "0" * 64}])
    for argv in (["verify", "evil@1"], ["fetch", "evil@1", "out"]):
        code, out, err = cli(*argv)
        assert code == 6 and "invalid manifest" in err and "Traceback" not in err
    assert not (project / "out").exists()


@pytest.mark.parametrize("uri", ["file:///etc/", "file:///proc/self/"])
def test_a_tree_outside_the_allowed_roots_is_refused(cli, project, uri):
    files = [{"path": "passwd" if "etc" in uri else "environ", "size": 1, "sha256": "0" * 64}]
    hostile_manifest(project, files, uri, trees.tree_digest(files))
    for argv in (["verify", "evil@1"], ["fetch", "evil@1", "out"]):
        code, _, err = cli(*argv)
        assert code == 5 and "refusing to read" in err
    assert not (project / "out").exists()


def test_symlink_in_a_registered_tree_cannot_lead_outside(cli, project, tmp_path):
    d = make_tree(project / "d", {"a.bin": b"aaa"})
    assert cli("register", "m", "1", "-a", "model=d/")[0] == 0
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"aaa")  # same bytes: only the path rule can catch it
    (d / "a.bin").unlink()
    (d / "a.bin").symlink_to(secret)
    for argv in (["verify", "m@1"], ["fetch", "m@1", "out"]):
        code, _, err = cli(*argv)
        assert code == 5 and "out of the directory" in err
    assert not (project / "out").exists()


# --------------------------------------------------------------------------- upload


def test_upload_stores_each_file_once_by_content_and_fetch_restores_names(cli, project):
    store = project / "artifact-store"
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + "artifact_store: ./artifact-store\n")
    d = make_tree(project / "d", {"a.json": b"same", "sub/b.json": b"same", "c.bin": b"other"})
    code, _, err = cli("register", "m", "1", "-a", "model=d/", "--upload")
    assert code == 0, err
    a = art(cli, "m@1", "model")
    assert a["uri"] == "artifact-store/" and a["layout"] == "sha256"
    assert [f["path"] for f in a["files"]] == ["a.json", "c.bin", "sub/b.json"]
    objects = sorted(p for p in store.rglob("*") if p.is_file())
    assert len(objects) == 2  # shared content stored once
    assert {p.read_bytes() for p in objects} == {b"same", b"other"}
    import shutil

    shutil.rmtree(d)  # the original folder is gone: the store has it
    code, out, err = cli("fetch", "m@1", "out")
    assert code == 0, err
    assert (project / "out/model/sub/b.json").read_bytes() == b"same"
    assert (project / "out/model/c.bin").read_bytes() == b"other"
    assert cli("verify", "m@1")[0] == 0


def test_uploaded_single_file_keeps_its_name(cli, project):
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + "artifact_store: ./artifact-store\n")
    (project / "tokenizer.json").write_bytes(b'{"t": 1}')
    (project / "w.safetensors").write_bytes(b"w")
    assert cli("register", "m", "1", "-a", "tokenizer=tokenizer.json", "-a", "checkpoint=w.safetensors",
               "--upload")[0] == 0
    assert art(cli, "m@1", "tokenizer")["name"] == "tokenizer.json"
    code, out, err = cli("fetch", "m@1", "out")
    assert code == 0, err
    assert sorted(os.listdir(project / "out")) == ["checkpoint.safetensors", "tokenizer.json"]


# --------------------------------------------------------------------------- diff


def test_diff_shows_which_files_changed(cli, project):
    d = make_tree(project / "d", {"a.bin": b"a", "b.bin": b"b", "c.bin": b"c"})
    assert cli("register", "m", "1", "-a", "model=d/")[0] == 0
    (d / "b.bin").write_bytes(b"B")
    (d / "c.bin").unlink()
    (d / "e.bin").write_bytes(b"e")
    assert cli("register", "m", "2", "-a", "model=d/")[0] == 0
    code, out, _ = cli("diff", "m@1", "m@2", "--json")
    paths = {c["path"]: c["kind"] for c in json.loads(out)["changes"]}
    assert paths["artifacts.model.files.b.bin"] == "changed"
    assert paths["artifacts.model.files.c.bin"] == "removed"
    assert paths["artifacts.model.files.e.bin"] == "added"
    assert "artifacts.model.files.a.bin" not in paths
    code, out, _ = cli("diff", "m@1", "m@2")
    assert "artifacts.model.files.b.bin" in out


def test_reregistering_other_content_is_refused_before_hashing(cli, project, monkeypatch):
    d = make_tree(project / "d", {"a.bin": b"a" * 10})
    (project / "w.bin").write_bytes(b"w" * 100)
    assert cli("register", "m", "1", "-a", "model=d/", "-a", "w=w.bin", "-p", "lr=1")[0] == 0
    from modelreg import hashing

    calls = []
    monkeypatch.setattr(hashing, "sha256_file", lambda *a, **k: calls.append(a) or ("0" * 64, 0))
    (d / "a.bin").write_bytes(b"a" * 11)
    code, _, err = cli("register", "m", "1", "-a", "model=d/", "-a", "w=w.bin", "-p", "lr=1")
    assert code == 4 and "artifacts.model.size" in err and calls == []
    code, _, err = cli("register", "m", "1", "-a", "model=d/", "-a", "w=w.bin", "-p", "lr=2")
    assert code == 4 and "params.lr" in err and calls == []


# --------------------------------------------------------------------------- S3 prefixes (moto)


def test_s3_prefix_registers_verifies_and_fetches(s3, cli, project):
    for rel, data in HF_FILES.items():
        s3.put_object(Bucket=BUCKET, Key=f"runs/42/{rel}", Body=data)
    s3.put_object(Bucket=BUCKET, Key="runs/42/.hidden/x", Body=b"h")
    s3.put_object(Bucket=BUCKET, Key="runs/420/other.bin", Body=b"not mine")
    uri = f"s3://{BUCKET}/runs/42/"
    code, _, err = cli("register", "llama", "1.0", "-a", f"model={uri}")
    assert code == 0, err
    a = art(cli, "llama@1.0", "model")
    assert a["uri"] == uri and [f["path"] for f in a["files"]] == sorted(HF_FILES)
    assert all("sha256" not in f for f in a["files"])  # no ETag is ever taken for a hash
    code, out, _ = cli("verify", "llama@1.0", "--hash", "--json")
    res = json.loads(out)["results"][0]
    assert code == 0 and res["status"] == "unverified" and "nothing to compare" in res["message"]
    code, out, err = cli("fetch", "llama@1.0", "out")
    assert code == 6 and "no recorded sha256" in err and not (project / "out").exists()
    code, _, err = cli("register", "llama", "1.1", "-a", f"model={uri}", "--hash")
    assert code == 0, err
    a = art(cli, "llama@1.1", "model")
    assert {f["path"]: f["sha256"] for f in a["files"]} == {p: sha(d) for p, d in HF_FILES.items()}
    assert cli("verify", "llama@1.1", "--hash")[0] == 0
    code, _, err = cli("fetch", "llama@1.1", "out")
    assert code == 0, err
    assert (project / "out/model/tokenizer/tokenizer.json").read_bytes() == HF_FILES["tokenizer/tokenizer.json"]
    s3.put_object(Bucket=BUCKET, Key="runs/42/added.bin", Body=b"+")
    s3.delete_object(Bucket=BUCKET, Key="runs/42/config.json")
    code, out, err = cli("verify", "llama@1.1")
    assert code == 6 and "file added.bin" in err and "file config.json" in err


def test_s3_empty_prefix_is_not_found(s3, cli):
    code, _, err = cli("register", "m", "1", "-a", f"model=s3://{BUCKET}/nothing/")
    assert code == 3 and "no files under" in err


# --------------------------------------------------------------------------- a fake Hugging Face layout


@pytest.fixture
def fake_hf(monkeypatch):
    """``hf://`` served by an in-memory filesystem laid out like the Hub (``org/repo@rev/path``),
    whose listings carry an LFS sha256 for *.safetensors files, as the Hub's do. The real hub
    cannot be reached from the tests."""
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class FakeHF(MemoryFileSystem):
        protocol = ("hf",)
        store: dict = {}
        pseudo_dirs = [""]

        @classmethod
        def _strip_protocol(cls, path):
            path = str(path)
            if path.startswith("hf://"):
                path = path[5:]
            path = path.lstrip("/").rstrip("/")
            return "/" + path if path else ""

        def _lfs(self, info):
            if info.get("type") == "file" and info["name"].endswith(".safetensors"):
                data = self.store[info["name"]].getvalue()
                info = {**info, "lfs": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}
            return info

        def ls(self, path, detail=True, **kw):
            out = super().ls(path, detail=detail, **kw)
            return [self._lfs(i) for i in out] if detail else out

        def info(self, path, **kw):
            return self._lfs(super().info(path, **kw))

        def find(self, path, maxdepth=None, withdirs=False, detail=False, **kw):
            out = super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kw)
            return {k: self._lfs(v) for k, v in out.items()} if detail else out

    FakeHF.store = {}
    FakeHF.pseudo_dirs = [""]
    monkeypatch.setitem(uris._BACKENDS, "hf", None)
    fsspec.register_implementation("hf", FakeHF, clobber=True)
    fs = fsspec.filesystem("hf", skip_instance_cache=True)
    for rel, data in HF_FILES.items():
        fs.pipe(f"hf://acme/llama@abc123/{rel}", data)
    fs.pipe("hf://acme/llama@abc123/.gitattributes", b"*.safetensors filter=lfs")
    yield fs
    FakeHF.store.clear()


def test_hf_repo_revision_registers_with_free_lfs_hashes(fake_hf, cli, project):
    uri = "hf://acme/llama@abc123/"
    code, _, err = cli("register", "llama", "1.0", "-a", uri)
    assert code == 0, err
    a = art(cli, "llama@1.0", "model")  # "llama@abc123" is no role: the default is model
    assert a["uri"] == uri and [f["path"] for f in a["files"]] == sorted(HF_FILES)
    by = {f["path"]: f for f in a["files"]}
    assert by["model-00001-of-00002.safetensors"]["sha256"] == sha(HF_FILES["model-00001-of-00002.safetensors"])
    assert "sha256" not in by["config.json"]  # small files: no free hash, and never an ETag
    code, _, err = cli("register", "llama", "1.1", "-a", uri, "--hash")
    assert code == 0, err
    assert cli("verify", "llama@1.1", "--hash")[0] == 0
    code, _, err = cli("fetch", "llama@1.1", "out")
    assert code == 0, err
    assert (project / "out/model/config.json").read_bytes() == HF_FILES["config.json"]
    fake_hf.pipe("hf://acme/llama@abc123/config.json", b'{"model_type": "evil"}')
    code, _, err = cli("verify", "llama@1.1", "--hash")
    assert code == 6 and "file config.json" in err


# --------------------------------------------------------------------------- format


def test_tree_digest_is_checked_when_a_manifest_is_read(cli, project):
    obj = hostile_manifest(project, [{"path": "a.bin", "size": 1, "sha256": "0" * 64}])
    code, _, err = cli("show", "evil@1")
    assert code == 6 and "tree does not match" in err
    del obj


def test_validate_files_refuses_collisions():
    from modelreg.errors import UsageError

    with pytest.raises(UsageError, match="differ only by case"):
        trees.validate_files([{"path": "A.bin", "size": 1}, {"path": "a.bin", "size": 1}], "t")
    with pytest.raises(UsageError, match="as a file and as a directory"):
        trees.validate_files([{"path": "a", "size": 1}, {"path": "a/b", "size": 1}], "t")
    with pytest.raises(UsageError, match="twice"):
        trees.validate_files([{"path": "a", "size": 1}, {"path": "a", "size": 2}], "t")



