"""The history-writer API importers use: past events through the write protocol, and config.add_stages."""

from __future__ import annotations

import pytest

from conftest import log_lines, snapshot
from modelreg import config as config_mod
from modelreg.errors import Conflict, UsageError
from modelreg.history import Origin
from modelreg.registry import Registry


def _origin(time: str, actor: str = "alice@example.com", **source) -> Origin:
    return Origin(time, actor, "imported from a test", {"source": "test", **source})


def _manifest(version: str, weights: str = "w") -> dict:
    return {"name": "m", "version": version, "meta": {"weights": weights}}


def test_past_events_keep_their_time_and_actor(reg: Registry, project):
    with reg.history("m") as w:
        w.register(_manifest("1.0"), _origin("2020-01-01T00:00:00.000000Z", tag="a"))
        w.register(_manifest("2.0", "x"), _origin("2020-01-02T00:00:00.000000Z", "bob"))
        w.move("production", "1.0", _origin("2020-01-03T00:00:00.000000Z"))
        w.move("production", "2.0", _origin("2020-01-04T00:00:00.000000Z"))
        w.archive("1.0", _origin("2020-01-05T00:00:00.000000Z"))
        w.note(_origin("2020-01-06T00:00:00.000000Z"), version="2.0", stage="production")
    lines = log_lines(project, "m")
    assert [(e["action"], e["time"][:10], e["actor"]) for e in lines] == [
        ("register", "2020-01-01", "alice@example.com"), ("register", "2020-01-02", "bob"),
        ("promote", "2020-01-03", "alice@example.com"), ("promote", "2020-01-04", "alice@example.com"),
        ("archive", "2020-01-05", "alice@example.com"), ("import", "2020-01-06", "alice@example.com")]
    assert lines[0]["data"]["import"] == {"source": "test", "tag": "a"}
    assert [e["id"] for e in lines] == sorted(e["id"] for e in lines)
    assert reg.resolve("m@production").version == "2.0"
    assert reg.show("m@1.0").registered_at == "2020-01-01T00:00:00.000000Z"
    from modelreg.fsck import fsck

    assert fsck(reg).ok and not fsck(reg).warnings


def test_the_log_never_goes_back_in_time(reg: Registry, project):
    reg.register("m", "1.0", meta={"weights": "w"}, actor="native")
    newest = reg.events("m")[-1]
    with reg.history("m") as w:
        ev = w.move("staging", "1.0", _origin("2001-01-01T00:00:00.000000Z"))
        ev2 = w.note(_origin("2001-01-01T00:00:00.000000Z"))
    assert ev.time == newest.time and ev.data["import"]["time"] == "2001-01-01T00:00:00.000000Z"
    assert newest.id < ev.id < ev2.id and ev2.time == newest.time
    assert [e.action for e in reg.events("m")] == ["register", "promote", "import"]


def test_identical_again_is_nothing_other_content_is_a_conflict(reg: Registry):
    with reg.history("m") as w:
        assert w.register(_manifest("1.0"), _origin("2020-01-01T00:00:00.000000Z"))
        assert w.register(_manifest("1.0"), _origin("2020-01-01T00:00:00.000000Z")) is None
        assert w.move("production", "1.0", _origin("2020-01-02T00:00:00.000000Z"))
        assert w.move("production", "1.0", _origin("2020-01-02T00:00:00.000000Z")) is None
        assert w.archive("1.0", _origin("2020-01-03T00:00:00.000000Z"))  # clears production first
        assert w.archive("1.0", _origin("2020-01-03T00:00:00.000000Z")) == []
        with pytest.raises(Conflict):
            w.register(_manifest("1.0", "other"), _origin("2020-01-04T00:00:00.000000Z"))
    assert reg.stage_holders("m") == {}
    assert [e.action for e in reg.events("m")] == ["register", "promote", "clear", "archive"]


def test_only_if_and_a_lost_event(reg: Registry, project):
    with reg.history("m") as w:
        w.register(_manifest("1.0"), _origin("2020-01-01T00:00:00.000000Z"))
        w.register(_manifest("2.0", "x"), _origin("2020-01-01T00:00:01.000000Z"))
        w.move("production", "1.0", _origin("2020-01-02T00:00:00.000000Z"))
        assert w.move("production", None, _origin("2020-01-03T00:00:00.000000Z"), only_if="2.0") is None
    # a crash between the ref's rename and the event line: the ref holds 2.0, the log says 1.0
    reg.refs.set_stage_if_equals("m", "production", reg.resolve("m@1.0").digest, reg.resolve("m@2.0").digest)
    with reg.history("m") as w:
        ev = w.move("production", "2.0", _origin("2020-01-04T00:00:00.000000Z"), only_if="1.0")
    assert ev is not None and ev.from_ == reg.resolve("m@1.0").digest
    from modelreg.fsck import fsck

    assert not fsck(reg).warnings


def test_dry_run_and_batches_write_nothing_until_done(reg: Registry, project):
    before = snapshot(project / ".modelreg")
    with reg.history("m", dry_run=True) as w:
        with w.batch() as written:
            w.register(_manifest("1.0"), _origin("2020-01-01T00:00:00.000000Z", tag="t1"))
            w.move("production", "1.0", _origin("2020-01-02T00:00:00.000000Z", tag="t1"))
        assert [e.action for e in written] == ["register", "promote"]
        assert written[-1].data["import"]["last"] is True
    assert snapshot(project / ".modelreg") == before

    with reg.history("m") as w:
        with pytest.raises(RuntimeError):
            with w.batch():
                w.register(_manifest("1.0"), _origin("2020-01-01T00:00:00.000000Z"))
                raise RuntimeError("cut short")
    assert not reg.refs.version_names("m")  # nothing of the failed batch reached the disk
    with reg.history("m") as w:
        with w.batch() as written:
            w.register(_manifest("1.0"), _origin("2020-01-01T00:00:00.000000Z", tag="t1"))
            w.move("production", "1.0", _origin("2020-01-02T00:00:00.000000Z", tag="t1"))
    lines = log_lines(project, "m")
    assert len({e["data"]["import"]["batch"] for e in lines}) == 1
    assert [e["data"]["import"].get("last") for e in lines] == [None, True]
    events = reg.events("m")
    with reg.history("m") as w:
        assert w.complete(events) == events
        assert w.complete(events[:1]) == []  # a batch without its last event was cut short


def test_add_stages_keeps_the_file_as_written(project):
    cfg = project / ".modelreg" / "config.yaml"
    text = cfg.read_text()
    assert config_mod.add_stages(project / ".modelreg", ["dev", "staging", "prod"]) == ["dev", "prod"]
    new = cfg.read_text()
    assert "# Promotion rules" in new and "policy:" in new  # comments and sections kept
    assert config_mod.load(cfg).stages == ("staging", "production", "dev", "prod")
    assert config_mod.add_stages(project / ".modelreg", ["dev"]) == []
    assert cfg.read_text() == new
    with pytest.raises(UsageError):
        config_mod.add_stages(project / ".modelreg", ["Bad Stage"])
    cfg.write_text("format: 1\n# no stages: the defaults\n")
    assert config_mod.add_stages(project / ".modelreg", ["qa"]) == ["qa"]
    assert config_mod.load(cfg).stages == ("staging", "production", "qa")
    assert text != new
