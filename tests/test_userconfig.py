"""The user's own settings file (modelreg.userconfig) and how it combines with the committed config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelreg import userconfig
from modelreg.errors import UsageError
from modelreg.trust import settings


def write_user(text: str) -> Path:
    p = userconfig.path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_path_follows_xdg_config_home_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "x"))
    assert userconfig.path() == tmp_path / "x" / "modelreg" / "config.yaml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert userconfig.path() == tmp_path / "h" / ".config" / "modelreg" / "config.yaml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # the spec says: ignore a relative value
    assert userconfig.path() == tmp_path / "h" / ".config" / "modelreg" / "config.yaml"


def test_absent_file_gives_defaults():
    cfg = userconfig.load()
    assert cfg.storage_options == {} and cfg.artifact_store is None and cfg.local_roots == ()
    assert userconfig.private_network() is False


@pytest.mark.parametrize("text, named", [
    ("endpoint: http://x\n", "unknown setting"),
    ("storage_options: [s3]\n", "storage_options"),
    ("local_roots: relative/dir\n", "local_roots"),
    ("local_roots: [relative/dir]\n", "not an absolute path"),
    ("allow_private_network: sometimes\n", "allow_private_network"),
    ("artifact_store: ./store\n", "absolute path"),
    ("artifact_store: https://u:secret@h/store\n", "user-info"),
    ("a: &x 1\nb: *x\n", "anchors"),
    ("local_roots: []\nlocal_roots: []\n", "duplicate"),
])
def test_strict_parse_names_the_problem(text, named, cli):
    write_user(text)
    with pytest.raises(UsageError) as info:
        userconfig.load()
    assert named in info.value.message and str(userconfig.path()) in info.value.message
    (Path.cwd() / "w.bin").write_bytes(b"w")
    code, _, err = cli("register", "m", "1.0", "-a", "s3://b/k", "--no-check")
    assert code == 0  # no I/O: the user config is not needed
    code, _, err = cli("verify", "m@1.0")
    assert code == 2 and named in err


def test_environment_wins_for_private_network(monkeypatch):
    write_user("allow_private_network: [127.0.0.1:9000]\n")
    assert userconfig.private_network() == frozenset({"127.0.0.1:9000"})
    monkeypatch.setenv("MODELREG_ALLOW_PRIVATE_NETWORK", "0")
    assert userconfig.private_network() is False
    monkeypatch.setenv("MODELREG_ALLOW_PRIVATE_NETWORK", "true")
    assert userconfig.private_network() is True


def test_local_roots_from_file_env_and_user_store(monkeypatch, tmp_path):
    write_user(f"local_roots: [{tmp_path / 'a'}]\nartifact_store: {tmp_path / 'store'}\n")
    monkeypatch.setenv("MODELREG_LOCAL_ROOTS", str(tmp_path / "b"))
    roots = userconfig.local_roots()
    assert roots == ((tmp_path / "a").resolve(), (tmp_path / "store").resolve(), (tmp_path / "b").resolve())
    assert userconfig.allows_local_path(tmp_path / "a" / "x" / "m.bin")
    assert not userconfig.allows_local_path(tmp_path / "c" / "m.bin")
    monkeypatch.setenv("MODELREG_LOCAL_ROOTS", "not/absolute")
    with pytest.raises(UsageError):
        userconfig.local_roots()


def test_user_store_receives_uploads_and_is_readable(cli, project, tmp_path):
    store = tmp_path / "user-store"
    write_user(f"artifact_store: {store}\n")
    (project / "w.bin").write_bytes(b"weights")
    code, out, err = cli("register", "m", "1.0", "-a", "w.bin", "--upload", "--json")
    assert code == 0, err
    uri = json.loads(cli("show", "m@1.0", "--json")[1])["manifest"]["artifacts"][0]["uri"]
    assert uri.startswith(store.resolve().as_uri())
    assert cli("verify", "m@1.0")[0] == 0  # the user's own store is an allowed local root
    assert cli("fetch", "m@1.0", tmp_path / "out")[0] == 0


def test_allow_list_sorts_committed_options():
    harmless, network = settings.split({
        "s3": {"anon": True, "endpoint_url": "http://x", "client_kwargs": {"region_name": "eu-west-1",
                                                                           "endpoint_url": "http://y"},
               "config_kwargs": {"connect_timeout": 5, "proxies": {"https": "http://p"}}},
        "gcs": {"block_size": 1024, "project": "p"},
        "https": {"block_size": 10, "headers": {"X-A": "1"}},
        "hf": {"endpoint": "http://z"},
    })
    assert harmless == {"s3": {"anon": True, "client_kwargs": {"region_name": "eu-west-1"},
                               "config_kwargs": {"connect_timeout": 5}},
                        "gs": {"block_size": 1024}, "http": {"block_size": 10}}
    assert network == {"s3": {"endpoint_url": "http://x", "client_kwargs": {"endpoint_url": "http://y"},
                              "config_kwargs": {"proxies": {"https": "http://p"}}},
                       "gs": {"project": "p"}, "http": {"headers": {"X-A": "1"}}, "hf": {"endpoint": "http://z"}}
    # a listed option with a value outside its check is a network setting too
    _, network = settings.split({"s3": {"anon": "http://x", "client_kwargs": {"region_name": "evil.com#"}}})
    assert network == {"s3": {"anon": "http://x", "client_kwargs": {"region_name": "evil.com#"}}}


def test_fsck_names_unapproved_settings_as_a_warning(cli, project):
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + "storage_options:\n  s3:\n    endpoint_url: http://minio:9000\n")
    code, out, _ = cli("fsck")
    assert code == 0 and "storage_options.s3.endpoint_url" in out and "modelreg trust" in out
    assert cli("trust")[0] == 0
    code, out, _ = cli("fsck")
    assert code == 0 and "endpoint_url" not in out
