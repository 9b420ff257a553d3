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
