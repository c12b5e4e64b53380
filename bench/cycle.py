"""Session-cycle benchmarks (issue 10, part 1–2).

One *cycle* = one request that touches the session: load an existing
session (the ~1 KB, 11-key payload), change one key, save.  Every contender
runs the same number of cycles per round on the same payload; stores share
settings (see :mod:`bench.raw`); sessionward runs with sealing (AES-GCM
encryption) on, as it always does.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench.common import Outcome, Stats, make_payload, measure, measure_paired
from bench.raw import unix_socket_rtt
from bench.sw import daemon_cpu_seconds
from bench.targets import TARGETS, Env, Target, Unavailable

RAW_FLOOR = {"redis": "raw_redis", "sqlite": "raw_sqlite", "filesystem": "raw_file",
             "filesystem-fsync": "raw_file_fsync", "daemon": "daemon_floor"}
"""Floor measured interleaved with each store's contenders.  For the daemon it
is the embedded SQLite cycle plus two Unix-socket round trips to an echo
process, in one loop (:class:`bench.sw.DaemonFloor`)."""


def _target(spec: dict[str, Any]) -> tuple[Target, Env]:
    env = Env(**spec["env"])
    return TARGETS[spec["target"]].build(env, **spec.get("options", {})), env


def _runner(target: Target) -> tuple[Callable[[int, int], None], list[str]]:
    handle = [target.create(make_payload())]

    def run(n: int, start: int) -> None:
        handle[0] = target.run_cycles(handle[0], n, start)

    return run, handle


def redis_commands(env: Env, run: Callable[[int, int], None], n: int = 100) -> dict[str, float]:
    """Redis commands per cycle (``INFO commandstats`` delta over ``n`` cycles,
    commands run inside Lua scripts included) – shows the round trips taken."""
    import redis

    r = redis.Redis(host=env.redis_host, port=env.redis_port)
    r.config_resetstat()
    run(n, 1_000_000)
    stats = r.info("commandstats")
    r.close()
    return {k.removeprefix("cmdstat_"): v["calls"] / n for k, v in stats.items()
            if not k.startswith("cmdstat_config") and not k.startswith("cmdstat_info")}


def cycle_workload(spec: dict[str, Any]) -> Outcome:
    """µs per load+change+save cycle for one target.

    A non-raw target whose store has a raw floor is measured *interleaved*
    with that floor in the same process (see :func:`measure_paired`), and the
    per-round ratio is reported as ``paired_ratio``.
    """
    target, env = _target(spec)
    run, handle = _runner(target)
    info = TARGETS[spec["target"]]
    floor_name = RAW_FLOOR.get(info.store) if info.kind != "raw" else None
    extra: dict[str, Any] = {}
    if floor_name:
        floor = TARGETS[floor_name].build(env)
        floor_run, _ = _runner(floor)
        stats, fstats, ratio, per_round, _ = measure_paired(
            run, floor_run, spec["rounds"], spec["round_seconds"], spec["max_cycles"])
        extra = {"floor": floor_name, "floor_stats": asdict(fstats),
                 "paired_ratio": asdict(ratio)}
        floor.close()
    else:
        stats, per_round = measure(run, spec["rounds"], spec["round_seconds"],
                                   spec["max_cycles"])
    if info.store == "redis":
        extra["redis_commands_per_cycle"] = redis_commands(env, run)
    data = target.read(handle[0])
    if data.get("counter", 0) < 100 or len(data) < 11:
        raise RuntimeError(f"cycle did not persist: {data!r:.200}")
    target.close()
    return Outcome(spec["name"], stats=asdict(stats), per_round=per_round, extra=extra)


def readonly_workload(spec: dict[str, Any]) -> Outcome:
    """A read-only request: load, read a key, finish the request (save is a no-op).

    Reports µs per request and the store calls made per request (target:
    one round trip, no rewrite).
    """
    target, _ = _target(spec)
    readonly = getattr(target, "readonly_cycle", None)
    calls = getattr(target, "store_calls", None)
    if readonly is None or calls is None:
        raise Unavailable("target has no read-only path")
    handle = target.create(make_payload())

    def run(n: int, start: int) -> None:
        for _ in range(n):
            readonly(handle)

    stats, per_round = measure(run, spec["rounds"], spec["round_seconds"], spec["max_cycles"])
    before = dict(calls())
    for _ in range(100):
        readonly(handle)
    after = calls()
    per_request = {k: (after.get(k, 0) - before.get(k, 0)) / 100 for k in after}
    target.close()
    return Outcome(spec["name"], stats=asdict(stats), per_round=per_round,
                   extra={"store_calls_per_request": {k: v for k, v in per_request.items() if v}})


def unix_rtt_workload(spec: dict[str, Any]) -> Outcome:
    """Transport floor for the daemon: one ~1 KB Unix-socket round trip."""
    env = Env(**spec["env"])
    stats = unix_socket_rtt(env, spec["rounds"], 2000 if env.quick else 20000)
    return Outcome(spec["name"], stats=asdict(stats), per_round=2000 if env.quick else 20000)


def _throughput_client(spec: dict[str, Any], handle: str, barrier: Any, out: Any) -> None:
    """One client process: for each round, wait at the barrier, then cycle for
    ``seconds`` and report how many cycles it completed."""
    target, _ = _target(spec)
    seconds = float(spec.get("seconds", 1.0))
    i = 0
    for _ in range(spec["rounds"]):
        barrier.wait(60)
        done = 0
        cpu = time.process_time()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            handle = target.run_cycles(handle, 10, i)
            i += 10
            done += 10
        out.put((done, time.process_time() - cpu))
    target.close()


def throughput_workload(spec: dict[str, Any]) -> Outcome:
    """Cycles per second with ``procs`` client processes, each on its own session,
    over a fixed wall-clock window, repeated ``rounds`` times with the same
    client processes (started once, released together by a barrier)."""
    target, env = _target(spec)
    procs = int(spec.get("procs", 4))
    seconds = float(spec.get("seconds", 1.0))
    handles = [target.create(make_payload()) for _ in range(procs)]
    daemon = TARGETS[spec["target"]].store == "daemon"
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(procs + 1), ctx.Queue()
    workers = [ctx.Process(target=_throughput_client, args=(spec, h, barrier, out))
               for h in handles]
    for w in workers:
        w.start()
    values: list[float] = []
    cycles = client_cpu = 0.0
    daemon_cpu = daemon_cpu_seconds(env) if daemon else 0.0
    for _ in range(spec["rounds"]):
        barrier.wait(60)
        got = [out.get(timeout=seconds + 60) for _ in workers]
        values.append(sum(done for done, _cpu in got) / seconds)
        cycles += sum(done for done, _cpu in got)
        client_cpu += sum(cpu for _done, cpu in got)
    extra: dict[str, Any] = {"unit": "cycles/s", "procs": procs,
                             "client_cpu_us_per_cycle": client_cpu / cycles * 1e6}
    if daemon:
        extra["workers"] = int(spec.get("options", {}).get("workers", 1))
        extra["daemon_cpu_us_per_cycle"] = (daemon_cpu_seconds(env) - daemon_cpu) / cycles * 1e6
    for w in workers:
        w.join(10)
    target.close()
    return Outcome(spec["name"], stats=asdict(Stats.of(values)), extra=extra)
