"""Torture the registry and print what was tried and what was lost (must be nothing).

    python -m tests.torture [--quick|--long] [--seed N] [--only SECTION,...] [--workdir DIR]

Sections: crash (SIGKILLs spread over every write command, sync to a contended remote
included), faults (an os call fails), disk (full disk: short writes, then ENOSPC), repair
(fsck --repair against live writers), concurrency (N writers on one registry), skew (a
writer whose clock is an hour behind), clones (N clones pushing to one remote at once),
corruption, fuzz, import (the GTO/MLflow importers killed and faulted), site (site build
killed), snapshot (state snapshots deleted, stale, or made stale by merged-in lines during writes). Progress goes to stderr; the figures to stdout.

SIGKILL is not power loss: a killed process's writes already handed to the kernel stay in
the page cache and reach the disk later, so the crash loop proves the *ordering* and
*atomicity* of modelreg's writes (temp file + rename, object -> ref -> event, one
``write`` per log line, locks released by the kernel), not their durability. The fsync
discipline (file fsync before rename, directory fsync after, log fsync before the
command returns) is what is meant to carry the same guarantee across a power cut: a
command that returned has its effects on stable storage, and one cut short leaves the
old or the new state. Simulating that needs a VM or dm-log-writes, which this does not do.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from modelreg.cli import main as cli_main  # noqa: E402
from modelreg.errors import ModelregError  # noqa: E402
from modelreg.fsck import fsck  # noqa: E402
from modelreg.registry import Registry  # noqa: E402
from modelreg.state import MOVES  # noqa: E402

from . import faults, gitfarm, races  # noqa: E402
from .child import GIT_OPS, OPS  # noqa: E402
from .faults import FAULT_FUNCS, Faults  # noqa: E402

POWER_NOTE = (
    "note: SIGKILL does not simulate power loss (the page cache survives the process); the crash loop\n"
    "proves write ordering and atomicity. fsync (file before rename, directory after, log line before\n"
    "returning) is what is meant to make a returned command survive a power cut; not simulated here."
)


@dataclass
class Figures:
    ops_attempted: int = 0
    ops_acknowledged: int = 0
    kills: int = 0
    kills_by_op: Counter = field(default_factory=Counter)
    group_kills: int = 0  # the child's git subprocesses killed with it
    recoveries: dict = field(default_factory=dict)
    faults_injected: int = 0
    fault_escapes: Counter = field(default_factory=Counter)
    disk_rounds: int = 0
    disk_short_writes: int = 0
    disk_enospc: int = 0
    disk_failures: Counter = field(default_factory=Counter)
    repairs: int = 0
    torn_lines: int = 0
    clone_rounds: list = field(default_factory=list)
    corruptions_injected: int = 0
    corruptions_detected: int = 0
    inputs_fuzzed: int = 0
    fuzz_exits: Counter = field(default_factory=Counter)
    snapshot_mutations: Counter = field(default_factory=Counter)
    losses: list[str] = field(default_factory=list)
    on_loss: Any = None  # called with each loss as it is found (progress output)

    def lose(self, what: str) -> None:
        self.losses.append(what)
        if self.on_loss is not None:
            self.on_loss(what)


class Progress:
    """One line per phase, and every so often within one, on stderr."""

    def __init__(self, quiet: bool = False) -> None:
        self.t0 = time.perf_counter()
        self.quiet = quiet

    def note(self, text: str) -> None:
        if not self.quiet:
            print(f"[torture {time.perf_counter() - self.t0:7.1f} s] {text}", file=sys.stderr, flush=True)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("MODELREG_UNSAFE_NO_FSYNC", None)
    env["MODELREG_ACTOR"] = "torture"
    return env


def fsck_errors(reg_dir: Path) -> list[str]:
    rep = fsck(Registry(reg_dir))
    return [f"{p.path}: {p.message}" for p in rep.errors]


def raw_event_ids(reg_dir: Path) -> Counter:
    """How many times each event id occurs in the raw log lines (duplicates count)."""
    ids: Counter = Counter()
    logs = reg_dir / "logs"
    for name in os.listdir(logs) if logs.is_dir() else []:
        for line in (logs / name).read_bytes().split(b"\n"):
            try:
                ids[json.loads(line)["id"]] += 1
            except (ValueError, KeyError, TypeError):
                pass
    return ids


def read_acks(path: Path) -> list[dict[str, Any]]:
    """Acknowledgements (``begin`` markers left out); a line torn by the kill was never acknowledged."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "begin" not in rec:
                out.append(rec)
    return out


def init_registry(base: Path) -> Registry:
    """A fresh registry whose policy lets any version go to any stage (demotion stays on).

    The torture is about the write paths; the promotion rules have their own tests.
    """
    Registry.init(base)
    cfg = base / ".modelreg" / "config.yaml"
    cfg.write_text(cfg.read_text() + "artifact_store: store\n"  # register --next --upload, prune --purge
                   "policy:\n  require_previous_stage: {}\n  retention: {purge_after_days: 0}\n")
    return Registry.open(base)


TREE_FILES = {f"part-{i:02d}.bin": bytes([i]) * (1000 + i) for i in range(3)} | {"sub/config.json": b"{}"}


def make_tree(base: Path) -> None:
    """The directory artifact the writers register and fetch (tests.torture.child.TREE)."""
    for rel, data in TREE_FILES.items():
        p = base / "tree" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def fetched_losses(base: Path) -> list[str]:
    """Any file under a fetch destination with a final name and wrong bytes (temp names are allowed)."""
    out = []
    known = {f"model/{k}": v for k, v in TREE_FILES.items()}
    root = base / "fetched"
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if ".modelreg-tmp-" in name:
                continue
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix().split("/", 1)[1]
            if rel in known and p.read_bytes() != known[rel]:
                out.append(f"{p} holds bytes that were never registered")
    return out


def seed_registry(base: Path) -> Registry:
    reg = init_registry(base)
    make_tree(base)
    reg.register("alpha", "0.1", actor="torture")
    reg.register("beta", "0.1", actor="torture")
    return reg


def new_registry(base: Path) -> Path:
    shutil.rmtree(base, ignore_errors=True)
    return seed_registry(base).path


def run_cli(argv: list[str]) -> tuple[int | None, str, str, BaseException | None]:
    """Run modelreg.cli.main in-process; (exit code, stdout, stderr, exception that escaped main)."""
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    escaped: BaseException | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli_main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except KeyboardInterrupt:
            raise  # the person running the torture, not a modelreg outcome
        except BaseException as exc:  # noqa: BLE001 - anything here would be a traceback for a user
            escaped = exc
    return code, out.getvalue(), err.getvalue(), escaped


@contextlib.contextmanager
def _env(key: str, value: str):
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


# ------------------------------------------------------------------ crash loop
def _drain(pgid: int, limit: float = 10.0) -> None:
    """Wait for what a killed child left running (its git commands) to finish."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def crash_loop(work: Path, kills: int, rnd: random.Random, fig: Figures, max_delay: float, ops: list[str],
               progress: Progress) -> None:
    """SIGKILL a child running write commands, ``kills`` times, spread round-robin over ``ops``.

    The registry is a git clone; when ``sync`` is among the ops, a contender process keeps
    pushing to the same remote so that syncs rebase. After each kill: the clone is made usable
    by following exactly what modelreg's exit-8 messages say (finish the sync, remove a stale
    lock), fsck has no error, every acknowledged event is in the log exactly once, every
    acknowledged push is on the remote, and the next writer succeeds at once. At the end
    one more sync pushes everything: the remote holds every acknowledged event exactly once.
    """
    base = work / "crash"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    bare = gitfarm.make_remote(base, seed_registry)
    repo = gitfarm.clone(bare, base / "clone", "crash")
    reg_dir = repo / ".modelreg"
    acks = work / "crash-acks.jsonl"
    acks.unlink(missing_ok=True)
    contender_acks = work / "contender-acks.jsonl"
    contender_acks.unlink(missing_ok=True)
    env = child_env()
    env["MODELREG_LOCK_TIMEOUT"] = "5"
    uses_git = any(op in GIT_OPS for op in ops)
    contender = gitfarm.start_contender(bare, base, contender_acks, rnd.randrange(10**9), env) if uses_git else None
    every = max(1, kills // 10)
    progress.note(f"crash: {kills} kills over {', '.join(ops)}" + ("; a contender keeps pushing" if uses_git else ""))
    try:
        for k in range(kills):
            focus = ops[k % len(ops)]
            before = len(read_acks(acks))
            lines_before = len(acks.read_text().splitlines()) if acks.exists() else 0
            # a git operation only when it is the focus: the kills of other ops need no git recovery
            mix = [o for o in ops if o == focus or o not in GIT_OPS]
            p = subprocess.Popen([sys.executable, "-m", "tests.torture.child", str(reg_dir), str(acks),
                                  str(rnd.randrange(10**9)), "--focus", focus, "--ops", ",".join(mix)],
                                 env=env, cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True)
            slow = 3.0 if focus in GIT_OPS else 1.0
            if rnd.random() < 0.1:  # now and then during start-up (opening the registry)
                time.sleep(rnd.uniform(0.05, 0.5))
            else:  # else somewhere inside the op loop, timed from the first operation
                _wait_for_begin(acks, lines_before, p)
                time.sleep(rnd.uniform(0.0, max_delay * slow))
            group = focus in GIT_OPS and rnd.random() < 0.5
            if group:
                os.killpg(p.pid, signal.SIGKILL)  # git commands die too: they may leave git's locks behind
                fig.group_kills += 1
            else:
                p.send_signal(signal.SIGKILL)
            _, err = p.communicate()
            _drain(p.pid)
            fig.kills += 1
            fig.kills_by_op[_interrupted(acks, lines_before)] += 1
            if p.returncode != -signal.SIGKILL:
                fig.lose(f"crash loop: child exited {p.returncode} before the kill: {err.decode()[-300:]}")
            done = read_acks(acks)
            fig.ops_acknowledged += len(done) - before
            fig.ops_attempted += len(done) - before + 1  # + the op cut short
            for rec in done[before:]:
                if rec["op"] == "error":
                    fig.lose(f"crash loop: child op {rec.get('of')} failed after a previous kill: {rec['error']}")
            if focus in GIT_OPS:
                why = gitfarm.recover(repo, run_cli, fig.recoveries)
                if why:
                    fig.lose(f"crash loop kill {k} ({focus}): recovery failed: {why}")
                    break
            errs = fsck_errors(reg_dir)
            if errs:
                fig.lose(f"crash loop kill {k} ({focus}): fsck errors: {errs[:3]}")
            for bad in fetched_losses(repo):
                fig.lose(f"crash loop kill {k}: {bad}")
            for rec in done[before:]:  # an acknowledged fetch left every file of the version in place
                if rec["op"] == "fetch" and sum(1 for p in Path(rec["dest"]).rglob("*") if p.is_file()) < rec["files"]:
                    fig.lose(f"crash loop kill {k}: acknowledged fetch into {rec['dest']} is incomplete")
            ids = raw_event_ids(reg_dir)
            for rec in done[before:]:
                for e in rec.get("events", []):
                    if ids[e] != 1:
                        fig.lose(f"crash loop kill {k}: acknowledged {rec['op']} event {e} occurs {ids[e]} times")
                if rec.get("pushed_commit") and not gitfarm.on_remote(bare, rec["pushed_commit"]):
                    fig.lose(f"crash loop kill {k}: acknowledged push {rec['pushed_commit'][:12]} is not on the remote")
                if rec["op"] == "prune":  # (a later unarchive may have undone it: look for the event)
                    pruned = {e.version for e in Registry(reg_dir).events(rec["model"])
                              if e.action == "archive" and "prune" in e.data}
                    if set(rec["archived"]) - pruned:
                        fig.lose(f"crash loop kill {k}: a version prune acknowledged archiving has no archive event")
            # the next writer is not blocked by anything the killed child left behind
            t0 = time.perf_counter()
            try:
                with _env("MODELREG_LOCK_TIMEOUT", "2"):
                    reg = Registry(reg_dir)
                    reg.register("alpha", f"probe.{k}", actor="torture-parent")
                    reg.promote(f"alpha@probe.{k}", "staging", actor="torture-parent")
            except (ModelregError, OSError) as exc:
                fig.lose(f"crash loop kill {k}: next writer failed: {exc!r}")
            if time.perf_counter() - t0 > 10:  # a lock left behind would have made it fail after 2 s
                fig.lose(f"crash loop kill {k}: next writer took {time.perf_counter() - t0:.1f} s")
            if (k + 1) % every == 0 or k + 1 == kills:
                progress.note(f"crash: {k + 1}/{kills} kills, {len(fig.losses)} losses "
                              f"({', '.join(f'{o} {n}' for o, n in sorted(fig.kills_by_op.items()))})")
    finally:
        said = gitfarm.stop(contender) if contender else ""
    if contender and contender.returncode not in (-signal.SIGKILL, None):
        fig.lose(f"crash loop: the contender died by itself ({contender.returncode}): {said}")
    # every acknowledged event, from every round, is still there at the end, locally and on the remote
    ids = raw_event_ids(reg_dir)
    mine = [e for r in read_acks(acks) for e in r.get("events", [])]
    missing = [e for e in mine if ids[e] != 1]
    if missing:
        fig.lose(f"crash loop: {len(missing)} acknowledged events missing or duplicated at the end")
    if uses_git:
        code, _out, err, esc = run_cli(["-R", str(reg_dir), "sync", "--push"])
        if code != 0:
            fig.lose(f"crash loop: the final sync --push exited {code}: {err.strip()[-300:]}")
        remote = gitfarm.remote_event_ids(bare)
        theirs = [e for r in read_acks(contender_acks) for e in r.get("events", [])]
        gone = [e for e in mine + theirs if remote.get(e) != 1]
        if gone:
            fig.lose(f"crash loop: {len(gone)} of {len(mine) + len(theirs)} acknowledged events are not on the "
                     "remote exactly once")
        fresh = gitfarm.clone(bare, base / "fresh", "checker")
        errs = fsck_errors(fresh / ".modelreg")
        if errs:
            fig.lose(f"crash loop: fsck of a fresh clone: {errs[:3]}")
        progress.note(f"crash: remote holds {len(mine)} acknowledged events of the crash clone and {len(theirs)} "
                      "of the contender")


def _wait_for_begin(acks: Path, lines_before: int, p: subprocess.Popen, limit: float = 15.0) -> None:
    """Wait until the child began its first operation (or died, or ``limit`` passed)."""
    end = time.monotonic() + limit
    while time.monotonic() < end and p.poll() is None:
        if acks.exists() and len(acks.read_text().splitlines()) > lines_before:
            return
        time.sleep(0.01)


def _interrupted(acks: Path, lines_before: int) -> str:
    """Which op the kill cut short: the last one this child began and did not acknowledge."""
    last_begin, acked = None, False
    lines = acks.read_text().splitlines()[lines_before:] if acks.exists() else []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "begin" in rec:
            last_begin, acked = rec["begin"], False
        else:
            acked = True
    if last_begin is None:
        return "start-up"
    return "between ops" if acked else last_begin


DERIVED = ("locks", "cache")  # registry subdirectories that are derived data: never compared


def _fault_template(work: Path) -> Path:
    return faults.fault_template(work, init_registry, make_tree)


# ----------------------------------------------------------------- concurrency
def concurrency(work: Path, procs: int, ops: int, rnd: random.Random, fig: Figures) -> None:
    reg_dir = new_registry(work / "concurrency")
    env = child_env()
    env["MODELREG_LOCK_TIMEOUT"] = "60"
    ackfiles = [work / f"conc-acks-{i}.jsonl" for i in range(procs)]
    for a in ackfiles:
        a.unlink(missing_ok=True)
    ps = [subprocess.Popen([sys.executable, "-m", "tests.torture.child", str(reg_dir), str(a), str(rnd.randrange(10**9)),
                            str(ops)], env=env, cwd=ROOT, stderr=subprocess.PIPE) for a in ackfiles]
    for p in ps:
        _, err = p.communicate()
        if p.returncode:
            fig.lose(f"concurrency: worker exited {p.returncode}: {err.decode()[-300:]}")
    acks = [r for a in ackfiles for r in read_acks(a)]
    fig.ops_attempted += procs * ops
    fig.ops_acknowledged += len(acks)
    if len([r for r in acks if not r.get("extra")]) != procs * ops:
        fig.lose(f"concurrency: {len(acks)} acknowledgements for {procs * ops} operations")
    for r in acks:
        if r["op"] == "error":
            fig.lose(f"concurrency: {r['error']}")
    errs = fsck_errors(reg_dir)
    if errs:
        fig.lose(f"concurrency: fsck errors {errs[:3]}")
    ids = raw_event_ids(reg_dir)
    for r in acks:
        for e in r.get("events", []):
            if ids[e] != 1:
                fig.lose(f"concurrency: acknowledged {r['op']} event {e} occurs {ids[e]} times")
    reg = Registry(reg_dir)
    for model in ("alpha", "beta"):
        events = reg.events(model)
        for action in ("promote", "rollback"):
            moved = sum(1 for r in acks if r["op"] == action and r["model"] == model and r["changed"])
            logged = sum(1 for e in events if e.action == action)
            if moved != logged:
                fig.lose(f"concurrency: {model}: {moved} successful {action}s acknowledged, {logged} {action} events")
        for stage in ("staging", "production"):
            moves = [e for e in events if e.stage == stage and e.action in MOVES]
            held = reg.refs.read_stage(model, stage)
            if moves and moves[-1].to != held:
                fig.lose(f"concurrency: {model}@{stage} holds {held}, the last logged move says {moves[-1].to}")


# ------------------------------------------------------------------ clock skew
def _settle_workers(fig: Any, label: str, ps: list[subprocess.Popen], ackfiles: list[Path], reg_dir: Path,
                    ops: int) -> None:
    """Wait for the workers, count their acknowledgements, and lose every acknowledged event that is
    not in the log exactly once (and every worker that failed)."""
    for p in ps:
        _, err = p.communicate()
        if p.returncode:
            fig.lose(f"{label}: worker exited {p.returncode}: {err.decode()[-300:]}")
    acks = [r for a in ackfiles for r in read_acks(a)]
    fig.ops_attempted += len(ps) * ops
    fig.ops_acknowledged += len(acks)
    ids = raw_event_ids(reg_dir)
    for r in acks:
        if r["op"] == "error":
            fig.lose(f"{label}: {r['error']}")
        for ev in r.get("events") or []:
            if ids[ev] != 1:
                fig.lose(f"{label}: acknowledged {r['op']} event {ev} occurs {ids[ev]} times")


def clock_skew(work: Path, ops: int, rnd: random.Random, fig: Figures) -> None:
    """Two writers at once, one with its clock an hour behind (TORTURE_CLOCK_SKEW, see child.py):
    nothing lost, fsck finds no error and no warning (no interruption that never happened), and
    --repair has nothing to append (no spurious reconcile)."""
    reg_dir = new_registry(work / "skew")
    env = child_env()
    env["MODELREG_LOCK_TIMEOUT"] = "60"
    ackfiles = [work / f"skew-acks-{i}.jsonl" for i in range(2)]
    ps = []
    for ackfile, skew in zip(ackfiles, ("-3600", "0")):
        ackfile.unlink(missing_ok=True)
        ps.append(subprocess.Popen(
            [sys.executable, "-m", "tests.torture.child", str(reg_dir), str(ackfile), str(rnd.randrange(10**9)),
             str(ops)], env={**env, "TORTURE_CLOCK_SKEW": skew}, cwd=ROOT, stderr=subprocess.PIPE))
    _settle_workers(fig, "clock skew", ps, ackfiles, reg_dir, ops)
    rep = fsck(Registry(reg_dir))
    if rep.problems:
        fig.lose(f"clock skew: fsck reports {[p.to_dict() for p in rep.problems][:3]}")
    repaired = fsck(Registry(reg_dir), repair=True).repaired
    if repaired:
        fig.lose(f"clock skew: fsck --repair appended {repaired[:3]}")
    skewed = sum(1 for r in read_acks(ackfiles[0]) if r.get("events"))
    if not skewed:
        fig.lose("clock skew: the skewed writer wrote nothing")


# ------------------------------------------------------------------ state snapshots
def _snapshot_path(reg_dir: Path, model: str) -> Path:
    from modelreg.cachedir import cache_dir
    from modelreg.derived.snapshot import path_for

    return path_for(cache_dir(reg_dir), model)


def _state_differs(reg_dir: Path, model: str) -> str | None:
    """Where the model's state from its snapshot differs from the fold of its whole log (None: nowhere)."""
    from modelreg import log
    from modelreg.derived.state import SnapshotState, state_of
    from modelreg.state import fold

    reg = Registry(reg_dir)
    snap = state_of(reg, model)
    full = fold(log.read(reg.logs_dir, model)[0])
    if not isinstance(snap, SnapshotState):
        return "no snapshot could be used"
    if dict(snap.versions) != full.versions:
        return "versions differ"
    for stage in ("staging", "production"):
        if snap.head(stage) != full.head(stage) or snap.undo_stack(stage) != full.undo_stack(stage):
            return f"{stage}: last move or undo stack differs"
    return None


def _merge_in(reg_dir: Path, model: str, rnd: random.Random) -> int:
    """Lines from another branch inserted in the middle of ``model``'s log, as a git union merge
    does (the file replaced by rename), under the model's lock; the number of lines inserted."""
    from modelreg import fileio
    from modelreg.log import Event

    reg = Registry(reg_dir)
    path = reg.logs_dir / f"{model}.jsonl"
    with fileio.lock(reg.locks_dir / f"{model}.lock"):
        lines = path.read_bytes().splitlines(keepends=True)
        versions = reg.refs.versions(model)
        if len(lines) < 2 or not versions:
            return 0
        at = rnd.randrange(1, len(lines))
        try:
            when = json.loads(lines[at - 1])["time"]
        except (ValueError, KeyError):
            return 0
        new = []
        for _ in range(rnd.randrange(1, 4)):
            v = rnd.choice(sorted(versions))
            action = rnd.choice(("metrics", "tag"))
            data = ({"suite": "merged", "values": {"k": rnd.randrange(100)}} if action == "metrics"
                    else {"add": [f"m{rnd.randrange(5)}"], "remove": []})
            new.append(Event(action, model, "other-branch", version=v, to=versions[v], data=data, time=when).line())
        tmp = path.with_name(f".tmp-merge-{path.name}")
        tmp.write_bytes(b"".join(lines[:at] + new + lines[at:]))
        os.replace(tmp, path)
        return len(new)


def snapshot_torture(work: Path, ops: int, rnd: random.Random, fig: Figures) -> None:
    """Writers at work while each model's state snapshot is deleted, put back stale, or made stale by lines
    a git merge inserts in the middle of the log: nothing acknowledged is lost, fsck is clean, each stage
    holds what its last logged move says, and the state read from each snapshot equals the fold of the
    whole log (checked during the run, under the model's lock, and at the end)."""
    import sqlite3

    from modelreg import fileio

    reg_dir = new_registry(work / "snapshot")
    env = child_env()
    env["MODELREG_LOCK_TIMEOUT"] = "60"
    ackfiles = [work / f"snap-acks-{i}.jsonl" for i in range(2)]
    for a in ackfiles:
        a.unlink(missing_ok=True)
    ps = [subprocess.Popen([sys.executable, "-m", "tests.torture.child", str(reg_dir), str(a), str(rnd.randrange(10**9)),
                            str(ops)], env=env, cwd=ROOT, stderr=subprocess.PIPE) for a in ackfiles]
    saved: dict[str, Path] = {}
    merged = 0
    models = ("alpha", "beta")
    while any(p.poll() is None for p in ps):
        time.sleep(rnd.uniform(0.02, 0.12))
        model = rnd.choice(models)
        db = _snapshot_path(reg_dir, model)
        what = rnd.choice(("delete", "save", "stale", "merge", "check"))
        if what == "delete":
            for f in db.parent.glob(db.name + "*"):
                f.unlink(missing_ok=True)
        elif what == "save" and db.exists():  # a consistent copy, through SQLite's backup
            saved[model] = work / f"snap-saved-{model}.sqlite"
            saved[model].unlink(missing_ok=True)
            with sqlite3.connect(db) as src, sqlite3.connect(saved[model]) as dst:
                src.backup(dst)
        elif what == "stale" and model in saved and db.exists():  # an older snapshot put back
            with sqlite3.connect(saved[model]) as src, sqlite3.connect(db, timeout=30) as dst:
                src.backup(dst)
        elif what == "merge":
            merged += _merge_in(reg_dir, model, rnd)
        elif what == "check":
            with fileio.lock(reg_dir / "locks" / f"{model}.lock"):
                differs = _state_differs(reg_dir, model)
            if differs:
                fig.lose(f"snapshot: {model} mid-run: {differs}")
        fig.snapshot_mutations[what] += 1
    _settle_workers(fig, "snapshot", ps, ackfiles, reg_dir, ops)
    if merged and sum(1 for line in (reg_dir / "logs" / "alpha.jsonl").read_bytes().splitlines()
                      + (reg_dir / "logs" / "beta.jsonl").read_bytes().splitlines()
                      if b'"actor":"other-branch"' in line) != merged:
        fig.lose("snapshot: lines merged into a log went missing")
    errs = fsck_errors(reg_dir)
    if errs:
        fig.lose(f"snapshot: fsck errors {errs[:3]}")
    reg = Registry(reg_dir)
    for model in models:
        differs = _state_differs(reg_dir, model)
        if differs:
            fig.lose(f"snapshot: {model} at the end: {differs}")
        state = reg.model_state(model)
        for stage in ("staging", "production"):
            head = state.head(stage)
            held = reg.refs.read_stage(model, stage)
            if head is not None and head.to != held:
                fig.lose(f"snapshot: {model}@{stage} holds {held}, the last logged move says {head.to}")


# ------------------------------------------------------------------ corruption
def corruption(work: Path, fig: Figures) -> None:
    template = _fault_template(work)
    case = work / "corrupt-case"

    def fresh() -> tuple[Path, Registry]:
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(template, case)
        reg = Registry(case / ".modelreg")
        return reg.path, reg

    def prod_object(reg: Registry) -> Path:
        return reg.objects.path(reg.refs.read_stage("m", "production"))

    def flip(reg: Registry) -> str:
        p = prod_object(reg)
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0x01
        p.write_bytes(bytes(data))
        return str(p.relative_to(reg.path))

    def truncate_ref(reg: Registry) -> str:
        p = reg.refs.stage_path("m", "production")
        p.write_bytes(p.read_bytes()[:30])
        return "refs/m/production"

    def symlink(reg: Registry) -> str:
        p = reg.refs.version_path("m", "1.1")
        target = work / "elsewhere"
        target.write_bytes(p.read_bytes())
        p.unlink()
        p.symlink_to(target)
        return "versions/m/1.1"

    def half_line(reg: Registry) -> str:
        p = reg.logs_dir / "m.jsonl"
        last = p.read_bytes().rstrip(b"\n").split(b"\n")[-1]
        with open(p, "ab") as f:
            f.write(last[: len(last) // 2])
        return "logs/m.jsonl"

    def delete_object(reg: Registry) -> str:
        prod_object(reg).unlink()
        return "refs/m/production"

    outside = work / "corrupt-outside"

    def symlink_dir(reg: Registry) -> str:  # a directory swapped for a link to a faithful copy elsewhere
        shutil.rmtree(outside, ignore_errors=True)
        shutil.copytree(reg.path / "refs" / "m", outside)
        shutil.rmtree(reg.path / "refs" / "m")
        (reg.path / "refs" / "m").symlink_to(outside)
        return "refs/m"

    def forged_ref(reg: Registry) -> str:  # a manifest reusing m@1.1's name, not registered, in production
        from modelreg import manifest

        forged = manifest.to_bytes(manifest.validate({"name": "m", "version": "1.1", "description": "forged"}))
        reg.refs.stage_path("m", "production").write_text(reg.objects.put(forged) + "\n")
        return "refs/m/production"

    def deep_line(reg: Registry) -> str:
        with open(reg.logs_dir / "m.jsonl", "ab") as f:
            f.write(b'{"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
        return "logs/m.jsonl"

    cases = {
        "flip a byte in an object": (flip, True),
        "truncate a ref": (truncate_ref, True),
        "replace a file with a symlink": (symlink, False),
        "append half a log line": (half_line, False),
        "delete an object a ref points to": (delete_object, False),
        "replace a directory with a symlink": (symlink_dir, True),
        "point a stage at an unregistered manifest": (forged_ref, True),
        "append a deeply nested log line": (deep_line, False),
    }
    for what, (do, reading_refuses) in cases.items():
        reg_dir, reg = fresh()
        named = do(reg)
        fig.corruptions_injected += 1
        rep = fsck(Registry(reg_dir))
        hit = [p for p in rep.errors if p.path == named]
        code, _, err, esc = run_cli(["-R", str(reg_dir), "fsck"])
        if hit and code == 6:
            fig.corruptions_detected += 1
        else:
            fig.lose(f"corruption '{what}': fsck did not name {named} as an error (exit {code}): "
                     f"{[p.to_dict() for p in rep.problems][:3]}")
        if reading_refuses:
            for argv in (["show", "m@production"], ["resolve", "m@production"]):
                code, out, err, esc = run_cli(["-R", str(reg_dir), *argv])
                if code != 6 or esc is not None:
                    fig.lose(f"corruption '{what}': {' '.join(argv)} exited {code} ({err.strip()[:200]}), expected 6")
        if what == "replace a directory with a symlink":
            before = sorted((p.name, p.read_bytes()) for p in outside.iterdir())
            for argv in (["promote", "m@1.1", "production", "--force", "--reason", "x"], ["fsck", "--repair"]):
                run_cli(["-R", str(reg_dir), *argv])
            if sorted((p.name, p.read_bytes()) for p in outside.iterdir()) != before:
                fig.lose(f"corruption '{what}': a write went through the link")
    cache_mutations(work, fig)


def cache_mutations(work: Path, fig: Figures) -> None:
    """Derived data is never the only copy: garbage, deletion or a read-only cache changes no answer."""
    from modelreg.cachedir import cache_dir

    template = _fault_template(work)
    case = work / "cache-case"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(template, case)
    reg_dir = case / ".modelreg"
    queries = [["search", "--json", "--where", "params.lr > 0.1"], ["ls", "--json"], ["search", "--json", "--stage", "production"]]

    def answers() -> list[tuple[int | None, str]]:
        return [run_cli(["-R", str(reg_dir), *q])[:2] for q in queries]

    honest = answers()
    cache = cache_dir(reg_dir)

    def garbage(path: Path) -> None:
        for p in [*path.rglob("*")] if path.is_dir() else []:
            if p.is_file():
                p.write_bytes(b"\x00garbage{[")

    mutations = {
        "garbage in every cache file": lambda: garbage(cache),
        "cache deleted": lambda: shutil.rmtree(cache, ignore_errors=True),
        "cache path is a file": lambda: (shutil.rmtree(cache, ignore_errors=True), cache.write_text("x")),
        "cache files replaced by links to a file outside": lambda: links(cache),
    }
    target = work / "cache-link-target"
    target.write_bytes(b"not the cache's")

    def links(path: Path) -> None:
        for p in [*path.rglob("*")] if path.is_dir() else []:
            if p.is_file():
                p.unlink()
                p.symlink_to(target)

    for what, mutate in mutations.items():
        answers()  # fill the cache first
        mutate()
        fig.corruptions_injected += 1
        got = answers()
        code, _, err, esc = run_cli(["-R", str(reg_dir), "register", "m", "9.9", "-p", "lr=0.2", "--actor", "t"])
        if got != honest or code != 0 or esc is not None:
            fig.lose(f"cache mutation '{what}': answers changed or register failed (exit {code}: {err.strip()[:200]})")
        else:
            fig.corruptions_detected += 1  # counted as handled: nothing changed
        if fsck_errors(reg_dir):
            fig.lose(f"cache mutation '{what}': fsck errors {fsck_errors(reg_dir)[:3]}")
        if target.read_bytes() != b"not the cache's":
            fig.lose(f"cache mutation '{what}': a cache write went through a link")
        shutil.rmtree(cache, ignore_errors=True) if cache.is_dir() and not cache.is_symlink() else cache.unlink(missing_ok=True)
        shutil.rmtree(case)
        shutil.copytree(template, case)


# ------------------------------------------------------------------- fuzzing
def fuzz(work: Path, examples: int, fig: Figures) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    template = _fault_template(work)
    work = work / "fuzz-root"  # everything the fuzzer may see; its snapshot stays small
    shutil.rmtree(work, ignore_errors=True)
    project = work / "fuzz"
    shutil.copytree(template, project)
    reg_dir = project / ".modelreg"
    manifest_file = work / "fuzz-manifest.yaml"

    def snapshot(root: Path, skip_derived: bool = True) -> dict[str, bytes]:
        """Every file's bytes; ``skip_derived`` leaves out locks/ and cache/ (derived, never committed)."""
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            if skip_derived and rel.split(os.sep)[0] in DERIVED:
                continue
            for n in filenames:
                p = os.path.join(dirpath, n)
                out[os.path.relpath(p, root)] = b"<link>" if os.path.islink(p) else open(p, "rb").read()
        return out

    outside_before = {k for k in snapshot(work, False) if not k.startswith("fuzz" + os.sep + ".modelreg")}

    def check(argv: list[str]) -> None:
        fig.inputs_fuzzed += 1
        before = snapshot(reg_dir)
        code, out, err, esc = run_cli(["-R", str(reg_dir), *argv])
        fig.fuzz_exits[code] += 1
        label = f"fuzz {argv!r:.300}"
        if esc is not None:
            fig.lose(f"{label}: {type(esc).__name__} escaped main(): {esc!r:.200}")
            return
        if code is None or not 0 <= code <= 9 or "Traceback" in err:
            fig.lose(f"{label}: exit {code}, stderr {err[-300:]!r}")
        if code != 0 and snapshot(reg_dir) != before:
            fig.lose(f"{label}: refused (exit {code}) but .modelreg changed")
        outside = {k for k in snapshot(work, False) if not k.startswith("fuzz" + os.sep + ".modelreg")}
        if outside - outside_before - {manifest_file.name}:
            fig.lose(f"{label}: wrote outside .modelreg: {sorted(outside - outside_before)[:3]}")

    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=80)
    namey = st.one_of(text, st.from_regex(r"[a-zA-Z0-9._+@:/-]{0,70}", fullmatch=True))
    pairs = st.lists(st.one_of(text, st.builds(lambda k, v: f"{k}={v}", namey, text)), max_size=4)
    cfg = settings(max_examples=examples, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))

    @cfg
    @given(namey, namey, pairs, pairs)
    def register_names(name: str, version: str, params: list[str], meta: list[str]) -> None:
        argv = ["register", name, version, "--actor", "fuzz"]
        for p in params:
            argv += ["-p", p]
        for m in meta:
            argv += ["-m", m]
        check(argv)

    @cfg
    @given(namey, st.sampled_from(["resolve", "show", "promote", "archive", "log", "ls", "diff"]), namey)
    def references(ref: str, cmd: str, other: str) -> None:
        argv = {"promote": ["promote", ref, other, "--actor", "fuzz"], "archive": ["archive", ref, "--actor", "fuzz"],
                "log": ["log", ref], "ls": ["ls", ref], "diff": ["diff", ref, other]}.get(cmd, [cmd, ref])
        check(argv)

    nasty = [
            b"name: m\nversion: 9.0\nname: x\n",  # duplicate key
            b"a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nd: [*c, *c, *c]\n",  # alias bomb
            b"name: m\nversion: 9.1\n<<: {description: merged}\n",  # merge key
            b"\xff\xfe\x00name: m\n",  # not UTF-8
            b"name: m\nversion: 9.2\ndescription: " + b"x" * (1 << 20) + b"\n",  # over the size cap
            b"name: m\nversion: 9.3\nparams: " + b"[" * 5000 + b"]" * 5000 + b"\n",  # deep nesting
            b"!!python/object/apply:os.system ['echo pwned']\n",
            b"name: m\nversion: 9.4\nartifacts:\n- role: x\n  uri: ../../../etc/passwd\n",
            b"- just\n- a list\n",
    ]
    yaml_docs = st.one_of(
        st.binary(max_size=300),
        text.map(str.encode),
        st.builds(lambda n, v, extra: f"name: {n}\nversion: {v}\n{extra}".encode(), namey, namey, text),
        st.sampled_from(nasty),
    )

    @cfg
    @given(yaml_docs)
    def from_file(doc: bytes) -> None:
        manifest_file.write_bytes(doc)
        check(["register", "--from-file", str(manifest_file), "--actor", "fuzz"])

    # Hostile trees: a symlink planted somewhere in the registry (as a pull request could), then a
    # random command. Whatever happens, nothing outside .modelreg/ changes (the link targets live
    # outside it, so a write through a link shows up) and no traceback escapes.
    targets = {"outside dir": work / "planted-dir", "outside file": work / "planted-file",
               "parent": Path(".."), "project root": Path("../.."), "itself": Path(".")}
    (work / "planted-dir").mkdir(exist_ok=True)
    (work / "planted-dir" / "keep").write_bytes(b"keep")
    (work / "planted-file").write_bytes(b"keep")
    outside_before.update(k for k in snapshot(work, False) if k.startswith("planted"))
    spots = ["refs/m", "refs/m/production", "versions/m", "versions/m/1.0", "logs", "logs/m.jsonl", "objects",
             "locks", "lost-found", "cache", "cache/search", ".gitattributes", "config.yaml"]
    commands = [["resolve", "m@production"], ["show", "m@1.0"], ["ls"], ["ls", "m"], ["log", "m"], ["search"],
                ["promote", "m@1.1", "production", "--actor", "fuzz"], ["rollback", "m", "production", "--actor", "fuzz"],
                ["register", "m", "7.0", "--actor", "fuzz"], ["metrics", "set", "m@1.0", "--suite", "s", "x=1"],
                ["reindex"], ["fsck"], ["fsck", "--repair"], ["stats"], ["git-setup"], ["archive", "m@1.1", "--force"]]

    @cfg
    @given(st.sampled_from(spots), st.sampled_from(sorted(targets)), st.sampled_from(commands))
    def hostile_tree(spot: str, target: str, argv: list[str]) -> None:
        saved = work / "saved-registry"
        shutil.rmtree(saved, ignore_errors=True)
        shutil.copytree(reg_dir, saved, symlinks=True)
        try:
            p = reg_dir / spot
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
            p.parent.mkdir(parents=True, exist_ok=True)
            p.symlink_to(targets[target])
            fig.inputs_fuzzed += 1
            code, out, err, esc = run_cli(["-R", str(reg_dir), *argv])
            fig.fuzz_exits[code] += 1
            label = f"fuzz hostile tree {spot} -> {target}, {' '.join(argv)}"
            if esc is not None or code is None or not 0 <= code <= 9 or "Traceback" in err:
                fig.lose(f"{label}: exit {code}, {esc!r:.200} {err[-300:]!r}")
            outside = {k for k in snapshot(work, False) if not k.startswith(("fuzz" + os.sep + ".modelreg", "saved-registry"))}
            changed = [k for k in outside_before if k.startswith("planted")
                       and (work / k).read_bytes() != b"keep"]
            if outside - outside_before - {manifest_file.name} or changed:
                fig.lose(f"{label}: wrote outside .modelreg: {sorted(outside - outside_before)[:3]} {changed[:3]}")
        finally:
            shutil.rmtree(reg_dir)
            shutil.copytree(saved, reg_dir, symlinks=True)
            shutil.rmtree(saved)

    for fn in (register_names, references, from_file, hostile_tree):
        fn()
    for doc in nasty:  # every hand-written case at least once, whatever hypothesis drew
        manifest_file.write_bytes(doc)
        check(["register", "--from-file", str(manifest_file), "--actor", "fuzz"])
    errs = fsck_errors(reg_dir)
    if errs:
        fig.lose(f"fuzz: fsck errors afterwards {errs[:3]}")


# ------------------------------------------------------------------- importers
def gto_tag_repo(base: Path, versions: int) -> Path:
    """A git repository with GTO tags made by plain git at exact times: registrations, stage moves,
    unassignments, deregistrations, a second artifact that is deprecated. No gto needed."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", HOME=str(base))

    def git(*args: str, at: int | None = None) -> str:
        e = dict(env)
        if at is not None:
            e.update(GIT_COMMITTER_DATE=f"@{1_700_000_000 + at} +0000", GIT_AUTHOR_DATE=f"@{1_700_000_000 + at} +0000",
                     GIT_COMMITTER_NAME="Tagger", GIT_COMMITTER_EMAIL="tagger@example.com")
        return subprocess.run(["git", *args], cwd=base, env=e, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.name", "T")
    git("config", "user.email", "t@example.com")
    (base / "artifacts.yaml").write_text("a:\n  path: w.bin\n  labels: [x]\nb:\n  path: s3://bucket/b.bin\n")
    at, n = 0, 0
    for i in range(versions):
        (base / "w.bin").write_text(f"weights {i}")
        git("add", "-A")
        git("commit", "-qm", f"c{i}", at=at)
        commit = git("rev-parse", "HEAD")
        tags = [f"a@v1.{i}.0", f"a#dev#{n + 1}"] + ([f"a#prod#{n + 2}"] if i % 2 else [])
        tags += [f"a#prod!#{n + 3}"] if i % 3 == 2 else []
        tags += [f"a@v1.{i - 2}.0!"] if i % 5 == 4 else []
        tags += [f"b@v0.{i}.0"] if i % 4 == 0 else []
        n += 3
        for t in tags:
            at += 1
            target = commit if not t.endswith(".0!") else git("rev-list", "-n1", t[:-1])
            git("tag", "-a", t, target, "-m", t, at=at)
    git("tag", "-a", f"b@deprecated#{n + 1}", "HEAD", "-m", "retire b", at=at + 1)
    return base


def import_state(reg_dir: Path) -> dict[str, Any]:
    """What an import left: each model's versions (digest, archived), stages, and its events as
    (tag, action, version, stage, from, to) in log order: ids, batches and times aside."""
    reg = Registry(reg_dir)
    out: dict[str, Any] = {}
    for name in reg.refs.models():
        events = [(e.data.get("import", {}).get("tag"), e.action, e.version, e.stage, e.from_, e.to)
                  for e in reg.events(name)]
        out[name] = {"versions": {v.version: (v.digest, v.archived) for v in reg.versions(name)},
                     "stages": reg.stage_holders(name), "events": events}
    return out


def _fresh_project(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return init_registry(path).path


def import_torture(work: Path, kills: int, rnd: random.Random, fig: Figures, fault_points: int) -> None:
    """Kill ``modelreg import gto`` at random points and run it again; inject I/O errors into it.

    Whatever happens, fsck finds no error, and the import run again to its end leaves exactly
    what one clean import leaves (versions, stages, and the same events in the same order).
    """
    repo = gto_tag_repo(work / "gto-repo", 14)
    argv = ["import", "gto", "--repo", str(repo), "--no-check", "--actor", "torture"]
    clean = _fresh_project(work / "import-clean")
    code, _, err, esc = run_cli(["-R", str(clean), *argv])
    if code != 0 or esc is not None:
        fig.lose(f"import: a clean import failed (exit {code}): {err[-300:]}")
        return
    want = import_state(clean)

    reg_dir = _fresh_project(work / "import-crash")
    env = child_env()
    for k in range(kills):
        p = subprocess.Popen([sys.executable, "-m", "modelreg", "-R", str(reg_dir), *argv], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rnd.uniform(0.15, 1.2))
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        fig.kills += 1
        fig.ops_attempted += 1
        if p.returncode not in (0, -signal.SIGKILL):
            fig.lose(f"import crash loop: the import exited {p.returncode}: {err.decode()[-300:]}")
        errs = fsck_errors(reg_dir)
        if errs:
            fig.lose(f"import crash loop kill {k}: fsck errors: {errs[:3]}")
    code, _, err, esc = run_cli(["-R", str(reg_dir), *argv])
    fig.ops_acknowledged += code == 0
    got = import_state(reg_dir)
    if code != 0 or got != want:
        fig.lose(f"import crash loop: after {kills} kills and a last run (exit {code}) the registry differs "
                 f"from a clean import: {_first_difference(want, got)}")

    small = gto_tag_repo(work / "gto-small", 4)
    small_argv = ["import", "gto", "--repo", str(small), "--no-check", "--actor", "torture"]
    template = _fresh_project(work / "import-fault-template")
    fault_clean = _fresh_project(work / "import-fault-clean")
    run_cli(["-R", str(fault_clean), *small_argv])
    want_small = import_state(fault_clean)
    case = work / "import-fault-case"
    with Faults() as counter:
        run_cli(["-R", str(_fresh_project(case)), *small_argv])
    for fn in FAULT_FUNCS:
        total = counter.counts[fn]
        for nth in sorted({max(1, round(total * (i + 0.5) / fault_points)) for i in range(fault_points)}):
            shutil.rmtree(case.parent / "import-fault-project", ignore_errors=True)
            shutil.copytree(template.parent, case.parent / "import-fault-project")
            reg_case = case.parent / "import-fault-project" / ".modelreg"
            with Faults(fn, nth) as f:
                code, _, err, esc = run_cli(["-R", str(reg_case), *small_argv])
            if not f.fired:
                continue
            fig.faults_injected += 1
            outcome = ("CLI: escaped" if esc is not None else "CLI: traceback" if "Traceback" in err
                       else f"CLI exit {code}")
            fig.fault_escapes[f"import: {outcome}"] += 1
            label = f"import gto: os.{fn} call {nth} fails"
            if outcome.startswith("CLI:") or (code != 0 and len([x for x in err.splitlines() if x.strip()]) != 1):
                fig.lose(f"{label}: {outcome}: {err[-300:]}")
            errs = fsck_errors(reg_case)
            if errs:
                fig.lose(f"{label}: fsck errors {errs[:3]}")
            code, _, err, esc = run_cli(["-R", str(reg_case), *small_argv])
            got = import_state(reg_case)
            if code != 0 or got != want_small:
                fig.lose(f"{label}: running the import again (exit {code}) does not give a clean import's "
                         f"result: {_first_difference(want_small, got)}")


def _first_difference(want: dict[str, Any], got: dict[str, Any]) -> str:
    for name in sorted(set(want) | set(got)):
        a, b = want.get(name), got.get(name)
        if a == b:
            continue
        if a is None or b is None:
            return f"model {name} only in {'the clean import' if b is None else 'this one'}"
        for key in ("versions", "stages", "events"):
            if a[key] != b[key]:
                if key == "events":
                    i = next((i for i, (x, y) in enumerate(zip(a[key], b[key])) if x != y), min(len(a[key]), len(b[key])))
                    return f"{name} events differ at {i}: {a[key][i:i + 1]} vs {b[key][i:i + 1]} ({len(a[key])} vs {len(b[key])})"
                return f"{name} {key}: {a[key]} vs {b[key]}"
    return "?"


# ------------------------------------------------------------------- site build
def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def site_crash(work: Path, kills: int, rnd: random.Random, fig: Figures) -> None:
    """SIGKILL `modelreg site build` (and its workers) at random moments, the registry changing between
    rounds: no page is ever torn or stale-mixed, the registry is untouched, and the next build ends with
    exactly the files a clean build writes (temp files and the previous build's stale files gone)."""
    base = work / "site"
    shutil.rmtree(base, ignore_errors=True)
    reg = init_registry(base / "proj")
    for m in ("alpha", "beta", "gamma"):
        for i in range(60):
            reg.register(m, f"1.0.{i}", actor="torture", params={"i": i}, new_model=True)
        reg.set_metrics(f"{m}@1.0.59", "eval", {"score": 0.9}, actor="torture")
        reg.promote(f"{m}@1.0.58", "production", actor="torture", reason="torture")
    env = child_env()
    env["MODELREG_CACHE_DIR"] = str(base / "cache")
    out = base / "out"

    def build(dest: Path, jobs: int, cache: Path) -> subprocess.Popen:
        e = dict(env, MODELREG_CACHE_DIR=str(cache))
        return subprocess.Popen([sys.executable, "-m", "modelreg", "-R", str(reg.path), "site", "build", "--out",
                                 str(dest), "--jobs", str(jobs), "--json"], env=e, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    def reference() -> dict[str, bytes]:
        ref = base / "reference"
        shutil.rmtree(ref, ignore_errors=True)
        shutil.rmtree(base / "ref-cache", ignore_errors=True)
        p = build(ref, 1, base / "ref-cache")
        _, err = p.communicate()
        if p.returncode != 0:
            fig.lose(f"site: reference build exited {p.returncode}: {err.decode()[-300:]}")
        return _tree(ref)

    refs = [reference()]
    before = snapshot_registry(reg.path)
    for k in range(kills):
        if k and k % 3 == 0:  # the registry moves on: new pages, changed pages, a stale file to remove
            reg.register("alpha", f"2.0.{k}", actor="torture", new_model=True)
            reg.promote(f"alpha@2.0.{k}", "staging", actor="torture", reason=f"round {k}")
            refs = [refs[-1], reference()]
            before = snapshot_registry(reg.path)
        p = build(out, 1 + k % 2, base / "cache")
        time.sleep(rnd.uniform(0.2, 1.2))
        fig.ops_attempted += 1
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
        fig.kills += 1
        if p.returncode == 0:
            fig.ops_acknowledged += 1
        elif p.returncode != -signal.SIGKILL:
            fig.lose(f"site: build exited {p.returncode}: {err.decode()[-300:]}")
        for rel, data in _tree(out).items():
            if rel.startswith(".modelreg-tmp/") or rel == ".modelreg-site.json":
                continue
            if not any(r.get(rel) == data for r in refs):
                fig.lose(f"site kill {k}: {rel} is neither the old nor the new page (torn or mixed)")
                break
        if snapshot_registry(reg.path) != before:
            fig.lose(f"site kill {k}: the build changed the registry")
    p = build(out, 2, base / "cache")
    _, err = p.communicate()
    if p.returncode != 0:
        fig.lose(f"site: final build exited {p.returncode}: {err.decode()[-300:]}")
    final = _tree(out)
    if final != refs[-1]:
        extra = sorted(set(final) - set(refs[-1]))[:3]
        missing = sorted(set(refs[-1]) - set(final))[:3]
        differ = sorted(r for r in set(final) & set(refs[-1]) if final[r] != refs[-1][r])[:3]
        fig.lose(f"site: after the kills, the build differs from a clean one: extra {extra}, missing {missing}, "
                 f"different {differ}")


def snapshot_registry(reg_dir: Path) -> dict[str, bytes]:
    return {k: v for k, v in _tree(reg_dir).items() if not k.startswith(("locks/", "cache/"))}


# ---------------------------------------------------------------------- main
MODES = {
    "quick": dict(kills=None, max_delay=0.4, procs=4, ops=25, fuzz=40, faults="quick", disk=25, repair=(2, 30),
                  clones=(3, 2), skew_ops=60, import_kills=6, import_faults=3, per_call=6,
                  site=6, snapshot_ops=40),
    "default": dict(kills=100, max_delay=0.8, procs=8, ops=50, fuzz=200, faults="all", disk=150, repair=(2, 150),
                    clones=(8, 2), skew_ops=150, import_kills=20, import_faults=8, per_call=None,
                    site=15, snapshot_ops=150),
    "long": dict(kills=500, max_delay=1.0, procs=16, ops=100, fuzz=1000, faults="all", disk=400, repair=(3, 300),
                 clones=(16, 3), skew_ops=400, import_kills=60, import_faults=25, per_call=None,
                 site=40, snapshot_ops=400),
}
SECTIONS = ("crash", "faults", "disk", "repair", "concurrency", "skew", "clones", "corruption", "fuzz", "import",
            "site", "snapshot")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.torture", description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="CI mode: one kill per write command, 4 processes, 3 clones, small budgets")
    g.add_argument("--long", action="store_true", help="500 kills, 16 processes, 16 clones x 3 pushes, 1000 examples")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    ap.add_argument("--ops", default=",".join(OPS), help="write commands the crash loop kills (default: all)")
    ap.add_argument("--kills", type=int, default=None, help="override the number of kills")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)
    mode_name = "quick" if args.quick else "long" if args.long else "default"
    mode = MODES[mode_name]
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rnd = random.Random(seed)
    only = set(args.only.split(","))
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    crash_ops = [o for o in args.ops.split(",") if o]
    if set(crash_ops) - set(OPS):
        ap.error(f"unknown op(s): {', '.join(sorted(set(crash_ops) - set(OPS)))}")
    kills = args.kills if args.kills is not None else mode["kills"] or len(crash_ops)  # quick: one per command
    work = Path(args.workdir or tempfile.mkdtemp(prefix="modelreg-torture-"))
    work.mkdir(parents=True, exist_ok=True)
    progress = Progress(args.quiet)
    fig = Figures(on_loss=lambda what: progress.note(f"LOSS: {what}"))
    t0 = time.perf_counter()
    timings = {}
    saved_env = {k: os.environ.get(k) for k in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_NOSYSTEM",
                                                 "MODELREG_CACHE_DIR")}
    for k, sub in (("HOME", "home"), ("XDG_CACHE_HOME", "xdg-cache"), ("XDG_CONFIG_HOME", "xdg-config"),
                   ("MODELREG_CACHE_DIR", "cache")):  # derived data and user files stay in the run's directory
        (work / sub).mkdir(exist_ok=True)
        os.environ[k] = str(work / sub)  # nothing user-level outside the work directory
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    env = child_env()
    fault_ops = [n for n, op in faults.FAULT_OPS.items() if mode["faults"] == "all" or op.quick]
    progress.note(f"start: {mode_name} mode, seed {seed}, sections {', '.join(s for s in SECTIONS if s in only)}")
    try:
        for name, fn in (
            ("crash", lambda: crash_loop(work, kills, rnd, fig, mode["max_delay"], crash_ops, progress)),
            ("faults", lambda: faults.fault_matrix(work, fig, fault_ops, init_registry, run_cli, fsck_errors,
                                                   progress, make_tree, mode["per_call"])),
            ("disk", lambda: faults.full_disk(work, mode["disk"], rnd, fig, init_registry, run_cli, fsck_errors, OPS,
                                              progress)),
            ("repair", lambda: races.repair_race(work, *mode["repair"], rnd, fig, init_registry, env, read_acks,
                                                 raw_event_ids, fsck_errors, progress)),
            ("concurrency", lambda: concurrency(work, mode["procs"], mode["ops"], rnd, fig)),
            ("skew", lambda: clock_skew(work, mode["skew_ops"], rnd, fig)),
            ("clones", lambda: races.clones_round(work, *mode["clones"], fig, seed_registry, env, run_cli, progress)),
            ("corruption", lambda: corruption(work, fig)),
            ("fuzz", lambda: fuzz(work, mode["fuzz"], fig)),
            ("import", lambda: import_torture(work, mode["import_kills"], rnd, fig, mode["import_faults"])),
            ("site", lambda: site_crash(work, mode["site"], rnd, fig)),
            ("snapshot", lambda: snapshot_torture(work, mode["snapshot_ops"], rnd, fig)),
        ):
            if name in only:
                progress.note(f"{name}: starting")
                t = time.perf_counter()
                losses = len(fig.losses)
                fn()
                timings[name] = time.perf_counter() - t
                progress.note(f"{name}: done in {timings[name]:.1f} s, {len(fig.losses) - losses} losses")
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    report(fig, mode_name, seed, time.perf_counter() - t0, timings)
    return 1 if fig.losses else 0


def report(fig: Figures, mode_name: str, seed: int, seconds: float, timings: dict[str, float]) -> None:
    print(f"modelreg torture ({mode_name}, seed {seed}, {seconds:.1f} s: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ")")
    print(f"  operations attempted      {fig.ops_attempted}")
    print(f"  operations acknowledged   {fig.ops_acknowledged}")
    print(f"  kills (SIGKILL)           {fig.kills}" + (f"  ({fig.group_kills} with their git commands)"
                                                        if fig.group_kills else ""))
    for op, n in sorted(fig.kills_by_op.items()):
        print(f"    during {op:<21} {n}")
    for what, n in sorted(fig.recoveries.items()):
        print(f"    recovery: {what:<40} {n}")
    print(f"  faults injected           {fig.faults_injected}")
    for outcome, n in sorted(fig.fault_escapes.items()):
        print(f"    surfaced as {outcome:<28} {n}")
    if fig.disk_rounds:
        print(f"  full-disk rounds          {fig.disk_rounds} ({fig.disk_short_writes} short writes, "
              f"{fig.disk_enospc} ENOSPC)")
        for outcome, n in sorted(fig.disk_failures.items()):
            print(f"    failed as {outcome:<30} {n}")
    if fig.torn_lines:
        print(f"  repair race               {fig.torn_lines} torn lines, {fig.repairs} repairs")
    for r in fig.clone_rounds:
        print(f"  clones pushing at once    {r['clones']} clones, {r['landed']}/{r['pushes']} pushes landed in "
              f"{r['seconds']} s (slowest sync {r['max_sync_seconds']} s, {r['max_attempts']} attempts; "
              f"{r['rebases']} rebases)")
    print(f"  corruptions injected      {fig.corruptions_injected}")
    print(f"  corruptions detected      {fig.corruptions_detected}")
    print(f"  inputs fuzzed             {fig.inputs_fuzzed}"
          + (f"  (exit codes: {', '.join(f'{k}: {v}' for k, v in sorted(fig.fuzz_exits.items(), key=str))})"
             if fig.fuzz_exits else ""))
    if fig.snapshot_mutations:
        print("  snapshot mutations        " + ", ".join(f"{k} {v}" for k, v in sorted(fig.snapshot_mutations.items()))
              + " (during writes; 'check': the snapshot's state compared with the fold of the whole log)")
    print(f"  losses found              {len(fig.losses)}")
    for loss in fig.losses[:50]:
        print(f"    LOSS: {loss}")
    print(POWER_NOTE)


if __name__ == "__main__":
    sys.exit(main())
