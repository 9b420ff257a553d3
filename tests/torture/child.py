"""Crash-loop / concurrency worker: random writes on one registry, each acknowledged after it completes.

    python -m tests.torture.child REGISTRY ACKFILE SEED [OPS] [--focus OP] [--ops OP,OP,...] [--model M]

Before each operation it writes ``{"begin": OP}`` (not fsync'd: it only tells the parent
which operation a kill interrupted). An acknowledgement is one JSON line appended to
ACKFILE *after* the library call returned: ``{"op", "model", "events", "changed", ...}``
(one ``write``; a SIGKILL leaves the page cache, so no fsync is needed for the parent to
read it). Whatever the parent finds acked must be in the registry (and, for
``sync``, on the remote), however the child died.

Every write command is one entry of :data:`OPS`; a new write command joins the torture by
adding one function here (and, if it needs a precondition, nothing more: the registry
accumulates state across kills, and refusals are acknowledged as ``refused``).
With ``--focus OP`` four operations in five are OP, the rest drawn from the others.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Callable
from typing import Any

from modelreg.errors import Conflict, ModelregError, NotFound, PolicyRefused
from modelreg.registry import Registry

MODELS = ("alpha", "beta")
STAGES = ("staging", "production")
SYNC_TIMEOUT = 60.0


def ack(fd: int, record: dict) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())


def _pick(reg: Registry, rnd: random.Random, model: str) -> str:
    names = reg.refs.version_names(model)
    if not names:
        raise NotFound(f"{model} has no versions yet")
    return rnd.choice(names)


def _event_rec(op: str, model: str, ev: Any) -> dict:
    return {"op": op, "model": model, "events": [ev.id] if ev else [], "changed": ev is not None}


def op_register(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    v = f"{tag}.{rnd.randrange(10**9)}"
    r = reg.register(model, v, params={"seed": rnd.randrange(1000)}, actor="torture")
    return {"op": "register", "model": model, "events": [r.event.id] if r.event else [], "changed": r.created}


def op_promote(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    stage = rnd.choice(STAGES)
    current = reg.refs.read_stage(model, stage)
    move = reg.promote(f"{model}@{_pick(reg, rnd, model)}", stage, expect=current or "none", actor="torture")
    return {"op": "promote", "model": model, "events": [e.id for e in move.events], "changed": move.changed}


def op_rollback(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    move = reg.rollback(model, rnd.choice(STAGES), actor="torture")
    return {"op": "rollback", "model": model, "events": [e.id for e in move.events], "changed": move.changed}


def op_archive(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    ev = reg.archive(f"{model}@{_pick(reg, rnd, model)}", actor="torture", reason="torture", undo=rnd.random() < 0.3)
    return _event_rec("archive", model, ev)


def op_metrics(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    ev = reg.set_metrics(f"{model}@{_pick(reg, rnd, model)}", rnd.choice(("core", "latency")),
                         {"score": rnd.random(), "run": tag}, actor="torture")
    return _event_rec("metrics", model, ev)


def op_tag(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    t = rnd.choice(("nlp", "gold", "candidate"))
    ref = f"{model}@{_pick(reg, rnd, model)}"
    ev = reg.tag(ref, add=[t]) if rnd.random() < 0.6 else reg.tag(ref, remove=[t])
    return _event_rec("tag", model, ev)


def op_approve(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    ev = reg.approve(f"{model}@{_pick(reg, rnd, model)}", rnd.choice(STAGES), comment=tag,
                     actor=rnd.choice(("ann", "bob")))
    return _event_rec("approve", model, ev)


def op_bind(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    ref = f"{model}@{_pick(reg, rnd, model)}"
    if rnd.random() < 0.7:
        ev = reg.bind(ref, "serve", f"id-{tag}", endpoint="https://serve.example/v1", actor="torture")
    else:
        ev = reg.unbind(ref, "serve", actor="torture")
    return _event_rec("bind", model, ev)


def op_prune(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    chosen = reg.prune(model, rnd.randrange(3, 12), apply=True, actor="torture")
    return {"op": "prune", "model": model, "events": [], "archived": [r.version for r in chosen],
            "changed": bool(chosen)}


def op_sync(reg: Registry, rnd: random.Random, tag: str, model: str) -> dict:
    """Register, then commit and push to the contended remote (the registry must be in a git clone)."""
    from modelreg.gitops import sync

    first = op_register(reg, rnd, tag, model)
    result = sync(reg, push=True, timeout=SYNC_TIMEOUT)
    return {"op": "sync", "model": model, "events": first["events"], "changed": True,
            "pushed_commit": result.pushed_commit, "committed": result.committed}


# name -> operation; git-only operations are listed in GIT_OPS. Add a write command here.
OPS: dict[str, Callable[[Registry, random.Random, str, str], dict]] = {
    "register": op_register,
    "promote": op_promote,
    "rollback": op_rollback,
    "archive": op_archive,
    "metrics": op_metrics,
    "tag": op_tag,
    "approve": op_approve,
    "bind": op_bind,
    "prune": op_prune,
    "sync": op_sync,
}
GIT_OPS = frozenset({"sync"})
DEFAULT_OPS = ("register", "register", "promote", "promote", "rollback", "archive")  # the classic mix


def choose(rnd: random.Random, names: list[str], focus: str | None) -> str:
    if focus and rnd.random() < 0.8:
        return focus
    return rnd.choice(names)


def run(registry: str, ackfile: str, seed: int, ops: int | None, focus: str | None = None,
        names: list[str] | None = None, model: str | None = None) -> int:
    rnd = random.Random(seed)
    names = names or list(DEFAULT_OPS)
    reg = Registry(registry)
    fd = os.open(ackfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    done = 0
    while ops is None or done < ops:
        op = choose(rnd, names, focus)
        m = model or rnd.choice(MODELS)
        ack(fd, {"begin": op})
        try:
            rec = OPS[op](reg, rnd, f"{seed}.{done}", m)
        except (Conflict, NotFound, PolicyRefused) as exc:  # expected refusals: CAS lost, empty stage, archived
            rec = {"op": "refused", "of": op, "error": type(exc).__name__, "events": [], "changed": False}
        except ModelregError as exc:
            rec = {"op": "error", "of": op, "error": f"{type(exc).__name__}: {exc.message}", "events": [],
                   "changed": False}
        ack(fd, rec)
        done += 1
    os.close(fd)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.torture.child")
    ap.add_argument("registry")
    ap.add_argument("ackfile")
    ap.add_argument("seed", type=int)
    ap.add_argument("ops", type=int, nargs="?")
    ap.add_argument("--focus", choices=sorted(OPS))
    ap.add_argument("--ops", dest="names", default=None, help="comma-separated operations to draw from")
    ap.add_argument("--model", default=None)
    a = ap.parse_args(argv)
    names = a.names.split(",") if a.names else None
    return run(a.registry, a.ackfile, a.seed, a.ops, a.focus, names, a.model)


if __name__ == "__main__":
    sys.exit(main())
