"""Row 7 (files): URIs read from the registry may not name /proc, /dev, FIFOs or files outside the project."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from .netkit import forge_stage, forge_version, leaked


def _hostile_uris(victim, tmp_path):
    outside = tmp_path / "outside" / "secret.txt"
    outside.parent.mkdir()
    outside.write_text("victim's private file\n")
    (victim / "fifo").unlink(missing_ok=True)
    os.mkfifo(victim / "fifo")
    os.symlink("/proc/self/environ", victim / "env-link.bin")
    return {
        "proc": "/proc/self/environ",
        "proc-uri": "file:///proc/self/environ",
        "passwd": "file:///etc/passwd",
        "devzero": "/dev/zero",
        "outside": str(outside),
        "outside-uri": outside.as_uri(),
        "dotdot": "../outside/secret.txt",
        "fifo": "fifo",
        "link": "env-link.bin",
    }


@pytest.mark.parametrize("role", ["proc", "proc-uri", "passwd", "devzero", "outside", "outside-uri", "dotdot",
                                  "fifo", "link"])
def test_fetch_and_verify_never_read_special_or_outside_files(victim, run, tmp_path, role):
    uri = _hostile_uris(victim, tmp_path)[role]
    digest = forge_version(victim, "bot", "1.0.0", [{"role": "model", "uri": uri}])  # no sha256, no size
    forge_stage(victim, "bot", "production", digest)
    dest = tmp_path / "dest"
    code, out, err = run("fetch", "bot@1.0.0", dest, "--allow-unverified")
    assert code in (2, 5), (role, code, err)
    assert len(err.strip().splitlines()) == 1 and not leaked(out + err)
    assert not dest.exists()
    for args in (("verify", "bot@1.0.0"), ("verify", "--all")):
        code, out, err = run(*args)
        assert code in (2, 5, 6), (role, args, err)
        assert not leaked(out + err)
    code, out, err = run("fsck", "--artifacts", "--json")
    assert code == 6 and not leaked(out + err)
    assert any(p["severity"] == "error" and "model" in p["path"] for p in json.loads(out)["problems"])


def test_refusals_say_why_and_how_to_allow(victim, run, tmp_path):
    uris = _hostile_uris(victim, tmp_path)
    forge_version(victim, "a", "1.0.0", [{"role": "model", "uri": uris["proc"]}])
    forge_version(victim, "b", "1.0.0", [{"role": "model", "uri": uris["outside"]}])
    code, _, err = run("fetch", "a@1.0.0", tmp_path / "d", "--allow-unverified")
    assert code == 5 and "/proc" in err
    code, _, err = run("verify", "b@1.0.0")
    assert code == 5 and "outside the project" in err and "MODELREG_LOCAL_ROOTS" in err


def test_user_allowed_local_roots_are_readable_but_never_proc(victim, run, tmp_path, monkeypatch):
    uris = _hostile_uris(victim, tmp_path)
    data = (tmp_path / "outside" / "secret.txt").read_bytes()
    forge_version(victim, "b", "1.0.0", [{"role": "model", "uri": uris["outside-uri"], "size": len(data),
                                          "sha256": hashlib.sha256(data).hexdigest()}])
    forge_version(victim, "a", "1.0.0", [{"role": "model", "uri": uris["proc"]}])
    monkeypatch.setenv("MODELREG_LOCAL_ROOTS", str(tmp_path / "outside"))
    assert run("verify", "b@1.0.0")[0] == 0
    assert run("fetch", "b@1.0.0", tmp_path / "d")[0] == 0
    monkeypatch.setenv("MODELREG_LOCAL_ROOTS", "/")
    assert run("verify", "a@1.0.0")[0] == 5  # special files stay refused whatever the roots


def test_user_config_local_roots(victim, run, tmp_path, monkeypatch):
    uris = _hostile_uris(victim, tmp_path)
    forge_version(victim, "b", "1.0.0", [{"role": "model", "uri": uris["outside"]}])
    assert run("verify", "b@1.0.0")[0] == 5
    cfg = tmp_path / "xdg" / "modelreg" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"local_roots:\n- {tmp_path / 'outside'}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert run("verify", "b@1.0.0")[0] == 0


def test_a_path_the_user_types_is_the_users_choice(victim, run, tmp_path):
    outside = tmp_path / "mine.bin"
    outside.write_bytes(b"weights")
    code, _, err = run("register", "mine", "1.0.0", "-a", str(outside))
    assert code == 0, err
