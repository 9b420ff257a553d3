"""Metrics, tags, approvals and bindings: events in the model's log, folded per version."""

from __future__ import annotations

import json

import pytest

from _policy_support import Cli, log_lines, make_registry
from modelreg import log
from modelreg.errors import NotFound, UsageError
from modelreg.fsck import fsck
from modelreg.log import Event


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELREG_ACTOR", "alice")
    r = make_registry(tmp_path)
    r.register("bot", "1.0.0", tags=["nlp"])
    r.register("bot", "1.1.0")
    return r


@pytest.fixture
def cli(reg, capsys):
    return Cli(reg, capsys)


# ------------------------------------------------------------------- metrics
def test_metrics_merge_two_suites_and_overwrite(reg):
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.91, "f1": 0.88})
    reg.set_metrics("bot@1.0.0", "latency", {"p95_ms": 180})
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.93, "recall": 0.8})
    assert reg.metrics("bot@1.0.0") == {
        "core-v1": {"score": 0.93, "f1": 0.88, "recall": 0.8},
        "latency": {"p95_ms": 180},
    }
    assert reg.metrics("bot@1.0.0", "latency") == {"p95_ms": 180}
    assert reg.metrics("bot@1.1.0") == {}
    events = [e for e in log_lines(reg, "bot") if e["action"] == "metrics"]
    assert len(events) == 3
    assert events[0]["version"] == "1.0.0" and events[0]["to"] == reg.resolve("bot@1.0.0").digest
    assert events[0]["data"] == {"suite": "core-v1", "values": {"score": 0.91, "f1": 0.88}}


def test_metrics_cli_types_values_by_the_one_rule(reg, cli):
    code, _, err = cli("metrics", "set", "bot@1.0.0", "--suite", "core-v1",
                       "score=0.91", "n=3", "ok=true", "name=abc", "ver=1.10", "big=1e3", 'tag="1.10"')
    assert code == 0, err
    values = cli.json("metrics", "show", "bot@1.0.0", "--suite", "core-v1")
    assert values == {"score": 0.91, "n": 3, "ok": True, "name": "abc", "ver": 1.1, "big": 1000.0, "tag": "1.10"}
    assert type(values["score"]) is float and type(values["n"]) is int and values["ok"] is True
    cli("metrics", "set", "bot@1.0.0", "--suite", "core-v1", "ok=false", "n=2.5")
    values = reg.metrics("bot@1.0.0", "core-v1")
    assert values["ok"] is False and values["n"] == 2.5 and values["score"] == 0.91


def test_metrics_file_merges_and_pairs_win(reg, cli, tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"score": 0.5, "f1": 0.7, "passed": True}))
    code, _, err = cli("metrics", "set", "bot@1.0.0", "--suite", "core-v1", "--file", str(f), "score=0.9")
    assert code == 0, err
    assert reg.metrics("bot@1.0.0", "core-v1") == {"score": 0.9, "f1": 0.7, "passed": True}


def test_metrics_refusals(reg, cli, tmp_path):
    assert cli("metrics", "set", "bot@1.0.0", "--suite", "Bad Suite", "a=1")[0] == 2
    assert cli("metrics", "set", "bot@1.0.0", "--suite", "core-v1")[0] == 2
    assert cli("metrics", "set", "bot@9", "--suite", "core-v1", "a=1")[0] == 3
    (tmp_path / "list.json").write_text("[1, 2]")
    code, _, err = cli("metrics", "set", "bot@1.0.0", "--suite", "s", "--file", str(tmp_path / "list.json"))
    assert code == 2 and "JSON object" in err
    code, _, err = cli("metrics", "show", "bot@1.0.0", "--suite", "nope")
    assert code == 3 and "no metrics for suite 'nope'" in err
    with pytest.raises(UsageError, match="finite"):
        reg.set_metrics("bot@1.0.0", "core-v1", {"score": float("nan")})
    assert not [e for e in log_lines(reg, "bot") if e["action"] == "metrics"]


def test_metrics_show_text(reg, cli):
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.9})
    code, out, _ = cli("metrics", "show", "bot@1.0.0")
    assert code == 0 and out.split() == ["core-v1", "score", "0.9"]


# ---------------------------------------------------------------------- tags
def test_tags_are_manifest_tags_plus_added_minus_removed(reg, cli):
    assert cli("tag", "bot@1.0.0", "add", "prod-candidate", "reviewed")[0] == 0
    assert cli("tag", "bot@1.0.0", "rm", "nlp")[0] == 0
    info = cli.json("show", "bot@1.0.0")
    assert info["tags"] == ["prod-candidate", "reviewed"]
    assert info["manifest"]["tags"] == ["nlp"]  # the manifest never changes
    code, _, err = cli("tag", "bot@1.0.0", "add", "reviewed")
    assert code == 0 and "nothing changed" in err
    cli("tag", "bot@1.0.0", "add", "nlp")
    cli("tag", "bot@1.0.0", "rm", "reviewed")
    assert reg.show("bot@1.0.0").tags == ["nlp", "prod-candidate"]
    tag_events = [e for e in log_lines(reg, "bot") if e["action"] == "tag"]
    assert [e["data"] for e in tag_events] == [
        {"add": ["prod-candidate", "reviewed"], "remove": []}, {"add": [], "remove": ["nlp"]},
        {"add": ["nlp"], "remove": []}, {"add": [], "remove": ["reviewed"]},
    ]


def test_tag_refusals(cli):
    assert cli("tag", "bot@1.0.0", "toggle", "x")[0] == 2
    assert cli("tag", "bot@1.0.0", "add", "Not A Tag")[0] == 2


# ----------------------------------------------------------------- approvals
def test_approval_one_per_actor_and_stage(reg, cli):
    assert cli("approve", "bot@1.0.0", "--comment", "first look")[0] == 0
    assert cli("approve", "bot@1.0.0", "--comment", "looked again")[0] == 0  # alice again: replaces
    assert cli("approve", "bot@1.0.0", "--actor", "bob")[0] == 0
    assert cli("approve", "bot@1.0.0", "--stage", "staging", "--actor", "carol")[0] == 0
    approvals = cli.json("show", "bot@1.0.0")["approvals"]
    assert sorted(approvals["production"]) == ["alice", "bob"]
    assert approvals["production"]["alice"]["comment"] == "looked again"
    assert list(approvals["staging"]) == ["carol"]
    report = reg.check("bot@1.0.0", "production")
    assert report.passed is False  # default rule: never in staging; approvals are not gated by default
    code, _, err = cli("approve", "bot@1.0.0", "--stage", "canary")
    assert code == 2 and "unknown stage 'canary'" in err


# ------------------------------------------------------------------ bindings
def test_bind_and_unbind(reg, cli):
    code, _, err = cli("bind", "bot@1.0.0", "--provider", "sagemaker", "--id", "bot-100",
                       "--endpoint", "https://x.example/invoke", "--param", "instances=2", "--param", "gpu=true")
    assert code == 0, err
    b = cli.json("show", "bot@1.0.0")["bindings"]["sagemaker"]
    assert b["id"] == "bot-100" and b["endpoint"] == "https://x.example/invoke"
    assert b["params"] == {"instances": 2, "gpu": True} and b["actor"] == "alice"
    code, out, _ = cli("show", "bot@1.0.0")
    assert "binding:     sagemaker: bot-100 at https://x.example/invoke" in out
    assert cli("unbind", "bot@1.0.0", "--provider", "sagemaker")[0] == 0
    assert reg.show("bot@1.0.0").bindings == {}
    code, _, err = cli("unbind", "bot@1.0.0", "--provider", "sagemaker")
    assert code == 0 and "nothing changed" in err
    assert cli("bind", "bot@1.0.0", "--provider", "x", "--id", " ")[0] == 2
    assert cli("bind", "bot@1.0.0", "--provider", "Bad!", "--id", "a")[0] == 2


# ------------------------------------------------------ show, diff, log, fsck
def test_show_json_and_text_include_annotations(reg, cli):
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.9})
    reg.tag("bot@1.0.0", add=["gold"])
    reg.approve("bot@1.0.0", "production", "ok")
    info = cli.json("show", "bot@1.0.0")
    assert info["metrics"] == {"core-v1": {"score": 0.9}}
    assert info["tags"] == ["gold", "nlp"]
    assert "alice" in info["approvals"]["production"]
    assert info["bindings"] == {}
    _, out, _ = cli("show", "bot@1.0.0")
    assert "tags:        gold, nlp" in out and "metrics:     core-v1: score=0.9" in out
    assert "approvals:   production: alice" in out
    listing = cli.json("ls", "bot")
    assert listing[0]["metrics"] == {"core-v1": {"score": 0.9}} and "tags" not in listing[0]


def test_diff_includes_metric_and_tag_differences(reg, cli):
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.8, "f1": 0.7})
    reg.set_metrics("bot@1.1.0", "core-v1", {"score": 0.9, "f1": 0.7})
    reg.set_metrics("bot@1.1.0", "latency", {"p95_ms": 120})
    reg.tag("bot@1.1.0", add=["gold"])
    d = cli.json("diff", "bot@1.0.0", "bot@1.1.0")
    ann = {c["path"]: c for c in d["annotations"]}
    assert ann["metrics.core-v1.score"] == {"path": "metrics.core-v1.score", "kind": "changed", "old": 0.8, "new": 0.9}
    assert ann["metrics.latency.p95_ms"]["kind"] == "added"
    assert "metrics.core-v1.f1" not in ann
    assert ann["tags"]["old"] == ["nlp"] and ann["tags"]["new"] == ["gold"]
    assert any(c["path"] == "version" for c in d["changes"])
    _, out, _ = cli("diff", "bot@1.0.0", "bot@1.1.0")
    assert "# metrics and tags" in out and "+ metrics.core-v1.score: 0.9" in out


def test_log_text_names_annotations(reg, cli):
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.9})
    reg.approve("bot@1.0.0", "production", "lgtm", actor="bob")
    _, out, _ = cli("log", "bot")
    assert "metrics   bot@1.0.0 [core-v1] score=0.9" in out
    assert "approve   bot@1.0.0 for production: lgtm  by bob" in out


def test_reading_one_version_reads_only_its_models_log(reg, monkeypatch):
    from modelreg.derived import logtail

    reg.register("other", "1")
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.9})
    seen = []
    real, real_tail = log.read, logtail.open_log

    def spy(logs_dir, model):
        seen.append(model)
        return real(logs_dir, model)

    def spy_tail(logs_dir, model):
        seen.append(model)
        return real_tail(logs_dir, model)

    monkeypatch.setattr(log, "read", spy)
    monkeypatch.setattr(logtail, "open_log", spy_tail)
    assert reg.show("bot@1.0.0").metrics == {"core-v1": {"score": 0.9}}
    reg.metrics("bot@1.0.0")
    reg.check("bot@1.0.0", "production")
    assert set(seen) == {"bot"}


def test_union_merged_logs_fold_the_same(reg):
    """Two branches append annotations; git's union merge keeps both sides' lines in any order."""
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.8})
    path = reg.logs_dir / "bot.jsonl"
    base = path.read_bytes()
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.9})
    reg.approve("bot@1.0.0", "production", actor="bob")
    ours = path.read_bytes()[len(base):]
    path.write_bytes(base)
    reg.tag("bot@1.0.0", add=["gold"])
    reg.approve("bot@1.0.0", "production", actor="carol")
    theirs = path.read_bytes()[len(base):]
    results = []
    for merged in (base + ours + theirs, base + theirs + ours, base + ours + theirs + ours):
        path.write_bytes(merged)
        info = reg.show("bot@1.0.0")
        results.append((info.metrics, info.tags, sorted(info.approvals["production"])))
    assert results[0] == results[1] == results[2]
    assert results[0] == ({"core-v1": {"score": 0.9}}, ["gold", "nlp"], ["bob", "carol"])


def test_fsck_flags_annotation_of_missing_version(reg):
    reg.set_metrics("bot@1.0.0", "core-v1", {"score": 0.9})
    assert fsck(reg).ok
    digest = reg.resolve("bot@1.0.0").digest
    log.append(reg.logs_dir, Event("metrics", "bot", "mallory", version="9.9.9", to=digest,
                                   data={"suite": "s", "values": {"a": 1}}))
    log.append(reg.logs_dir, Event("tag", "bot", "mallory", version="1.1.0", to=digest, data={"add": ["x"]}))
    messages = [p.message for p in fsck(reg).errors]
    assert any("bot@9.9.9, which does not exist" in m for m in messages)
    assert any("tag event" in m and "for bot@1.1.0" in m for m in messages)


def test_not_found_versions(reg):
    with pytest.raises(NotFound):
        reg.metrics("bot@2.0.0")
