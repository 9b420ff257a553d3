"""Hostile shapes do not crash, hang or reach the terminal raw (issue 15, rule 8 / row 12 and the smaller ones)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from gitutil import git
from tests.hostile.conftest import Flow, refused, write_object

EVENT = {"id": "", "time": "2030-01-01T00:00:00.000000Z", "actor": "mallory", "action": "metrics", "model": "m",
         "version": "1.0.0", "stage": None, "from": None, "to": "", "reason": None, "data": {}}


def _line(flow: Flow, n: int, **fields: object) -> bytes:
    ev = {**EVENT, "id": f"{n:024x}", "to": flow.digests["1.0.0"], **fields}
    return json.dumps(ev, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _append(p: Path, *lines: bytes) -> None:
    with open(p / ".modelreg" / "logs" / "m.jsonl", "ab") as f:
        for line in lines:
            f.write(line)


def _no_traceback(*runs: object) -> None:
    for r in runs:
        assert "Traceback" not in r.err and "RecursionError" not in r.err, r.err  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape", ["deep-array", "deep-object", "long-line", "huge-int", "nan", "not-an-object"])
def test_hostile_log_lines_are_skipped_named_and_moved_aside(flow: Flow, shape: str) -> None:
    """Row 12: one deeply nested JSON line killed every log reader (rollback and fsck --repair included)."""
    bad = {
        "deep-array": b'{"id":"' + b"a" * 24 + b'","data":' + b"[" * 200_000 + b"]" * 200_000 + b"}\n",
        "deep-object": _line(flow, 7, data={"x": json.loads('{"a":' * 40 + "1" + "}" * 40)}),
        "long-line": _line(flow, 8, reason="x" * (3 << 20)),
        "huge-int": _line(flow, 9, data={"suite": "s", "values": {"score": 0}}).replace(b'"score":0', b'"score":' + b"9" * 5000),
        "nan": _line(flow, 10, data={"suite": "s", "values": {"score": 0}}).replace(b'"score":0', b'"score":NaN'),
        "not-an-object": b"[1, 2, 3]\n",
    }[shape]
    good = _line(flow, 11, data={"suite": "core", "values": {"score": 0.9}})
    flow.attack(lambda p: _append(p, bad, good))
    runs = [flow.cli(*a) for a in (["log", "m"], ["ls"], ["show", "m@1.0.0", "--json"], ["search", "--json"],
                                    ["metrics", "show", "m@1.0.0", "--json"])]
    _no_traceback(*runs)
    assert all(r.code == 0 for r in runs), [r.err for r in runs]
    assert runs[2].json()["metrics"] == {"core": {"score": 0.9}}  # the good line after the bad one still counts
    assert flow.cli("promote", "m@1.1.0", "production").code == 0
    rollback = flow.cli("rollback", "m", "production")
    _no_traceback(rollback)
    assert rollback.code == 0 and flow.cli("resolve", "m@production").out == "1.0.0\n"
    fsck = flow.cli("fsck")
    _no_traceback(fsck)
    assert fsck.code == 6 and "logs/m.jsonl: line 5: unreadable line" in fsck.out
    assert len(fsck.out) < 2000  # a name and a reason, not the line
    repaired = flow.cli("fsck", "--repair")
    assert repaired.code == 0, repaired.out
    moved = list((flow.registry / "lost-found").iterdir())
    assert len(moved) == 1 and moved[0].read_bytes().startswith(bad[:50])
    assert flow.cli("fsck").code == 0
    assert json.loads(good)["id"] in flow.cli("log", "m", "--json").out  # good lines kept byte for byte


def test_a_huge_number_in_a_manifest_is_a_one_line_error(flow: Flow) -> None:
    """A 5,000-digit manifest value crashed ``search --where``."""
    refused(flow.cli("register", "m", "3.0.0", "-p", "seed=" + "7" * 70), 2, "more than 64 digits")
    assert flow.cli("register", "m", "3.0.0", "-p", "seed=" + "7" * 64).code == 0

    def change(p: Path) -> None:
        d = write_object(p, b'name: m\nversion: "2.0.0"\nparams:\n  lr: ' + b"9" * 5000 + b"\n")
        (p / ".modelreg" / "versions" / "m" / "2.0.0").write_text(d + "\n")

    flow.attack(change)
    for args in (["search", "--where", "params.lr > 1"], ["show", "m@2.0.0"], ["ls", "--where", "params.lr > 0"],
                 ["diff", "m@1.0.0", "m@2.0.0"]):
        refused(flow.cli(*args), 6, "cannot be read")
    fsck = flow.cli("fsck", "--json")
    assert fsck.code == 6 and any("4300 digits" in p["message"] or "cannot be read" in p["message"]
                                   for p in fsck.json()["problems"])
    assert flow.cli("resolve", "m@production").code == 0  # the rest of the registry still reads


def test_control_characters_from_the_registry_are_escaped_when_printed(flow: Flow) -> None:
    """Terminal escapes in reason/actor were printed raw; a newline in a reason forged a log line."""
    esc = "\x1b]0;pwned\x07\x1b[2J\x9b31m"
    line = _line(flow, 12, action="approve", actor=f"eve{esc}", reason="ok\n2030-01-01 00:00:00Z  promote   fake",
                 data={"stage": "production", "comment": f"c{esc}\u202e"})
    tag = _line(flow, 13, action="tag", data={"add": [f"t{esc}"]})
    flow.attack(lambda p: _append(p, line, tag))
    outputs = [flow.cli(*a) for a in (["log", "m"], ["show", "m@1.0.0"], ["search", "--tag", f"t{esc}"],
                                       ["log", "m", "--json"], ["show", "m@1.0.0", "--json"])]
    for r in outputs:
        assert r.code == 0, r.err
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in r.out and raw not in r.err, (raw, r.out)
    log_text = outputs[0].out
    assert log_text.count("\n") == len(flow.cli("log", "m", "--json").json())  # one line per event
    assert "\\x1b]0;pwned" in log_text and "\\n2030-01-01" in log_text
    assert "eve\\x1b" in outputs[1].out
    data = outputs[3].json()
    assert any(e["actor"] == f"eve{esc}" for e in data)  # JSON keeps the value, escaped in the text of it


def test_a_torn_line_before_good_ones_and_a_very_large_log_stream(flow: Flow) -> None:
    """Readers stream the log: 50,000 events are read line by line with one bad line among them."""
    lines = [_line(flow, 100 + i, data={"suite": "s", "values": {"i": i}}) for i in range(50_000)]
    lines.insert(10, b'{"id": "torn in the middle')
    lines.insert(11, b"\n")
    flow.attack(lambda p: _append(p, *lines))
    r = flow.cli("metrics", "show", "m@1.0.0", "--json")
    assert r.code == 0 and r.json()["s"] == {"i": 49_999}
    fsck = flow.cli("fsck", "--json").json()
    assert [p["message"][:8] for p in fsck["problems"] if p["severity"] == "error"] == ["line 15:"]


def test_a_hostile_gitattributes_does_not_break_git_diff_of_large_files(flow: Flow) -> None:
    """``* diff=modelreg-ref`` made git diff of every file over 64 KiB fail; git-setup scopes its patterns."""
    assert flow.cli("git-setup", "--command", f"{sys.executable} -m modelreg").code == 0
    attrs = (flow.registry / ".gitattributes").read_text()
    assert "refs/** diff=modelreg-ref" in attrs and "versions/** diff=modelreg-ref" in attrs
    assert not any(line.startswith("*") for line in attrs.splitlines())
    big = os.urandom(48 * 1024).hex()  # ~96 KiB of text
    git(flow.victim, "add", "-A")
    git(flow.victim, "commit", "-q", "-m", "git-setup")
    git(flow.victim, "push", "-q", "origin", "main")

    def change(p: Path) -> None:
        (p / ".gitattributes").write_text("* diff=modelreg-ref\n")
        (p / "notes.txt").write_text(big + "\n")
        (p / "data.bin").write_bytes(os.urandom(100_000))

    flow.attack(change)
    (flow.victim / "notes.txt").write_text(big + "\nlocal edit\n")
    (flow.victim / "data.bin").write_bytes(os.urandom(100_000))
    import subprocess

    diff = subprocess.run(["git", "diff"], cwd=flow.victim, capture_output=True)  # bytes: data.bin passes through
    assert diff.returncode == 0, diff.stderr
    assert b"+local edit" in diff.stdout and b"data.bin" in diff.stdout
    assert b"Traceback" not in diff.stderr and b"modelreg: error" not in diff.stderr


def test_a_committed_artifact_store_outside_the_project_is_refused(flow: Flow) -> None:
    outside = flow.home / ".bashrc.d"

    def change(p: Path) -> None:
        cfg = p / ".modelreg" / "config.yaml"
        cfg.write_text(cfg.read_text() + f"artifact_store: {outside}\n")

    flow.attack(change)
    (flow.victim / "new.bin").write_bytes(b"echo pwned\n")
    before = sorted(outside.iterdir())
    refused(flow.cli("register", "m", "2.0.0", "-a", "new.bin", "--upload"), 2, "outside the project")
    assert sorted(outside.iterdir()) == before
    assert flow.cli("register", "m", "2.0.0", "-a", "new.bin").code == 0  # without --upload the store is not used
