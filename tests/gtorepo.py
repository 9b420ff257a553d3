"""A git repository driven with the real ``gto`` CLI, and the scenario the GTO importer tests compare against.

Building it takes a while (gto starts in ~0.7 s and git keeps tag times to the second, so each
command waits for a new second): tests/servers.py starts it in the background when tests that
need it are collected, and the ``gto_template`` fixture picks the result up.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path


class GtoRepo:
    """A git repository driven with the real gto CLI."""

    def __init__(self, path: Path, exe: str, home: Path) -> None:
        self.path, self.exe = path, exe
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GTO_"))}
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
        self.last_second = 0

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, env=self.env, check=True, capture_output=True,
                              text=True).stdout.strip()

    def as_user(self, name: str) -> None:
        self.git("config", "user.name", name.title())
        self.git("config", "user.email", f"{name}@example.com")

    def commit(self, files: dict[str, str], message: str) -> str:
        for rel, text in files.items():
            p = self.path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-qm", message)
        return self.git("rev-parse", "HEAD")

    def __call__(self, *args: str) -> str:
        """Run a gto command that creates a tag, in a later second than the previous one."""
        while int(time.time()) <= self.last_second:
            time.sleep(0.05)
        out = self.run(*args)
        self.last_second = int(time.time())
        return out

    def run(self, *args: str) -> str:
        proc = subprocess.run([self.exe, *args], cwd=self.path, env=self.env, capture_output=True, text=True)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    def show(self, name: str | None = None) -> object:
        return json.loads(self.run("show", *([name] if name else []), "--json"))

    def history(self) -> list[dict]:
        return list(reversed(json.loads(self.run("history", "--json"))))  # gto prints newest first


ANNOTATIONS = """\
churn:
  type: model
  path: models/churn.pkl
  description: Churn classifier
  labels: [tabular, Team-A]
fraud:
  type: model
  path: models/fraud.pkl
"""


def gto_state(repo: GtoRepo) -> dict:
    """What gto says about the repository: show (all, and per artifact) and history."""
    shown = repo.show()
    names = {h["artifact"] for h in repo.history()}
    return {"show": shown, "versions": {a: repo.show(a) for a in sorted(names)}, "history": repo.history()}


def build_template(base: Path, exe: str) -> Path:
    """Two artifacts, three stages, re-assignments, an unassignment, a deregistration, an assignment to an
    unregistered commit, a deprecated artifact; two taggers. Writes ``base/repo`` and ``base/gto-state.json``."""
    repo = GtoRepo(base / "repo", exe, base)
    repo.path.mkdir()
    repo.git("init", "-q", "-b", "main")
    repo.as_user("alice")
    repo.commit({"artifacts.yaml": ANNOTATIONS, "models/churn.pkl": "weights-1"}, "c1")
    repo("register", "churn", "--version", "v1.0.0")
    repo("register", "fraud", "--version", "v0.1.0")
    repo("assign", "churn", "--version", "v1.0.0", "--stage", "dev")
    repo.commit({"models/churn.pkl": "weights-2"}, "c2")
    repo.as_user("bob")
    repo("register", "churn", "--version", "v1.1.0")
    repo("assign", "churn", "--version", "v1.1.0", "--stage", "dev")
    repo("assign", "churn", "--version", "v1.0.0", "--stage", "prod")
    repo("assign", "fraud", "--version", "v0.1.0", "--stage", "prod")
    repo.as_user("alice")
    repo.commit({"models/churn.pkl": "weights-3"}, "c3")
    repo("register", "churn", "--version", "v1.2.0")
    repo("assign", "churn", "--version", "v1.2.0", "--stage", "staging")
    repo.as_user("bob")
    repo("assign", "churn", "--version", "v1.1.0", "--stage", "prod")
    repo("deprecate", "churn", "v1.1.0", "prod")  # unassign: prod falls back to v1.0.0
    repo.as_user("alice")
    repo("deprecate", "churn", "v1.2.0")  # deregister: staging is empty again
    repo("assign", "churn", "--version", "v1.1.0", "--stage", "prod")  # back in prod
    repo.commit({"notes.txt": "no registration here"}, "c4")
    repo("assign", "churn", "HEAD", "--stage", "qa", "--sr")  # a commit with no registered version
    repo.as_user("bob")
    repo("deprecate", "fraud")
    (base / "gto-state.json").write_text(json.dumps(gto_state(repo)))
    return base
