"""Serves a built site on 127.0.0.1 (never another interface) for a preview, until Ctrl-C."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import ModelregError, UsageError
from .render import CSP

HOST = "127.0.0.1"


class _Handler(SimpleHTTPRequestHandler):
    """Static files of one directory, with the site's security headers; nothing outside it (no symlinks out)."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".json": "application/json", ".svg": "image/svg+xml"}

    def translate_path(self, path: str) -> str:
        full = super().translate_path(path)
        root = os.path.realpath(self.directory)
        real = os.path.realpath(full)
        if real != root and not real.startswith(root + os.sep):
            return os.path.join(root, ".modelreg-site-outside")  # a path that does not exist: 404
        return full

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # a preview: no request log on the terminal


def serve(directory: str | os.PathLike[str], port: int = 8000, ready: Callable[[str], None] | None = None) -> None:
    """Serve ``directory`` at ``http://127.0.0.1:PORT/`` until interrupted (Ctrl-C returns normally)."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port (0-65535; 0 picks a free one)")
    if not os.path.isdir(directory):
        raise UsageError(f"{directory} is not a directory; build the site first with 'modelreg site build'")
    try:
        server = ThreadingHTTPServer((HOST, port), partial(_Handler, directory=os.fspath(directory)))
    except OSError as exc:
        raise ModelregError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    server.daemon_threads = True
    try:
        if ready is not None:
            ready(f"http://{HOST}:{server.server_address[1]}/")
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
