"""Git fixtures for the torture suite: a bare remote, clones, a contender that keeps pushing, recovery.

:func:`recover` follows the recovery that modelreg's own exit-8 messages name (finish an
interrupted sync with ``modelreg sync``; remove a stale git lock) and nothing else, so the
torture checks that those messages are true.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV},
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd}: {proc.stderr.strip()}")
    return proc


def configure(repo: Path, who: str) -> None:
    for k, v in (("user.name", who), ("user.email", f"{who}@example.com"), ("commit.gpgsign", "false"),
                 ("gc.auto", "0")):
        git(repo, "config", k, v)


def make_remote(base: Path, init: Any) -> Path:
    """``base/remote.git``, whose main holds a registry made by ``init(project_dir)``."""
    seed = base / "seed"
    seed.mkdir(parents=True)
    git(seed, "init", "-q", "-b", "main")
    configure(seed, "seed")
    init(seed)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "registry")
    bare = base / "remote.git"
    git(base, "clone", "-q", "--bare", str(seed), str(bare))
    git(bare, "config", "gc.auto", "0")
    return bare


def clone(bare: Path, dest: Path, who: str) -> Path:
    git(bare.parent, "clone", "-q", str(bare), str(dest))
    configure(dest, who)
    return dest


def remote_event_ids(bare: Path, rel: str = ".modelreg") -> dict[str, int]:
    """Event id -> how many lines carry it, over every log on the remote's main."""
    names = git(bare, "ls-tree", "--name-only", "main", f"{rel}/logs/").stdout.split()
    ids: dict[str, int] = {}
    for name in names:
        for line in git(bare, "show", f"main:{name}").stdout.splitlines():
            try:
                i = json.loads(line)["id"]
            except (ValueError, KeyError, TypeError):
                continue
            ids[i] = ids.get(i, 0) + 1
    return ids


def on_remote(bare: Path, commit: str) -> bool:
    return git(bare, "merge-base", "--is-ancestor", commit, "main", check=False).returncode == 0


_RM = re.compile(r"rm '([^']+)'")


def recover(repo: Path, run_cli: Any, counts: dict[str, int], attempts: int = 20) -> str | None:
    """Run ``modelreg sync`` in ``repo`` until it passes, following each exit-8 message's own recovery.

    Returns None when the clone is usable again, else why not. ``counts`` gains one entry per
    recovery followed (``finished an interrupted sync``, ``removed a stale git lock``, ...).
    """
    reg_dir = str(repo / ".modelreg")
    last = ""
    for _ in range(attempts):
        code, _out, err, esc = run_cli(["-R", reg_dir, "sync"])
        if esc is not None:
            return f"modelreg sync raised {esc!r}"
        if code == 0:
            if "interrupted sync" in err:
                counts["finished an interrupted sync (modelreg sync)"] = counts.get(
                    "finished an interrupted sync (modelreg sync)", 0) + 1
            return None
        last = err.strip()
        if code != 8:
            return f"modelreg sync exited {code}: {last}"
        if "is a stale" in err:
            m = _RM.search(err)
            if not m:
                return f"a stale-lock message without the command to clear it: {last}"
            os.unlink(m.group(1))
            counts["removed a stale git lock (as the message says)"] = counts.get(
                "removed a stale git lock (as the message says)", 0) + 1
        elif "held by a running" in err:
            time.sleep(0.5)  # a git command the killed sync started is still finishing
        elif "a modelreg sync was interrupted" in err:
            continue  # 'modelreg sync' is what it says; the loop runs it again
        else:
            return f"modelreg sync exited 8 with no recovery the torture knows: {last}"
    return f"still blocked after {attempts} recoveries: {last}"


def start_contender(bare: Path, base: Path, ackfile: Path, seed: int, env: dict[str, str]) -> subprocess.Popen:
    """A process that registers a version of ``contender`` and pushes it, again and again, until killed."""
    repo = clone(bare, base / "contender", "contender")
    code = (
        "import json, os, random, sys, time\n"
        "from modelreg.registry import Registry\n"
        "from modelreg.gitops import sync\n"
        f"rnd = random.Random({seed})\n"
        f"reg = Registry({str(repo / '.modelreg')!r})\n"
        f"fd = os.open({str(ackfile)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    r = reg.register('contender', f'{i}.{rnd.randrange(10**6)}', actor='contender')\n"
        "    res = sync(reg, push=True, timeout=120)\n"
        "    os.write(fd, (json.dumps({'events': [r.event.id], 'pushed_commit': res.pushed_commit}) + '\\n').encode())\n"
        "    time.sleep(rnd.uniform(0.2, 1.0))\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, start_new_session=True)


def stop(p: subprocess.Popen) -> str:
    """Stop a contender (its whole process group) and return what it printed on stderr."""
    try:
        os.killpg(p.pid, 9)
    except ProcessLookupError:
        pass
    _, err = p.communicate()
    return err.decode("utf-8", "replace")[-500:]


