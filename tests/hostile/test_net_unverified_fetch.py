"""`fetch` of an artifact with no recorded sha256 needs --allow-unverified (exit 6 without it)."""

from __future__ import annotations

import json

from .netkit import forge_version


def test_unhashed_artifact_is_refused_then_fetched_with_the_flag(victim, run, tmp_path):
    (victim / "w.bin").write_bytes(b"weights")
    forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": "w.bin", "size": 7}])
    code, out, err = run("fetch", "bot@1.0.0", tmp_path / "d")
    assert code == 6 and "--allow-unverified" in err and "no recorded sha256" in err
    assert not (tmp_path / "d").exists()
    code, out, err = run("fetch", "bot@1.0.0", tmp_path / "d", "--allow-unverified", "--json")
    assert code == 0, err
    assert json.loads(out)["files"][0]["status"] == "unverified"
    assert (tmp_path / "d" / "model.bin").read_bytes() == b"weights"


def test_hashed_artifacts_need_no_flag(victim, run, tmp_path):
    (victim / "w.bin").write_bytes(b"weights")
    assert run("register", "bot", "1.0.0", "-a", "w.bin")[0] == 0
    code, out, err = run("fetch", "bot@1.0.0", tmp_path / "d")
    assert code == 0 and out.split()[0] == "downloaded"
