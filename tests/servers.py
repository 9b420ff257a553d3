"""Real servers on loopback for artifact tests: moto's S3 server and a local HTTP server.

Loaded as a pytest plugin (``-p servers`` in pyproject's pytest options, with tests/ on the
path), so every test module sees the fixtures and the session-scoped servers start once.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import socket
import threading

import pytest

from modelreg import uris

BUCKET = "modelreg-test"
MiB = 1 << 20
# Fail fast against closed ports: one attempt, short connect timeout.
S3_FAST = {"s3": {"config_kwargs": {"connect_timeout": 2, "read_timeout": 5, "retries": {"total_max_attempts": 1}}}}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, monkeypatch, tmp_path):
    """A boto3 client on a freshly reset moto server with one bucket; uris sees it via the env var."""
    import boto3
    import requests
    import s3fs

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        uris.S3_ENDPOINT_ENV: moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=5).raise_for_status()
    s3fs.S3FileSystem.clear_instance_cache()
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    s3fs.S3FileSystem.clear_instance_cache()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@pytest.fixture(scope="session")
def _http_server_session(tmp_path_factory):
    served = tmp_path_factory.mktemp("http-root")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def http_server(_http_server_session, monkeypatch):
    """(base URL, served directory) for a ThreadingHTTPServer on 127.0.0.1 (HEAD/GET, Content-Length).

    A loopback address is private: URIs read from a registry may name it only because this
    fixture allows exactly this host and port (MODELREG_ALLOW_PRIVATE_NETWORK), as a user would.
    """
    base, served = _http_server_session
    monkeypatch.setenv("MODELREG_ALLOW_PRIVATE_NETWORK", base.removeprefix("http://"))
    return base, served


# --------------------------------------------------------------------------- started early
# The MLflow server and the GTO template repository take tens of seconds to be ready. When the
# collected tests need them, they are started right after collection, in the background, so that
# they get ready while other tests run; their fixtures then wait for them.
_EARLY: dict[str, tuple[threading.Thread, dict]] = {}
_MLFLOW: dict = {}


def _background(name: str, fn) -> None:
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the fixture that waits for it
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"early-{name}", daemon=True)
    thread.start()
    _EARLY[name] = (thread, box)


def early(name: str):
    """The result of the background work ``name`` (waiting for it), or None if it was not started."""
    if name not in _EARLY:
        return None
    thread, box = _EARLY.pop(name)
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def pytest_collection_modifyitems(session, config, items):
    import tempfile
    from pathlib import Path

    from importtools import find_tool

    wanted = {f for item in items for f in getattr(item, "fixturenames", ())}
    if "mlflow_server" in wanted and find_tool("mlflow") and not _MLFLOW:
        _mlflow_start(find_tool("mlflow"))
    gto = find_tool("gto")
    if "gto_template" in wanted and gto and "gto-template" not in _EARLY:
        from gtorepo import build_template

        base = Path(tempfile.mkdtemp(prefix="modelreg-gto-template-"))
        _CLEANUP.append(base)
        _background("gto-template", lambda: build_template(base, gto))


_CLEANUP: list = []


def pytest_unconfigure(config):
    import shutil

    _mlflow_stop()
    for thread, _box in _EARLY.values():
        thread.join(5)
    for path in _CLEANUP:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- MLflow
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the server gets SIGTERM if the test process dies without tearing it down."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _mlflow_start(exe: str) -> None:
    """Start ``mlflow server`` on 127.0.0.1 with a sqlite backend in a temp dir; do not wait for it."""
    import os
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    base = Path(tempfile.mkdtemp(prefix="modelreg-mlflow-"))
    _CLEANUP.append(base)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(HOME=str(base), MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", PYTHONWARNINGS="ignore")
    log = open(base / "server.log", "wb")
    cmd = [exe, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}", "--artifacts-destination", str(base / "artifacts")]
    proc = subprocess.Popen(cmd, cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    _MLFLOW.update(proc=proc, log=log, base=base, url=f"http://127.0.0.1:{port}", started=time.monotonic())


def _mlflow_stop() -> None:
    import os
    import signal
    import subprocess

    proc = _MLFLOW.get("proc")
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    _MLFLOW["log"].close()
    _MLFLOW.clear()


@pytest.fixture(scope="session")
def mlflow_server():
    """URL of a real ``mlflow server`` on 127.0.0.1 (sqlite backend in a temp dir), started once per session
    (right after collection, see above) and stopped at the end of it, or when this process dies.

    Tests share it: each uses its own registered-model names and imports them with --model.
    """
    import sys
    import time
    import urllib.request

    from importtools import require_mlflow_client, require_tool

    exe = require_tool("mlflow")
    require_mlflow_client()
    if not _MLFLOW:
        _mlflow_start(exe)
    proc, url, log_path = _MLFLOW["proc"], _MLFLOW["url"], _MLFLOW["base"] / "server.log"
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited {proc.returncode}: "
                               + log_path.read_text(errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() - _MLFLOW["started"] > 180:
            _mlflow_stop()
            raise RuntimeError("mlflow server did not answer /health within 180 s: "
                               + log_path.read_text(errors="replace")[-2000:])
        time.sleep(0.3)
    print(f"\nmlflow server up {time.monotonic() - _MLFLOW['started']:.1f} s after its start", file=sys.stderr)
    yield url
    _mlflow_stop()
