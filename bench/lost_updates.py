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

import contextlib
import importlib
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


PRELOAD = ("redis", "hiredis", "django", "django.db", "django.contrib.sessions.backends.base",
           "flask", "flask_session", "cachelib", "starlette", "starsessions",
           "sessionward.lifecycle.manager", "sessionward.stores.sqlite", "sessionward.stores.redis",
           "sessionward.stores.filesystem")


def _preload() -> None:
    """Import heavy libraries once in the parent so forked clients skip it.

    Only imports: no connection, file or settings exists before the fork,
    each client builds its own target afterwards."""
    for name in PRELOAD:
        with contextlib.suppress(Exception):  # absent optional package: not preloaded
            importlib.import_module(name)


def _client(spec: dict[str, Any], handles: Any, index: int, start: Any, ready: Any,
            out: Any) -> None:
    handle = handles.get(timeout=60)
    env = Env(**spec["env"])
    try:
        target = TARGETS[spec["target"]].build(env, **spec.get("options", {}))
    except Exception as exc:
        ready.put(f"{type(exc).__name__}: {exc}")
        return
    ready.put("")
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
    _preload()
    ctx = multiprocessing.get_context("fork")
    start, ready, out, handles = ctx.Event(), ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(spec, handles, i, start, ready, out),
                         daemon=True) for i in range(PROCS)]
    for p in procs:  # forked before this process opens any connection or file
        p.start()
    target = TARGETS[spec["target"]].build(env, **spec.get("options", {}))
    handle = target.create(make_payload() | {"items": []})
    for _ in procs:
        handles.put(handle)
    problems = [ready.get(timeout=60) for _ in procs]  # every client connected
    if any(problems):
        raise RuntimeError(f"client failed to start: {next(p for p in problems if p)}")
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
