"""Every command's messages, as a user reads them: one line per error, the next step named,
digests short in text and full in JSON, no trailing spaces, data on stdout and messages on stderr."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_cli

from modelreg.registry import Registry

SHORT = re.compile(r"sha256:[0-9a-f]{12}(?![0-9a-f])")
ANY_DIGEST = re.compile(r"sha256:[0-9a-f]+")
GATES = """policy:
  gates:
    production:
      require_suites: [core-v1]
      thresholds: {"core-v1.score": ">= 0.85"}
      require_approvals: 2
"""


@pytest.fixture
def session(project, capsys, make_artifact):
    make_artifact("w.bin", b"weights")
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text("format: 1\nstages: [staging, production]\n" + GATES)
    for args in (["register", "faq-bot", "1.0.0", "-a", "checkpoint=w.bin", "-p", "lr=0.1"],
                 ["register", "faq-bot", "1.1.0", "-a", "checkpoint=w.bin", "-p", "lr=0.2"],
                 ["promote", "faq-bot@1.0.0", "staging"], ["promote", "faq-bot@1.0.0", "production", "--force",
                                                           "--reason", "bootstrap"]):
        code, _, err = run_cli(capsys, *args)
        assert code == 0, err

    def run(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, *args)

    return run


TEXT_COMMANDS = [
    ["ls"], ["ls", "faq-bot"], ["show", "faq-bot@1.0.0"], ["log", "faq-bot"], ["search"],
    ["diff", "faq-bot@1.0.0", "faq-bot@1.1.0"], ["check", "faq-bot@1.1.0", "production"], ["verify", "faq-bot@1.0.0"],
    ["lineage", "faq-bot@1.1.0"], ["metrics", "show", "faq-bot@1.0.0"], ["stats"], ["policy", "show"], ["fsck"],
    ["promote", "faq-bot@1.1.0", "staging"], ["tag", "faq-bot@1.1.0", "add", "nlp"], ["archive", "faq-bot@1.1.0"],
    ["model", "set", "faq-bot", "task=qa"], ["model", "show", "faq-bot"], ["rate", "faq-bot@1.0.0", "4"],
    ["bind", "faq-bot@1.0.0", "--provider", "openai", "--id", "gpt-4"], ["bindings"], ["stats", "faq-bot"],
    ["prune", "--keep", "1"], ["register", "faq-bot", "--next", "patch", "-a", "w.bin"],
]


@pytest.mark.parametrize("args", TEXT_COMMANDS, ids=lambda a: " ".join(a))
def test_text_output_is_tidy_and_digests_are_short(session, args):
    code, out, err = session(*args)
    assert code in (0, 5), err
    for line in (out + err).splitlines():
        assert line == line.rstrip(), f"trailing spaces: {line!r}"
        if line.startswith("digest:") or re.fullmatch(r"sha256:[0-9a-f]{64}", line):
            continue  # show's digest line, and the digest printed as data (register, promote)
        for d in ANY_DIGEST.findall(line):
            assert SHORT.fullmatch(d), f"{args}: digest not short in text: {line!r}"
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [a for a in TEXT_COMMANDS if a[0] not in ("policy", "stats")],
                         ids=lambda a: " ".join(a))
def test_json_output_has_full_digests_and_nothing_else_on_stdout(session, args):
    code, out, err = session(*args, "--json")
    assert code in (0, 5), err
    data = json.loads(out)  # stdout is one JSON document
    for d in ANY_DIGEST.findall(json.dumps(data)):
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", d), d


# Each refusal: (args, exit code, words naming what to do next)
REFUSALS = [
    (["register", "faq-bot", "1.0.0", "-p", "lr=0.3"], 4, "register the new content as a new version"),
    (["register", "faq-bot", "1.2.0", "-p", "lr=0.1", "--strict"], 4, "without --strict"),
    (["register", "faq_bot", "1.0.0"], 4, "use --new-model"),
    (["promote", "faq-bot@1.1.0", "staging", "--expect", "1.1.0"], 4,
     "read it again ('modelreg resolve faq-bot@staging')"),
    (["promote", "faq-bot@1.1.0", "production"], 5, "promote it to staging first"),
    (["promote", "faq-bot@1.1.0", "prod"], 2, "did you mean 'production'?"),
    (["promote", "faq-bot@1.1.0", "production", "--force"], 2, "--force needs --reason"),
    (["archive", "faq-bot@1.0.0"], 5, "move the stage first, or use --force"),
    (["rollback", "faq-bot", "staging"], 3, "use 'modelreg rollback faq-bot staging --to VERSION'"),
    (["resolve", "faq-bot@9.9.9"], 3, "; see 'modelreg ls faq-bot'"),
    (["resolve", "faq-bt@1.0.0"], 3, "did you mean 'faq-bot'?"),
    (["metrics", "show", "faq-bot@1.0.0", "--suite", "x"], 3, "(has: none)"),
    (["metrics", "set", "faq-bot@1.0.0", "--suite", "s", "x"], 2, "expected KEY=VALUE"),
    (["resolve", "faq-bot@1.0.0", "--jsn"], 2, "did you mean '--json'?"),
    (["promte"], 2, "did you mean 'promote'"),
]


@pytest.mark.parametrize("args, code, next_step", REFUSALS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_every_refusal_is_one_line_naming_the_next_step(session, args, code, next_step):
    got, out, err = session(*args)
    assert got == code, err
    assert err.splitlines()[-1].startswith("modelreg: error: ") and next_step in err, err
    assert err.count("\n") == 1 or got == 5, err  # a policy refusal prints its gate table first
    assert err.splitlines()[-1].startswith("modelreg: error: ")


def test_gate_refusals_say_how_to_satisfy_each_gate(session):
    code, out, err = session("check", "faq-bot@1.1.0", "production")
    assert code == 5
    assert "record them: modelreg metrics set faq-bot@1.1.0 --suite core-v1 KEY=VALUE" in out
    assert "record it: modelreg metrics set faq-bot@1.1.0 --suite core-v1 score=VALUE" in out
    assert "each approver runs: modelreg approve faq-bot@1.1.0 --stage production" in out
    assert err.startswith("modelreg: error: faq-bot@1.1.0 fails 4 gate(s) for production")


def test_archived_refusal_says_how_to_unarchive(session):
    session("archive", "faq-bot@1.1.0")
    code, _, err = session("promote", "faq-bot@1.1.0", "staging")
    assert code == 5 and "unarchive it first: modelreg archive faq-bot@1.1.0 --undo" in err


def test_success_messages_start_with_the_verb_and_name_the_version(session):
    expected = [
        (["register", "faq-bot", "1.2.0", "-p", "lr=0.3"], "Registered faq-bot@1.2.0"),
        (["register", "faq-bot", "1.2.0", "-p", "lr=0.3"], "Already registered faq-bot@1.2.0 with this content; "
                                                             "nothing changed"),
        (["promote", "faq-bot@latest", "staging"], "Promoted faq-bot@staging: 1.0.0 -> 1.2.0"),
        (["promote", "faq-bot@1.2.0", "staging"], "faq-bot@staging already holds 1.2.0; nothing changed"),
        (["tag", "faq-bot@latest", "add", "nlp", "chat"], "Tagged faq-bot@1.2.0 +chat +nlp"),
        (["tag", "faq-bot@latest", "add", "nlp"], "faq-bot@1.2.0 already has the tags nlp; nothing changed"),
        (["tag", "faq-bot@latest", "rm", "nlp"], "Tagged faq-bot@1.2.0 -nlp"),
        (["approve", "faq-bot@latest"], f"Approved faq-bot@1.2.0 for production (as tester@example.com)"),
        (["bind", "faq-bot@latest", "--provider", "vllm", "--id", "x"], "Bound faq-bot@1.2.0 to vllm x"),
        (["unbind", "faq-bot@latest", "--provider", "vllm"], "Unbound faq-bot@1.2.0 from vllm"),
        (["unbind", "faq-bot@latest", "--provider", "vllm"], "faq-bot@1.2.0 has no binding to vllm; nothing changed"),
        (["archive", "faq-bot@1.1.0"], "Archived faq-bot@1.1.0"),
        (["archive", "faq-bot@1.1.0"], "faq-bot@1.1.0 is already archived; nothing changed"),
        (["archive", "faq-bot@1.1.0", "--undo"], "Unarchived faq-bot@1.1.0"),
        (["archive", "faq-bot@1.1.0", "--undo"], "faq-bot@1.1.0 is not archived; nothing changed"),
        (["metrics", "set", "faq-bot@1.2.0", "--suite", "core-v1", "score=0.90"],
         "Recorded 1 metric(s) of suite core-v1 for faq-bot@1.2.0"),
        (["reindex"], "Reindexed 1 model(s), 3 version(s)"),
        (["fsck"], "Checked 3 objects"),
        (["verify", "faq-bot@1.0.0"], "Verified 1 artifact(s) of 1 version(s): ok"),
    ]
    for args, message in expected:
        code, _, err = session(*args)
        assert code == 0 and err.splitlines()[-1].startswith(message), (args, err)
