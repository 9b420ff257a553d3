"""Crash-loop / concurrency worker: random writes on one registry, each acknowledged after it completes.

    python -m tests.torture.child REGISTRY ACKFILE SEED [OPS]

An acknowledgement is one JSON line appended and fsync'd to ACKFILE *after* the library
call returned: ``{"op", "model", "event", "changed"}``. Whatever the parent finds acked
must be in the registry, however the child died.
"""

from __future__ import annotations

import json
import os
import random
import sys

from modelreg.errors import Conflict, ModelregError, NotFound, PolicyRefused
from modelreg.registry import Registry

MODELS = ("alpha", "beta")
STAGES = ("staging", "production")
TREE = "tree"  # a directory artifact in the project (tests.torture.run.make_tree)
FETCHED = "fetched"  # where fetches go: every final-named file there must hold the right bytes


def ack(fd: int, record: dict) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.fsync(fd)


def one_op(reg: Registry, rnd: random.Random, tag: str) -> dict | None:
    model = rnd.choice(MODELS)
    names = reg.refs.version_names(model)
    op = rnd.choice(("register", "register", "promote", "promote", "rollback", "archive", "register-dir", "fetch"))
    if op == "register-dir":
        v = f"{tag}.d{rnd.randrange(10**9)}"
        r = reg.register(model, v, artifacts=[f"model={reg.root / TREE}"], actor="torture")
        return {"op": op, "model": model, "event": r.event.id if r.event else None, "changed": r.created}
    if op == "fetch" and names:
        dest = reg.root / FETCHED / tag
        rep = reg.fetch(f"{model}@{rnd.choice(names)}", dest)
        return {"op": op, "model": model, "event": None, "changed": False, "dest": str(dest), "files": len(rep.files)}
    if op in ("register", "fetch") or not names:
        v = f"{tag}.{rnd.randrange(10**9)}"
        r = reg.register(model, v, params={"seed": rnd.randrange(1000)}, actor="torture")
        return {"op": "register", "model": model, "event": r.event.id if r.event else None, "changed": r.created}
    stage = rnd.choice(STAGES)
    if op == "promote":
        current = reg.refs.read_stage(model, stage)
        expect = "none" if current is None else current
        move = reg.promote(f"{model}@{rnd.choice(names)}", stage, expect=expect, actor="torture")
    elif op == "rollback":
        move = reg.rollback(model, stage, actor="torture")
    else:
        ev = reg.archive(f"{model}@{rnd.choice(names)}", actor="torture", reason="torture")
        return {"op": "archive", "model": model, "event": ev.id if ev else None, "changed": ev is not None}
    return {"op": op, "model": model, "event": move.events[0].id if move.events else None, "changed": move.changed}


def run(registry: str, ackfile: str, seed: int, ops: int | None) -> int:
    rnd = random.Random(seed)
    reg = Registry(registry)
    fd = os.open(ackfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    done = 0
    while ops is None or done < ops:
        try:
            rec = one_op(reg, rnd, f"{seed}.{done}")
        except (Conflict, NotFound, PolicyRefused) as exc:  # expected refusals: CAS lost, empty stage, archived
            rec = {"op": "refused", "error": type(exc).__name__, "event": None, "changed": False}
        except ModelregError as exc:
            rec = {"op": "error", "error": f"{type(exc).__name__}: {exc.message}", "event": None, "changed": False}
        ack(fd, rec)
        done += 1
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None))
