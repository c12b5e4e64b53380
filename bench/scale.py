"""Scale benchmarks (issue 10, part 4).

sessionward on SQLite and on Redis with many sessions:

* **load latency** of real sessions at a small total (10 000) and at the
  large total (1 000 000) – it should be flat;
* **cleanup** (SQLite; Redis expires natively): the same small number of
  expired records purged among the small and the large total (flat: cost
  follows the expired count), then 10 % expired (100 000 of 1 000 000,
  target ≤ 2 s) while another process keeps doing session cycles on the
  same database – its longest cycle bounds the longest lock cleanup held
  (target ≤ 50 ms);
* **revoke_user** of a user with 1 000 sessions among the total;
* Django's file backend ``clear_expired`` with the same expired count at
  growing totals – it reads every file, so it grows with the total.

Fairness/realism: filler records are copies of a real sealed ~1.2 KB
record, inserted in bulk in the store's own layout (SQL ``executemany``,
Redis pipeline) because creating a million sessions one by one would take
the whole time budget; every *measured* operation goes through the public
``SessionManager`` API on real sessions.  Expiry is moved with an injected
clock, not by waiting.  Quick runs use small sizes.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Outcome, make_payload
from bench.sw import _import, shared_keyring
from bench.targets import Env, Unavailable
from sessionward.stores.sqlite import EXPIRY_BUCKET_SECONDS


@dataclass(frozen=True)
class Sizes:
    small: int
    large: int
    expired_small: int
    expired_large: int
    user_sessions: int
    sample: int

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls(2_000, 20_000, 200, 2_000, 100, 100)
        return cls(10_000, 1_000_000, 1_000, 100_000, 1_000, 200)


def specs(quick: bool) -> list[dict[str, Any]]:
    timeout = 100 if quick else 1200
    out = [{"group": "scale", "name": f"scale:sw_{store}", "workload": "scale_sw",
            "store": store, "timeout": timeout} for store in ("sqlite", "redis")]
    out.append({"group": "scale", "name": "scale:sw_daemon", "workload": "scale_sw",
                "store": "daemon", "timeout": timeout})
    out.append({"group": "scale", "name": "scale:django_file_cleanup",
                "workload": "scale_django_file", "timeout": timeout})
    return out


class ShiftClock:
    """Wall clock plus an adjustable offset: expire records without waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


# ---------------------------------------------------------------- fillers


def _sqlite_fill(path: str, blob: bytes, count: int, expires_at: float) -> None:
    """Insert ``count`` filler records (sorted random keys) in 50 000-row transactions."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    now = time.time()
    bucket = int(expires_at // EXPIRY_BUCKET_SECONDS)  # the store's own layout
    done = 0
    while done < count:
        n = min(50_000, count - done)
        keys = sorted(secrets.token_hex(32) for _ in range(n))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO sw_sessions (key, blob, version, expires_at, "
                         "touched_at, user_key, expiry_bucket) VALUES (?, ?, 1, ?, ?, NULL, ?)",
                         ((k, blob, expires_at, now, bucket) for k in keys))
        conn.execute("COMMIT")
        done += n
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _redis_fill(env: Env, blob: bytes, count: int, expires_at: float) -> None:
    """Pipeline filler records in RedisStore's layout (hash + native TTL)."""
    import redis

    r = redis.Redis(host=env.redis_host, port=env.redis_port)
    now = time.time()
    ttl_ms = int((expires_at - now) * 1000)
    done = 0
    while done < count:
        n = min(5_000, count - done)
        pipe = r.pipeline(transaction=False)
        for _ in range(n):
            key = f"sw:{{{secrets.token_hex(32)}}}:rec"
            pipe.hset(key, mapping={"b": blob, "v": "1", "e": repr(expires_at),
                                    "t": repr(now), "u": ""})
            pipe.pexpire(key, ttl_ms)
        pipe.execute()
        done += n
    r.close()


# ---------------------------------------------------------------- helpers


def _open(env: Env, store_name: str, clock: ShiftClock) -> tuple[Any, Any, Any]:
    manager_cls = _import("sessionward.lifecycle.manager", "SessionManager")
    if store_name == "sqlite":
        store = _import("sessionward.stores.sqlite", "SQLiteStore")(
            f"{env.workdir}/scale.db", clock=clock)
    elif store_name == "redis":
        store = _import("sessionward.stores.redis", "RedisStore").from_url(
            env.redis_url, clock=clock)
    else:
        raise Unavailable(f"no scale setup for store {store_name!r}")
    return manager_cls(store, shared_keyring(env), clock=clock), store, manager_cls


def _real_sessions(manager: Any, n: int) -> list[str]:
    cookies = []
    for _ in range(n):
        s = manager.new()
        s.update(make_payload())
        manager.save(s)
        cookies.append(str(s.cookie_value))
    return cookies


def _load_latency(manager: Any, cookies: list[str], rounds: int) -> dict[str, float]:
    """Median/min/max over rounds of µs per ``manager.load`` of a real session."""
    values = []
    warm_until = time.perf_counter() + 0.3
    while time.perf_counter() < warm_until:
        for c in cookies[:20]:
            manager.load(c)
    for r in range(rounds + 1):  # round 0 warms caches and is dropped
        t0 = time.perf_counter_ns()
        for c in cookies:
            if manager.load(c) is None:
                raise RuntimeError("real session vanished during the scale benchmark")
        if r:
            values.append((time.perf_counter_ns() - t0) / 1000 / len(cookies))
    return {"median": statistics.median(values), "low": min(values), "high": max(values)}


def _timed_cleanup(manager: Any) -> tuple[float, int]:
    """Seconds and records removed by one ``manager.cleanup()`` with the
    library's default batch size (what ``sessionward cleanup`` uses)."""
    t0 = time.perf_counter()
    removed = manager.cleanup()
    return time.perf_counter() - t0, int(removed)


def _cleanup_rounds(manager: Any, path: str, blob: bytes, expired: int,
                    rounds: int) -> tuple[float, int]:
    """Median seconds to purge ``expired`` fresh expired records, over ``rounds``
    rounds (each round inserts them, then cleans up); returns (median s, removed)."""
    times, removed = [], 0
    for _ in range(rounds):
        _sqlite_fill(path, blob, expired, time.time() - 10)
        secs, removed = _timed_cleanup(manager)
        times.append(secs)
    return statistics.median(times), removed


def _probe(env_d: dict[str, Any], stop: Any, ready: Any, out: Any) -> None:
    """Another app process doing session cycles on the same SQLite file."""
    env = Env(**env_d)
    manager = _import("sessionward.lifecycle.manager", "SessionManager")(
        _import("sessionward.stores.sqlite", "SQLiteStore")(f"{env.workdir}/scale.db"),
        shared_keyring(env))
    cookie = _real_sessions(manager, 1)[0]
    lat: list[float] = []
    deadline = time.monotonic() + 600
    ready.set()
    i = 0
    while not stop.is_set() and time.monotonic() < deadline and len(lat) < 2_000_000:
        t0 = time.perf_counter()
        s = manager.load(cookie)
        s["counter"] = i
        manager.save(s)
        lat.append(time.perf_counter() - t0)
        i += 1
    manager.close()
    lat.sort()
    out.put({"cycles": len(lat), "p50_ms": lat[len(lat) // 2] * 1000,
             "p99_ms": lat[int(len(lat) * 0.99)] * 1000, "max_ms": lat[-1] * 1000})


def _cleanup_with_probe(manager: Any, env: Env) -> tuple[float, int, dict[str, float]]:
    ctx = multiprocessing.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    env_d = {"workdir": env.workdir, "redis_host": env.redis_host,
             "redis_port": env.redis_port, "redis_socket": env.redis_socket,
             "quick": env.quick}
    proc = ctx.Process(target=_probe, args=(env_d, stop, ready, out))
    proc.start()
    ready.wait(60)
    time.sleep(0.5)  # baseline cycles before cleanup starts
    seconds, removed = _timed_cleanup(manager)
    time.sleep(0.2)
    stop.set()
    probe: dict[str, float] = out.get(timeout=60)
    proc.join(10)
    return seconds, removed, probe


# ---------------------------------------------------------------- workloads


def scale_daemon(spec: dict[str, Any], env: Env) -> Outcome:
    """The daemon serving many sessions: its RSS and load latency at small and
    large totals (SQLite behind it; filler inserted into its database)."""
    from bench.sw import daemon_rss_kib, sw_daemon

    sz = Sizes.of(env.quick)
    target = sw_daemon(env)
    manager = target.manager
    db = f"{env.workdir}/daemon/sessions.db"
    cookies = _real_sessions(manager, sz.sample)
    conn = sqlite3.connect(db)
    blob = bytes(conn.execute("SELECT blob FROM sw_sessions LIMIT 1").fetchone()[0])
    conn.close()
    live = time.time() + 10 * 86400
    x: dict[str, Any] = {"small": sz.small, "large": sz.large,
                         "daemon_rss_idle_mib": daemon_rss_kib(env) / 1024}
    t0 = time.perf_counter()
    _sqlite_fill(db, blob, sz.small - sz.sample, live)
    x["fill_small_s"] = time.perf_counter() - t0
    small = _load_latency(manager, cookies, spec["rounds"])
    x["daemon_rss_small_mib"] = daemon_rss_kib(env) / 1024
    t0 = time.perf_counter()
    _sqlite_fill(db, blob, sz.large - sz.small, live)
    x["fill_large_s"] = time.perf_counter() - t0
    large = _load_latency(manager, cookies, spec["rounds"])
    x["daemon_rss_large_mib"] = daemon_rss_kib(env) / 1024
    x.update(load_us_small=small["median"], load_us_large=large["median"],
             load_ratio_large_vs_small=large["median"] / small["median"])
    target.close()
    x["series"] = [{"kind": "load", "label": "daemon: load µs", "x": [sz.small, sz.large],
                    "y": [small["median"], large["median"]]}]
    return Outcome(spec["name"], extra=x)


def scale_sw_workload(spec: dict[str, Any]) -> Outcome:
    """Load latency, cleanup and revoke_user at small and large totals."""
    env = Env(**spec["env"])
    if spec["store"] == "daemon":
        return scale_daemon(spec, env)
    sz = Sizes.of(env.quick)
    clock = ShiftClock()
    manager, store, _ = _open(env, spec["store"], clock)
    sqlite = spec["store"] == "sqlite"
    cookies = _real_sessions(manager, sz.sample)
    s = manager.new()
    s.update(make_payload())
    manager.save(s)
    blob = bytes(store.load(s.storage_key).blob)
    live = time.time() + 10 * 86400
    x: dict[str, Any] = {"small": sz.small, "large": sz.large, "blob_bytes": len(blob)}
    t0 = time.perf_counter()
    db = f"{env.workdir}/scale.db"
    if sqlite:
        _sqlite_fill(db, blob, sz.small - sz.sample - 1, live)
    else:
        _redis_fill(env, blob, sz.small - sz.sample - 1, live)
    x["fill_small_s"] = time.perf_counter() - t0
    load_small = _load_latency(manager, cookies, spec["rounds"])
    x["load_us_small"] = load_small["median"]
    if sqlite:
        x["cleanup_small_s"], x["cleanup_small_removed"] = _cleanup_rounds(
            manager, db, blob, sz.expired_small, spec["rounds"])
    t0 = time.perf_counter()
    rest = sz.large - sz.small
    if sqlite:
        _sqlite_fill(db, blob, sz.expired_large, time.time() + 300)
        _sqlite_fill(db, blob, rest - sz.expired_large - sz.user_sessions, live)
    else:
        _redis_fill(env, blob, rest - sz.user_sessions, live)
    for _ in range(sz.user_sessions):
        u = manager.new()
        u["n"] = 1
        manager.save(u)
        manager.login(u, "alice")
        manager.save(u)
    x["fill_large_s"] = time.perf_counter() - t0
    load_large = _load_latency(manager, cookies, spec["rounds"])
    x["load_us_large"] = load_large["median"]
    x["load_ratio_large_vs_small"] = load_large["median"] / load_small["median"]
    series = [{"kind": "load", "label": f"{spec['store']}: load µs",
               "x": [sz.small, sz.large], "y": [load_small["median"], load_large["median"]]}]
    if sqlite:
        x["cleanup_same_expired_large_s"], x["cleanup_same_expired_removed"] = \
            _cleanup_rounds(manager, db, blob, sz.expired_small, spec["rounds"])
        series.append({"kind": "cleanup", "label": f"sessionward SQLite: {sz.expired_small:,}"
                        " expired", "x": [sz.small, sz.large],
                        "y": [x["cleanup_small_s"], x["cleanup_same_expired_large_s"]]})
        clock.offset = 400.0  # the 10 % "expire later" records are now expired
        secs, removed, probe = _cleanup_with_probe(manager, env)
        clock.offset = 0.0
        x.update(cleanup_s=secs, expired=removed, total=sz.large,
                 max_write_wait_ms=probe["max_ms"], probe_p50_ms=probe["p50_ms"],
                 probe_p99_ms=probe["p99_ms"])
    t0 = time.perf_counter()
    x["revoked"] = manager.revoke_user("alice")
    x["revoke_user_s"] = time.perf_counter() - t0
    if spec["store"] == "redis":
        from bench.redis_server import RedisServer, used_memory_rss

        x["redis_rss_mib"] = used_memory_rss(RedisServer(env.redis_host, env.redis_port, "", ""))
        x["redis_rss_mib"] /= 2**20
    if sqlite:
        x["db_mib"] = os.path.getsize(f"{env.workdir}/scale.db") / 2**20
    manager.close()
    x["series"] = series
    return Outcome(spec["name"], extra=x)


def scale_django_file_workload(spec: dict[str, Any]) -> Outcome:
    """Django file backend ``clear_expired`` with a fixed expired count at two totals."""
    env = Env(**spec["env"])
    sz = Sizes.of(env.quick)
    small, large = (sz.small // 2, sz.small * 2) if env.quick else (sz.small, sz.small * 10)
    expired = sz.expired_small
    from bench.peers.django_sessions import django_file

    target = django_file(env)
    from django.conf import settings  # type: ignore[import-untyped,unused-ignore]

    handle = target.create(make_payload())
    folder = Path(settings.SESSION_FILE_PATH)
    prefix = settings.SESSION_COOKIE_NAME
    body = (folder / f"{prefix}{handle}").read_bytes()
    old = time.time() - settings.SESSION_COOKIE_AGE - 60
    present = 1
    points = []
    for total in (small, large):
        for i in range(total - present):
            key = secrets.token_hex(16)  # 32 chars of [0-9a-f]: a valid Django key
            path = folder / f"{prefix}{key}"
            path.write_bytes(body)
            if i < expired:
                os.utime(path, (old, old))
        present = total - expired
        t0 = time.perf_counter()
        target.clear_expired()
        points.append(time.perf_counter() - t0)
    return Outcome(spec["name"], extra={
        "expired": expired, "totals": f"{small:,} / {large:,}",
        "clear_small_s": points[0], "clear_large_s": points[1],
        "growth": points[1] / points[0],
        "series": [{"kind": "cleanup", "label": f"Django file: {expired:,} expired",
                    "x": [small, large], "y": points}]})
