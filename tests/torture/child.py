"""Crash-loop / concurrency worker: random writes on one registry, each acknowledged after it completes.

    python -m tests.torture.child REGISTRY ACKFILE SEED [OPS]

An acknowledgement is one JSON line appended and fsync'd to ACKFILE *after* the library
call returned: ``{"op", "model", "event", "events", "changed"}`` (``event``: the first event
written, ``events``: all of them). Whatever the parent finds acked must be in the registry,
however the child died.

Test-only: ``TORTURE_CLOCK_SKEW=SECONDS`` (e.g. ``-3600``) shifts this worker's clock, the
one time source of event times and ids (``modelreg.log._now_ns``), to play a writer whose
clock is wrong. modelreg itself has no such setting.
"""

from __future__ import annotations

import json
import os
import random
import sys

from modelreg import EMPTY
from modelreg.errors import Conflict, ModelregError, NotFound, PolicyRefused
from modelreg.registry import Registry

MODELS = ("alpha", "beta")
STAGES = ("staging", "production")
TREE = "tree"  # a directory artifact in the project (tests.torture.run.make_tree)
FETCHED = "fetched"  # where fetches go: every final-named file there must hold the right bytes
OPS = ("register", "register", "promote", "promote", "auto-demote", "rollback", "rollback-twice",
       "clear", "archive", "archive-with-stages", "unarchive", "register-dir", "fetch",
       "register-next", "model-set", "rate", "bind-observe", "purge")


def skew_clock() -> None:
    skew = os.environ.get("TORTURE_CLOCK_SKEW")
    if skew:
        import modelreg.log as log

        real, shift = log._now_ns, int(float(skew) * 1e9)
        log._now_ns = lambda: real() + shift  # type: ignore[assignment]


def ack(fd: int, record: dict) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.fsync(fd)


def record(op: str, model: str, events: list, changed: bool) -> dict:
    ids = [e.id for e in events]
    return {"op": op, "model": model, "event": ids[0] if ids else None, "events": ids, "changed": changed}


def expect_now(reg: Registry, model: str, stage: str) -> object:
    current = reg.refs.read_stage(model, stage)
    return EMPTY if current is None else current


def one_op(reg: Registry, rnd: random.Random, tag: str, fd: int) -> dict | None:
    model = rnd.choice(MODELS)
    names = reg.refs.version_names(model)
    op = rnd.choice(OPS)
    if op == "register-dir":
        v = f"{tag}.d{rnd.randrange(10**9)}"
        r = reg.register(model, v, artifacts=[f"model={reg.root / TREE}"], actor="torture")
        return record(op, model, [r.event] if r.event else [], r.created)
    if op == "fetch" and names:
        dest = reg.root / FETCHED / tag
        rep = reg.fetch(f"{model}@{rnd.choice(names)}", dest)
        return {**record(op, model, [], False), "dest": str(dest), "files": len(rep.files)}
    if op in ("register", "fetch") or not names:
        v = f"{tag}.{rnd.randrange(10**9)}"
        r = reg.register(model, v, params={"seed": rnd.randrange(1000)}, actor="torture")
        return record("register", model, [r.event] if r.event else [], r.created)
    if op == "register-next":  # the version picked in the lock; a small artifact uploaded to the store
        art = str(reg.root / f"art-{tag}.bin")  # in the project: the store copy is what is recorded
        with open(art, "wb") as f:
            f.write(os.urandom(64))
        r = reg.register(model, next=rnd.choice(("patch", "minor")), artifacts=[f"model={art}"], upload=True,
                         actor="torture")
        return record("register", model, [r.event, *r.pruned_events] if r.event else [], r.created)
    if op == "model-set":
        ev = reg.set_model(model, {"task": rnd.choice(("qa", "ner")), "owner": f"w{rnd.randrange(3)}"},
                           actor="torture")
        return record("model-set", model, [ev] if ev else [], ev is not None)
    if op == "rate":
        ev = reg.rate(f"{model}@{rnd.choice(names)}", rnd.randint(1, 5), actor=f"rater{rnd.randrange(3)}")
        return record("rate", model, [ev], True)
    if op == "bind-observe":  # bind, or report figures of a binding without replacing it
        ref = f"{model}@{rnd.choice(names)}"
        if rnd.random() < 0.4:
            ev = reg.bind(ref, "p", f"id-{rnd.randrange(99)}", actor="torture")
        else:
            ev = reg.update_binding(ref, "p", latency_ms=rnd.randrange(500), success_rate=rnd.random(),
                                    last_used="now", actor="torture")
        return record("bind-observe", model, [ev], True)
    if op == "purge":  # store content of archived versions (purge_after_days: 0 in the torture config)
        report = reg.purge(model, apply=True, actor="torture")
        return record("purge", model, report.events, bool(report.events))
    stage = rnd.choice(STAGES)
    if op == "promote":
        move = reg.promote(f"{model}@{rnd.choice(names)}", stage, expect=expect_now(reg, model, stage),
                           actor="torture")
    elif op == "auto-demote":  # promote to production over a staged candidate: each way through the guard
        how = rnd.choice(("default", "no-demote", "replace", "expect"))
        kw: dict = {"demote": False} if how == "no-demote" else {"replace_staging": True} if how == "replace" else {}
        if how == "expect":
            kw["expect_staging"] = expect_now(reg, model, "staging")
        move = reg.promote(f"{model}@{rnd.choice(names)}", "production",
                           expect=expect_now(reg, model, "production"), actor="torture", **kw)
        return record("promote", model, move.events, move.changed)
    elif op in ("rollback", "rollback-twice"):
        move = reg.rollback(model, stage, expect=expect_now(reg, model, stage), actor="torture")
        if op == "rollback-twice":  # the first is acknowledged on its own: the second may be refused
            ack(fd, {**record("rollback", model, move.events, move.changed), "extra": True})
            move = reg.rollback(model, stage, actor="torture")
        return record("rollback", model, move.events, move.changed)
    elif op == "clear":
        move = reg.clear(model, stage, reason="torture", expect=expect_now(reg, model, stage), actor="torture")
        return record("clear", model, move.events, move.changed)
    elif op == "archive-with-stages":  # a version that holds a stage, archived in one step
        held = list(reg.stage_holders(model).values())
        digest = rnd.choice(held) if held else None
        ref = f"{model}@{digest}" if digest else f"{model}@{rnd.choice(names)}"
        move = reg.promote(ref, "archived", reason="torture", actor="torture")
        return record("archive", model, move.events, move.changed)
    else:
        ev = reg.archive(f"{model}@{rnd.choice(names)}", actor="torture", reason="torture",
                         force=rnd.random() < 0.5, undo=op == "unarchive")
        return record("unarchive" if op == "unarchive" else "archive", model, [ev] if ev else [], ev is not None)
    return record(op, model, move.events, move.changed)


def run(registry: str, ackfile: str, seed: int, ops: int | None) -> int:
    skew_clock()
    rnd = random.Random(seed)
    reg = Registry(registry)
    fd = os.open(ackfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    done = 0
    while ops is None or done < ops:
        try:
            rec = one_op(reg, rnd, f"{seed}.{done}", fd)
        except (Conflict, NotFound, PolicyRefused) as exc:  # expected refusals: CAS lost, nothing to undo, archived
            rec = {"op": "refused", "error": type(exc).__name__, "event": None, "events": [], "changed": False}
        except ModelregError as exc:
            rec = {"op": "error", "error": f"{type(exc).__name__}: {exc.message}", "event": None, "events": [],
                   "changed": False}
        ack(fd, rec)
        done += 1
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None))
