"""Crash-loop / concurrency worker: random writes on one registry, each acknowledged after it completes.

    python -m tests.torture.child REGISTRY ACKFILE SEED [OPS] [--focus OP] [--ops OP,OP,...] [--model M]

Before each operation it writes ``{"begin": OP}`` (it only tells the parent which operation
a kill interrupted). An acknowledgement is one JSON line appended to ACKFILE *after* the
library call returned: ``{"op", "model", "event", "events", "changed", ...}`` (``event``: the
first event written, ``events``: all of them; one ``write``: a SIGKILL leaves the page cache,
so no fsync is needed for the parent to read it). Whatever the parent finds acked must be in
the registry (and, for ``sync``, on the remote), however the child died.

Every write command is one entry of :data:`OPS`; a new write command joins the torture by
adding one function here (and, if it needs a precondition, nothing more: the registry
accumulates state across kills, and refusals are acknowledged as ``refused``).
With ``--focus OP`` four operations in five are OP, the rest drawn from the others.

Test-only: ``TORTURE_CLOCK_SKEW=SECONDS`` (e.g. ``-3600``) shifts this worker's clock, the
one time source of event times and ids (``modelreg.log._now_ns``), to play a writer whose
clock is wrong. modelreg itself has no such setting.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Callable
from typing import Any

from modelreg import EMPTY
from modelreg.errors import Conflict, ModelregError, NotFound, PolicyRefused
from modelreg.registry import Registry

MODELS = ("alpha", "beta")
STAGES = ("staging", "production")
SYNC_TIMEOUT = 60.0
TREE = "tree"  # a directory artifact in the project (tests.torture.run.make_tree)
FETCHED = "fetched"  # where fetches go: every final-named file there must hold the right bytes


def skew_clock() -> None:
    skew = os.environ.get("TORTURE_CLOCK_SKEW")
    if skew:
        import modelreg.log as log

        real, shift = log._now_ns, int(float(skew) * 1e9)
        log._now_ns = lambda: real() + shift  # type: ignore[assignment]


def ack(fd: int, record: dict) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())


def record(op: str, model: str, events: list, changed: bool, **extra: Any) -> dict:
    ids = [e.id for e in events]
    return {"op": op, "model": model, "event": ids[0] if ids else None, "events": ids, "changed": changed, **extra}


def expect_now(reg: Registry, model: str, stage: str) -> object:
    current = reg.refs.read_stage(model, stage)
    return EMPTY if current is None else current


def _pick(reg: Registry, rnd: random.Random, model: str) -> str:
    names = reg.refs.version_names(model)
    if not names:
        raise NotFound(f"{model} has no versions yet")
    return rnd.choice(names)


Op = Callable[[Registry, random.Random, str, str, int], dict]


def op_register(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    v = f"{tag}.{rnd.randrange(10**9)}"
    r = reg.register(model, v, params={"seed": rnd.randrange(1000)}, actor="torture")
    return record("register", model, [r.event] if r.event else [], r.created)


def op_register_dir(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    v = f"{tag}.d{rnd.randrange(10**9)}"
    r = reg.register(model, v, artifacts=[f"model={reg.root / TREE}"], actor="torture")
    return record("register-dir", model, [r.event] if r.event else [], r.created)


def op_fetch(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    dest = reg.root / FETCHED / tag
    rep = reg.fetch(f"{model}@{_pick(reg, rnd, model)}", dest)
    return {**record("fetch", model, [], False), "dest": str(dest), "files": len(rep.files)}


def op_register_next(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    """The version picked in the lock; a small artifact uploaded to the store."""
    art = str(reg.root / f"art-{tag}.bin")  # in the project: the store copy is what is recorded
    with open(art, "wb") as f:
        f.write(os.urandom(64))
    r = reg.register(model, next=rnd.choice(("patch", "minor")), artifacts=[f"model={art}"], upload=True,
                     actor="torture")
    return record("register", model, [r.event, *r.pruned_events] if r.event else [], r.created)


def op_model_set(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    ev = reg.set_model(model, {"task": rnd.choice(("qa", "ner")), "owner": f"w{rnd.randrange(3)}"}, actor="torture")
    return record("model-set", model, [ev] if ev else [], ev is not None)


def op_rate(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    ev = reg.rate(f"{model}@{_pick(reg, rnd, model)}", rnd.randint(1, 5), actor=f"rater{rnd.randrange(3)}")
    return record("rate", model, [ev], True)


def op_bind_observe(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    """Bind, or report figures of a binding without replacing it."""
    ref = f"{model}@{_pick(reg, rnd, model)}"
    if rnd.random() < 0.4:
        ev = reg.bind(ref, "p", f"id-{rnd.randrange(99)}", actor="torture")
    else:
        ev = reg.update_binding(ref, "p", latency_ms=rnd.randrange(500), success_rate=rnd.random(),
                                last_used="now", actor="torture")
    return record("bind-observe", model, [ev], True)


def op_purge(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    """Store content of archived versions (purge_after_days: 0 in the torture config)."""
    report = reg.purge(model, apply=True, actor="torture")
    return record("purge", model, report.events, bool(report.events))


def op_promote(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    stage = rnd.choice(STAGES)
    move = reg.promote(f"{model}@{_pick(reg, rnd, model)}", stage, expect=expect_now(reg, model, stage),
                       actor="torture")
    return record("promote", model, move.events, move.changed)


def op_auto_demote(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    """Promote to production over a staged candidate: each way through the demotion guard."""
    how = rnd.choice(("default", "no-demote", "replace", "expect"))
    kw: dict = {"demote": False} if how == "no-demote" else {"replace_staging": True} if how == "replace" else {}
    if how == "expect":
        kw["expect_staging"] = expect_now(reg, model, "staging")
    move = reg.promote(f"{model}@{_pick(reg, rnd, model)}", "production",
                       expect=expect_now(reg, model, "production"), actor="torture", **kw)
    return record("promote", model, move.events, move.changed)


def op_rollback(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    stage = rnd.choice(STAGES)
    move = reg.rollback(model, stage, expect=expect_now(reg, model, stage), actor="torture")
    return record("rollback", model, move.events, move.changed)


def op_rollback_twice(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    stage = rnd.choice(STAGES)
    move = reg.rollback(model, stage, expect=expect_now(reg, model, stage), actor="torture")
    ack(fd, record("rollback", model, move.events, move.changed, extra=True))  # the second may be refused
    move = reg.rollback(model, stage, actor="torture")
    return record("rollback", model, move.events, move.changed)


def op_clear(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    stage = rnd.choice(STAGES)
    move = reg.clear(model, stage, reason="torture", expect=expect_now(reg, model, stage), actor="torture")
    return record("clear", model, move.events, move.changed)


def op_archive(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    ev = reg.archive(f"{model}@{_pick(reg, rnd, model)}", actor="torture", reason="torture",
                     force=rnd.random() < 0.5)
    return record("archive", model, [ev] if ev else [], ev is not None)


def op_unarchive(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    ev = reg.archive(f"{model}@{_pick(reg, rnd, model)}", actor="torture", reason="torture", undo=True)
    return record("unarchive", model, [ev] if ev else [], ev is not None)


def op_archive_with_stages(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    """A version that holds a stage, archived in one step (its stages cleared first)."""
    held = list(reg.stage_holders(model).values())
    ref = f"{model}@{rnd.choice(held)}" if held else f"{model}@{_pick(reg, rnd, model)}"
    move = reg.promote(ref, "archived", reason="torture", actor="torture")
    return record("archive", model, move.events, move.changed)


def op_metrics(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    ev = reg.set_metrics(f"{model}@{_pick(reg, rnd, model)}", rnd.choice(("core", "latency")),
                         {"score": rnd.random(), "run": tag}, actor="torture")
    return record("metrics", model, [ev], True)


def op_tag(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    t = rnd.choice(("nlp", "gold", "candidate"))
    ref = f"{model}@{_pick(reg, rnd, model)}"
    ev = reg.tag(ref, add=[t]) if rnd.random() < 0.6 else reg.tag(ref, remove=[t])
    return record("tag", model, [ev] if ev else [], ev is not None)


def op_approve(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    ev = reg.approve(f"{model}@{_pick(reg, rnd, model)}", rnd.choice(STAGES), comment=tag,
                     actor=rnd.choice(("ann", "bob")))
    return record("approve", model, [ev], True)


def op_bind(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    ref = f"{model}@{_pick(reg, rnd, model)}"
    if rnd.random() < 0.7:
        ev = reg.bind(ref, "serve", f"id-{tag}", endpoint="https://serve.example/v1", actor="torture")
    else:
        ev = reg.unbind(ref, "serve", actor="torture")
    return record("bind", model, [ev] if ev else [], ev is not None)


def op_prune(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    chosen = reg.prune(model, rnd.randrange(3, 12), apply=True, actor="torture")
    return record("prune", model, [], bool(chosen), archived=[r.version for r in chosen])


def op_sync(reg: Registry, rnd: random.Random, tag: str, model: str, fd: int) -> dict:
    """Register, then commit and push to the contended remote (the registry must be in a git clone)."""
    from modelreg.gitops import sync

    first = op_register(reg, rnd, tag, model, fd)
    result = sync(reg, push=True, timeout=SYNC_TIMEOUT)
    return {**first, "op": "sync", "changed": True, "pushed_commit": result.pushed_commit,
            "committed": result.committed}


# name -> write command; the git-only ones are also in GIT_OPS. Add a write command here.
OPS: dict[str, Op] = {
    "register": op_register,
    "register-dir": op_register_dir,
    "fetch": op_fetch,
    "promote": op_promote,
    "auto-demote": op_auto_demote,
    "rollback": op_rollback,
    "rollback-twice": op_rollback_twice,
    "clear": op_clear,
    "archive": op_archive,
    "unarchive": op_unarchive,
    "archive-with-stages": op_archive_with_stages,
    "metrics": op_metrics,
    "tag": op_tag,
    "approve": op_approve,
    "bind": op_bind,
    "prune": op_prune,
    "register-next": op_register_next,
    "model-set": op_model_set,
    "rate": op_rate,
    "bind-observe": op_bind_observe,
    "purge": op_purge,
    "sync": op_sync,
}
GIT_OPS = frozenset({"sync"})
# the mix of the concurrency and clock-skew sections: stage moves, weighted like the lifecycle
DEFAULT_OPS = ("register", "register", "promote", "promote", "auto-demote", "rollback", "rollback-twice",
               "clear", "archive", "archive-with-stages", "unarchive", "register-dir", "fetch",
               "register-next", "model-set", "rate", "bind-observe", "purge")


def choose(rnd: random.Random, names: list[str], focus: str | None) -> str:
    if focus and rnd.random() < 0.8:
        return focus
    return rnd.choice(names)


def run(registry: str, ackfile: str, seed: int, ops: int | None, focus: str | None = None,
        names: list[str] | None = None, model: str | None = None) -> int:
    skew_clock()
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
            rec = OPS[op](reg, rnd, f"{seed}.{done}", m, fd)
        except (Conflict, NotFound, PolicyRefused) as exc:  # expected refusals: CAS lost, nothing to undo, archived
            rec = {"op": "refused", "of": op, "error": type(exc).__name__, "event": None, "events": [],
                   "changed": False}
        except ModelregError as exc:
            rec = {"op": "error", "of": op, "error": f"{type(exc).__name__}: {exc.message}", "event": None,
                   "events": [], "changed": False}
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
