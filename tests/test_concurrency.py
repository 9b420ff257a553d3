"""Six processes register versions of one model and race to promote them with --expect compare-and-swap."""

from __future__ import annotations

import collections
import json
import multiprocessing
import time

from conftest import relax_policy
from modelreg.fsck import fsck
from modelreg.registry import Registry

MODEL = "shared"
WORKERS = 6
PER_WORKER = 6


def worker(regdir: str, index: int, start, out) -> None:
    import os
    import random
    import time

    from modelreg.errors import Conflict
    from modelreg.registry import Registry

    os.environ["MODELREG_ACTOR"] = f"worker-{index}"
    os.environ["MODELREG_LOCK_TIMEOUT"] = "15"
    reg = Registry.open(regdir)
    acked: list[dict] = []
    conflicts = 0
    start.wait(30)  # a barrier: every worker is imported and ready before any writes
    try:
        for k in range(PER_WORKER):
            version = f"{index}.{k}.0"
            res = reg.register(MODEL, version, meta={"worker": index, "k": k})
            acked.append(res.event.to_dict())
            for _attempt in range(200):
                current = reg.refs.read_stage(MODEL, "production")
                time.sleep(random.random() * 0.005)  # widen the read -> CAS window so the race is real
                try:
                    move = reg.promote(f"{MODEL}@{version}", "production", expect=current or "none")
                except Conflict:
                    conflicts += 1
                    continue
                assert move.changed and (move.from_.digest if move.from_ else None) == current
                acked.extend(e.to_dict() for e in move.events)
                break
            else:
                raise AssertionError(f"worker {index} never won the CAS for {version}")
        out.put((index, acked, conflicts, None))
    except BaseException as exc:  # report instead of dying silently
        out.put((index, acked, conflicts, repr(exc)))


def test_concurrent_register_and_cas_promote(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELREG_ACTOR", "setup")
    Registry.init(tmp_path)
    relax_policy(tmp_path)
    reg = Registry.open(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(reg.path), i, start, out)) for i in range(WORKERS)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    assert time.monotonic() - t0 < 20
    conflicts = sum(c for _, _, c, _ in results)
    print("CAS conflicts:", conflicts)
    errors = [(i, err) for i, _, _, err in results if err]
    assert errors == []

    acked = [e for _, events, _, _ in results for e in events]
    assert len([e for e in acked if e["action"] == "register"]) == WORKERS * PER_WORKER
    assert len([e for e in acked if e["action"] == "promote"]) == WORKERS * PER_WORKER

    # every acknowledged event is in the log exactly once, byte-for-byte the acknowledged event
    raw = (reg.path / "logs" / f"{MODEL}.jsonl").read_text().splitlines()
    lines = [json.loads(line) for line in raw]
    by_id = collections.Counter(e["id"] for e in lines)
    for e in acked:
        assert by_id[e["id"]] == 1, e
        assert next(x for x in lines if x["id"] == e["id"]) == e
    assert len(lines) == len(acked)  # nothing unacknowledged was logged either

    # every version entry and ref is valid; fsck finds nothing at all
    report = fsck(reg)
    assert report.problems == [], report.problems
    assert report.counts["versions"] == WORKERS * PER_WORKER and report.counts["events"] == len(acked)
    for v in reg.versions(MODEL):
        assert reg.manifest(v.digest)["version"] == v.version

    # the promotions form one linear CAS history: each one moved the stage from the previous value
    promotes = [e for e in lines if e["action"] == "promote"]
    ordered = sorted(promotes, key=lambda e: (e["time"], e["id"]))
    assert ordered == promotes  # file order (append under the lock) agrees with (time, id) order
    prev = None
    for e in promotes:
        assert e["from"] == prev, e
        prev = e["to"]
    assert len({e["to"] for e in promotes}) == len(promotes)

    # the final production value is the 'to' of the last promote event
    final = reg.refs.read_stage(MODEL, "production")
    assert final == promotes[-1]["to"]
    assert reg.resolve(f"{MODEL}@production").digest == final
    events = reg.events(MODEL, stage="production")
    assert events[-1].to == final
