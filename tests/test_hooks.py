"""Event hooks from the user's environment only (MODELREG_HOOK, the user config, entry points), the committed
config refusing them, and `log --follow` / `log --since` (issue 18, part 4)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import subprocess_env

from modelreg import hooks
from modelreg.registry import Registry


@pytest.fixture(autouse=True)
def _no_hooks(monkeypatch):
    for var in (hooks.ENV_HOOK, hooks.ENV_TIMEOUT, hooks.ENV_DEPTH):
        monkeypatch.delenv(var, raising=False)
    hooks._given_up.clear()
    hooks._deferred = None
    yield
    hooks._deferred = None


def received(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# A hook that records each event, and whether the event was already in the log when it ran (durable).
RECORD = ('ev=$(cat); '
          'if grep -q "$MODELREG_EVENT_ID" "$MODELREG_REGISTRY/logs/$MODELREG_EVENT_MODEL.jsonl" 2>/dev/null; '
          'then d=1; else d=0; fi; '
          'printf "%s\\n" "$ev" | sed "s/^{/{\\"durable\\": $d, /" >> "$OUT"')


def test_env_hook_gets_every_written_event_after_it_is_durable(cli, project, monkeypatch, tmp_path):
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("OUT", str(out))
    monkeypatch.setenv(hooks.ENV_HOOK, RECORD)
    (project / "w.bin").write_bytes(b"w")
    assert cli("register", "m", "1", "-a", "w=w.bin")[0] == 0
    assert cli("register", "m", "2", "-a", "w=w.bin")[0] == 0
    assert cli("promote", "m@1", "production")[0] == 0
    assert cli("promote", "m@2", "production")[0] == 0
    assert cli("rollback", "m", "production")[0] == 0
    assert cli("metrics", "set", "m@2", "--suite", "core", "score=0.9")[0] == 0
    assert cli("approve", "m@2", "--stage", "production")[0] == 0
    assert cli("archive", "m@2", "--force", "--reason", "old")[0] == 0
    assert cli("tag", "m@1", "add", "nlp")[0] == 0
    assert cli("clear", "m", "production", "--reason", "retired")[0] == 0
    got = received(out)
    assert [e["action"] for e in got] == ["register", "register", "promote", "promote", "rollback", "metrics",
                                          "approve", "archive", "tag", "clear"]
    assert all(e["durable"] == 1 for e in got)
    logged = [json.loads(line) for line in (project / ".modelreg/logs/m.jsonl").read_text().splitlines()]
    assert [e["id"] for e in got] == [e["id"] for e in logged]
    assert got[0]["registry"] == str(project / ".modelreg") and got[0]["model"] == "m" and got[0]["version"] == "1"


def test_read_side_events_upload_and_download(cli, project, monkeypatch, tmp_path):
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("OUT", str(out))
    monkeypatch.setenv(hooks.ENV_HOOK, 'cat >> "$OUT"; echo >> "$OUT"')
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + "artifact_store: ./store\n")
    (project / "w.bin").write_bytes(b"w")
    assert cli("register", "m", "1", "-a", "w=w.bin", "--upload")[0] == 0
    assert cli("fetch", "m@1", "dest")[0] == 0
    got = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert [e["action"] for e in got] == ["upload", "register", "download"]
    assert got[0]["data"]["artifacts"][0]["name"] == "w.bin"
    assert got[2]["data"]["dest"] == "dest" and got[2]["data"]["files"] == 1 and got[2]["version"] == "1"
    assert [json.loads(line)["action"] for line in (project / ".modelreg/logs/m.jsonl").read_text().splitlines()] \
        == ["register"]  # read-side events are never written to the log


def test_failing_and_hanging_hooks_warn_and_never_undo_the_write(cli, project, monkeypatch):
    monkeypatch.setenv(hooks.ENV_HOOK, "echo boom >&2; exit 3")
    code, out, err = cli("register", "m", "1", "--json")
    assert code == 0 and json.loads(out)["created"] is True
    assert "hook" in err and "exited 3" in err and "boom" in err
    monkeypatch.setenv(hooks.ENV_HOOK, "sleep 30")
    monkeypatch.setenv(hooks.ENV_TIMEOUT, "0.5")
    t0 = time.monotonic()
    code, out, err = cli("register", "m", "2")
    assert code == 0 and time.monotonic() - t0 < 10
    assert "did not finish within 0.5 s" in err and "MODELREG_HOOK_TIMEOUT" in err
    assert Registry.open(project / ".modelreg").resolve("m@2").version == "2"
    assert out.strip().startswith("sha256:")  # acknowledged on stdout before the hook ran


def test_user_config_hooks_with_action_filter(cli, project, monkeypatch, tmp_path, _user_dirs):
    out = tmp_path / "promotions.jsonl"
    (_user_dirs / "modelreg").mkdir()
    (_user_dirs / "modelreg" / "config.yaml").write_text(
        "hooks:\n"
        f"  - command: cat >> {out}; echo >> {out}\n"
        "    actions: [promote, rollback]\n"
        "    timeout: 5\n")
    assert cli("register", "m", "1")[0] == 0
    assert cli("promote", "m@1", "staging")[0] == 0
    assert [json.loads(line)["action"] for line in out.read_text().splitlines() if line.strip()] == ["promote"]


@pytest.mark.parametrize("bad, message", [
    ("hooks: echo hi\n", "must be a list"),
    ("hooks:\n  - command: ''\n", "non-empty shell command"),
    ("hooks:\n  - command: x\n    when: always\n", "unknown key"),
    ("hooks:\n  - command: x\n    timeout: -1\n", "number of seconds"),
])
def test_user_config_hooks_are_validated(bad, message, _user_dirs):
    from modelreg import userconfig
    from modelreg.errors import UsageError

    (_user_dirs / "modelreg").mkdir()
    (_user_dirs / "modelreg" / "config.yaml").write_text(bad)
    with pytest.raises(UsageError, match=message):
        userconfig.load()


def test_entry_point_hooks_run_in_process(cli, project, monkeypatch, tmp_path):
    site = tmp_path / "site"
    (site / "demo_hook-1.0.dist-info").mkdir(parents=True)
    (site / "demo_hook-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-hook\nVersion: 1.0\n")
    (site / "demo_hook-1.0.dist-info" / "entry_points.txt").write_text(
        "[modelreg.hooks]\nrecord = demo_hook:record\nbroken = demo_hook:broken\n")
    (site / "demo_hook.py").write_text(
        "SEEN = []\n"
        "def record(event):\n    SEEN.append(event)\n"
        "def broken(event):\n    raise RuntimeError('no network')\n")
    monkeypatch.syspath_prepend(str(site))
    code, _, err = cli("register", "m", "1")
    assert code == 0
    import demo_hook

    assert [e["action"] for e in demo_hook.SEEN] == ["register"]
    assert "entry point broken" in err and "RuntimeError: no network" in err


def test_no_hook_configured_costs_no_entry_point_lookup(reg, monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: pytest.fail("scanned every distribution"))
    reg.register("m", "1")
    reg.resolve("m@1")


def test_library_delivers_after_the_lock_is_released(reg, monkeypatch):
    seen = []

    def fake_run(hook_list, payloads):
        lock = reg.locks_dir / "m.lock"
        import fcntl

        with open(lock, "a") as f:  # the lock is free: a hook never holds up other writers
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
        seen.extend(p["action"] for p in payloads)

    monkeypatch.setenv(hooks.ENV_HOOK, "true")
    monkeypatch.setattr(hooks, "_run", fake_run)
    reg.register("m", "1")
    reg.promote("m@1", "production")
    assert seen == ["register", "promote"]


@pytest.mark.parametrize("text", [
    "hooks:\n  - command: curl evil.example\n",
    "post_promote_hook: ./deploy.sh\n",
    "storage_options:\n  s3:\n    command: x\n",
    "on_event: rm -rf /\n",
])
def test_committed_config_cannot_define_hooks_or_commands(cli, project, text):
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + text)
    code, _, err = cli("register", "m", "1")
    assert code == 2 and "cannot define hooks or commands" in err and "pull request" in err
    assert len(err.strip().splitlines()) == 1
    assert not (project / ".modelreg" / "versions" / "m").exists()


# --------------------------------------------------------------------------- log --since / --follow


def test_log_since_resumes_after_an_event(cli, project):
    for v in ("1", "2", "3"):
        assert cli("register", "m", v)[0] == 0
    code, out, _ = cli("log", "m", "--json")
    ids = [e["id"] for e in reversed(json.loads(out))]
    code, out, _ = cli("log", "m", "--since", ids[0], "--json")
    assert code == 0 and [e["id"] for e in reversed(json.loads(out))] == ids[1:]
    code, out, _ = cli("log", "--since", ids[2], "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = cli("log", "m", "--since", "0" * 24)
    assert code == 3 and "no event with id" in err
    code, _, err = cli("log", "m", "--since", "../x")
    assert code == 2


def test_log_follow_streams_new_events_and_stops_on_ctrl_c(project):
    env = subprocess_env(MODELREG_ACTOR="follower")
    reg = Registry.open(project / ".modelreg")
    first = reg.register("m", "1").event
    proc = subprocess.Popen([sys.executable, "-m", "modelreg", "log", "--follow", "--json", "--since", first.id],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)  # started and polling
        r2 = reg.register("m", "2")
        line = _readline(proc, 20)
        assert json.loads(line)["id"] == r2.event.id
        reg.promote("m@2", "production")
        other = reg.register("other", "1")
        got = [json.loads(_readline(proc, 20)) for _ in range(2)]
        assert [e["action"] for e in got] == ["promote", "register"] and got[1]["id"] == other.event.id
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


_pending = bytearray()


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    """One line of the child's stdout, read from the pipe itself (no buffer hides a line from select)."""
    import selectors

    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while b"\n" not in _pending:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            raise AssertionError("log --follow printed nothing in time")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError("log --follow exited")
        _pending.extend(chunk)
    line, _, rest = bytes(_pending).partition(b"\n")
    _pending[:] = rest
    return line.decode()


def test_follow_through_the_library_sees_lines_a_git_merge_rewrote(reg):
    reg.register("m", "1")
    it = reg.follow("m", interval=0.01)
    assert next(it).action == "register"
    path = reg.logs_dir / "m.jsonl"
    before = path.read_bytes()
    r = reg.register("m", "2")
    # a merge rewrites the file with another branch's line in the middle
    from modelreg.log import Event

    one = reg.resolve("m@1").digest
    theirs = Event("tag", "m", "them", version="1", to=one, data={"add": ["x"], "remove": []})
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(before + theirs.line() + lines[-1])
    got = {next(it).id, next(it).id}
    assert got == {r.event.id, theirs.id}



