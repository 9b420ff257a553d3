"""Search at scale: build N versions over M models, then time cold (rebuild) and warm (cached) queries.

    PYTHONPATH=. python benchmarks/bench_discovery.py [--versions 100000] [--models 1000] [--dir /tmp/bench-reg]

The fixture is built through Registry.register with fsync and the pre-registration
checks switched off (they are O(index) per call and only slow the build down); the
queries then run through the normal code path.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time

from modelreg import discovery
from modelreg.registry import Registry


def build(path: str, versions: int, models: int) -> Registry:
    real_fsync = os.fsync
    real_checks = discovery.check_registration
    os.fsync = lambda fd: None  # type: ignore[assignment]
    discovery.check_registration = lambda *a, **k: discovery.RegisterChecks()  # type: ignore[assignment]
    try:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        reg = Registry.init(path)
        rnd = random.Random(0)
        per = versions // models
        for m in range(models):
            name = f"model-{m:05d}"
            for v in range(per):
                reg.register(
                    name, f"1.{v}.0",
                    params={"lr": rnd.choice([1e-3, 5e-4, 1e-4]), "epochs": rnd.randint(1, 20), "seed": m * per + v},
                    meta={"framework": rnd.choice(["torch", "jax"]), "team": f"team-{m % 7}"},
                    tags=[rnd.choice(["nlp", "cv", "speech"])],
                    license=rnd.choice(["MIT", "Apache-2.0", "llama3"]),
                    actor="bench",
                )
            reg.promote(f"{name}@1.{per - 1}.0", "staging", actor="bench")
            reg.promote(f"{name}@1.{per - 1}.0", "production", actor="bench")
        return reg
    finally:
        os.fsync = real_fsync  # type: ignore[assignment]
        discovery.check_registration = real_checks  # type: ignore[assignment]


def timed(label: str, fn) -> None:
    t = time.perf_counter()
    n = len(fn())
    print(f"{label:<58} {time.perf_counter() - t:7.2f} s  ({n} results)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=100_000)
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--dir", default="/tmp/bench-reg")
    ap.add_argument("--reuse", action="store_true", help="Reuse an existing fixture.")
    a = ap.parse_args()
    t = time.perf_counter()
    reg = Registry.open(a.dir) if a.reuse else build(a.dir, a.versions, a.models)
    n = sum(len(reg.refs.version_names(m)) for m in reg.refs.models())
    print(f"fixture: {n} versions in {len(reg.refs.models())} models ({time.perf_counter() - t:.0f} s to build/open)")
    timed("reindex (parse every manifest)", lambda: list(reg.reindex()))
    timed("warm: all versions", lambda: reg.search())
    timed("warm: --stage production", lambda: reg.search(stage="production"))
    timed("warm: --where meta.framework==jax --where params.lr<0.001",
          lambda: reg.search(where=["meta.framework == jax", "params.lr < 0.001"]))
    timed("warm: --sort -params.epochs --limit 10", lambda: reg.search(sort="-params.epochs", limit=10))
    timed("warm: --name '^model-0001' (regex prunes models)", lambda: reg.search(name_regex="^model-0001"))
    reg.register("model-00000", "9.0.0", params={"lr": 0.1}, actor="bench")
    timed("after one register (one model refreshed)", lambda: reg.search(where=["params.lr == 0.1"]))
    t = time.perf_counter()
    reg.register("model-00001", "9.0.0", params={"lr": 0.1, "epochs": 1, "seed": 42}, actor="bench")
    print(f"{'register with duplicate + look-alike checks':<58} {time.perf_counter() - t:7.2f} s")


if __name__ == "__main__":
    main()
