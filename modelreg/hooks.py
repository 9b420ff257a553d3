"""Event hooks: each event, once durable, goes to the hooks the user's environment configures (never the registry).

Sources, in this order (docs/artifacts.md, "Event hooks"):

- ``MODELREG_HOOK``: a shell command run once per event with the event as JSON on stdin;
- ``hooks:`` in the user's config file (:mod:`modelreg.userconfig`), each a command with an
  optional ``actions`` filter and ``timeout``;
- Python entry points in the group ``modelreg.hooks``: callables taking the event dict.

The committed ``.modelreg/config.yaml`` can never define a hook (a pull request must not be able
to run code in CI; :mod:`modelreg.config` refuses it). A hook runs after the write it reports is
durable and the lock is released; one that fails or runs past its timeout (``MODELREG_HOOK_TIMEOUT``,
default 10 s) gets a warning on stderr and changes nothing. The CLI delivers after it printed its
result (:func:`defer` / :func:`flush`). With no hook configured, delivery costs an environment
lookup, a stat of the user config and a ~1 ms scan of installed packages' entry point files,
and only on commands that wrote an event.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENV_HOOK = "MODELREG_HOOK"
ENV_TIMEOUT = "MODELREG_HOOK_TIMEOUT"
ENV_DEPTH = "MODELREG_HOOK_DEPTH"
GROUP = "modelreg.hooks"
DEFAULT_TIMEOUT = 10.0
MAX_DEPTH = 3  # a hook that runs modelreg, whose hook runs modelreg...: stop there
READ_ACTIONS = ("upload", "download")  # delivered to hooks, never written to the log


@dataclass(frozen=True)
class Hook:
    """One configured hook: a shell ``command`` or an entry point ``target``."""

    label: str
    command: str | None = None
    target: Any = None  # an importlib.metadata.EntryPoint, loaded on first use
    actions: frozenset[str] | None = None
    timeout: float | None = None

    def wants(self, action: str) -> bool:
        return self.actions is None or action in self.actions


def default_timeout() -> float:
    """``MODELREG_HOOK_TIMEOUT`` seconds (a positive number), else 10."""
    raw = os.environ.get(ENV_TIMEOUT, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        warn(f"{ENV_TIMEOUT}={raw!r} is not a number of seconds; using {DEFAULT_TIMEOUT:g}")
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def warn(message: str) -> None:
    """A hook problem, on stderr: it never fails the command that wrote the event."""
    try:
        sys.stderr.write(f"modelreg: warning: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# ------------------------------------------------------------------ what is configured


_scanned: dict[tuple[str, ...], bool] = {}  # sys.path -> found: installed packages do not change mid-command


def _entry_point_files() -> bool:
    """True if an installed distribution declares a ``[modelreg.hooks]`` entry point (a cheap scan).

    ``importlib.metadata.entry_points()`` parses every installed distribution (100+ ms); this
    reads only the entry_points.txt files (once per process and ``sys.path``) and the real lookup
    runs only when one names the group.
    """
    key = tuple(sys.path)
    if key not in _scanned:
        _scanned.clear()
        _scanned[key] = _scan()
    return _scanned[key]


def _scan() -> bool:
    marker = f"[{GROUP}]".encode()
    for d in sys.path:
        try:
            names = os.listdir(d or ".")
        except OSError:
            continue
        for n in names:
            if n.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(d or ".", n, "entry_points.txt"), "rb") as f:
                        if marker in f.read():
                            return True
                except OSError:
                    continue
    return False


def configured() -> list[Hook]:
    """The hooks of the user's environment: ``MODELREG_HOOK``, the user config, entry points."""
    out: list[Hook] = []
    env = os.environ.get(ENV_HOOK, "").strip()
    if env:
        out.append(Hook(label=f"{ENV_HOOK} ({_short(env)})", command=env))
    try:
        from . import userconfig

        for h in userconfig.load().hooks:
            out.append(Hook(label=f"user config hook ({_short(h['command'])})", command=h["command"],
                            actions=frozenset(h["actions"]) if h.get("actions") is not None else None,
                            timeout=h.get("timeout")))
    except Exception as exc:  # a broken user config must not fail a write that already happened
        warn(f"hooks in the user config were not run: {getattr(exc, 'message', exc)}")
    if _entry_point_files():
        from importlib.metadata import entry_points

        for ep in entry_points(group=GROUP):
            out.append(Hook(label=f"entry point {ep.name} ({ep.value})", target=ep))
    return out


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ delivery

_deferred: list[tuple[list[Hook], list[dict[str, Any]]]] | None = None
_given_up: set[str] = set()  # hooks that timed out in this process: not waited for again


def defer() -> None:
    """Hold deliveries until :func:`flush` (the CLI prints its result first, then runs hooks)."""
    global _deferred
    if _deferred is None:
        _deferred = []


def flush() -> None:
    """Deliver what :func:`defer` held, and stop deferring."""
    global _deferred
    held, _deferred = _deferred or [], None
    for hooks, payloads in held:
        _run(hooks, payloads)


def _depth() -> int:
    try:
        return int(os.environ.get(ENV_DEPTH, "0"))
    except ValueError:
        return 0


def payload(event: Any, registry: Any) -> dict[str, Any]:
    """The JSON object a hook receives: the event's stable keys plus ``registry`` (the .modelreg path)."""
    return {**event.to_dict(), "registry": str(registry)}


def deliver(events: list[Any], registry: Any) -> None:
    """Send durable ``events`` (log.Event) of the registry at ``registry`` to every configured hook."""
    if events:
        emit(lambda: list(events), registry)


def emit(build: Callable[[], list[Any]], registry: Any) -> None:
    """Deliver the events ``build()`` makes, building them only if a hook is configured (read-side events)."""
    try:
        if _depth() >= MAX_DEPTH:
            return
        hooks = configured()
        if not hooks:
            return
        payloads = [payload(e, registry) for e in build()]
    except Exception as exc:  # never fail the command over a hook
        warn(f"events were not delivered to hooks: {getattr(exc, 'message', exc)}")
        return
    if _deferred is not None:
        _deferred.append((hooks, payloads))
    else:
        _run(hooks, payloads)


def _run(hooks: list[Hook], payloads: list[dict[str, Any]]) -> None:
    for p in payloads:
        for h in hooks:
            if h.label in _given_up or not h.wants(p["action"]):
                continue
            timeout = h.timeout or default_timeout()
            try:
                if h.command is not None:
                    _run_command(h, p, timeout)
                else:
                    _run_entry_point(h, p, timeout)
            except Exception as exc:  # noqa: BLE001 - a hook can fail in any way; the write stands
                warn(f"hook {h.label} failed for {p['action']} event {p['id']}: {type(exc).__name__}: {exc}")


def _run_command(h: Hook, p: dict[str, Any], timeout: float) -> None:
    import signal
    import subprocess

    data = (json.dumps(p, ensure_ascii=False) + "\n").encode("utf-8")
    env = dict(os.environ)
    env.update({ENV_DEPTH: str(_depth() + 1), "MODELREG_EVENT_ID": p["id"], "MODELREG_EVENT_ACTION": p["action"],
                "MODELREG_EVENT_MODEL": p["model"], "MODELREG_REGISTRY": p["registry"]})
    proc = subprocess.Popen(["/bin/sh", "-c", h.command] if os.name != "nt" else h.command, shell=os.name == "nt",
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=os.name != "nt")
    try:
        _, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL) if os.name != "nt" else proc.kill()
        except OSError:
            pass
        proc.communicate()
        _given_up.add(h.label)
        warn(f"hook {h.label} did not finish within {timeout:g} s ({ENV_TIMEOUT}) for {p['action']} event "
             f"{p['id']}; it was stopped, the event stands, and this hook is skipped for the rest of this command")
        return
    if proc.returncode != 0:
        last = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()][-1:]
        warn(f"hook {h.label} exited {proc.returncode} for {p['action']} event {p['id']}"
             + (f": {_short(last[0], 200)}" if last else ""))


def _run_entry_point(h: Hook, p: dict[str, Any], timeout: float) -> None:
    import threading

    failure: list[BaseException] = []

    def call() -> None:
        try:
            h.target.load()(dict(p))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    t = threading.Thread(target=call, name=f"modelreg-hook-{h.label}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        _given_up.add(h.label)
        warn(f"hook {h.label} did not return within {timeout:g} s ({ENV_TIMEOUT}) for {p['action']} event "
             f"{p['id']}; the event stands, and this hook is skipped for the rest of this command")
    elif failure:
        exc = failure[0]
        warn(f"hook {h.label} failed for {p['action']} event {p['id']}: {type(exc).__name__}: {exc}")
