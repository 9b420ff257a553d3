"""Races: fsck --repair against live writers, and many clones pushing to one remote at once."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelreg import log
from modelreg.fsck import fsck
from modelreg.registry import Registry

from . import gitfarm

ROOT = Path(__file__).resolve().parents[2]


def repair_race(work: Path, writers: int, ops: int, rnd: random.Random, fig: Any, init: Callable[[Path], Registry],
                env: dict[str, str], read_acks: Callable[[Path], list[dict]], raw_ids: Callable[[Path], Any],
                fsck_errors: Callable[[Path], list[str]], progress: Any) -> None:
    """Writers record metrics while the parent keeps tearing the log and running ``fsck --repair``.

    Every acknowledged event must end up in the log exactly once, and lost-found must hold
    only the lines that were torn on purpose.
    """
    base = work / "repair"
    shutil.rmtree(base, ignore_errors=True)
    reg = init(base)
    reg.register("m", "1.0", actor="t")
    reg_dir = reg.path
    ackfiles = [work / f"repair-acks-{i}.jsonl" for i in range(writers)]
    for a in ackfiles:
        a.unlink(missing_ok=True)
    ps = [subprocess.Popen([sys.executable, "-m", "tests.torture.child", str(reg_dir), str(a), str(rnd.randrange(10**9)),
                            str(ops), "--ops", "metrics", "--model", "m"], env=env, cwd=ROOT, stderr=subprocess.PIPE)
          for a in ackfiles]
    torn = 0
    logp = reg_dir / "logs" / "m.jsonl"
    while any(p.poll() is None for p in ps):
        with reg._locked("m"):  # a torn line as a killed writer leaves it (no newline), or a garbled one
            with open(logp, "ab") as f:
                f.write(b'{"id": "torn-' + str(torn).encode() + (b'", "ti' if torn % 2 else b'" garbled\n'))
        torn += 1
        report = fsck(Registry(reg_dir), repair=True)
        fig.repairs += sum(1 for r in report.repaired if "lost-found" in r)
        time.sleep(rnd.uniform(0, 0.02))
    for p in ps:
        _, err = p.communicate()
        if p.returncode:
            fig.lose(f"repair race: writer exited {p.returncode}: {err.decode()[-300:]}")
    fsck(Registry(reg_dir), repair=True)
    fig.torn_lines += torn
    acks = [r for a in ackfiles for r in read_acks(a)]
    ids = raw_ids(reg_dir)
    acked = [e for r in acks for e in r.get("events", [])]
    fig.ops_attempted += writers * ops
    fig.ops_acknowledged += len(acks)
    bad = [e for e in acked if ids[e] != 1]
    if bad:
        fig.lose(f"repair race: {len(bad)} of {len(acked)} acknowledged events missing or duplicated, e.g. {bad[0]}")
    errors = [r for r in acks if r["op"] == "error"]
    if errors:
        fig.lose(f"repair race: {len(errors)} writer errors, e.g. {errors[0]['error']}")
    lost = reg_dir / "lost-found"
    set_aside = b"".join(p.read_bytes() for p in lost.iterdir()) if lost.is_dir() else b""
    events, _bad = log.parse(set_aside)
    if events:
        fig.lose(f"repair race: lost-found holds {len(events)} readable event(s), e.g. {events[0].id}")
    if set_aside.count(b"torn-") != torn:
        fig.lose(f"repair race: {torn} lines torn on purpose, {set_aside.count(b'torn-')} set aside")
    errs = fsck_errors(reg_dir)
    if errs:
        fig.lose(f"repair race: fsck errors {errs[:3]}")
    progress.note(f"repair: {writers} writers, {len(acked)} events, {torn} torn lines, {fig.repairs} repairs")


def clones_round(work: Path, n: int, pushes: int, fig: Any, init_project: Callable[[Path], Any], env: dict[str, str],
                 run_cli: Any, progress: Any) -> None:
    """``n`` clones each register and ``sync --push`` (defaults) ``pushes`` times, all at once: all must land."""
    base = work / "clones"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    bare = gitfarm.make_remote(base, init_project)
    clones = [gitfarm.clone(bare, base / f"c{i}", f"ci{i}") for i in range(n)]
    t0 = time.monotonic()

    def cli(repo: Path, *args: str) -> tuple[int, dict, str]:
        p = subprocess.run([sys.executable, "-m", "modelreg", *args], cwd=repo, env=env, capture_output=True,
                           text=True, timeout=900)
        try:
            data = json.loads(p.stdout) if p.stdout.strip() else {}
        except ValueError:
            data = {}
        return p.returncode, data, p.stderr

    def job(i: int) -> list[dict]:
        out = []
        for k in range(pushes):
            code, reg, err = cli(clones[i], "register", "faq-bot", f"{k + 1}.{i}.0", "--no-check", "--json")
            if code:
                out.append({"stage": "register", "code": code, "err": err})
                continue
            start = time.monotonic()
            code, data, err = cli(clones[i], "sync", "--push", "--json")
            out.append({"stage": "sync", "code": code, "data": data, "err": err, "event": reg["event"]["id"],
                        "seconds": time.monotonic() - start})
        return out

    with ThreadPoolExecutor(n) as pool:
        results = [r for per in pool.map(job, range(n)) for r in per]
    elapsed = time.monotonic() - t0
    failed = [r for r in results if r["code"]]
    for r in failed[:5]:
        fig.lose(f"clones: {r['stage']} exited {r['code']}: {r['err'].strip()[-300:]}")
    ok = [r for r in results if not r["code"]]
    remote = gitfarm.remote_event_ids(bare)
    lost = [r["event"] for r in ok if remote.get(r["event"]) != 1]
    if lost:
        fig.lose(f"clones: {len(lost)} pushed registrations are not on the remote exactly once")
    for r in ok:
        for key in ("committed", "pushed_commit"):
            if r["data"].get(key) and not gitfarm.on_remote(bare, r["data"][key]):
                fig.lose(f"clones: sync reported {key} {r['data'][key][:12]}, which is not on the remote")
    fresh = gitfarm.clone(bare, base / "fresh", "checker")
    code, _out, err, _esc = run_cli(["-R", str(fresh / ".modelreg"), "fsck"])
    if code != 0:
        fig.lose(f"clones: fsck of a fresh clone exited {code}: {err.strip()[-300:]}")
    fig.clone_rounds.append({
        "clones": n, "pushes": n * pushes, "landed": len(ok) - len(lost), "seconds": round(elapsed, 1),
        "max_sync_seconds": round(max((r["seconds"] for r in ok), default=0), 1),
        "max_attempts": max((r["data"].get("attempts", 0) for r in ok), default=0),
        "rebases": sum(r["data"].get("rebases", 0) for r in ok),
    })
    progress.note(f"clones: {n} clones x {pushes} pushes: {len(ok) - len(lost)}/{n * pushes} landed in {elapsed:.0f} s")

