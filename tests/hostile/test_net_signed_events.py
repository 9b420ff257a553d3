"""Row 6b: signed events (ssh-keygen -Y), require_signatures gates, and `log` showing what is verified."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from modelreg.log import Event

from .netkit import add_config, forge_event

GATE = """\
policy:
  require_previous_stage: {}
  gates:
    production:
      require_approvals: 2
      require_signatures: true
      thresholds:
        "core.score": ">= 0.9"
"""


def keygen(d: Path, name: str) -> Path:
    key = d / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


@pytest.fixture
def keys(tmp_path):
    """alice's and bob's keys and an allowed signers file naming both, outside the project."""
    d = tmp_path / "keys"
    d.mkdir()
    alice, bob, mallory = keygen(d, "alice"), keygen(d, "bob"), keygen(d, "mallory")
    signers = d / "allowed_signers"
    signers.write_text(f"alice@example.com {(d / 'alice.pub').read_text()}bob@example.com {(d / 'bob.pub').read_text()}")
    return {"alice": alice, "bob": bob, "mallory": mallory, "signers": signers}


@pytest.fixture
def gated(victim, run):
    add_config(victim, GATE)
    (victim / "w.bin").write_bytes(b"weights")
    assert run("register", "bot", "1.0.0", "-a", "w.bin")[0] == 0
    return victim


def as_signer(monkeypatch, key: Path) -> None:
    monkeypatch.setenv("MODELREG_SIGNING_KEY", str(key))


def test_two_actor_names_from_one_key_are_one_approver(gated, run, keys, monkeypatch):
    monkeypatch.setenv("MODELREG_ALLOWED_SIGNERS", str(keys["signers"]))
    as_signer(monkeypatch, keys["alice"])
    assert run("metrics", "set", "bot@1.0.0", "--suite", "core", "score=0.95", "--sign")[0] == 0
    assert run("approve", "bot@1.0.0", "--sign", "--actor", "alice")[0] == 0
    assert run("approve", "bot@1.0.0", "--sign", "--actor", "bob")[0] == 0  # same shell, same key
    code, out, _ = run("check", "bot@1.0.0", "production", "--json")
    approvals = [r for r in json.loads(out)["results"] if r["gate"] == "require_approvals"][0]
    assert code == 5 and approvals["actual"] == 1 and "alice@example.com" in approvals["message"]
    as_signer(monkeypatch, keys["bob"])
    assert run("approve", "bot@1.0.0", "--sign", "--actor", "bob")[0] == 0
    code, out, err = run("promote", "bot@1.0.0", "production", "--sign")
    assert code == 0, err
    events = json.loads(run("log", "bot", "--json")[1])
    assert events[0]["action"] == "promote" and events[0]["verified"] is True
    assert events[0]["signature"]["principal"] == "bob@example.com"


def test_forged_unsigned_or_unknown_key_approvals_and_metrics_do_not_count(gated, run, keys, monkeypatch):
    monkeypatch.setenv("MODELREG_ALLOWED_SIGNERS", str(keys["signers"]))
    from modelreg.registry import Registry

    d = Registry(gated / ".modelreg").resolve("bot@1.0.0").digest
    for who in ("alice", "bob"):  # what a hostile PR writes into the log
        forge_event(gated, Event("approve", "bot", who, version="1.0.0", to=d, data={"stage": "production"}))
    forge_event(gated, Event("metrics", "bot", "ci", version="1.0.0", to=d, data={"suite": "core", "values": {"score": 1}}))
    as_signer(monkeypatch, keys["mallory"])  # a real signature, by a key nobody allowed
    assert run("approve", "bot@1.0.0", "--sign", "--actor", "alice")[0] == 0
    code, out, _ = run("check", "bot@1.0.0", "production", "--json")
    failed = {r["gate"] for r in json.loads(out)["results"] if not r["passed"]}
    assert code == 5 and failed == {"require_approvals", "thresholds"}
    code, _, err = run("promote", "bot@1.0.0", "production")
    assert code == 5 and "require_approvals" in err
    text = run("log", "bot")[1]
    assert "[signed by an unknown key]" in text and "[verified" not in text


def test_an_edited_signed_event_is_bad(gated, run, keys, monkeypatch):
    monkeypatch.setenv("MODELREG_ALLOWED_SIGNERS", str(keys["signers"]))
    as_signer(monkeypatch, keys["alice"])
    assert run("approve", "bot@1.0.0", "--sign", "--stage", "staging", "--actor", "alice")[0] == 0
    log = gated / ".modelreg" / "logs" / "bot.jsonl"
    log.write_text(log.read_text().replace('"stage":"staging"', '"stage":"production"'))  # reuse the signature
    events = json.loads(run("log", "bot", "--json")[1])
    assert events[0]["verified"] is False and events[0]["signature"]["status"] == "bad"
    assert "[signature BAD]" in run("log", "bot")[1]
    code, out, _ = run("check", "bot@1.0.0", "production", "--json")
    approvals = [r for r in json.loads(out)["results"] if r["gate"] == "require_approvals"][0]
    assert approvals["actual"] == 0


def test_without_allowed_signers_the_gate_fails_with_a_clear_message(gated, run, keys, monkeypatch):
    as_signer(monkeypatch, keys["alice"])
    assert run("approve", "bot@1.0.0", "--sign")[0] == 0
    code, _, err = run("promote", "bot@1.0.0", "production")
    assert code == 5 and "require_signatures" in err and "MODELREG_ALLOWED_SIGNERS" in err
    assert "[signed, not checked: no allowed signers file]" in run("log", "bot")[1]


def test_allowed_signers_inside_the_registry_are_not_trusted(gated, run, keys, monkeypatch):
    planted = gated / ".modelreg" / "allowed_signers"
    planted.write_text(keys["signers"].read_text())
    monkeypatch.setenv("MODELREG_ALLOWED_SIGNERS", str(planted))
    code, out, _ = run("check", "bot@1.0.0", "production", "--json")
    sig = [r for r in json.loads(out)["results"] if r["gate"] == "require_signatures"][0]
    assert code == 5 and not sig["passed"] and "inside the registry" in sig["message"]


def test_git_config_supplies_the_key_and_the_allowed_signers(gated, run, keys, monkeypatch, tmp_path):
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f"[user]\n\tsigningkey = {keys['alice']}.pub\n"
                         f"[gpg \"ssh\"]\n\tallowedSignersFile = {keys['signers']}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert run("promote", "bot@1.0.0", "staging", "--sign")[0] == 0
    events = json.loads(run("log", "bot", "--json")[1])
    promote = [e for e in events if e["action"] == "promote"][0]
    assert promote["verified"] and promote["signature"]["principal"] == "alice@example.com"
    assert "[verified: alice@example.com]" in run("log", "bot")[1]


def test_rollback_signs_and_sign_without_a_key_is_a_usage_error(gated, run, keys, monkeypatch):
    monkeypatch.setenv("MODELREG_ALLOWED_SIGNERS", str(keys["signers"]))
    (gated / "w2.bin").write_bytes(b"weights 2")
    assert run("register", "bot", "1.1.0", "-a", "w2.bin")[0] == 0
    assert run("promote", "bot@1.0.0", "staging")[0] == 0
    assert run("promote", "bot@1.1.0", "staging")[0] == 0
    before = (gated / ".modelreg" / "logs" / "bot.jsonl").read_bytes()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    code, _, err = run("rollback", "bot", "staging", "--sign")
    assert code == 2 and "MODELREG_SIGNING_KEY" in err
    assert (gated / ".modelreg" / "logs" / "bot.jsonl").read_bytes() == before  # nothing changed
    as_signer(monkeypatch, keys["bob"])
    assert run("rollback", "bot", "staging", "--sign", "--reason", "bad")[0] == 0
    top = json.loads(run("log", "bot", "--json")[1])[0]
    assert top["action"] == "rollback" and top["verified"] and top["signature"]["principal"] == "bob@example.com"


def test_unsigned_logs_read_as_before(victim, run):
    (victim / "w.bin").write_bytes(b"w")
    assert run("register", "bot", "1.0.0", "-a", "w.bin")[0] == 0
    line = json.loads((victim / ".modelreg" / "logs" / "bot.jsonl").read_text())
    assert "sig" not in line
    events = json.loads(run("log", "bot", "--json")[1])
    assert events[0]["verified"] is False and events[0]["signature"] is None
