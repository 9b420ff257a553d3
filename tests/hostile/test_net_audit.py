"""Row 6a: `modelreg audit --base REV` catches forged history in a pull request; clean changes pass."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from gitutil import cli, git, git_env, new_repo  # noqa: F401  (git_env is a fixture)

from modelreg import manifest
from modelreg.log import Event
from modelreg.registry import Registry

from .netkit import forge_event


def _commit(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def repo(git_env, tmp_path, capsys):
    """main: bot@1.0.0 registered, promoted to production, approved; branch 'pr' checked out from it."""
    r = new_repo(tmp_path / "repo")
    (r / "w.bin").write_bytes(b"weights 1")
    for args in (("register", "bot", "1.0.0", "-a", "w.bin"), ("promote", "bot@1.0.0", "production"),
                 ("approve", "bot@1.0.0", "--stage", "production", "--actor", "alice"),
                 ("metrics", "set", "bot@1.0.0", "--suite", "core", "score=0.8")):
        assert cli(capsys, r, *args).code == 0
    _commit(r, "base registry")
    git(r, "checkout", "-q", "-b", "pr")
    return r


def audit(capsys, repo: Path, *extra: str):
    res = cli(capsys, repo, "audit", "--base", "main", "--json", *extra)
    return res.code, json.loads(res.out)


def kinds(report) -> set[str]:
    return {f["kind"] for f in report["findings"]}


def test_clean_changes_made_by_modelreg_pass(repo, capsys):
    (repo / "w2.bin").write_bytes(b"weights 2")
    for args in (("register", "bot", "1.1.0", "-a", "w2.bin"), ("metrics", "set", "bot@1.1.0", "--suite", "core",
                 "score=0.9"), ("approve", "bot@1.1.0", "--actor", "bob"), ("promote", "bot@1.1.0", "staging"),
                 ("tag", "bot@1.1.0", "add", "candidate")):
        assert cli(capsys, repo, *args).code == 0
    _commit(repo, "candidate")
    assert cli(capsys, repo, "promote", "bot@1.1.0", "production").code == 0  # uncommitted on top
    code, report = audit(capsys, repo)
    assert code == 0 and report["ok"] and report["added_events"] == 6 and report["findings"] == []
    text = cli(capsys, repo, "audit", "--base", "main")
    assert text.code == 0 and "ok" in text.err


def test_union_merge_of_two_branches_passes(repo, capsys):
    git(repo, "checkout", "-q", "-b", "a", "main")
    assert cli(capsys, repo, "approve", "bot@1.0.0", "--actor", "carol").code == 0
    _commit(repo, "a")
    git(repo, "checkout", "-q", "-b", "b", "main")
    assert cli(capsys, repo, "metrics", "set", "bot@1.0.0", "--suite", "latency", "p95=120").code == 0
    _commit(repo, "b")
    git(repo, "checkout", "-q", "pr")
    git(repo, "merge", "-q", "--no-edit", "a")
    git(repo, "merge", "-q", "--no-edit", "b")
    code, report = audit(capsys, repo)
    assert code == 0 and report["added_events"] == 2, report


def test_a_branch_that_forked_before_newer_base_events_is_not_out_of_order(repo, capsys):
    """Events are checked against the commit they were added on top of, not against the base's tip."""
    base_newest = datetime.now(timezone.utc)
    forge_event(repo, Event("approve", "bot", "dave", version="1.0.0", to=_digest(repo), data={"stage": "production"},
                            time=_iso(base_newest)))
    _commit(repo, "approval on the branch")
    git(repo, "checkout", "-q", "main")  # main moves on: an event an hour newer than the branch's
    forge_event(repo, Event("metrics", "bot", "ci", version="1.0.0", to=_digest(repo),
                            data={"suite": "nightly", "values": {"x": 1}}, time=_iso(base_newest + timedelta(hours=1))))
    _commit(repo, "nightly metrics")
    git(repo, "checkout", "-q", "pr")
    git(repo, "merge", "-q", "--no-edit", "main")
    code, report = audit(capsys, repo)
    assert code == 0, report
    # ...but an event backdated below what its own commit already held is out of order
    forge_event(repo, Event("promote", "bot", "mallory", version="1.0.0", stage="staging", to=_digest(repo),
                            time=_iso(base_newest + timedelta(seconds=30))))
    code, report = audit(capsys, repo)
    assert code == 6 and kinds(report) == {"event-out-of-order"}


def _digest(repo: Path) -> str:
    return Registry(repo / ".modelreg").resolve("bot@1.0.0").digest


def _log(repo: Path) -> Path:
    return repo / ".modelreg" / "logs" / "bot.jsonl"


def test_edited_log_line_fails(repo, capsys):
    p = _log(repo)
    p.write_text(p.read_text().replace('"actor":"alice"', '"actor":"alicia"'))
    code, report = audit(capsys, repo)
    assert code == 6 and "log-line-edited" in kinds(report)


def test_removed_log_line_fails(repo, capsys):
    p = _log(repo)
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(line for line in lines if '"approve"' not in line))
    code, report = audit(capsys, repo)
    assert code == 6 and kinds(report) == {"log-line-removed"}
    text = cli(capsys, repo, "audit", "--base", "main")
    assert text.code == 6 and "approve bot@1.0.0 by alice" in text.out


def test_removed_log_file_fails(repo, capsys):
    _log(repo).unlink()
    code, report = audit(capsys, repo)
    assert code == 6 and "log-removed" in kinds(report)


def test_changed_version_entry_and_object_fail(repo, capsys):
    reg = Registry(repo / ".modelreg")
    other = reg.objects.put(manifest.to_bytes(manifest.validate({"name": "bot", "version": "1.0.0",
                                                                  "description": "evil"})))
    entry = repo / ".modelreg" / "versions" / "bot" / "1.0.0"
    entry.write_text(other + "\n")
    code, report = audit(capsys, repo)
    assert code == 6 and "version-changed" in kinds(report)
    git(repo, "checkout", "--", ".")
    obj = reg.objects.path(_digest(repo))
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes().replace(b"w.bin", b"x.bin"))
    code, report = audit(capsys, repo)
    assert code == 6 and "object-changed" in kinds(report)
    git(repo, "checkout", "--", ".")
    obj.unlink()
    code, report = audit(capsys, repo)
    assert code == 6 and {"object-removed", "object-missing"} <= kinds(report)


def test_ref_at_an_unregistered_manifest_reusing_a_reviewed_name_fails(repo, capsys):
    reg = Registry(repo / ".modelreg")
    forged = reg.objects.put(manifest.to_bytes(manifest.validate({
        "name": "bot", "version": "1.0.0", "artifacts": [{"role": "model", "uri": "https://evil.example/m.bin"}]})))
    (repo / ".modelreg" / "refs" / "bot" / "production").write_text(forged + "\n")
    code, report = audit(capsys, repo)
    assert code == 6 and kinds(report) == {"ref-unregistered"}
    assert "never registered" in report["findings"][0]["message"]


def test_version_entry_at_a_manifest_of_another_version_fails(repo, capsys):
    (repo / ".modelreg" / "versions" / "bot" / "9.9.9").write_text(_digest(repo) + "\n")
    code, report = audit(capsys, repo)
    assert code == 6 and "version-mismatch" in kinds(report)


def test_backdated_future_and_reused_id_events_fail(repo, capsys):
    d = _digest(repo)
    old = json.loads(_log(repo).read_text().splitlines()[0])
    forge_event(repo, Event("approve", "bot", "bob", version="1.0.0", to=d, data={"stage": "production"},
                            time="2020-01-01T00:00:00.000000Z"))
    forge_event(repo, Event("metrics", "bot", "ci", version="1.0.0", to=d, data={"suite": "core", "values": {"score": 1}},
                            time=_iso(datetime.now(timezone.utc) + timedelta(days=2))))
    forge_event(repo, Event("promote", "bot", "mallory", version="1.0.0", stage="staging", to=d, id=old["id"]))
    with open(_log(repo), "ab") as f:  # a line about another model, slipped into bot's log
        f.write(Event("approve", "other", "bob", version="1.0.0", to=d, data={"stage": "production"}).line())
    code, report = audit(capsys, repo)
    assert code == 6
    assert kinds(report) == {"event-out-of-order", "event-from-the-future", "event-reused-id", "event-wrong-model"}


def test_fsck_repair_moving_a_torn_line_aside_is_not_a_removal(repo, capsys):
    with open(_log(repo), "a") as f:
        f.write('{"id":"torn')
    _commit(repo, "a torn line arrived")
    git(repo, "branch", "-f", "main")
    assert cli(capsys, repo, "fsck", "--repair").code == 0
    code, report = audit(capsys, repo)
    assert code == 0, report


def test_base_must_exist_and_git_env_cannot_redirect_the_audit(repo, capsys, monkeypatch, tmp_path):
    assert cli(capsys, repo, "audit", "--base", "no-such-rev").code == 3
    assert cli(capsys, repo, "audit", "--base", "--output=x").code in (2, 3)
    other = new_repo(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # a hostile environment must not change what is audited
    p = _log(repo)
    p.write_text(p.read_text().replace('"actor":"alice"', '"actor":"alicia"'))
    code, report = audit(capsys, repo)
    assert code == 6 and "log-line-edited" in kinds(report)
