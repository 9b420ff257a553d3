"""Benchmark: build registries of 1k/10k/100k versions and print the figures of issue 7.

    python -m modelreg.bench [--quick] [--sizes 1000,10000,100000] [--out bench-results/bench.json]
    python -m modelreg.bench --tree [--tree-files 2000] [--tree-mib 2048]   # directory artifacts only

Every timing that is compared against a floor is measured side by side in the same run
(commands interleaved round-robin, median of ``--runs``), because machines are noisy.

Fixture registries are built through the library (``Registry.register``/``promote``) in
worker processes that set ``MODELREG_UNSAFE_NO_FSYNC=1`` (see :mod:`modelreg.fileio`):
durability is not what is measured there, and 100k fsync'd registrations would take
longer than the rest of the run. Every *measured* write (registration and promotion
throughput) runs with fsync on, in processes that never set the switch.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VERSIONS_PER_MODEL = 100
WIDE_VERSIONS = 10_000
ACTOR = "bench"
PKG_PARENT = str(Path(__file__).resolve().parent.parent)


# ----------------------------------------------------------------- helpers
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MODELREG_ACTOR"] = ACTOR
    env.pop("MODELREG_UNSAFE_NO_FSYNC", None)
    env.pop("MODELREG_DIR", None)
    # Measure what an installed package does: pip writes .pyc files. With
    # PYTHONDONTWRITEBYTECODE every run would recompile modelreg (~40 ms) while typer,
    # installed with its .pyc, would not: the comparison with the floor would be unfair.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _cli(registry: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "modelreg", "-R", str(registry), *args]


ENTRY = """import re
import sys
from modelreg.fastpath import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def _entry_script(workdir: Path) -> str:
    """A copy of the console script pip generates for ``modelreg`` (imports from PYTHONPATH)."""
    p = workdir / "modelreg-entry.py"
    p.write_text(ENTRY)
    return str(p)


def _time_cmd(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode()[-500:]}")
    return dt


def interleaved(cmds: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median wall time of each command, run round-robin ``runs`` times (after one warm-up each)."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for cmd in cmds.values():
        _time_cmd(cmd, env)
    for _ in range(runs):
        for k, cmd in cmds.items():
            times[k].append(_time_cmd(cmd, env))
    return {k: statistics.median(v) for k, v in times.items()}


def _manifest(model: str, version: str, i: int) -> dict[str, Any]:
    return {
        "name": model,
        "version": version,
        "description": f"benchmark fixture {i}",
        "artifacts": [{"role": "checkpoint", "uri": f"s3://bench-bucket/{model}/{version}/model.safetensors",
                       "sha256": f"{i:064x}", "size": 1000 + i}],
        "params": {"lr": 0.001, "epochs": i % 50, "optimizer": "adamw"},
        "meta": {"dataset": "bench-v1", "accuracy": round(0.5 + (i % 500) / 1000, 3)},
        "tags": ["bench"],
    }


def init_registry(path: Path) -> Any:
    """A registry whose policy lets the fixtures put any version in any stage.

    The artifact URIs of the fixtures are metadata only (registered with check=False).
    """
    from .registry import Registry

    reg = Registry.init(path)
    cfg = reg.path / "config.yaml"
    cfg.write_text(cfg.read_text() + "policy:\n  require_previous_stage: {}\n")
    return Registry(reg.path)


def _build_worker(path: str, models: list[str], per_model: int) -> None:
    os.environ["MODELREG_UNSAFE_NO_FSYNC"] = "1"
    from . import fileio
    from .registry import Registry

    fileio.UNSAFE_NO_FSYNC = True  # the module may have been imported before the fork
    reg = Registry(path)
    for model in models:
        for i in range(per_model):
            reg.register_manifest(_manifest(model, f"1.0.{i}", i), actor=ACTOR, check=False, new_model=True)
        reg.promote(f"{model}@1.0.{per_model - 3}", "production", actor=ACTOR)
        reg.promote(f"{model}@1.0.{per_model - 2}", "staging", actor=ACTOR)
        reg.promote(f"{model}@1.0.{per_model - 2}", "production", actor=ACTOR, reason="bench")


def _write_worker(path: str, models: list[str], per_model: int) -> None:
    """Write models straight to disk in the registry format, as the library would (no locks, no fsync,
    one file write per object, entry and log): the 1M-version fixture in minutes instead of hours.
    tests/test_bench.py checks that a registry written this way is fsck-clean and that the library
    registers the same manifests as identical (same digests)."""
    from . import manifest
    from .hashing import sha256_bytes
    from .log import Event

    root = Path(path)
    for model in models:
        vdir = root / "versions" / model
        vdir.mkdir(parents=True, exist_ok=True)
        lines: list[bytes] = []
        digests = []
        for i in range(per_model):
            version = f"1.0.{i}"
            data = manifest.to_bytes(manifest.validate(_manifest(model, version, i)))
            digest = "sha256:" + sha256_bytes(data)
            obj = root / "objects" / digest[7:9] / digest[9:]
            if not obj.exists():
                obj.parent.mkdir(exist_ok=True)
                obj.write_bytes(data)
            (vdir / version).write_text(digest + "\n")
            digests.append(digest)
            lines.append(Event("register", model, ACTOR, version=version, to=digest).line())
        old, new = digests[per_model - 3], digests[per_model - 2]
        rdir = root / "refs" / model
        rdir.mkdir(parents=True, exist_ok=True)
        p1 = Event("promote", model, ACTOR, version=f"1.0.{per_model - 3}", stage="production", to=old)
        s1 = Event("promote", model, ACTOR, version=f"1.0.{per_model - 2}", stage="staging", to=new)
        p2 = Event("promote", model, ACTOR, version=f"1.0.{per_model - 2}", stage="production", from_=old, to=new,
                   reason="bench", prev=p1.id)
        d2 = Event("demote", model, ACTOR, version=f"1.0.{per_model - 3}", stage="staging", from_=new, to=old,
                   reason=f"replaced in production by 1.0.{per_model - 2}", data={"replaced_in": "production",
                                                                                 "by": p2.id}, prev=s1.id)
        lines += [p1.line(), s1.line(), p2.line(), d2.line()]
        (rdir / "production").write_text(new + "\n")
        (rdir / "staging").write_text(old + "\n")
        (root / "logs" / f"{model}.jsonl").write_bytes(b"".join(lines))


def _in_workers(target: Any, path: Path, models: list[str], per_model: int, workers: int) -> float:
    """Run ``target(registry, models, per_model)`` over ``models`` split across forked workers; seconds taken."""
    t0 = time.perf_counter()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=target, args=(str(path / ".modelreg"), models[w::workers], per_model))
             for w in range(max(1, workers))]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError("fixture build failed")
    return time.perf_counter() - t0


def build_fast(path: Path, n_models: int, per_model: int, workers: int = 2, prefix: str = "m") -> float:
    """Like :func:`build`, but written straight to disk by :func:`_write_worker`; seconds taken."""
    if (path / ".modelreg" / "config.yaml").exists():
        shutil.rmtree(path)
    init_registry(path)
    for sub in ("objects", "logs"):
        (path / ".modelreg" / sub).mkdir(exist_ok=True)
    models = [f"{prefix}{i:04d}" for i in range(n_models)]
    return _in_workers(_write_worker, path, models, per_model, workers)


def build(path: Path, n_models: int, per_model: int, workers: int = 2, prefix: str = "m") -> float:
    """Build a registry of ``n_models`` x ``per_model`` versions; return seconds taken."""
    from .registry import Registry

    if (path / ".modelreg" / "config.yaml").exists():
        shutil.rmtree(path)
    init_registry(path)
    models = [f"{prefix}{i:04d}" for i in range(n_models)]
    return _in_workers(_build_worker, path, models, per_model, 1 if n_models == 1 else workers)


def disk_usage(path: Path) -> tuple[int, int]:
    """(allocated bytes, apparent bytes) of a tree."""
    alloc = apparent = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            alloc += st.st_blocks * 512
            apparent += st.st_size
    return alloc, apparent


# ---------------------------------------------------------------- measures
def measure_register(workdir: Path, n: int, runs: int) -> dict[str, Any]:
    """Registration throughput through the library with fsync on, and per-command CLI time."""
    from . import fileio
    from .registry import Registry

    assert not fileio.UNSAFE_NO_FSYNC, "unset MODELREG_UNSAFE_NO_FSYNC to measure durable registration"
    path = workdir / "register"
    shutil.rmtree(path, ignore_errors=True)
    reg = init_registry(path)
    t0 = time.perf_counter()
    for i in range(n):
        reg.register_manifest(_manifest("thr", f"1.0.{i}", i), actor=ACTOR, check=False, new_model=True)
    lib = time.perf_counter() - t0
    # the default actor path (no --actor, no MODELREG_ACTOR) for comparison
    env_actor = os.environ.pop("MODELREG_ACTOR", None)
    try:
        k = max(20, n // 10)
        t0 = time.perf_counter()
        for i in range(k):
            reg.register_manifest(_manifest("thr-default-actor", f"1.0.{i}", i), check=False, new_model=True)
        lib_default_actor = (time.perf_counter() - t0) / k
    finally:
        if env_actor is not None:
            os.environ["MODELREG_ACTOR"] = env_actor
    env = _env()
    cli_times = []
    for i in range(runs):
        cmd = _cli(path / ".modelreg", "register", "cli", f"2.0.{i}", "--no-check", "--new-model", "-a", "checkpoint=s3://b/cli/model.bin",
                   "-p", "lr=0.001", "-m", "dataset=bench")
        cli_times.append(_time_cmd(cmd, env))
    return {
        "versions": n,
        "seconds": lib,
        "per_second": n / lib,
        "ms_per_version": 1000 * lib / n,
        "ms_per_version_default_actor": 1000 * lib_default_actor,
        "cli_register_median_s": statistics.median(cli_times),
    }


def _promote_worker(path: str, model: str, versions: int, ops: int, seed: int, start: Any, out: Any) -> None:
    import random

    from .registry import Registry

    rnd = random.Random(seed)
    reg = Registry(path)
    start.wait()
    lat = []
    for _ in range(ops):
        v = f"1.0.{rnd.randrange(versions)}"
        t0 = time.perf_counter()
        # demote=False: the lifecycle's demotion guard refuses to evict a staged candidate, and
        # what is measured here is contention on one stage ref, not demotion
        reg.promote(f"{model}@{v}", "production", actor=ACTOR, demote=False)
        lat.append(time.perf_counter() - t0)
    out.put(lat)


def measure_promote(workdir: Path, procs_list: list[int], ops: int) -> list[dict[str, Any]]:
    """Promotions of one model by 1, 4, 16 processes at once (fsync on)."""
    from .registry import Registry

    path = workdir / "promote"
    shutil.rmtree(path, ignore_errors=True)
    build(path, 1, 50, workers=1, prefix="p")
    Registry(path / ".modelreg")  # sanity
    ctx = mp.get_context("fork")
    rows = []
    for n in procs_list:
        start = ctx.Barrier(n + 1)
        out = ctx.Queue()
        ps = [ctx.Process(target=_promote_worker, args=(str(path / ".modelreg"), "p0000", 50, ops, 1000 * n + w,
                                                        start, out)) for w in range(n)]
        for p in ps:
            p.start()
        start.wait()
        t0 = time.perf_counter()
        lat: list[float] = []
        for _ in ps:
            lat.extend(out.get())
        wall = time.perf_counter() - t0
        for p in ps:
            p.join()
        lat.sort()
        rows.append({
            "processes": n, "promotions": len(lat), "seconds": wall, "per_second": len(lat) / wall,
            "latency_p50_ms": 1000 * lat[len(lat) // 2], "latency_p95_ms": 1000 * lat[int(len(lat) * 0.95)],
            "latency_max_ms": 1000 * lat[-1],
        })
    return rows


def measure_hash(workdir: Path, size: int) -> dict[str, Any]:
    """SHA-256 of a local file: modelreg.hashing.sha256_file vs sha256sum, with peak RSS of each process."""
    f = workdir / "hash.bin"
    if not f.exists() or f.stat().st_size != size:
        with open(f, "wb") as out:
            block = os.urandom(1 << 20)
            for i in range(size >> 20):
                out.write(block[i % 256:] + block[: i % 256])
    env = _env()
    # Peak RSS: VmHWM of the hashing process itself (ru_maxrss of a child started by fork
    # would include the parent's footprint); /usr/bin/time -f %M for sha256sum.
    code = ("from modelreg.hashing import sha256_file; d = sha256_file(%r)[0]; "
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]; "
            "print(d, int(hwm[0]) * 1024 if hwm else 0)" % str(f))
    cmds = {"modelreg": [sys.executable, "-c", code]}
    tool, timer = shutil.which("sha256sum"), shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if tool:
        cmds["sha256sum"] = ([timer, "-f", "RSS %M"] if timer else []) + [tool, str(f)]
    res: dict[str, list[tuple[float, int, str]]] = {k: [] for k in cmds}
    for _ in range(4):  # first round warms the page cache; it is dropped
        for k, cmd in cmds.items():
            t0 = time.perf_counter()
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            dt = time.perf_counter() - t0
            out = p.stdout.split()
            if k == "modelreg":
                rss = int(out[1])
            else:
                rss = next((int(x.split()[1]) * 1024 for x in p.stderr.splitlines() if x.startswith("RSS ")), 0)
            res[k].append((dt, rss, out[0]))
    row: dict[str, Any] = {"file_bytes": size}
    for k, v in res.items():
        t = statistics.median(x[0] for x in v[1:])
        row[k] = {"seconds": t, "mib_per_s": size / t / (1 << 20), "peak_rss_mb": max(x[1] for x in v) / 1e6}
    if "sha256sum" in row:
        row["digests_match"] = res["modelreg"][-1][2] == res["sha256sum"][-1][2]
        row["ratio_vs_sha256sum"] = row["modelreg"]["mib_per_s"] / row["sha256sum"]["mib_per_s"]
    return row


SEARCH_1PCT = ["--where", "params.epochs == 7", "--where", "meta.accuracy >= 0.55"]  # 1 version in 100
SEARCH_RARE = ["--where", "name == m0042", "--where", "params.epochs == 7"]  # 2 versions whatever the size


def cold_commands(path: Path, entry: str) -> dict[str, list[str]]:
    reg_dir = path / ".modelreg"
    script = [sys.executable, entry, "-R", str(reg_dir)]
    return {
        "resolve": _cli(reg_dir, "resolve", "m0000@production"),
        "resolve (console script)": [*script, "resolve", "m0000@production"],
        "show": _cli(reg_dir, "show", "m0000@production"),
        "show --json": [*script, "show", "m0000@production", "--json"],
        "ls NAME": _cli(reg_dir, "ls", "m0000"),
        "ls --json": [*script, "ls", "--json"],
        "log NAME --limit 20": _cli(reg_dir, "log", "m0000", "--limit", "20"),
        "log --limit 50": [*script, "log", "--limit", "50"],
        "search --where (1%)": [*script, "search", *SEARCH_1PCT, "--json"],
        "search --where (rare)": [*script, "search", *SEARCH_RARE, "--json"],
        "--version": _cli(reg_dir, "--version"),
        # what one <TAB> costs: bash asks for the words after NAME@ (see modelreg/completion.py)
        "complete NAME@ (bash)": ["env", "_MODELREG_COMPLETE=complete_bash", f"COMP_WORDS=modelreg -R {reg_dir} "
                                  "resolve m0000@", "COMP_CWORD=4", *_cli(reg_dir)[:3]],
    }


FLOORS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import typer'": [sys.executable, "-c", "import typer"],
}


def measure_cold(paths: dict[str, Path], runs: int, entry: str) -> dict[str, dict[str, float]]:
    """Cold starts of every size and the floors, all interleaved in one round-robin so they share the noise."""
    cmds = {f"floor|{k}": v for k, v in FLOORS.items()}
    for size, path in paths.items():
        cmds.update({f"{size}|{k}": v for k, v in cold_commands(path, entry).items()})
    med = interleaved(cmds, runs, _env())
    out: dict[str, dict[str, float]] = {}
    for size in paths:
        row = {k: med[f"floor|{k}"] for k in FLOORS}
        row.update({k: med[f"{size}|{k}"] for k in cold_commands(paths[size], entry)})
        out[size] = row
    return out


def measure_size(path: Path, runs: int) -> dict[str, Any]:
    from .fsck import fsck
    from .registry import Registry

    reg_dir = path / ".modelreg"
    env = _env()
    row: dict[str, Any] = {}
    # log of every model (all events of the registry)
    row["log_all_s"] = interleaved({"log": _cli(reg_dir, "log")}, max(3, runs // 3), env)["log"]
    reg = Registry(reg_dir)
    t0 = time.perf_counter()
    counts = reg.reindex()
    row["index_build_s"] = time.perf_counter() - t0
    from .index.db import path_of

    row["index_bytes"] = sum(os.path.getsize(f"{path_of(reg)}{x}") for x in ("", "-wal")
                             if os.path.exists(f"{path_of(reg)}{x}"))
    row["index_versions"] = sum(counts.values())
    t0 = time.perf_counter()
    rep = fsck(reg)
    dt = time.perf_counter() - t0
    t0 = time.perf_counter()
    quick = fsck(reg, quick=True)
    dq = time.perf_counter() - t0
    row["fsck"] = {"seconds": dt, "objects": rep.counts["objects"], "events": rep.counts["events"],
                   "ok": rep.ok, "s_per_10k_objects": dt / max(1, rep.counts["objects"]) * 10_000,
                   "quick_seconds": dq, "quick_ok": quick.ok, "workers": os.cpu_count()}
    alloc, apparent = disk_usage(reg_dir)
    n = rep.counts["versions"]
    row["disk"] = {"versions": n, "allocated_bytes": alloc, "apparent_bytes": apparent,
                   "allocated_per_version": alloc / n, "apparent_per_version": apparent / n}
    return row


def _git(args: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["git", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def measure_git(path: Path, workdir: Path) -> dict[str, Any]:
    """Git at this size: the first commit, one registration + ``git add .modelreg && git commit``,
    ``git status``, a fresh clone (time, size), the same after ``git gc``, and with feature.manyFiles."""
    env = _env()
    row: dict[str, Any] = {}
    shutil.rmtree(path / ".git", ignore_errors=True)  # a fresh repository each run (--reuse keeps fixtures)
    # gc.auto 0: no background auto-gc racing the measured `git gc` (it would hold gc.pid)
    for cmd in (["init", "-q", "-b", "main"], ["config", "user.email", "bench@example.com"],
                ["config", "user.name", "bench"], ["config", "commit.gpgsign", "false"], ["config", "gc.auto", "0"]):
        _git(cmd, path)
    row["first_commit_s"] = _git(["add", ".modelreg"], path) + _git(["commit", "-qm", "registry"], path)
    t0 = time.perf_counter()
    subprocess.run(_cli(path / ".modelreg", "register", "git-bench", "1.0.0", "--no-check", "--new-model", "-p", "x=1"),
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    row["register_s"] = time.perf_counter() - t0
    row["add_commit_s"] = _git(["add", ".modelreg"], path) + _git(["commit", "-qm", "one version"], path)
    row["status_s"] = min(_git(["status", "--porcelain"], path) for _ in range(3))

    def clone(label: str) -> None:
        dest = workdir / f"clone-{label}"
        shutil.rmtree(dest, ignore_errors=True)
        row[f"clone_{label}_s"] = _git(["clone", "-q", "--no-local", str(path), str(dest)], workdir)
        row[f"clone_{label}_git_bytes"] = disk_usage(dest / ".git")[0]
        row[f"clone_{label}_worktree_bytes"] = disk_usage(dest / ".modelreg")[0]
        shutil.rmtree(dest, ignore_errors=True)

    row["repo_git_bytes_loose"] = disk_usage(path / ".git")[0]
    clone("loose")
    row["gc_s"] = _git(["gc", "-q"], path)
    row["repo_git_bytes_packed"] = disk_usage(path / ".git")[0]
    clone("packed")
    _git(["config", "feature.manyFiles", "true"], path)
    _git(["update-index", "--index-version", "4"], path)
    _git(["status", "--porcelain"], path)  # fills the untracked cache
    row["status_manyfiles_s"] = min(_git(["status", "--porcelain"], path) for _ in range(3))
    return row


def measure_wide(path: Path, runs: int) -> dict[str, Any]:
    reg_dir = path / ".modelreg"
    r = max(3, runs // 3)
    med = interleaved({
        "python -c pass": FLOORS["python -c pass"],
        "ls NAME (10k versions)": _cli(reg_dir, "ls", "m0000"),
        "ls NAME --json (10k versions)": _cli(reg_dir, "ls", "m0000", "--json"),
        "log NAME (10k events)": _cli(reg_dir, "log", "m0000"),
        "resolve": _cli(reg_dir, "resolve", "m0000@production"),
    }, r, _env())
    return med


# ---------------------------------------------------------------- write scaling
WRITE_BASE = 10  # the baseline: the same commands on a 10-version model
WRITE_SIZES = (1000, 100_000)  # --sizes can add 1000000
WRITES = ("register", "promote staging", "promote production", "rollback", "clear", "tag add", "approve",
          "metrics set", "bind", "archive")


def _bulk_worker(path: str, model: str, n: int) -> None:
    """One model with ``n`` versions (and a metrics event every 100), through the library's write
    protocol (object, version entry, event line) under the model's lock, 10,000 versions per lock,
    no fsync; the fingerprint index and state snapshot are kept current as ``register`` keeps them."""
    os.environ["MODELREG_UNSAFE_NO_FSYNC"] = "1"
    from . import fileio, manifest
    from .discovery import FingerprintIndex
    from .log import Event
    from .registry import Registry

    fileio.UNSAFE_NO_FSYNC = True
    reg = Registry(path)
    fps = FingerprintIndex(reg)
    stages = set(reg.stages)
    for lo in range(0, n, 10_000):
        with reg._locked(model):
            for i in range(lo, min(n, lo + 10_000)):
                m = manifest.validate(_manifest(model, f"1.0.{i}", i), stages)
                data = manifest.to_bytes(m)
                digest = reg.objects.put(data)
                reg.refs.add_version(model, m["version"], digest, variants=[])  # no upper case: no variants
                reg._record(Event("register", model, ACTOR, version=m["version"], to=digest))
                fps._add(m, digest)
                if i % 100 == 99:
                    reg._record(Event("metrics", model, ACTOR, version=m["version"], to=digest,
                                      data={"suite": "eval", "values": {"score": round(0.5 + (i % 500) / 1000, 3)}}))
            fps.mark_current(model)
    held = f"{model}@1.0.{n - 3}"
    for i in range(max(0, n - 8), n - 3):  # some stage history: promotions, a rollback
        reg.promote(f"{model}@1.0.{i}", "staging", actor=ACTOR)
    reg.rollback(model, "staging", actor=ACTOR)
    reg.promote(held, "staging", actor=ACTOR)
    reg.promote(held, "production", actor=ACTOR)


def build_one_model(path: Path, n: int) -> float:
    """A registry holding one model ``m`` with ``n`` versions; seconds taken (linear in ``n``)."""
    if (path / ".modelreg" / "config.yaml").exists():
        shutil.rmtree(path)
    from .registry import Registry

    Registry.init(path)
    t0 = time.perf_counter()
    p = mp.get_context("fork").Process(target=_bulk_worker, args=(str(path / ".modelreg"), "m", n))
    p.start()
    p.join()
    if p.exitcode:
        raise RuntimeError("write fixture build failed")
    return time.perf_counter() - t0


def _write_cmds(reg_dir: Path, r: int, tag: str) -> dict[str, list[str]]:
    """Round ``r`` of the write commands: each leaves the model as the round found it, but for one new
    (archived) version: production goes to w<tag>.<r> and back, staging is cleared."""
    v = f"m@w{tag}.{r}"
    return {
        "register": _cli(reg_dir, "register", "m", f"w{tag}.{r}", "--no-check", "-a", f"checkpoint=s3://bench/m/{r}.bin",
                         "-p", "lr=0.001", "-p", f"epochs={r % 50}", "-p", "optimizer=adamw"),
        "promote staging": _cli(reg_dir, "promote", v, "staging"),
        "promote production": _cli(reg_dir, "promote", v, "production"),  # demotes the holder into staging
        "rollback": _cli(reg_dir, "rollback", "m", "production"),
        "clear": _cli(reg_dir, "clear", "m", "staging", "--reason", "bench"),
        "tag add": _cli(reg_dir, "tag", v, "add", f"t{r}"),
        "approve": _cli(reg_dir, "approve", v, "--stage", "production"),
        "metrics set": _cli(reg_dir, "metrics", "set", v, "--suite", "eval", "score=0.9"),
        "bind": _cli(reg_dir, "bind", v, "--provider", "sagemaker", "--id", f"ep-{r}"),
        "archive": _cli(reg_dir, "archive", v, "--reason", "bench"),
    }


def _library_register_ms(reg_dir: Path, k: int) -> float:
    """ms per ``register_manifest`` (no fsync, fresh process) for ``k`` versions added to a fixture."""
    code = ("import os, sys, time; os.environ['MODELREG_UNSAFE_NO_FSYNC'] = '1'\n"
            "from modelreg.bench import _manifest, ACTOR\nfrom modelreg.registry import Registry\n"
            f"reg = Registry({str(reg_dir)!r}); k = {k}\n"
            "tag = os.urandom(3).hex()\n"
            "reg.register_manifest(_manifest('m', f'lib{tag}.warm', 0), actor=ACTOR, check=False)\n"
            "t = time.perf_counter()\n"
            "for i in range(k):\n"
            "    reg.register_manifest(_manifest('m', f'lib{tag}.{i}', i), actor=ACTOR, check=False)\n"
            "print((time.perf_counter() - t) / k * 1000)\n")
    env = {k2: v for k2, v in _env().items() if k2 != "MODELREG_UNSAFE_NO_FSYNC"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def _snapshot_figures(reg_dir: Path) -> dict[str, Any]:
    """Size of the state snapshot; a warm check of it against the log vs folding the whole log; a
    rebuild from scratch (what deleting it costs once), each in a fresh process with its peak RSS."""
    from .cachedir import cache_dir
    from .derived.snapshot import path_for

    db = path_for(cache_dir(reg_dir), "m")
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    log_bytes = (reg_dir / "logs" / "m.jsonl").stat().st_size
    env = _env()
    prog = ("import sys; from modelreg.registry import Registry; reg = Registry(sys.argv[1]); "
            "st = reg.model_state('m'); st.head('production'); st.versions.get('1.0.0')")
    full = ("import sys; from pathlib import Path; from modelreg import log; from modelreg.state import fold; "
            "fold(log.read(Path(sys.argv[1]) / 'logs', 'm')[0])")
    warm = _measured([sys.executable, "-c", prog, str(reg_dir)], reg_dir, env)
    whole = _measured([sys.executable, "-c", full, str(reg_dir)], reg_dir, env)
    for p in db.parent.glob(db.name + "*"):
        p.unlink()
    rebuild = _measured([sys.executable, "-c", prog, str(reg_dir)], reg_dir, env)
    return {"snapshot_bytes": size, "log_bytes": log_bytes, "warm": warm, "fold_whole_log": whole,
            "rebuild": rebuild}


def measure_writes(workdir: Path, sizes: list[int], runs: int, reuse: bool) -> dict[str, Any]:
    """Every write command as a fresh CLI process (fsync on) on one model of each size and on a 10-version
    model, interleaved round by round: median wall time and peak RSS, and the ratio to the baseline."""
    all_sizes = [WRITE_BASE, *sizes]
    paths: dict[int, Path] = {}
    res: dict[str, Any] = {"sizes": all_sizes, "build": {}, "runs": runs}
    for n in all_sizes:
        path = workdir / f"writes-{n}"
        marker = path / ".built"
        paths[n] = path
        if reuse and marker.exists():
            res["build"][str(n)] = json.loads(marker.read_text())
            continue
        print(f"building one model with {n} versions...", file=sys.stderr, flush=True)
        bt = build_one_model(path, n)
        info = {"seconds": bt, "ms_per_version": 1000 * bt / n}
        marker.write_text(json.dumps(info))
        res["build"][str(n)] = info
    env = _env()
    samples: dict[str, dict[int, list[dict[str, float]]]] = {w: {n: [] for n in all_sizes} for w in WRITES}
    warmup: dict[str, dict[int, dict[str, float]]] = {w: {} for w in WRITES}
    tag = os.urandom(3).hex()  # fixtures may be reused: each run registers versions of its own
    for r in range(runs + 1):  # round 0 warms the page cache and the caches; not counted
        print(f"write round {r}/{runs}...", file=sys.stderr, flush=True)
        per_size = {n: _write_cmds(paths[n] / ".modelreg", r, tag) for n in all_sizes}
        for w in WRITES:
            for n in all_sizes:
                m = _measured(per_size[n][w], paths[n], env)
                if r:
                    samples[w][n].append(m)
                else:
                    warmup[w][n] = m
    table: dict[str, dict[str, Any]] = {}
    for w in WRITES:
        row: dict[str, Any] = {}
        base = samples[w][WRITE_BASE]
        for n in all_sizes:
            xs = samples[w][n]

            def paired(key: str) -> float:  # each round's ratio to the baseline run next to it: load drifts cancel
                return statistics.median(x[key] / b[key] for x, b in zip(xs, base))

            row[str(n)] = {
                "seconds": statistics.median(x["seconds"] for x in xs),
                "cpu_seconds": statistics.median(x["cpu_seconds"] for x in xs),
                "peak_rss_mb": statistics.median(x["peak_rss_mb"] for x in xs),
                "time_ratio": paired("seconds"), "cpu_ratio": paired("cpu_seconds"), "rss_ratio": paired("peak_rss_mb"),
                "first_round_seconds": warmup[w][n]["seconds"], "samples": xs,
            }
        table[w] = row
    res["writes"] = table
    print("library registration and snapshot figures...", file=sys.stderr, flush=True)
    res["library_register_ms"] = {str(n): _library_register_ms(paths[n] / ".modelreg", 200) for n in all_sizes}
    res["snapshot"] = {str(n): _snapshot_figures(paths[n] / ".modelreg") for n in all_sizes}
    return res


def writes_report(w: dict[str, Any]) -> str:
    sizes = w["sizes"]
    head = "".join(f"{n:>30,}" for n in sizes)
    lines = [f"Writes on one model, CLI, fsync on: median of {w['runs']} interleaved fresh processes; ratios are",
             "the median of each round's ratio to the 10-version run next to it (wall time, CPU time, peak RSS)",
             f"  {'versions':<20}{head}"]
    for name, row in w["writes"].items():
        cells = "".join(f"{_fmt_s(row[str(n)]['seconds']):>9} {row[str(n)]['time_ratio']:>4.2f}x"
                        f" cpu {row[str(n)]['cpu_ratio']:>4.2f}x {row[str(n)]['peak_rss_mb']:>4.0f}MB" for n in sizes)
        lines.append(f"  {name:<20}{cells}")
    lines.append(f"  {'fixture build':<20}" + "".join(
        f"{w['build'][str(n)]['ms_per_version']:>23.2f} ms/ver" for n in sizes))
    lines.append(f"  {'register_manifest':<20}" + "".join(
        f"{w['library_register_ms'][str(n)]:>23.2f} ms/ver" for n in sizes))
    for key, label in (("warm", "snapshot check"), ("fold_whole_log", "fold whole log"), ("rebuild", "snapshot rebuild")):
        lines.append(f"  {label:<20}" + "".join(
            f"{_fmt_s(w['snapshot'][str(n)][key]['seconds']):>20} {w['snapshot'][str(n)][key]['peak_rss_mb']:>5.0f}MB"
            for n in sizes))
    lines.append(f"  {'snapshot / log size':<20}" + "".join(
        f"{w['snapshot'][str(n)]['snapshot_bytes'] / 1e6:>17.1f}/{w['snapshot'][str(n)]['log_bytes'] / 1e6:>6.1f} MB"
        for n in sizes))
    return "\n".join(lines)


def writes_targets(w: dict[str, Any]) -> list[tuple[str, bool]]:
    out = []
    for n in w["sizes"]:
        if n < 100_000:
            continue
        worst_t = max((row[str(n)]["time_ratio"], name) for name, row in w["writes"].items())
        worst_m = max((row[str(n)]["rss_ratio"], name) for name, row in w["writes"].items())
        out.append((f"every write at {n:,} versions <= 1.25x the 10-version time (worst {worst_t[1]} {worst_t[0]:.2f}x)",
                    worst_t[0] <= 1.25))
        out.append((f"every write at {n:,} versions <= 1.5x the 10-version peak RSS (worst {worst_m[1]} "
                    f"{worst_m[0]:.2f}x)", worst_m[0] <= 1.5))
    return out




# --------------------------------------------------------------------- site
def cpu_calibration() -> float:
    """Seconds a fixed pure-Python loop takes now: the machine's speed (and load) at the time of a figure."""
    t0 = time.perf_counter()
    s = 0
    for i in range(2_000_000):
        s += i
    return time.perf_counter() - t0


def _site_build(reg_dir: Path, out: Path, env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    p = subprocess.run(_cli(reg_dir, "site", "build", "--out", str(out), "--json"), env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"site build exited {p.returncode}: {p.stderr[-500:]}")
    rep = json.loads(p.stdout)
    rep.pop("problems", None)
    rep["wall_s"] = wall
    return rep


def measure_site(path: Path, workdir: Path) -> dict[str, Any]:
    """``modelreg site build`` of a fixture: cold (empty output and cache), again unchanged, then after one
    annotation on one version (one model's inputs change)."""
    from .registry import Registry

    reg_dir = path / ".modelreg"
    out, cache = workdir / f"site-out-{path.name}", workdir / f"site-cache-{path.name}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    env = {**_env(), "MODELREG_CACHE_DIR": str(cache)}
    row: dict[str, Any] = {"load_before": os.getloadavg()[0], "cpu_calibration_s": cpu_calibration()}
    row["cold"] = _site_build(reg_dir, out, env)
    row["unchanged"] = _site_build(reg_dir, out, env)
    reg = Registry(reg_dir)
    models = reg.refs.models()
    reg.set_metrics(f"{models[len(models) // 2]}@latest", "site-bench", {"run": time.time()}, actor=ACTOR)
    row["one_change"] = _site_build(reg_dir, out, env)
    row["load_after"] = os.getloadavg()[0]
    alloc, _ = disk_usage(out)
    file_bytes = sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(out) for f in fs)
    row["disk"] = {"files": row["one_change"]["files"], "file_bytes": file_bytes, "allocated_bytes": alloc,
                   "file_bytes_per_version": file_bytes / max(1, row["one_change"]["versions"])}
    return row


def _wide_extras_worker(path: str, versions: int) -> None:
    """Metrics on every version and 50 stage moves, so the 10k-version model page draws real charts."""
    os.environ["MODELREG_UNSAFE_NO_FSYNC"] = "1"
    from . import fileio
    from .registry import Registry

    fileio.UNSAFE_NO_FSYNC = True
    reg = Registry(path)
    for i in range(versions):
        reg.set_metrics(f"m0000@1.0.{i}", "eval", {"score": round(0.6 + (i % 300) / 1000, 3),
                                                   "latency_ms": 100 + (i * 7) % 80}, actor=ACTOR)
    for i in range(0, versions, max(1, versions // 25)):
        reg.promote(f"m0000@1.0.{i}", "staging", actor=ACTOR, reason=f"nightly {i}")
        reg.promote(f"m0000@1.0.{i}", "production", actor=ACTOR, reason=f"release {i}")


def measure_site_page(path: Path, workdir: Path, runs: int = 5) -> dict[str, Any]:
    """The model page of a 10,000-version model in headless Chromium: when its script is ready (the
    ``mr-ready`` mark), and how long a filter over all 10,000 rows takes to show its result."""
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver_bin = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return {"skipped": "selenium is not installed (pip install -e '.[test]')"}
    if not chromium or not driver_bin:
        return {"skipped": "Chromium/chromedriver not installed (apt-get install chromium chromium-driver)"}
    marker = path / ".site-extras"
    if not marker.exists():
        print("adding metrics and stage moves to the wide model...", file=sys.stderr, flush=True)
        p = mp.get_context("fork").Process(target=_wide_extras_worker, args=(str(path / ".modelreg"), WIDE_VERSIONS))
        p.start()
        p.join()
        if p.exitcode:
            raise RuntimeError("adding metrics to the wide fixture failed")
        marker.write_text("1")
    out = workdir / "site-out-wide"
    env = {**_env(), "MODELREG_CACHE_DIR": str(workdir / "site-cache-wide")}
    build = _site_build(path / ".modelreg", out, env)
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(driver_bin), options=opts)
    ready, dcl, filt = [], [], []
    try:
        url = (out / "m0000" / "index.html").as_uri()
        for _ in range(runs):
            d.get("about:blank")
            d.get(url)
            WebDriverWait(d, 30).until(lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "1")
            t = d.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return [performance.getEntriesByName('mr-ready')[0].startTime, n.domContentLoadedEventEnd];")
            ready.append(t[0] / 1000)
            dcl.append(t[1] / 1000)
            box = d.find_element(By.ID, "vq")
            t0 = time.perf_counter()
            box.send_keys("1.0.99")
            WebDriverWait(d, 30).until(lambda d: "filtered from" in d.find_element(By.CSS_SELECTOR, ".page-info").text)
            filt.append(time.perf_counter() - t0)
        size = sum(f.stat().st_size for f in [out / "m0000" / "index.html"])
    finally:
        d.quit()
    return {"versions": WIDE_VERSIONS, "build": build, "page_bytes": size, "runs": runs,
            "ready_s": statistics.median(ready), "dom_content_loaded_s": statistics.median(dcl),
            "filter_all_rows_s": statistics.median(filt), "chromium": chromium}
# ---------------------------------------------------------------- directory artifacts
def make_tree(path: Path, files: int, total: int) -> dict[str, int]:
    """A model folder: ``files`` files, most small and ten large (so that file size varies 1000x), ``total`` bytes."""
    big_n = min(10, files)
    small_n = files - big_n
    small = max(1, total // 10 // max(1, small_n)) if small_n else 0
    big = (total - small * small_n) // big_n
    block = os.urandom(1 << 20)
    sizes = {}
    for i in range(files):
        size = big if i < big_n else small
        rel = f"shards/model-{i:05d}-of-{big_n:05d}.safetensors" if i < big_n else f"tokenizer/part-{i // 100:02d}/t{i:05d}.json"
        p = path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as out:
            left, k = size, i
            while left > 0:
                chunk = block[k % 4096:] + block[: k % 4096]
                out.write(chunk[:left])
                left -= len(chunk[:left])
                k += 1
        sizes[rel] = size
    return sizes


def _measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Wall time and peak RSS (ru_maxrss of the one child) of a command run from a small wrapper process."""
    code = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
            "dt = time.perf_counter() - t; "
            "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(json.dumps({'rc': p.returncode, 's': dt, 'rss': u.ru_maxrss, 'cpu': u.ru_utime + u.ru_stime,"
            " 'err': p.stderr.decode()[-300:]}))")
    out = subprocess.run([sys.executable, "-c", code, *cmd], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    row = json.loads(out.stdout)
    if row["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {row['rc']}: {row['err']}")
    return {"seconds": row["s"], "peak_rss_mb": row["rss"] * 1024 / 1e6, "cpu_seconds": row["cpu"]}


def measure_tree(workdir: Path, files: int, total: int) -> dict[str, Any]:
    """Register, verify and fetch a directory artifact of ``files`` files and ``total`` bytes through the
    CLI (fsync on), with peak RSS of each command; the same for a tree 1/10th the size, to show memory
    does not grow with the bytes."""
    from .registry import Registry

    env = _env()
    res: dict[str, Any] = {"cores": os.cpu_count()}
    for label, n, size in (("small", max(1, files // 10), total // 10), ("full", files, total)):
        base = workdir / f"tree-{label}"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        Registry.init(base)
        print(f"writing a {size >> 20} MiB folder of {n} files...", file=sys.stderr, flush=True)
        make_tree(base / "model", n, size)
        row: dict[str, Any] = {"files": n, "bytes": size}
        cli = [sys.executable, "-m", "modelreg"]
        row["register"] = _measured([*cli, "register", "llm", "1.0", "-a", "model=model/"], base, env)
        row["verify"] = _measured([*cli, "verify", "llm@1.0"], base, env)
        row["fetch"] = _measured([*cli, "fetch", "llm@1.0", "out"], base, env)
        row["fetch_again"] = _measured([*cli, "fetch", "llm@1.0", "out"], base, env)  # every file present
        reg = Registry(base / ".modelreg")
        row["manifest_bytes"] = reg.objects.path(reg.resolve("llm@1.0").digest).stat().st_size
        for k in ("register", "verify", "fetch", "fetch_again"):
            row[k]["mib_per_s"] = size / row[k]["seconds"] / (1 << 20)
        res[label] = row
        shutil.rmtree(base, ignore_errors=True)
    return res


def tree_report(t: dict[str, Any]) -> str:
    lines = [f"Directory artifact, CLI, fsync on ({t['cores']} cores)",
             f"  {'tree':<22}{'command':<13}{'time':>10}{'MiB/s':>9}{'peak RSS':>11}"]
    for label in ("small", "full"):
        row = t[label]
        name = f"{row['files']} files, {row['bytes'] >> 20} MiB"
        for k in ("register", "verify", "fetch", "fetch_again"):
            r = row[k]
            lines.append(f"  {name:<22}{k:<13}{_fmt_s(r['seconds']):>10}{r['mib_per_s']:>9.0f}{r['peak_rss_mb']:>8.1f} MB")
            name = ""
        lines.append(f"  {'':<22}manifest     {row['manifest_bytes'] / 1024:>8.0f} KiB")
    return "\n".join(lines)


# ---------------------------------------------------------------- main
def _fmt_s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def report(res: dict[str, Any]) -> str:
    lines = [f"modelreg bench  {res['machine']['python']}  cores={res['machine']['cores']}  "
             f"quick={res['quick']}", ""]
    sizes = {k: v for k, v in res["sizes"].items() if "cold" in v}
    if not sizes:  # --site-only
        return "\n".join(lines + _site_report(res))
    keys = list(next(iter(sizes.values()))["cold"])
    lines.append("Cold CLI start (median of %d fresh processes, interleaved)" % res["runs"])
    lines.append(f"  {'command':<28}" + "".join(f"{s:>12}" for s in sizes))
    for k in keys:
        lines.append(f"  {k:<28}" + "".join(f"{_fmt_s(sizes[s]['cold'][k]):>12}" for s in sizes))
    lines.append(f"  {'resolve / python -c pass':<28}" + "".join(f"{sizes[s]['resolve_over_pass']:>11.2f}x" for s in sizes))
    lines.append(f"  {'resolve / import typer':<28}" + "".join(f"{sizes[s]['resolve_over_typer']:>11.2f}x" for s in sizes))
    lines.append(f"  {'log (all models, all events)':<28}" + "".join(f"{_fmt_s(sizes[s]['log_all_s']):>12}" for s in sizes))
    lines.append(f"  {'index build (reindex)':<28}" + "".join(f"{_fmt_s(sizes[s]['index_build_s']):>12}" for s in sizes))
    lines.append(f"  {'index size':<28}" + "".join(f"{sizes[s]['index_bytes'] / 1e6:>9.1f} MB" for s in sizes))
    lines.append(f"  {'fsck (%d workers)' % res['machine']['cores']:<28}" + "".join(f"{_fmt_s(sizes[s]['fsck']['seconds']):>12}" for s in sizes))
    lines.append(f"  {'fsck --quick (again)':<28}" + "".join(f"{_fmt_s(sizes[s]['fsck']['quick_seconds']):>12}" for s in sizes))
    lines.append(f"  {'disk per version (alloc)':<28}" + "".join(f"{sizes[s]['disk']['allocated_per_version'] / 1024:>9.1f} KiB" for s in sizes))
    lines.append(f"  {'disk per version (apparent)':<28}" + "".join(f"{sizes[s]['disk']['apparent_per_version']:>8.0f} B  " for s in sizes))
    lines.append(f"  {'fixture write (no fsync)':<28}" + "".join(f"{_fmt_s(sizes[s]['build_s']):>12}" for s in sizes))
    gits = {s: sizes[s]["git"] for s in sizes if "git" in sizes[s] and "status_manyfiles_s" in sizes[s]["git"]}
    for size, g in gits.items():
        lines += ["", f"Git at {int(size):,} versions (2 files per version)"]
        for k, label in (("first_commit_s", "git add + commit of the whole registry"),
                         ("register_s", "modelreg register (one version)"),
                         ("add_commit_s", "git add .modelreg && git commit (one version)"),
                         ("status_s", "git status"), ("status_manyfiles_s", "git status, feature.manyFiles + index v4"),
                         ("clone_loose_s", "fresh clone (loose objects)"), ("gc_s", "git gc"),
                         ("clone_packed_s", "fresh clone after git gc")):
            lines.append(f"  {label:<46}{_fmt_s(g[k]):>10}")
        for k, label in (("repo_git_bytes_loose", ".git before gc"), ("repo_git_bytes_packed", ".git after gc"),
                         ("clone_loose_git_bytes", "clone's .git (before gc)"),
                         ("clone_packed_git_bytes", "clone's .git (after gc)"),
                         ("clone_packed_worktree_bytes", "clone's .modelreg work tree")):
            lines.append(f"  {label:<46}{g[k] / 1e6:>7.1f} MB")
    if "wide" in res:
        lines += ["", "One model with %d versions" % res["wide"]["versions"]]
        for k, v in res["wide"]["cold"].items():
            lines.append(f"  {k:<28}{_fmt_s(v):>12}")
    if "register" in res:
        r = res["register"]
        lines += ["", "Registration through the library, fsync on",
                  f"  {r['versions']} versions in {r['seconds']:.2f} s = {r['per_second']:.0f} versions/s "
                  f"({r['ms_per_version']:.2f} ms each; {r['ms_per_version_default_actor']:.2f} ms with the default actor lookup)",
                  f"  CLI register, per command: {_fmt_s(r['cli_register_median_s'])}"]
        lines += ["", "Promotion of one model's production stage, fsync on",
                  f"  {'procs':>5} {'promotions':>10} {'per s':>8} {'p50':>8} {'p95':>8} {'max':>8}"]
        for p in res["promote"]:
            lines.append(f"  {p['processes']:>5} {p['promotions']:>10} {p['per_second']:>8.0f} {p['latency_p50_ms']:>6.1f}ms"
                         f" {p['latency_p95_ms']:>6.1f}ms {p['latency_max_ms']:>6.1f}ms")
        h = res["hash"]
        lines += ["", f"SHA-256 of a {h['file_bytes'] >> 20} MiB file (page cache warm)"]
        for k in ("modelreg", "sha256sum"):
            if k in h:
                lines.append(f"  {k:<10} {h[k]['mib_per_s']:>8.0f} MiB/s  peak RSS {h[k]['peak_rss_mb']:.1f} MB")
        if "ratio_vs_sha256sum" in h:
            lines.append(f"  ratio {h['ratio_vs_sha256sum']:.2f}x, digests match: {h['digests_match']}")
    if "writes" in res:
        lines += ["", writes_report(res["writes"])]
    return "\n".join(lines + _site_report(res))


def _site_report(res: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "site" in res:
        st = res["site"]
        lines += ["", f"modelreg site build of {st['cold']['versions']} versions ({st['cold']['models']} models, "
                      f"{st['cold']['files']} files, {st['disk']['file_bytes'] / 1e6:.0f} MB), "
                      f"load average {st['load_before']:.1f}, CPU calibration {st['cpu_calibration_s']:.2f} s"]
        for k, label in (("cold", "full build (empty output and cache)"), ("unchanged", "rebuild, nothing changed"),
                         ("one_change", "rebuild after one change")):
            b = st[k]
            phases = ", ".join(f"{p} {v:.1f} s" for p, v in b["phases"].items())
            lines.append(f"  {label:<38} {_fmt_s(b['wall_s']):>9}  {b['written']:>7} files written  ({phases})")
    if "site_page" in res:
        sp = res["site_page"]
        if "skipped" in sp:
            lines += ["", f"Model page in Chromium: skipped ({sp['skipped']})"]
        else:
            lines += ["", f"Model page of a {sp['versions']}-version model in headless Chromium (median of {sp['runs']})",
                      f"  script ready (interactive)  {_fmt_s(sp['ready_s']):>9}",
                      f"  DOMContentLoaded            {_fmt_s(sp['dom_content_loaded_s']):>9}",
                      f"  filter over all rows        {_fmt_s(sp['filter_all_rows_s']):>9}",
                      f"  page size                   {sp['page_bytes'] / 1024:>6.0f} KiB"]
    lines += ["", "Targets"] + [f"  [{'met' if ok else 'MISSED'}] {t}" for t, ok in res["targets"]]
    return lines


def targets(res: dict[str, Any]) -> list[tuple[str, bool]]:
    out = []
    if "site" in res:
        b = res["site"]["cold"]
        if b["versions"] >= 100_000:
            out.append((f"site build of {b['versions']} versions < 60 s ({b['wall_s']:.1f} s)", b["wall_s"] < 60))
    if "site_page" in res and "ready_s" in res["site_page"]:
        r = res["site_page"]["ready_s"]
        out.append((f"model page of a 10,000-version model interactive < 1 s ({r:.3f} s)", r < 1))
    sizes = {k: v for k, v in res["sizes"].items() if "cold" in v}
    if not sizes:
        return out
    ks = list(sizes)
    worst = max(sizes[s]["resolve_over_pass"] for s in ks)
    out.append((f"cold resolve <= 2.5x python -c pass, same run (worst {worst:.2f}x)", worst <= 2.5))
    if len(ks) > 1:
        g = sizes[ks[-1]]["cold"]["resolve"] / sizes[ks[0]]["cold"]["resolve"] - 1
        out.append((f"resolve flat {ks[0]} -> {ks[-1]} versions (growth {g * 100:+.1f}%, target <= 10%)", g <= 0.10))
    for k in ks:
        n = int(k)
        limit = 0.150 if n <= 100_000 else 0.400
        for q in ("search --where (1%)", "search --where (rare)"):
            v = sizes[k]["cold"][q]
            out.append((f"{q} at {n:,} versions <= {limit * 1000:.0f} ms ({v * 1000:.0f} ms)", v <= limit))
        v = sizes[k]["cold"]["log --limit 50"]
        out.append((f"log --limit 50 at {n:,} versions <= 150 ms ({v * 1000:.0f} ms)", v <= 0.150))
        if n >= 100_000:
            f = sizes[k]["fsck"]["seconds"] * 100_000 / n
            out.append((f"fsck <= 15 s per 100k versions on {res['machine']['cores']} cores at {n:,} "
                        f"({sizes[k]['fsck']['seconds']:.1f} s)", f <= 15))
    if "wide" in res:
        v = res["wide"]["cold"]["ls NAME --json (10k versions)"]
        out.append((f"ls NAME --json of a 10,000-version model <= 200 ms ({v * 1000:.0f} ms)", v <= 0.200))
    if "register" in res:
        r = res["register"]["per_second"]
        out.append((f"registration >= 300 versions/s with fsync ({r:.0f}/s)", r >= 300))
    h = res.get("hash")
    if h and "ratio_vs_sha256sum" in h:
        out.append((f"SHA-256 >= 0.9x sha256sum ({h['ratio_vs_sha256sum']:.2f}x)", h["ratio_vs_sha256sum"] >= 0.9))
    if h:
        rss = h["modelreg"]["peak_rss_mb"]
        out.append((f"hashing peak RSS < 100 MB ({rss:.1f} MB)", rss < 100))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m modelreg.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1k size only, small hash file, fewer runs")
    ap.add_argument("--sizes", default=None, help="comma-separated total version counts (default 1000,10000,100000; "
                                                   "1000000 builds the 1M fixture, ~10 min and ~10 GB of small files)")
    ap.add_argument("--no-git", action="store_true", help="skip git at scale (run at the largest size <= 100k)")
    ap.add_argument("--only-reads", action="store_true", help="skip the write, promotion and hashing figures")
    ap.add_argument("--out", default="bench-results/bench.json", help="JSON output file")
    ap.add_argument("--workdir", default=None, help="where fixtures are built (default: a temp dir, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the fixtures")
    ap.add_argument("--reuse", action="store_true", help="reuse fixtures already built in --workdir")
    ap.add_argument("--runs", type=int, default=None, help="runs per cold-start median (default 15, quick 10)")
    ap.add_argument("--hash-mib", type=int, default=None, help="hash file size in MiB (default 1024, quick 128)")
    ap.add_argument("--site-only", action="store_true",
                    help="only the site figures (largest size and, unless --quick, the 10k-version model page)")
    ap.add_argument("--no-site", action="store_true", help="skip the site figures")
    ap.add_argument("--tree", action="store_true",
                    help="only the directory-artifact benchmark: register, verify, fetch a large folder")
    ap.add_argument("--tree-files", type=int, default=2000, help="files in the --tree folder (default 2000)")
    ap.add_argument("--tree-mib", type=int, default=2048, help="size of the --tree folder in MiB (default 2048)")
    ap.add_argument("--writes", action="store_true",
                    help="only the write-scaling figures: each write at --sizes versions of one model (default "
                         "1000,100000; add 1000000) against a 10-version model")
    args = ap.parse_args(argv)
    if os.environ.get("MODELREG_UNSAFE_NO_FSYNC"):
        ap.error("unset MODELREG_UNSAFE_NO_FSYNC: the bench sets it itself, only where it builds fixtures")
    if args.tree:
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="modelreg-bench-tree-"))
        try:
            t = measure_tree(workdir, args.tree_files, args.tree_mib << 20)
        finally:
            if not args.keep and not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)
        out = Path(args.out if args.out != "bench-results/bench.json" else "bench-results/bench-tree.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(t, indent=2) + "\n")
        print(tree_report(t))
        print(f"\nJSON: {out}")
        return 0
    if args.writes:
        return _writes_main(args)
    sizes = [int(s) for s in (args.sizes or ("1000" if args.quick else "1000,10000,100000")).split(",")]
    runs = args.runs or (10 if args.quick else 15)
    hash_bytes = (args.hash_mib or (128 if args.quick else 1024)) << 20
    os.environ["MODELREG_ACTOR"] = ACTOR
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="modelreg-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["MODELREG_CACHE_DIR"] = str(workdir / "cache")  # derived data stays with the fixtures
    res: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()},
        "quick": args.quick, "runs": runs, "sizes": {},
    }
    try:
        paths = {}
        for n in sizes:
            path = workdir / f"size-{n}"
            marker = path / f".built-{n}"
            paths[str(n)] = path
            if args.reuse and marker.exists():
                res["sizes"][str(n)] = {"build_s": float(marker.read_text())}
                continue
            print(f"writing {n} versions ({max(1, n // VERSIONS_PER_MODEL)} models)...", file=sys.stderr, flush=True)
            bt = build_fast(path, max(1, n // VERSIONS_PER_MODEL), min(n, VERSIONS_PER_MODEL))
            marker.write_text(str(bt))
            res["sizes"][str(n)] = {"build_s": bt}
        if not args.site_only:
            print("cold starts, every size interleaved...", file=sys.stderr, flush=True)
            cold = measure_cold(paths, runs, _entry_script(workdir))
            for n, path in paths.items():
                print(f"fsck, log, disk of {n}...", file=sys.stderr, flush=True)
                row = res["sizes"][n]
                row.update(measure_size(path, runs))
                row["cold"] = cold[n]
                row["resolve_over_typer"] = cold[n]["resolve"] / cold[n]["python -c 'import typer'"]
                row["resolve_over_pass"] = cold[n]["resolve (console script)"] / cold[n]["python -c pass"]
            git_sizes = [n for n in paths if int(n) <= 100_000]
            if not args.quick and not args.no_git and git_sizes:
                n = max(git_sizes, key=int)
                print(f"git at {n} versions...", file=sys.stderr, flush=True)
                try:
                    res["sizes"][n]["git"] = measure_git(paths[n], workdir)
                except (subprocess.CalledProcessError, OSError) as exc:  # report it, keep the other figures
                    err = getattr(exc, "stderr", b"") or b""
                    print(f"git at scale failed: {exc} {err.decode(errors='replace')[-300:]}", file=sys.stderr)
        wide = workdir / "wide"
        if not args.quick:
            marker = wide / ".built"
            if args.reuse and marker.exists():
                bt = float(marker.read_text())
            else:
                print(f"writing one model with {WIDE_VERSIONS} versions...", file=sys.stderr, flush=True)
                bt = build_fast(wide, 1, WIDE_VERSIONS, workers=1)
                marker.write_text(str(bt))
            if not args.site_only:
                res["wide"] = {"versions": WIDE_VERSIONS, "build_s": bt, "cold": measure_wide(wide, runs)}
        if not args.site_only and not args.only_reads:
            print("registration throughput...", file=sys.stderr, flush=True)
            res["register"] = measure_register(workdir, 100 if args.quick else 500, runs)
            print("promotion under contention...", file=sys.stderr, flush=True)
            res["promote"] = measure_promote(workdir, [1, 4, 16], 10 if args.quick else 25)
            print("hashing...", file=sys.stderr, flush=True)
            res["hash"] = measure_hash(workdir, hash_bytes)
            print("write scaling...", file=sys.stderr, flush=True)
            res["writes"] = measure_writes(workdir, [1000] if args.quick else list(WRITE_SIZES),
                                           5 if args.quick else 9, args.reuse)
        if not args.no_site:
            biggest = str(max(sizes))
            print(f"site build of {biggest} versions (cold, unchanged, one change)...", file=sys.stderr, flush=True)
            res["site"] = measure_site(paths[biggest], workdir)
            if not args.quick:
                print("model page of the 10k-version model in Chromium...", file=sys.stderr, flush=True)
                res["site_page"] = measure_site_page(wide, workdir)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    res["targets"] = targets(res) + (writes_targets(res["writes"]) if "writes" in res else [])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(report(res))
    print(f"\nJSON: {out}")
    return 0


def _writes_main(args: argparse.Namespace) -> int:
    sizes = [int(x) for x in (args.sizes or ",".join(map(str, WRITE_SIZES))).split(",")]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="modelreg-bench-writes-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["MODELREG_ACTOR"] = ACTOR
    os.environ["MODELREG_CACHE_DIR"] = str(workdir / "cache")
    try:
        w = measure_writes(workdir, sizes, args.runs or 9, args.reuse)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    w["machine"] = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    w["targets"] = writes_targets(w)
    out = Path(args.out if args.out != "bench-results/bench.json" else "bench-results/bench-writes.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(w, indent=2) + "\n")
    print(writes_report(w))
    print("\nTargets\n" + "\n".join(f"  [{'met' if ok else 'MISSED'}] {t}" for t, ok in w["targets"]))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
