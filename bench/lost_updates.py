"""Lost updates (issue 10, part 3).

4 processes × 250 appends to ONE session: each append is a full request
(load, append an item to the ``items`` list, save) through the contender's
*normal* path – no extra locking added by the benchmark.  Afterwards the
session is read back; survivors are the distinct items present out of
1000.  Appends the library *reported* as failed (an exception: conflict,
lock timeout, "database is locked") are counted separately from those lost
silently: a reported failure can be retried by the app, a silent loss can't.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from bench.common import Outcome, make_payload
from bench.targets import TARGETS, Env

PROCS = 4
APPENDS = 250

PEERS = ["flask_redis", "flask_fs", "django_db", "django_cache", "django_file",
         "starsessions_redis"]
SW_MODES = {"sw_sqlite": ["plain", "exclusive", "update"],
            "sw_redis": ["plain", "exclusive", "update"],
            "sw_fs": ["plain", "exclusive", "update"],
            "sw_daemon": ["plain", "update"]}


def specs(quick: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"group": "lost_updates", "name": f"lost:{t}", "workload": "lost_updates", "target": t}
        for t in PEERS
    ]
    out += [
        {"group": "lost_updates", "name": f"lost:{t}:{m}", "workload": "lost_updates",
         "target": t, "options": {"mode": m}}
        for t, modes in SW_MODES.items() for m in modes
    ]
    return out


def _client(spec: dict[str, Any], handle: str, index: int, start: Any, out: Any) -> None:
    env = Env(**spec["env"])
    target = TARGETS[spec["target"]].build(env, **spec.get("options", {}))
    start.wait(60)
    errors: dict[str, int] = {}
    deadline = time.monotonic() + 120
    for i in range(APPENDS):
        if time.monotonic() > deadline:
            errors["not attempted (time bound)"] = APPENDS - i
            break
        try:
            counts = target.append(handle, f"{index}-{i}")
        except Exception as exc:
            counts = {type(exc).__name__: 1}
        for k, v in counts.items():
            errors[k] = errors.get(k, 0) + v
    target.close()
    out.put(errors)


def lost_updates_workload(spec: dict[str, Any]) -> Outcome:
    """Survivors of 4 × 250 concurrent appends to one session."""
    env = Env(**spec["env"])
    target = TARGETS[spec["target"]].build(env, **spec.get("options", {}))
    handle = target.create(make_payload() | {"items": []})
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(spec, handle, i, start, out))
             for i in range(PROCS)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    start.set()
    reported: dict[str, int] = {}
    for _ in procs:
        for k, v in out.get(timeout=200).items():
            reported[k] = reported.get(k, 0) + v
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(10)
    items = target.read(handle).get("items", [])
    target.close()
    total = PROCS * APPENDS
    survivors = len(set(items))
    failed = sum(reported.values())
    return Outcome(spec["name"], extra={
        "attempted": total, "survivors": survivors, "reported_failures": failed,
        "failure_kinds": reported, "silently_lost": max(0, total - survivors - failed),
        "seconds": round(elapsed, 2)})
