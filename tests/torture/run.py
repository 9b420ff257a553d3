"""Torture the registry and print what was tried and what was lost (must be nothing).

    python -m tests.torture [--quick|--long] [--seed N] [--only crash,faults,concurrency,corruption,fuzz,skew,import,site]

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
import errno
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
    faults_injected: int = 0
    fault_escapes: Counter = field(default_factory=Counter)
    corruptions_injected: int = 0
    corruptions_detected: int = 0
    inputs_fuzzed: int = 0
    fuzz_exits: Counter = field(default_factory=Counter)
    losses: list[str] = field(default_factory=list)

    def lose(self, what: str) -> None:
        self.losses.append(what)


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
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # an ack line torn by the kill was never acknowledged
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


def new_registry(base: Path) -> Path:
    shutil.rmtree(base, ignore_errors=True)
    reg = init_registry(base)
    make_tree(base)
    reg.register("alpha", "0.1", actor="torture")
    reg.register("beta", "0.1", actor="torture")
    return reg.path


# ------------------------------------------------------------------ crash loop
def crash_loop(work: Path, kills: int, rnd: random.Random, fig: Figures, max_delay: float) -> None:
    reg_dir = new_registry(work / "crash")
    acks = work / "crash-acks.jsonl"
    acks.unlink(missing_ok=True)
    env = child_env()
    env["MODELREG_LOCK_TIMEOUT"] = "5"
    for k in range(kills):
        before = len(read_acks(acks))
        p = subprocess.Popen([sys.executable, "-m", "tests.torture.child", str(reg_dir), str(acks), str(rnd.randrange(10**9))],
                             env=env, cwd=ROOT, stderr=subprocess.PIPE)
        time.sleep(rnd.uniform(0.12, max_delay))  # after interpreter start-up, somewhere inside the op loop
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate()
        fig.kills += 1
        if p.returncode != -signal.SIGKILL:
            fig.lose(f"crash loop: child exited {p.returncode} before the kill: {err.decode()[-300:]}")
        done = read_acks(acks)
        fig.ops_acknowledged += len(done) - before
        fig.ops_attempted += len(done) - before + 1  # + the op cut short
        for rec in done[before:]:
            if rec["op"] == "error":
                fig.lose(f"crash loop: child op failed after a previous kill: {rec['error']}")
        errs = fsck_errors(reg_dir)
        if errs:
            fig.lose(f"crash loop kill {k}: fsck errors: {errs[:3]}")
        for bad in fetched_losses(reg_dir.parent):
            fig.lose(f"crash loop kill {k}: {bad}")
        for rec in done[before:]:  # an acknowledged fetch left every file of the version in place
            if rec["op"] == "fetch" and sum(1 for p in Path(rec["dest"]).rglob("*") if p.is_file()) < rec["files"]:
                fig.lose(f"crash loop kill {k}: acknowledged fetch into {rec['dest']} is incomplete")
        ids = raw_event_ids(reg_dir)
        for rec in done[before:]:
            for ev in rec.get("events") or [rec.get("event")] * bool(rec.get("event")):
                if ids[ev] != 1:
                    fig.lose(f"crash loop kill {k}: acknowledged {rec['op']} event {ev} occurs {ids[ev]} times")
        # the next writer is not blocked by anything the killed child left behind
        t0 = time.perf_counter()
        try:
            with _env("MODELREG_LOCK_TIMEOUT", "2"):
                reg = Registry(reg_dir)
                reg.register("alpha", f"probe.{k}", actor="torture-parent")
                reg.promote(f"alpha@probe.{k}", "staging", actor="torture-parent")
        except (ModelregError, OSError) as exc:
            fig.lose(f"crash loop kill {k}: next writer failed: {exc!r}")
        if time.perf_counter() - t0 > 2:
            fig.lose(f"crash loop kill {k}: next writer took {time.perf_counter() - t0:.1f} s")
    # every acknowledged event, from every round, is still there at the end
    ids = raw_event_ids(reg_dir)
    missing = [e for r in read_acks(acks) for e in r.get("events") or [r.get("event")] * bool(r.get("event"))
               if ids[e] != 1]
    if missing:
        fig.lose(f"crash loop: {len(missing)} acknowledged events missing or duplicated at the end")


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


# -------------------------------------------------------------- fault injection
FAULT_FUNCS = ("write", "fsync", "replace", "mkdir", "open")


class Faults:
    """Wrap os.<name>: count calls, and fail the Nth (once, or from then on) with EIO."""

    def __init__(self, name: str | None = None, nth: int = 0, persistent: bool = False) -> None:
        self.name, self.nth, self.persistent = name, nth, persistent
        self.counts: Counter = Counter()
        self.fired = 0
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> Faults:
        for fn in FAULT_FUNCS:
            real = getattr(os, fn)
            self.saved[fn] = real

            def wrapper(*a: Any, __fn: str = fn, __real: Any = real, **kw: Any) -> Any:
                self.counts[__fn] += 1
                if __fn == self.name and (self.counts[__fn] == self.nth or (self.persistent and self.counts[__fn] > self.nth)):
                    self.fired += 1
                    raise OSError(errno.EIO, f"injected EIO in os.{__fn}")
                return __real(*a, **kw)

            setattr(os, fn, wrapper)
        return self

    def __exit__(self, *exc: Any) -> None:
        for fn, real in self.saved.items():
            setattr(os, fn, real)


def _fault_template(work: Path) -> Path:
    base = work / "fault-template"
    shutil.rmtree(base, ignore_errors=True)
    reg = init_registry(base)
    make_tree(base)
    reg.register("m", "1.0", params={"lr": 0.1}, actor="t")
    reg.register("m", "1.1", params={"lr": 0.2}, actor="t")
    reg.register("m", "1.2", artifacts=[f"model={base / 'tree'}"], actor="t")
    reg.promote("m@1.0", "production", actor="t")
    return base


def _fetch_state(root: Path) -> str | None:
    out = root / "out"
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} if out.exists() else {}
    if not files:
        return "old"
    return "new" if files == {f"model/{k}": v for k, v in TREE_FILES.items()} else f"partial fetch: {sorted(files)[:3]}"


OPS = {
    # name: (library call, CLI argv, check(reg) -> "old" | "new" | None)
    "register": (
        lambda reg: reg.register("m", "2.0", params={"lr": 0.3}, actor="t"),
        ["register", "m", "2.0", "-p", "lr=0.3", "--actor", "t"],
        lambda reg: "new" if reg.refs.read_version("m", "2.0") else "old",
    ),
    "promote": (
        lambda reg: reg.promote("m@1.1", "production", expect="1.0", actor="t"),
        ["promote", "m@1.1", "production", "--expect", "1.0", "--actor", "t"],
        lambda reg: {"1.0": "old", "1.1": "new"}.get(reg.resolve("m@production").version),
    ),
    "clear": (
        lambda reg: reg.clear("m", "production", reason="t", expect="1.0", actor="t"),
        ["clear", "m", "production", "--reason", "t", "--expect", "1.0", "--actor", "t"],
        lambda reg: "old" if reg.refs.read_stage("m", "production") else "new",
    ),
    "archive-with-stages": (
        lambda reg: reg.promote("m@1.0", "archived", reason="t", actor="t"),
        ["promote", "m@1.0", "archived", "--reason", "t", "--actor", "t"],
        lambda reg: _archived_state(reg),
    ),
    "register a directory": (
        lambda reg: reg.register("m", "2.1", artifacts=[f"model={reg.root / 'tree'}"], actor="t"),
        ["register", "m", "2.1", "-a", "model={root}/tree/", "--actor", "t"],
        lambda reg: "new" if reg.refs.read_version("m", "2.1") else "old",
    ),
    "fetch a directory": (
        lambda reg: reg.fetch("m@1.2", reg.root / "out"),
        ["fetch", "m@1.2", "{root}/out"],
        lambda reg: _fetch_state(reg.root),
    ),
}


def _archived_state(reg: Registry) -> str:
    """old: 1.0 serves production; new: archived and holding no stage; prefix: cleared, the archive
    event not written yet (a valid state a failed command may leave: running it again finishes it)."""
    archived = reg.show("m@1.0").archived
    held = reg.refs.read_stage("m", "production")
    if held is None:
        return "new" if archived else "prefix"
    return "old" if not archived else "archived but still in production"


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
        except BaseException as exc:  # noqa: BLE001 - anything here would be a traceback for a user
            escaped = exc
    return code, out.getvalue(), err.getvalue(), escaped


def fault_injection(work: Path, fig: Figures) -> None:
    template = _fault_template(work)
    case = work / "fault-case"
    for op_name, (lib_call, argv, check) in OPS.items():
        for via in ("library", "cli"):
            shutil.rmtree(case, ignore_errors=True)
            shutil.copytree(template, case)
            with Faults() as counter:
                if via == "library":
                    lib_call(Registry(case / ".modelreg"))
                else:
                    code, _, err, esc = run_cli(["-R", str(case / ".modelreg"), *(a.replace("{root}", str(case)) for a in argv)])
                    assert code == 0 and esc is None, (code, err, esc)
            for fn in FAULT_FUNCS:
                for nth in range(1, counter.counts[fn] + 1):
                    for persistent in (False, True):
                        shutil.rmtree(case, ignore_errors=True)
                        shutil.copytree(template, case)
                        label = f"{op_name} via {via}: os.{fn} call {nth} fails {'persistently' if persistent else 'once'}"
                        reg_dir = case / ".modelreg"
                        outcome = "ok"
                        with Faults(fn, nth, persistent) as f:
                            if via == "library":
                                try:
                                    lib_call(Registry(reg_dir))
                                except ModelregError:
                                    outcome = "ModelregError"
                                except OSError:
                                    outcome = "raw OSError (library)"
                                except BaseException as exc:  # noqa: BLE001
                                    outcome = f"other {type(exc).__name__}"
                            else:
                                code, _, err, esc = run_cli(["-R", str(reg_dir), *(a.replace("{root}", str(case)) for a in argv)])
                                if esc is not None:
                                    outcome = f"CLI: {type(esc).__name__} escaped main() (a traceback)"
                                elif "Traceback" in err or code is None or not 0 <= code <= 7:
                                    outcome = f"CLI: exit {code}, traceback in stderr"
                                elif code != 0:
                                    lines = [x for x in err.splitlines() if x.strip()]
                                    outcome = f"CLI exit {code}" if len(lines) == 1 else f"CLI: {len(lines)}-line error"
                        if not f.fired:
                            continue
                        fig.faults_injected += 1
                        fig.fault_escapes[outcome] += 1
                        if outcome.startswith(("CLI:", "other")):
                            fig.lose(f"{label}: {outcome}")
                        errs = fsck_errors(reg_dir)
                        if errs:
                            fig.lose(f"{label}: fsck errors {errs[:3]}")
                        try:
                            state = check(Registry(reg_dir))
                        except ModelregError as exc:
                            state = f"unreadable ({exc.message})"
                        if state not in ("old", "new", "prefix"):
                            fig.lose(f"{label}: registry is in neither the old nor the new state: {state}")
                        elif outcome == "ok" and state != "new":
                            fig.lose(f"{label}: reported success but the registry holds the old state")


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
        for ev in r.get("events") or [r.get("event")] * bool(r.get("event")):
            if ids[ev] != 1:
                fig.lose(f"concurrency: acknowledged {r['op']} event {ev} occurs {ids[ev]} times")
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
    for p in ps:
        _, err = p.communicate()
        if p.returncode:
            fig.lose(f"clock skew: worker exited {p.returncode}: {err.decode()[-300:]}")
    acks = [r for a in ackfiles for r in read_acks(a)]
    fig.ops_attempted += 2 * ops
    fig.ops_acknowledged += len(acks)
    ids = raw_event_ids(reg_dir)
    for r in acks:
        if r["op"] == "error":
            fig.lose(f"clock skew: {r['error']}")
        for ev in r.get("events") or []:
            if ids[ev] != 1:
                fig.lose(f"clock skew: acknowledged {r['op']} event {ev} occurs {ids[ev]} times")
    rep = fsck(Registry(reg_dir))
    if rep.problems:
        fig.lose(f"clock skew: fsck reports {[p.to_dict() for p in rep.problems][:3]}")
    repaired = fsck(Registry(reg_dir), repair=True).repaired
    if repaired:
        fig.lose(f"clock skew: fsck --repair appended {repaired[:3]}")
    skewed = sum(1 for r in read_acks(ackfiles[0]) if r.get("events"))
    if not skewed:
        fig.lose("clock skew: the skewed writer wrote nothing")


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

    def snapshot(root: Path, skip_locks: bool = True) -> dict[str, bytes]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            if skip_locks and rel.split(os.sep)[0] == "locks":
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
        if code is None or not 0 <= code <= 7 or "Traceback" in err:
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
            if esc is not None or code is None or not 0 <= code <= 7 or "Traceback" in err:
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
    "quick": dict(kills=30, max_delay=0.5, procs=4, ops=25, fuzz=60, skew_ops=60, import_kills=6, import_faults=3,
                  site=6),
    "default": dict(kills=100, max_delay=0.8, procs=8, ops=50, fuzz=200, skew_ops=150, import_kills=20,
                    import_faults=8, site=15),
    "long": dict(kills=300, max_delay=1.0, procs=16, ops=100, fuzz=1000, skew_ops=400, import_kills=60,
                 import_faults=25, site=40),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.torture", description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="CI mode: 30 kills, 4 processes, small fuzz budget")
    g.add_argument("--long", action="store_true", help="300 kills, 16 processes, 1000 examples per fuzz target")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--only", default="crash,faults,concurrency,corruption,fuzz,skew,import,site")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)
    mode = MODES["quick" if args.quick else "long" if args.long else "default"]
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    rnd = random.Random(seed)
    only = set(args.only.split(","))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="modelreg-torture-"))
    work.mkdir(parents=True, exist_ok=True)
    old_cache = os.environ.get("MODELREG_CACHE_DIR")
    os.environ["MODELREG_CACHE_DIR"] = str(work / "cache")  # derived data stays in the run's directory
    fig = Figures()
    t0 = time.perf_counter()
    timings = {}
    try:
        for name, fn in (
            ("crash", lambda: crash_loop(work, mode["kills"], rnd, fig, mode["max_delay"])),
            ("faults", lambda: fault_injection(work, fig)),
            ("concurrency", lambda: concurrency(work, mode["procs"], mode["ops"], rnd, fig)),
            ("corruption", lambda: corruption(work, fig)),
            ("fuzz", lambda: fuzz(work, mode["fuzz"], fig)),
            ("skew", lambda: clock_skew(work, mode["skew_ops"], rnd, fig)),
            ("import", lambda: import_torture(work, mode["import_kills"], rnd, fig, mode["import_faults"])),
            ("site", lambda: site_crash(work, mode["site"], rnd, fig)),
        ):
            if name in only:
                t = time.perf_counter()
                fn()
                timings[name] = time.perf_counter() - t
    finally:
        if old_cache is None:
            os.environ.pop("MODELREG_CACHE_DIR", None)
        else:
            os.environ["MODELREG_CACHE_DIR"] = old_cache
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"modelreg torture ({'quick' if args.quick else 'long' if args.long else 'default'}, seed {seed}, "
          f"{time.perf_counter() - t0:.1f} s: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ")")
    print(f"  operations attempted      {fig.ops_attempted}")
    print(f"  operations acknowledged   {fig.ops_acknowledged}")
    print(f"  kills (SIGKILL)           {fig.kills}")
    print(f"  faults injected           {fig.faults_injected}")
    for outcome, n in sorted(fig.fault_escapes.items()):
        print(f"    surfaced as {outcome:<28} {n}")
    print(f"  corruptions injected      {fig.corruptions_injected}")
    print(f"  corruptions detected      {fig.corruptions_detected}")
    print(f"  inputs fuzzed             {fig.inputs_fuzzed}"
          + (f"  (exit codes: {', '.join(f'{k}: {v}' for k, v in sorted(fig.fuzz_exits.items(), key=str))})"
             if fig.fuzz_exits else ""))
    print(f"  losses found              {len(fig.losses)}")
    for loss in fig.losses[:50]:
        print(f"    LOSS: {loss}")
    print(POWER_NOTE)
    return 1 if fig.losses else 0


if __name__ == "__main__":
    sys.exit(main())
