"""Injected faults: the Nth call of an os function fails (EIO), and a full disk (short writes, then ENOSPC).

Every write command is one entry of :data:`FAULT_OPS` (prepare, library call, CLI argv,
check); a new write command joins by adding one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelreg import log
from modelreg.errors import ModelregError
from modelreg.registry import Registry

FAULT_FUNCS = ("write", "fsync", "replace", "mkdir", "open", "unlink", "ftruncate")


class Faults:
    """Wrap os.<name>: count calls, and fail the Nth (once, or from then on) with EIO.

    The real ``fsync`` is not called (the calls are still counted and can fail): durability
    is not what this section tests, and skipping it makes the matrix ten times faster.
    """

    def __init__(self, name: str | None = None, nth: int = 0, persistent: bool = False) -> None:
        self.name, self.nth, self.persistent = name, nth, persistent
        self.counts: Counter = Counter()
        self.fired = 0
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> Faults:
        for fn in FAULT_FUNCS:
            real = getattr(os, fn)
            self.saved[fn] = real
            call = (lambda fd: None) if fn == "fsync" else real

            def wrapper(*a: Any, __fn: str = fn, __real: Any = call, **kw: Any) -> Any:
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


@dataclass
class FaultOp:
    """A write command under fault injection: how to set up, run it (library / CLI), and tell old from new."""

    lib: Callable[[Registry], Any]
    argv: list[str]
    check: Callable[[Registry], str | None]  # "old" | "new" | "prefix" (valid, only after a failure) | neither
    prepare: Callable[[Registry], None] = lambda reg: None
    old_errors: int = 0  # fsck errors the old state has on purpose (fsck --repair's input)
    quick: bool = False  # part of the quick (CI) matrix
    tmpfs: bool = True  # may run on /dev/shm (a fetch may not: artifacts under /dev are refused, by design)


def _metrics(reg: Registry) -> str:
    st = reg.model_state("m").versions.get("1.0")
    return "new" if st and st.metrics.get("core", {}).get("score") == 1 else "old"


def _version(reg: Registry, stage: str) -> str | None:
    try:
        return reg.resolve(f"m@{stage}").version
    except ModelregError:
        return None


def _state(reg: Registry, version: str) -> Any:
    return reg.model_state("m").versions.get(version)


def _archived_state(reg: Registry) -> str:
    """old: 1.1 serves production; new: archived and holding no stage; prefix: cleared, the archive
    event not written yet (a valid state a failed command may leave: running it again finishes it)."""
    archived = bool(_state(reg, "1.1") and _state(reg, "1.1").archived)
    if reg.refs.read_stage("m", "production") is None:
        return "new" if archived else "prefix"
    return "old" if not archived else "archived but still in production"


def _fetch_state(reg: Registry) -> str:
    """old: nothing fetched; new: the whole tree, byte for byte; anything else: a partial fetch."""
    from .run import TREE_FILES

    out = reg.root / "out"
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} if out.exists() else {}
    if not files:
        return "old"
    return "new" if files == {f"model/{k}": v for k, v in TREE_FILES.items()} else f"partial fetch: {sorted(files)[:3]}"


def _torn(reg: Registry) -> None:
    with open(reg.logs_dir / "m.jsonl", "ab") as f:
        f.write(b'{"id": "torn by a crash')


def _repaired(reg: Registry) -> str:
    data = (reg.logs_dir / "m.jsonl").read_bytes()
    bad = log.parse(data)[1]
    if not bad:
        return "new"
    return "old" if data.endswith(b'{"id": "torn by a crash') and len(bad) == 1 else f"{len(bad)} bad lines"


def _fsck_repair(reg: Registry) -> None:
    """fsck --repair through the library: a repair it could not make is reported, not raised; the
    CLI turns that report into exit 6, and so does this adapter (as an IntegrityError)."""
    from modelreg.errors import IntegrityError
    from modelreg.fsck import fsck

    report = fsck(reg, repair=True)
    if not report.ok:
        raise IntegrityError(f"fsck --repair left {len(report.errors)} error(s): {report.errors[0].message}")


FAULT_OPS: dict[str, FaultOp] = {
    "register": FaultOp(
        lambda reg: reg.register("m", "2.0", params={"lr": 0.3}, actor="t"),
        ["register", "m", "2.0", "-p", "lr=0.3", "--actor", "t"],
        # the version entry is the commit point; an entry whose event was not written is an fsck warning
        lambda reg: "new" if reg.refs.read_version("m", "2.0") else "old",
        quick=True,
    ),
    "promote": FaultOp(
        lambda reg: reg.promote("m@1.2", "production", expect="1.1", actor="t"),
        ["promote", "m@1.2", "production", "--expect", "1.1", "--actor", "t"],
        lambda reg: {"1.1": "old", "1.2": "new"}.get(_version(reg, "production") or ""),
        quick=True,
    ),
    "rollback": FaultOp(
        lambda reg: reg.rollback("m", "production", actor="t"),
        ["rollback", "m", "production", "--actor", "t"],
        lambda reg: {"1.1": "old", "1.0": "new"}.get(_version(reg, "production") or ""),
    ),
    "archive": FaultOp(
        lambda reg: reg.archive("m@1.2", actor="t", reason="old"),
        ["archive", "m@1.2", "--reason", "old", "--actor", "t"],
        lambda reg: "new" if (_state(reg, "1.2") and _state(reg, "1.2").archived) else "old",
    ),
    "metrics": FaultOp(
        lambda reg: reg.set_metrics("m@1.0", "core", {"score": 1}, actor="t"),
        ["metrics", "set", "m@1.0", "--suite", "core", "score=1", "--actor", "t"],
        _metrics,
        quick=True,
    ),
    "tag": FaultOp(
        lambda reg: reg.tag("m@1.0", add=["gold"], actor="t"),
        ["tag", "m@1.0", "add", "gold", "--actor", "t"],
        lambda reg: "new" if "gold" in (reg.show("m@1.0").tags or []) else "old",
    ),
    "approve": FaultOp(
        lambda reg: reg.approve("m@1.2", "production", actor="t"),
        ["approve", "m@1.2", "--stage", "production", "--actor", "t"],
        lambda reg: "new" if (_state(reg, "1.2") and _state(reg, "1.2").approvals.get("production")) else "old",
    ),
    "bind": FaultOp(
        lambda reg: reg.bind("m@1.0", "serve", "x1", actor="t"),
        ["bind", "m@1.0", "--provider", "serve", "--id", "x1", "--actor", "t"],
        lambda reg: "new" if (_state(reg, "1.0") and "serve" in _state(reg, "1.0").bindings) else "old",
    ),
    "prune": FaultOp(
        lambda reg: reg.prune("m", 0, apply=True, actor="t"),
        ["prune", "m", "--keep", "0", "--apply", "--actor", "t"],
        lambda reg: "new" if (_state(reg, "1.2") and _state(reg, "1.2").archived) else "old",
    ),
    "clear": FaultOp(
        lambda reg: reg.clear("m", "production", reason="t", expect="1.1", actor="t"),
        ["clear", "m", "production", "--reason", "t", "--expect", "1.1", "--actor", "t"],
        lambda reg: "old" if reg.refs.read_stage("m", "production") else "new",
    ),
    "archive-with-stages": FaultOp(
        lambda reg: reg.promote("m@1.1", "archived", reason="t", actor="t"),
        ["promote", "m@1.1", "archived", "--reason", "t", "--actor", "t"],
        lambda reg: _archived_state(reg),
    ),
    "register-dir": FaultOp(
        lambda reg: reg.register("m", "2.1", artifacts=[f"model={reg.root / 'tree'}"], actor="t"),
        ["register", "m", "2.1", "-a", "model={root}/tree/", "--actor", "t"],
        lambda reg: "new" if reg.refs.read_version("m", "2.1") else "old",
    ),
    "fetch-dir": FaultOp(
        lambda reg: reg.fetch("m@1.3", reg.root / "out"),
        ["fetch", "m@1.3", "{root}/out"],
        _fetch_state,
        tmpfs=False,
    ),
    "fsck-repair": FaultOp(
        _fsck_repair,
        ["fsck", "--repair"],
        _repaired,
        prepare=_torn,
        old_errors=1,
    ),
}


def fault_template(work: Path, init: Callable[[Path], Registry], make_tree: Callable[[Path], None]) -> Path:
    """m@1.0, 1.1, 1.2, and 1.3 with a directory artifact; production went 1.0 -> 1.1 (so a
    rollback has somewhere to go); staging empty."""
    base = work / "fault-template"
    shutil.rmtree(base, ignore_errors=True)
    reg = init(base)
    make_tree(base)
    for v, lr in (("1.0", 0.1), ("1.1", 0.2), ("1.2", 0.25)):
        reg.register("m", v, params={"lr": lr}, actor="t")
    reg.register("m", "1.3", artifacts=[f"model={base / 'tree'}"], actor="t")
    reg.promote("m@1.0", "production", actor="t")
    reg.promote("m@1.1", "production", expect="1.0", actor="t", demote=False)
    return base


@contextlib.contextmanager
def scratch(work: Path) -> Iterator[Path]:
    """A throw-away directory for thousands of copies: on tmpfs (/dev/shm) when there is one.

    The matrix copies and deletes a registry per fault; on a disk mounted with ``discard``
    each rmdir costs over a millisecond. Durability is not what it tests.
    """
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else work
    d = Path(tempfile.mkdtemp(prefix="modelreg-torture-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fault_matrix(work: Path, fig: Any, ops: list[str], init: Callable[[Path], Registry], run_cli: Any,
                 fsck_errors: Callable[[Path], list[str]], progress: Any, make_tree: Callable[[Path], None],
                 per_call: int | None = None) -> None:
    """Every call of every FAULT_FUNCS function fails in turn; with ``per_call`` only that many calls of
    each, spread evenly over them (first and last included): the quick mode's budget."""
    with scratch(work) as fast:
        disk = work / "faults-on-disk"
        for op_name in ops:
            base = fast if FAULT_OPS[op_name].tmpfs else disk
            _fault_matrix(base, fig, [op_name], init, run_cli, fsck_errors, progress, make_tree, per_call)
        shutil.rmtree(disk, ignore_errors=True)


def _calls(total: int, per_call: int | None) -> list[int]:
    if per_call is None or total <= per_call:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (per_call - 1)) for i in range(per_call)})


def _argv(op: FaultOp, case: Path) -> list[str]:
    return [a.replace("{root}", str(case)) for a in op.argv]


def _fault_matrix(work: Path, fig: Any, ops: list[str], init: Callable[[Path], Registry], run_cli: Any,
                  fsck_errors: Callable[[Path], list[str]], progress: Any, make_tree: Callable[[Path], None],
                  per_call: int | None) -> None:
    template = work / "fault-template"
    if not template.exists():
        fault_template(work, init, make_tree)
    case = work / "fault-case"
    for op_name in ops:
        op = FAULT_OPS[op_name]
        for via in ("library", "cli"):
            shutil.rmtree(case, ignore_errors=True)
            shutil.copytree(template, case)
            op.prepare(Registry(case / ".modelreg"))
            with Faults() as counter:
                if via == "library":
                    op.lib(Registry(case / ".modelreg"))
                else:
                    code, _, err, esc = run_cli(["-R", str(case / ".modelreg"), *_argv(op, case)])
                    assert code == 0 and esc is None, (op_name, code, err, esc)
            before = fig.faults_injected
            for fn in FAULT_FUNCS:
                for nth in _calls(counter.counts[fn], per_call):
                    for persistent in (False, True):
                        _one_fault(case, template, op_name, op, via, fn, nth, persistent, fig, run_cli, fsck_errors)
            progress.note(f"faults: {op_name} via {via}: {fig.faults_injected - before} faults injected")


def _one_fault(case: Path, template: Path, op_name: str, op: FaultOp, via: str, fn: str, nth: int, persistent: bool,
               fig: Any, run_cli: Any, fsck_errors: Callable[[Path], list[str]]) -> None:
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(template, case)
    reg_dir = case / ".modelreg"
    op.prepare(Registry(reg_dir))
    label = f"{op_name} via {via}: os.{fn} call {nth} fails {'persistently' if persistent else 'once'}"
    outcome = "ok"
    with Faults(fn, nth, persistent) as f:
        if via == "library":
            try:
                op.lib(Registry(reg_dir))
            except ModelregError:
                outcome = "ModelregError"
            except OSError:
                outcome = "raw OSError (library)"
            except BaseException as exc:  # noqa: BLE001
                outcome = f"other {type(exc).__name__}"
        else:
            code, _, err, esc = run_cli(["-R", str(reg_dir), *_argv(op, case)])
            if esc is not None:
                outcome = f"CLI: {type(esc).__name__} escaped main() (a traceback)"
            elif "Traceback" in err or code is None or not 0 <= code <= 9:
                outcome = f"CLI: exit {code}, traceback in stderr"
            elif code != 0:
                lines = [x for x in err.splitlines() if x.strip()]
                outcome = f"CLI exit {code}" if len(lines) == 1 else f"CLI: {len(lines)}-line error"
    if not f.fired:
        return
    fig.faults_injected += 1
    fig.fault_escapes[outcome] += 1
    if outcome.startswith(("CLI:", "other", "raw")):
        fig.lose(f"{label}: {outcome}")
    try:
        state = op.check(Registry(reg_dir))
    except ModelregError as exc:
        state = f"unreadable ({exc.message})"
    errs = fsck_errors(reg_dir)
    if len(errs) > (op.old_errors if state == "old" else 0):
        fig.lose(f"{label}: fsck errors {errs[:3]}")
    if state not in ("old", "new", "prefix") or (state == "prefix" and outcome == "ok"):
        fig.lose(f"{label}: registry is in neither the old nor the new state: {state}")
    elif outcome == "ok" and state != "new":
        fig.lose(f"{label}: reported success but the registry holds the old state")


# ------------------------------------------------------------------ full disk
class FullDisk:
    """An fd wrapper for os.write: regular-file writes share ``budget`` bytes; the one that
    crosses it is short (what fits is written), and every later one fails with ENOSPC."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.short_writes = 0
        self.enospc = 0
        self.real: Any = None

    def __enter__(self) -> FullDisk:
        self.real = os.write

        def write(fd: int, data: Any) -> int:
            try:
                regular = stat.S_ISREG(os.fstat(fd).st_mode)
            except OSError:
                regular = False
            if not regular:
                return self.real(fd, data)
            n = len(data)
            if self.left <= 0:
                self.enospc += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if n > self.left:
                self.short_writes += 1
                n = self.left
            written = self.real(fd, bytes(memoryview(data)[:n]))
            self.left -= written
            return written

        os.write = write  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        os.write = self.real  # type: ignore[assignment]


def _logs(reg_dir: Path) -> dict[str, bytes]:
    d = reg_dir / "logs"
    return {n: (d / n).read_bytes() for n in sorted(os.listdir(d))} if d.is_dir() else {}


def full_disk(work: Path, rounds: int, rnd: random.Random, fig: Any, init: Callable[[Path], Registry], run_cli: Any,
              fsck_errors: Callable[[Path], list[str]], ops: dict[str, Any], progress: Any) -> None:
    """Random write commands on a disk that fills up at a random byte; then space is freed.

    After every command that failed for lack of space: it failed as a modelreg error naming
    a file (exit 1 through the CLI), no log holds a partial line, a single-event command's
    log is byte for byte as before, fsck finds no error, and once space is free the next
    command succeeds; every acknowledged event is still there at the end.
    """
    base = work / "disk"
    shutil.rmtree(base, ignore_errors=True)
    reg = init(base)
    reg_dir = reg.path
    for v in ("1.0", "1.1"):
        reg.register("alpha", v, actor="t")
        reg.register("beta", v, actor="t")
    acked: set[str] = set()
    names = [n for n in ops if n != "sync"]
    sink = os.open(os.devnull, os.O_WRONLY)  # the extra acknowledgements of rollback-twice
    for i in range(rounds):
        op = rnd.choice(names)
        model = rnd.choice(("alpha", "beta"))
        before = _logs(reg_dir)
        via = "cli" if op in ("metrics", "tag", "approve") and rnd.random() < 0.5 else "library"
        budget = rnd.randrange(0, 700)
        outcome, message = "ok", ""
        with FullDisk(budget) as disk:
            if via == "library":
                try:
                    rec = ops[op](Registry(reg_dir), random.Random(i), f"disk.{i}", model, sink)
                    acked.update(rec["events"])
                except ModelregError as exc:
                    outcome, message = type(exc).__name__, exc.message
                except OSError as exc:
                    outcome, message = "raw OSError", str(exc)
            else:
                rec_ref = f"{model}@1.0"
                argv = {"metrics": ["metrics", "set", rec_ref, "--suite", "disk", f"i={i}"],
                        "tag": ["tag", rec_ref, "add", f"t{i % 5}"],
                        "approve": ["approve", rec_ref, "--stage", "staging", "--actor", f"a{i % 3}"]}[op]
                code, _out, err, esc = run_cli(["-R", str(reg_dir), *argv])
                if esc is not None or code is None or not 0 <= code <= 9 or "Traceback" in err:
                    outcome, message = "CLI traceback", err[-300:]
                elif code != 0:
                    outcome, message = f"CLI exit {code}", err.strip()
        hit = disk.short_writes + disk.enospc
        fig.disk_rounds += 1
        fig.disk_short_writes += disk.short_writes
        fig.disk_enospc += disk.enospc
        label = f"full disk round {i} ({op} via {via}, {budget} bytes free)"
        if outcome in ("raw OSError", "CLI traceback"):
            fig.lose(f"{label}: {outcome}: {message}")
        if outcome != "ok" and hit:
            fig.disk_failures[outcome] += 1
            if "No space left" not in message or "/" not in message:
                fig.lose(f"{label}: the error does not say the disk is full and where: {message!r}")
            after = _logs(reg_dir)
            single = op in ("metrics", "tag", "approve", "bind", "archive", "unarchive", "register")
            changed = [n for n in after if after.get(n) != before.get(n)]
            if single and changed:
                grew = [n for n in changed if after[n].startswith(before.get(n, b"")) and
                        after[n][len(before.get(n, b"")):].count(b"\n") == 1 and not log.parse(after[n])[1]]
                if grew == changed:  # its event is in; a derived write after it (a cache) failed
                    fig.disk_failures["failed after its event was written"] += 1
                else:
                    fig.lose(f"{label}: a failed single-event command changed {changed}")
        for name, data in _logs(reg_dir).items():
            if data and not data.endswith(b"\n") or log.parse(data)[1]:
                fig.lose(f"{label}: {name} holds a partial or unreadable line")
        errs = fsck_errors(reg_dir)
        if errs:
            fig.lose(f"{label}: fsck errors {errs[:3]}")
        # space is freed: the next writer works
        try:
            r = Registry(reg_dir).register(model, f"freed.{i}", actor="t", check=False)
            acked.add(r.event.id)
        except ModelregError as exc:
            fig.lose(f"{label}: after freeing space, register failed: {exc.message}")
        if (i + 1) % max(1, rounds // 4) == 0:
            progress.note(f"disk: {i + 1}/{rounds} rounds, {fig.disk_short_writes} short writes, "
                          f"{fig.disk_enospc} ENOSPC")
    os.close(sink)
    have = {e.id for m in ("alpha", "beta") for e in Registry(reg_dir).events(m)}
    missing = acked - have
    if missing:
        fig.lose(f"full disk: {len(missing)} acknowledged events missing at the end")
