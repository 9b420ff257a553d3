"""The common team flow from issue 3, driven through the CLI as a CI job and reviewers would."""

from __future__ import annotations

import json

from _policy_support import Cli, log_lines, make_registry, snapshot

CONFIG = """\
policy:
  require_previous_stage: {production: staging}
  demote_to: {production: staging}
  gates:
    production:
      require_suites: [core-v1]
      thresholds: {"core-v1.score": ">= 0.85"}
      not_worse_than_current: {"core-v1.score": higher}
      require_approvals: 2
"""


def test_team_flow(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MODELREG_ACTOR", "ci-bot")
    reg = make_registry(tmp_path, CONFIG)
    cli = Cli(reg, capsys)
    assert cli("register", "faq-bot", "1.0.0")[0] == 0
    assert cli("register", "faq-bot", "1.1.0")[0] == 0

    # v1: staging, evaluated, approved, production
    assert cli("promote", "faq-bot@1.0.0", "staging", "--expect", "none")[0] == 0
    assert cli("metrics", "set", "faq-bot@1.0.0", "--suite", "core-v1", "score=0.88", "f1=0.8")[0] == 0
    for reviewer in ("bob", "carol"):
        assert cli("approve", "faq-bot@1.0.0", "--actor", reviewer)[0] == 0
    assert cli("check", "faq-bot@1.0.0", "production")[0] == 0
    assert cli("promote", "faq-bot@1.0.0", "production", "--expect", "none")[0] == 0

    # v2 with a worse score: blocked from production, nothing changes
    assert cli("promote", "faq-bot@1.1.0", "staging", "--expect", "1.0.0")[0] == 0
    assert cli("metrics", "set", "faq-bot@1.1.0", "--suite", "core-v1", "score=0.86")[0] == 0
    before = snapshot(reg)
    code, out, _ = cli("check", "faq-bot@1.1.0", "production", "--json")
    report = json.loads(out)
    assert code == 5 and report["current"] == "1.0.0"
    assert {r["gate"] for r in report["results"] if not r["passed"]} == {"not_worse_than_current", "require_approvals"}
    code, _, err = cli("promote", "faq-bot@1.1.0", "production", "--expect", "1.0.0")
    assert code == 5
    assert "not_worse_than_current core-v1.score: 0.86 vs 0.88 on 1.0.0 (higher is better): worse" in err
    assert snapshot(reg) == before
    assert cli("resolve", "faq-bot@production")[1].strip() == "1.0.0"

    # v2 with a better score and two approvals (the same reviewer twice counts once)
    assert cli("metrics", "set", "faq-bot@1.1.0", "--suite", "core-v1", "score=0.91")[0] == 0
    assert cli("approve", "faq-bot@1.1.0", "--actor", "bob")[0] == 0
    assert cli("approve", "faq-bot@1.1.0", "--actor", "bob", "--comment", "still fine")[0] == 0
    assert cli("check", "faq-bot@1.1.0", "production")[0] == 5
    assert cli("approve", "faq-bot@1.1.0", "--actor", "dave")[0] == 0
    moved = cli.json("promote", "faq-bot@1.1.0", "production", "--expect", "1.0.0")
    assert moved["from"]["version"] == "1.0.0" and moved["to"]["version"] == "1.1.0"
    assert [e["action"] for e in moved["events"]] == ["promote", "demote"]

    # v1 demoted to staging
    assert cli("resolve", "faq-bot@production")[1].strip() == "1.1.0"
    assert cli("resolve", "faq-bot@staging")[1].strip() == "1.0.0"
    assert cli.json("show", "faq-bot@1.0.0")["stages"] == ["staging"]

    # rollback of production brings v1 back (no gates: it is the emergency lever)
    code, _, err = cli("rollback", "faq-bot", "production", "--reason", "error rate up")
    assert code == 0, err
    assert cli("resolve", "faq-bot@production")[1].strip() == "1.0.0"
    assert [(e["action"], e["stage"], e["version"]) for e in log_lines(reg, "faq-bot") if e["stage"]] == [
        ("promote", "staging", "1.0.0"),
        ("promote", "production", "1.0.0"),
        ("promote", "staging", "1.1.0"),
        ("promote", "production", "1.1.0"),
        ("demote", "staging", "1.0.0"),
        ("rollback", "production", "1.0.0"),
    ]
    assert cli("fsck")[0] == 0
