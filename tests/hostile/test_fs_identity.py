"""What a stage names is what was registered (issue 15, rule 5 / row 5): readers and fsck refuse the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitutil import git
from tests.hostile.conftest import Flow, forged_manifest, refused, write_object

READERS = [
    ["resolve", "m@production"], ["resolve", "m@production", "--digest"], ["resolve", "m@production", "--json"],
    ["show", "m@production"], ["ls"], ["ls", "m"], ["log", "m"], ["log"], ["search"], ["search", "--stage", "production"],
    ["fetch", "m@production", "DEST"], ["verify", "m@production"], ["verify", "--all"],
    ["diff", "m@1.0.0", "m@production"], ["diff", "m@production", "--rev", "HEAD~1"],
    ["check", "m@1.1.0", "production"], ["promote", "m@1.1.0", "production"], ["rollback", "m", "production"],
    ["rollback", "m", "production", "--to", "1.1.0"], ["metrics", "set", "m@production", "--suite", "s", "x=1"],
]


def _forge_production(flow: Flow, *, log_line: bool) -> str:
    """The attacker's PR: a manifest reusing the reviewed name m@1.1.0, with the attacker's artifact,
    and refs/m/production pointed at it (optionally with a forged promote line)."""
    forged: list[str] = []

    def change(p: Path) -> None:
        (p / "evil.bin").write_bytes(b"attacker weights")
        d = forged_manifest(p, "m", "1.1.0", uri="evil.bin")
        (p / ".modelreg" / "refs" / "m" / "production").write_text(d + "\n")
        if log_line:
            line = {"id": "f" * 24, "time": "2099-01-01T00:00:00.000000Z", "actor": "alice@example.com",
                    "action": "promote", "model": "m", "version": "1.1.0", "stage": "production",
                    "from": flow.digests["1.0.0"], "to": d, "reason": "reviewed", "data": {}}
            with open(p / ".modelreg" / "logs" / "m.jsonl", "a") as f:
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
        forged.append(d)

    flow.attack(change, "bump m to 1.1.0 in production")
    return forged[0]


@pytest.mark.parametrize("log_line", [False, True], ids=["ref-only", "ref-and-log-line"])
def test_a_ref_to_an_unregistered_manifest_is_refused_everywhere(flow: Flow, log_line: bool) -> None:
    forged = _forge_production(flow, log_line=log_line)
    assert forged != flow.digests["1.1.0"]
    registry_before = {p: p.read_bytes() for p in flow.registry.rglob("*") if p.is_file() and "locks" not in p.parts}
    dest = flow.base / "dest"
    for args in READERS:
        r = flow.cli(*[str(dest) if a == "DEST" else a for a in args])
        line = refused(r, 6)
        assert "refs/m/production" in line and "1.1.0" in line and "registered" in line, (args, line)
        out = json.loads(r.out) if "--json" in args else r.out
        if "--json" in args:  # only the error object, saying the same
            assert list(out) == ["error"] and out["error"]["code"] == 6
        else:
            assert "1.1.0" not in out and forged[7:19] not in out, (args, out)
    assert not dest.exists()
    after = {p: p.read_bytes() for p in flow.registry.rglob("*") if p.is_file() and "locks" not in p.parts}
    assert after == registry_before
    fsck = flow.cli("fsck", "--json")
    assert fsck.code == 6
    errors = [p for p in fsck.json()["problems"] if p["severity"] == "error"]
    assert any(p["path"] == "refs/m/production" and "never registered" in p["message"] for p in errors)
    if log_line:
        assert any(p["path"] == "logs/m.jsonl" and "forged" in p["message"] for p in errors)


def test_git_diff_of_the_forged_ref_does_not_say_the_reviewed_version(flow: Flow) -> None:
    assert flow.cli("git-setup", "--command", f"{__import__('sys').executable} -m modelreg").code == 0
    git(flow.victim, "add", "-A")
    git(flow.victim, "commit", "-q", "-m", "git-setup")
    git(flow.victim, "push", "-q", "origin", "main")
    _forge_production(flow, log_line=False)
    diff = git(flow.victim, "diff", "HEAD~1", "--", ".modelreg/refs").stdout
    assert "NOT a registered version" in diff and "+m@1.1.0" not in diff
    assert f"-m@1.0.0 ({flow.digests['1.0.0'][:19]}" in diff


def test_promote_force_replaces_a_forged_ref_and_never_demotes_it(flow: Flow) -> None:
    forged = _forge_production(flow, log_line=False)
    cfg = flow.registry / "config.yaml"
    cfg.write_text(cfg.read_text().replace("demote_to: {}", "demote_to: {production: staging}"))
    refused(flow.cli("promote", "m@1.1.0", "production"), 6, "refs/m/production")
    r = flow.cli("promote", "m@1.1.0", "production", "--force", "--reason", "forged ref", "--json")
    assert r.code == 0, r.err
    assert r.json()["from"] is None and r.json()["events"][0]["from"] == forged  # recorded for the audit trail
    assert [e["action"] for e in r.json()["events"]] == ["promote"]  # the forged value is not moved to staging
    assert flow.cli("resolve", "m@production").out == "1.1.0\n"
    assert flow.cli("resolve", "m@staging").out == "1.0.0\n"
    assert flow.cli("fsck").code == 0


def test_a_version_entry_pointing_at_another_versions_manifest(flow: Flow) -> None:
    flow.attack(lambda p: (p / ".modelreg" / "versions" / "m" / "1.0.0").write_text(flow.digests["1.1.0"] + "\n"))
    for args in (["resolve", "m@1.0.0"], ["show", "m@1.0.0"], ["fetch", "m@1.0.0", str(flow.base / "d")]):
        refused(flow.cli(*args), 6, "1.1.0")
    assert flow.cli("fsck").code == 6


def test_a_non_canonical_object_is_refused(flow: Flow) -> None:
    """Same content, other bytes (so another digest): a second identity for one manifest; refused."""
    from modelreg import manifest

    def change(p: Path) -> None:
        m = manifest.from_bytes((p / ".modelreg" / "objects" / flow.digests["1.1.0"][7:9] /
                                 flow.digests["1.1.0"][9:]).read_bytes())
        data = manifest.to_bytes(m).replace(b"  lr: 0.1\n", b"  lr: 0.10\n")
        assert data != manifest.to_bytes(m)
        d = write_object(p, data)
        (p / ".modelreg" / "versions" / "m" / "1.2.0").write_text(d + "\n")
        obj = p / ".modelreg" / "objects" / d[7:9] / d[9:]
        obj.write_bytes(data.replace(b'version: "1.1.0"', b'version: "1.2.0"'))
        d2 = write_object(p, obj.read_bytes())
        obj.unlink()
        (p / ".modelreg" / "versions" / "m" / "1.2.0").write_text(d2 + "\n")

    flow.attack(change)
    refused(flow.cli("show", "m@1.2.0"), 6, "not canonical")
    fsck = flow.cli("fsck", "--json").json()
    assert any("not canonical" in p["message"] for p in fsck["problems"])


@pytest.mark.parametrize("version", ['1.0.0\\nINJECTED=1', "$(touch /tmp/pwned)", "1.0.0\\u001b]0;owned\\u0007"])
def test_resolve_never_prints_an_unvalidated_version(flow: Flow, version: str) -> None:
    """Row 11: ``echo "V=$(modelreg resolve m@production)" >> $GITHUB_ENV`` injected variables."""
    def change(p: Path) -> None:
        header = f'name: m\nversion: "{version}"\n'.encode()
        d = write_object(p, header + b"description: forged\n")
        (p / ".modelreg" / "refs" / "m" / "production").write_text(d + "\n")

    flow.attack(change)
    env_file = flow.base / "github_env"
    r = flow.proc("resolve", "m@production")
    assert r.code == 6 and r.out == "" and "Traceback" not in r.err
    assert "\n" not in r.err.strip() and "\x1b" not in r.err
    import subprocess
    import sys

    subprocess.run(["bash", "-c", f'echo "V=$({sys.executable} -m modelreg resolve m@production)" >> {env_file}'],
                   cwd=flow.victim, capture_output=True)
    assert env_file.read_text() == "V=\n"


def test_hostile_file_names_in_versions_are_refused_not_printed(flow: Flow) -> None:
    def change(p: Path) -> None:
        (p / ".modelreg" / "versions" / "m" / "1.0.0\nINJECTED=1").write_text(flow.digests["1.0.0"] + "\n")

    flow.attack(change)
    for args in (["ls", "m"], ["search"]):  # resolve m@latest reads the log's registrations, not the directory
        r = flow.cli(*args)
        line = refused(r, 6, "not a valid name")
        assert "\nINJECTED" not in r.out + r.err and "\\nINJECTED" in line
    r = flow.cli("resolve", "m@latest")  # reads the log's registrations, not the directory: never sees the name
    assert "INJECTED" not in r.out + r.err
    fsck = flow.cli("fsck")
    assert fsck.code == 6 and "\nINJECTED" not in fsck.out and "is not a valid version name" in fsck.out
