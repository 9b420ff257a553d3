"""A fork server that makes ``modelreg`` commands in documentation tests start in milliseconds.

The doc tests run hundreds of ``modelreg ...`` shell commands; a cold Python start with
typer costs 0.1-0.3 s each. The server imports ``modelreg.cli`` once, then forks a child
per command. The child takes the client's argv, working directory, environment and
stdin/stdout/stderr (passed over a Unix socket with SCM_RIGHTS), runs ``modelreg.cli.main``
and reports the exit code. Every command still runs in a fresh process forked from a
server that never ran one, so no state leaks between commands.

    python tests/docserver.py SOCKET       # serve (prints "ready" on stdout)
    python -S tests/docserver.py --client SOCKET ARGS...   # what the `modelreg` shim runs
"""

from __future__ import annotations

import json
import os
import socket
import sys

MAX_MSG = 1 << 20


def _recv_all(sock: socket.socket) -> tuple[bytes, list[int]]:
    msg, fds, _flags, _addr = socket.recv_fds(sock, MAX_MSG, 3)
    return msg, list(fds)


def client(path: str, args: list[str]) -> int:
    """Run ``modelreg ARGS`` through the server; fall back to a normal start if it is not there."""
    payload = json.dumps({"argv": args, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
    except OSError:
        os.execv(sys.executable, [sys.executable, "-m", "modelreg", *args])
    with sock:
        socket.send_fds(sock, [len(payload).to_bytes(8, "big") + payload], [0, 1, 2])
        data = b""
        while len(data) < 4:
            chunk = sock.recv(4 - len(data))
            if not chunk:
                sys.stderr.write("docserver: the command's process died\n")
                return 1
            data += chunk
    return int.from_bytes(data, "big", signed=True)


def _child(conn: socket.socket) -> None:
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # else the command's own subprocesses report exit 0
    signal.alarm(300)  # a command never outlives a stuck doc test (its client may be killed, not it)
    head, fds = _recv_all(conn)
    size = int.from_bytes(head[:8], "big")
    body = head[8:]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            os._exit(1)
        body += chunk
    req = json.loads(body)
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    sys.argv = ["modelreg", *req["argv"]]
    code = 0
    try:
        from modelreg.cli import main

        main(req["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - a traceback is a failure the doc test must see
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe (head, grep -q) is the reader's business
                pass
    conn.sendall(code.to_bytes(4, "big", signed=True))
    os._exit(code)


def serve(path: str) -> None:
    import signal

    import modelreg.cli  # noqa: F401 - what every command imports first
    import filelock  # noqa: F401 - third-party modules that read nothing at import
    import rich.console  # noqa: F401
    import rich.table  # noqa: F401
    import yaml  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:
            server.close()
            try:
                _child(conn)
            finally:
                os._exit(1)
        conn.close()


if __name__ == "__main__":
    if sys.argv[1] == "--client":
        sys.exit(client(sys.argv[2], sys.argv[3:]))
    serve(sys.argv[1])
