"""Retention from configuration: policy.retention validated, prune without --keep, auto-archive at
registration, prune --purge of the artifact store, and stats per model and in total."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import log_lines, snapshot
from servers import BUCKET, sha

from modelreg.errors import UsageError
from modelreg.registry import Registry

MODEL = "m"


def add_policy(project: Path, text: str) -> None:
    """Append keys under the ``policy:`` block conftest's relax_policy left last in config.yaml."""
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + "".join(f"  {line}\n" for line in text.splitlines()))


def add_config(project: Path, text: str) -> None:
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(text + cfg.read_text())  # top-level keys first, the policy block stays last


def archived(cli, version: str, model: str = MODEL) -> bool:
    return json.loads(cli("show", f"{model}@{version}", "--json")[1])["archived"]


def register_files(cli, project, versions, *, model=MODEL, upload=True, same=False):
    """Each version with its own file (or all with the same bytes), uploaded to the store."""
    for i, v in enumerate(versions):
        data = b"shared weights" if same else f"weights of {model} {v}".encode()
        (project / f"w{i}.bin").write_bytes(data)
        code, _, err = cli("register", model, v, "-a", f"model=w{i}.bin", *(["--upload"] if upload else []))
        assert code == 0, err


# ------------------------------------------------------------------ the rule
@pytest.mark.parametrize("text, needle", [
    ("retention: {keep: -1}", "policy.retention.keep: -1 must be a non-negative integer"),
    ("retention: {keep: true}", "policy.retention.keep: True must be a non-negative integer"),
    ("retention: {keep: 2, auto: yes please}", "policy.retention.auto"),
    ("retention: {auto: true}", "auto: true needs keep: N"),
    ("retention: {purge_after_days: -3}", "policy.retention.purge_after_days"),
    ("retention: {kep: 3}", "unknown key policy.retention.'kep' (did you mean 'keep'?)"),
    ("retention: 5", "policy.retention: must be a mapping"),
])
def test_a_bad_retention_rule_is_refused_naming_the_key(cli, project, text, needle):
    assert cli("register", MODEL, "1.0.0")[0] == 0
    add_policy(project, text)
    before = snapshot(project / ".modelreg")
    for args in (["prune", MODEL], ["policy", "show"], ["register", MODEL, "2.0.0"]):
        code, out, err = cli(*args, "--json")
        assert code == 2 and needle in err and err.count("\n") == 1, (args, err)
        assert json.loads(out)["error"]["code"] == 2
    assert snapshot(project / ".modelreg") == before


def test_policy_show_prints_the_rule(cli, project):
    add_policy(project, "retention: {keep: 3, auto: true, purge_after_days: 30}")
    data = json.loads(cli("policy", "show", "--json")[1])
    assert data["policy"]["retention"] == {"keep": 3, "auto": True, "purge_after_days": 30}


# ------------------------------------------------------------------ prune
def test_prune_without_keep_uses_the_config_and_names_the_rule(cli, project):
    for v in ("1", "2", "3", "4"):
        assert cli("register", MODEL, v)[0] == 0
    assert cli("promote", f"{MODEL}@1", "production")[0] == 0
    code, _, err = cli("prune", MODEL)
    assert code == 2 and "--keep" in err and "policy.retention.keep" in err
    add_policy(project, "retention: {keep: 2}")
    code, out, _ = cli("prune", MODEL, "--json")
    assert code == 0 and json.loads(out)["keep"] == 2 and json.loads(out)["applied"] is False
    assert [r["version"] for r in json.loads(out)["archived"]] == ["2"]  # 1 holds production
    assert not archived(cli, "2")
    assert cli("prune", MODEL, "--apply")[0] == 0
    assert archived(cli, "2") and not archived(cli, "1") and not archived(cli, "3")
    ev = [e for e in log_lines(project, MODEL) if e["action"] == "archive"][-1]
    assert ev["reason"] == "policy.retention: keep 2" and ev["data"] == {
        "retention": {"keep": 2, "auto": False, "purge_after_days": None}}
    # --keep still wins over the rule
    code, out, _ = cli("prune", MODEL, "--keep", "0", "--json")
    assert [r["version"] for r in json.loads(out)["archived"]] == ["3", "4"]


def test_prune_without_a_name_prunes_every_model(cli, project):
    for model in ("a", "b"):
        for v in ("1", "2", "3"):
            assert cli("register", model, v, "--new-model")[0] == 0
    add_policy(project, "retention: {keep: 1}")
    code, out, _ = cli("prune")
    assert code == 0 and out.split() == ["a@1", "a@2", "b@1", "b@2"]
    code, out, _ = cli("prune", "--apply", "--json")
    assert code == 0 and len(json.loads(out)["archived"]) == 4
    assert archived(cli, "2", "b") and not archived(cli, "3", "b")


def test_auto_retention_archives_at_registration_in_the_same_lock(cli, project):
    add_policy(project, "retention: {keep: 2, auto: true}")
    for v in ("1.0.0", "1.1.0"):
        assert cli("register", MODEL, v)[0] == 0
    assert cli("promote", f"{MODEL}@1.0.0", "production")[0] == 0
    code, out, err = cli("register", MODEL, "1.2.0", "--json")
    assert code == 0 and json.loads(out)["pruned"] == []  # the oldest holds production: never archived
    code, out, err = cli("register", MODEL, "1.3.0")
    assert code == 0 and "Archived m@1.1.0 (policy.retention: keep 2, applied at registration)" in err
    assert archived(cli, "1.1.0") and not archived(cli, "1.0.0") and not archived(cli, "1.2.0")
    events = log_lines(project, MODEL)
    assert [e["action"] for e in events[-2:]] == ["register", "archive"]
    assert events[-1]["reason"] == "policy.retention: keep 2, applied at registration"
    assert events[-1]["data"]["retention"]["auto"] is True
    # an identical re-registration changes nothing, retention included
    before = snapshot(project / ".modelreg")
    assert cli("register", MODEL, "1.3.0")[0] == 0 and snapshot(project / ".modelreg") == before
    # the library reports what it archived
    reg = Registry.open(project / ".modelreg")
    res = reg.register(MODEL, "1.4.0")
    assert [r.version for r in res.pruned] == ["1.2.0"]


# ------------------------------------------------------------------ purge
NOW = datetime.now(timezone.utc)


@pytest.fixture
def store_registry(cli, project):
    """A local artifact store; 1.0 and 1.1 archived, 1.2 live; 1.1 shares its bytes with 1.2."""
    add_config(project, "artifact_store: store\n")
    add_policy(project, "retention: {purge_after_days: 30}")
    (project / "a.bin").write_bytes(b"only in 1.0")
    (project / "b.bin").write_bytes(b"shared by 1.1 and 1.2")
    (project / "local.bin").write_bytes(b"a project file, not in the store")
    assert cli("register", MODEL, "1.0", "-a", "model=a.bin", "--upload")[0] == 0
    assert cli("register", MODEL, "1.1", "-a", "model=b.bin", "--upload")[0] == 0
    assert cli("register", MODEL, "1.2", "-a", "model=b.bin", "--upload")[0] == 0
    assert cli("register", MODEL, "0.9", "-a", "local.bin")[0] == 0
    for v in ("1.0", "1.1", "0.9"):
        assert cli("archive", f"{MODEL}@{v}")[0] == 0
    return Registry.open(project / ".modelreg")


def store_path(project: Path, data: bytes) -> Path:
    h = sha(data)
    return project / "store" / "sha256" / h[:2] / h[2:]


def test_purge_deletes_only_unshared_store_content_of_long_archived_versions(cli, project, store_registry):
    reg = store_registry
    only, shared = store_path(project, b"only in 1.0"), store_path(project, b"shared by 1.1 and 1.2")
    # archived today: younger than 30 days, nothing to purge
    code, out, _ = cli("prune", "--purge", "--apply", "--json")
    assert code == 0 and json.loads(out)["versions"] == [] and only.exists()
    # 31 days later (the library takes the time): a dry run first
    later = NOW + timedelta(days=31)
    before = snapshot(project / ".modelreg")
    report = reg.purge(MODEL, now=later)
    assert [(v.version, [a["uri"] for a in v.artifacts]) for v in report.versions] == [
        ("1.0", [f"store/sha256/{sha(b'only in 1.0')[:2]}/{sha(b'only in 1.0')[2:]}"])]
    kept = {v.version: v.kept for v in reg.purge(now=later).versions}
    assert kept["1.0"] == []
    assert only.exists() and snapshot(project / ".modelreg") == before
    # applied: the store object goes, the manifest stays, a purge event says what went
    report = reg.purge(MODEL, apply=True, now=later)
    assert not only.exists() and shared.exists() and (project / "local.bin").exists()
    assert report.bytes == len(b"only in 1.0") and report.objects == 1
    ev = log_lines(project, MODEL)[-1]
    assert ev["action"] == "purge" and ev["version"] == "1.0" and ev["to"] == reg.resolve(f"{MODEL}@1.0").digest
    assert ev["reason"] == "policy.retention: purge_after_days 30"
    assert ev["data"]["artifacts"][0]["sha256"] == sha(b"only in 1.0") and ev["data"]["bytes"] == 11
    assert cli("show", f"{MODEL}@1.0")[0] == 0  # the manifest is still there
    # again: nothing left to do, nothing written
    before = snapshot(project / ".modelreg")
    assert reg.purge(MODEL, apply=True, now=later).versions == []
    assert snapshot(project / ".modelreg") == before


def test_purged_artifacts_verify_as_purged_not_missing(cli, project, store_registry):
    store_registry.purge(apply=True, now=NOW + timedelta(days=31))
    code, out, err = cli("verify", f"{MODEL}@1.0", "--json")
    result = json.loads(out)["results"][0]
    assert code == 3 and result["status"] == "purged" and result["ok"] is False
    assert json.loads(out)["error"]["code"] == 3
    code, out, err = cli("verify", f"{MODEL}@1.0")
    assert code == 3 and "purged" in out and "prune --purge" in err
    # a deleted object of a version that was not purged is still missing (exit 6)
    os.remove(store_path(project, b"shared by 1.1 and 1.2"))
    code, out, _ = cli("verify", f"{MODEL}@1.2", "--json")
    assert code == 6 and json.loads(out)["results"][0]["status"] == "missing"
    # fsck --artifacts counts purged ones, and is not fooled into passing the missing one
    code, out, err = cli("fsck", "--artifacts")
    assert code == 6 and "(1 purged by prune --purge)" in err and "missing" in out and "1.0 artifact" not in out
    shown = json.loads(cli("show", f"{MODEL}@1.0", "--json")[1])
    assert list(shown["purged"]) == [f"store/sha256/{sha(b'only in 1.0')[:2]}/{sha(b'only in 1.0')[2:]}"]


def test_a_purged_version_is_not_unarchived_without_force(cli, project, store_registry):
    store_registry.purge(apply=True, now=NOW + timedelta(days=31))
    before = snapshot(project / ".modelreg")
    code, _, err = cli("archive", f"{MODEL}@1.0", "--undo")
    assert code == 5 and "prune --purge" in err and snapshot(project / ".modelreg") == before
    assert cli("archive", f"{MODEL}@1.1", "--undo")[0] == 0  # nothing of it was purged
    assert cli("archive", f"{MODEL}@1.0", "--undo", "--force")[0] == 0


def test_unarchived_and_recent_versions_keep_shared_content(cli, project, store_registry):
    reg = store_registry
    # 1.2 archived too: now 1.1 and 1.2 are both purgeable and share nothing with a kept version
    assert cli("archive", f"{MODEL}@1.2")[0] == 0
    later = NOW + timedelta(days=31)
    report = reg.purge(MODEL, now=later)
    assert sorted(v.version for v in report.versions) == ["1.0", "1.1", "1.2"]
    # another model registering the same bytes keeps them
    assert cli("register", "other", "1", "-a", "b.bin", "--new-model")[0] == 0
    report = reg.purge(MODEL, now=later)
    assert [v.version for v in report.versions] == ["1.0"]
    assert {k["why"] for v in reg.purge(now=later).versions for k in v.kept} <= {
        "shared with a version that is kept", "not an object of the artifact store"}


def test_purge_needs_the_rule_and_a_store(cli, project):
    assert cli("register", MODEL, "1")[0] == 0
    code, _, err = cli("prune", "--purge")
    assert code == 2 and "purge_after_days" in err
    add_policy(project, "retention: {purge_after_days: 1}")
    code, out, err = cli("prune", "--purge", "--json")
    assert code == 2 and "artifact_store" in err and json.loads(out)["error"]["code"] == 2
    code, _, err = cli("prune", MODEL, "--purge", "--keep", "1")
    assert code == 2


def test_purge_cli_dry_run_then_apply_with_zero_days(cli, project):
    add_config(project, "artifact_store: store\n")
    add_policy(project, "retention: {keep: 1, purge_after_days: 0}")
    register_files(cli, project, ["1", "2"])
    assert cli("prune", MODEL, "--apply")[0] == 0
    code, out, err = cli("prune", "--purge")
    assert code == 0 and "m@1  model  store/sha256/" in out and "--apply" in err
    code, out, err = cli("prune", "--purge", "--apply", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["applied"] and doc["objects"] == 1 and doc["events"][0]["action"] == "purge"
    assert cli("log", MODEL)[1].splitlines()[0].split()[2:5] == ["purge", "m@1", "1"]


def test_purge_from_an_s3_store(s3, cli, project):
    add_config(project, f"artifact_store: s3://{BUCKET}/store\n")
    add_policy(project, "retention: {keep: 1, purge_after_days: 0}")
    assert cli("trust")[0] == 0
    register_files(cli, project, ["1", "2"])
    assert cli("prune", MODEL, "--apply")[0] == 0
    assert len(s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == 2
    code, out, err = cli("prune", "--purge", "--apply", "--json")
    assert code == 0, err
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"store/sha256/{sha(b'weights of m 2')[:2]}/{sha(b'weights of m 2')[2:]}"]
    code, out, _ = cli("verify", f"{MODEL}@1", "--json")
    assert code == 3 and json.loads(out)["results"][0]["status"] == "purged"
    assert cli("verify", f"{MODEL}@2")[0] == 0


def test_a_purge_waits_for_registrations_in_flight(cli, project, monkeypatch):
    """The store lock: a registration holds it shared until its event is written, a purge alone."""
    from modelreg.errors import Conflict
    from modelreg.retention.storelock import held

    add_config(project, "artifact_store: store\n")
    add_policy(project, "retention: {keep: 1, purge_after_days: 0}")
    register_files(cli, project, ["1", "2"])
    assert cli("prune", MODEL, "--apply")[0] == 0
    reg = Registry.open(project / ".modelreg")
    monkeypatch.setenv("MODELREG_LOCK_TIMEOUT", "0.2")
    with held(reg.locks_dir, shared=True):  # a registration in flight
        with pytest.raises(Conflict, match="could not take the lock"):
            reg.purge(apply=True)
        assert store_path(project, b"weights of m 1").exists()
        with held(reg.locks_dir, shared=True):  # registrations do not wait for each other
            pass
    with held(reg.locks_dir, shared=False):  # a purge deleting: registrations with artifacts wait
        with pytest.raises(Conflict):
            reg.register(MODEL, "3", artifacts=["w0.bin"])
        reg.register(MODEL, "4")  # no artifacts: nothing to wait for
    assert reg.purge(apply=True).objects == 1


# ------------------------------------------------------------------ stats
def test_stats_per_model_and_in_total(cli, project):
    add_config(project, "artifact_store: store\n")
    add_policy(project, "retention: {keep: 1, purge_after_days: 0}")
    register_files(cli, project, ["1", "2", "3"])
    register_files(cli, project, ["1"], model="other")
    assert cli("promote", f"{MODEL}@1", "production")[0] == 0
    assert cli("archive", f"{MODEL}@2")[0] == 0
    assert cli("prune", "--purge", "--apply")[0] == 0
    one = json.loads(cli("stats", MODEL, "--json")[1])
    assert one == {"name": MODEL, "versions": 3, "archived": 1, "purged": 1, "stages": {"production": "1"},
                   "bytes": 28, "live_bytes": 28, "purged_bytes": 14, "would_archive": [],
                   "retention": {"keep": 1, "auto": False, "purge_after_days": 0}}
    assert cli("register", MODEL, "4")[0] == 0
    assert json.loads(cli("stats", MODEL, "--json")[1])["would_archive"] == ["3"]  # 1 is in production
    total = json.loads(cli("stats", "--json")[1])
    assert (total["models"], total["versions"], total["archived"], total["purged"]) == (2, 5, 1, 1)
    assert total["stages"] == {"staging": 0, "production": 1} and total["would_archive"] == ["m@3"]
    assert total["bytes"] == 28 + 18 and total["per_model"]["other"]["bytes"] == 18
    assert total["size_bytes"] > 0 and total["files"] > 0
    code, out, _ = cli("stats")
    assert code == 0 and "would archive next: m@3" in out and "MODEL" in out
    code, out, _ = cli("stats", MODEL)
    assert code == 0 and "1 purged" in out and "production=1" in out
    code, out, err = cli("stats", "nosuch", "--json")
    assert code == 3 and json.loads(out)["error"]["code"] == 3


def test_retention_rule_parses_alone():
    from modelreg.retention.rules import Retention, parse

    assert parse(None) == Retention()
    assert parse({"keep": 0}) == Retention(0, False, None)
    with pytest.raises(UsageError):
        parse({"keep": 1.5})


def test_a_live_directory_artifact_keeps_the_store_objects_of_its_files(cli, project):
    """A folder uploaded file by file (layout sha256) shares objects with single-file uploads: a
    purge counts those files as used, and never deletes a purged version's directory artifact."""
    add_config(project, "artifact_store: store\n")
    add_policy(project, "retention: {purge_after_days: 0}")
    (project / "w.bin").write_bytes(b"the same weights")
    (project / "folder").mkdir()
    (project / "folder" / "w.bin").write_bytes(b"the same weights")
    (project / "folder" / "config.json").write_text("{}")
    assert cli("register", MODEL, "1", "-a", "model=w.bin", "--upload")[0] == 0
    assert cli("register", MODEL, "2", "-a", "model=folder/", "--upload")[0] == 0
    assert cli("register", MODEL, "3", "-a", "other=folder/", "--upload")[0] == 0
    for v in ("1", "3"):
        assert cli("archive", f"{MODEL}@{v}")[0] == 0
    code, out, err = cli("prune", "--purge", "--apply", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["objects"] == 0, err  # 1's object is a file of 2's folder: kept
    assert store_path(project, b"the same weights").exists()
    assert cli("verify", f"{MODEL}@2")[0] == 0
    assert cli("archive", f"{MODEL}@2")[0] == 0  # now nothing live uses it
    report = Registry.open(project / ".modelreg").purge(apply=True)
    assert [(v.version, len(v.artifacts)) for v in report.versions] == [("1", 1)]
    assert not store_path(project, b"the same weights").exists()
    kept = {k["why"] for v in Registry.open(project / ".modelreg").purge().versions for k in v.kept}
    assert kept <= {"a directory artifact: prune --purge deletes single-file objects only"}
