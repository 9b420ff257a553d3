"""Helpers for the hostile-registry tests of the network half: a trap HTTP server that records every
request, fake credentials in the environment, and an attacker's hand-written registry entries."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Any

from modelreg import log, manifest
from modelreg.log import Event
from modelreg.registry import Registry

# Fake credentials a CI job would hold; none of them may ever reach the trap.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEVICTIM000000",
    "AWS_SECRET_ACCESS_KEY": "victim-secret-access-key-do-not-leak",
    "AWS_SESSION_TOKEN": "victim-session-token-do-not-leak",
    "AWS_DEFAULT_REGION": "us-east-1",
    "HF_TOKEN": "hf_victimFAKEtokenFAKEtokenFAKEtoken00",
    "CI_DEPLOY_SECRET": "victim-deploy-secret-do-not-leak",
}
SECRET_VALUES = tuple(v for k, v in FAKE_CREDENTIALS.items() if k != "AWS_DEFAULT_REGION")


class Trap:
    """An HTTP server on 127.0.0.1 that answers everything with 200 and records every request it gets.

    ``redirects`` maps a path to a Location: the trap then answers 302 instead.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.redirects: dict[str, str] = {}
        trap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                trap.requests.append({"method": self.command, "path": self.path,
                                      "headers": dict(self.headers.items()), "body": body[:200]})
                if self.path in trap.redirects:
                    self.send_response(302)
                    self.send_header("Location", trap.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                payload = b"attacker bytes\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def add_config(project: Path, text: str) -> None:
    cfg = project / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + text)


def forge_version(project: Path, name: str, version: str, artifacts: list[dict[str, Any]],
                  actor: str = "mallory") -> str:
    """What an attacker commits by hand: a manifest object (any artifact URIs, sha256 optional),
    its version entry and a register event, without modelreg ever looking at the artifacts."""
    reg = Registry(project / ".modelreg")
    data = manifest.to_bytes(manifest.validate({"name": name, "version": version, "artifacts": artifacts}))
    digest = reg.objects.put(data)
    reg.refs.add_version(name, version, digest)
    log.append(reg.logs_dir, Event("register", name, actor, version=version, to=digest))
    return digest


def forge_stage(project: Path, name: str, stage: str, digest: str) -> None:
    """A stage ref file written by hand (no event, no gates)."""
    path = project / ".modelreg" / "refs" / name / stage
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest + "\n")


def forge_event(project: Path, event: Event) -> None:
    log.append(project / ".modelreg" / "logs", event)


def leaked(text: str) -> list[str]:
    """The fake secrets that appear in ``text``."""
    return [s for s in SECRET_VALUES if s in text]
