"""PHP session handlers under php-fpm (4 workers) behind nginx (issue 17, part 5).

One workload, one subprocess, one machine state: a private daemon (its store
is the run's private redis-server, over its Unix socket — the same Redis
phpredis uses), php-fpm with ``pm = static`` and 4 children, nginx, and the
PHP page of ``tests/php/app`` (``/bench``: read the session, increment a
counter, write it back; ``/append``: read-modify-write of a list).  Handlers:

* ``sw`` — sessionward, lease mode (the default: an exclusive lease per request);
* ``sw-opt`` — sessionward, lock-free (optimistic saves, conflicts reported);
* ``files`` — PHP's own files handler (flock per request);
* ``redis-lock`` / ``redis`` — phpredis with and without its session locking.

Throughput: ``CLIENTS`` threads, each its own session (many users), for
``round_seconds``; rounds are interleaved across handlers (A B C D E, A B …)
so that machine noise hits all of them alike.  Reported: the median of the
per-round requests/s and the p99 latency of every request of a handler.

Lost updates: ``CLIENTS`` threads append distinct items to ONE session;
afterwards survivors are counted.  Requests the app *answered* as failed
(409 conflict, 5xx) are counted apart from silent losses.

Nothing but loopback is contacted; every loop is bounded in count and time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.common import Outcome
from bench.targets import Env, Unavailable

ROOT = Path(__file__).resolve().parent.parent
KINDS = ["sw", "sw-opt", "files", "redis-lock", "redis"]
LABELS = {"sw": "sessionward, lease", "sw-opt": "sessionward, lock-free",
          "files": "PHP files handler", "redis-lock": "phpredis, locking",
          "redis": "phpredis, no locking"}
CLIENTS = 8


def specs(quick: bool) -> list[dict[str, Any]]:
    return [{"group": "php", "name": "php:handlers", "workload": "php",
             "rounds": 3 if quick else 5, "round_seconds": 1.0 if quick else 3.0,
             "options": {"appends": 15 if quick else 50}, "timeout": 300 if quick else 900}]


# ------------------------------------------------------------------ services


def _start_daemon(workdir: Path, redis_socket: str) -> subprocess.Popen[bytes]:
    data_dir = workdir / "daemon"
    store = f"unix://{redis_socket}" if redis_socket else None
    args = [sys.executable, "-m", "sessionward.daemon", "--data-dir", str(data_dir),
            "--namespace", "bench", "--max-connections", "200"]
    if store:
        args += ["--store", store]
    log = open(workdir / "daemon.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not (data_dir / "sessionward.sock").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise Unavailable("daemon did not start: "
                              + (workdir / "daemon.log").read_text()[-300:])
        time.sleep(0.05)
    return proc


def _stack(workdir: Path, env: Env) -> Any:
    """The tests' nginx + php-fpm stack (``tests/svc_php.py``), 4 workers."""
    sys.path.insert(0, str(ROOT / "tests"))
    import svc_php  # the one place that knows how to run them privately

    if shutil.which("php") is None or svc_php.php_fpm_binary() is None:
        raise Unavailable("php-cli / php-fpm not installed (make system-deps)")
    files = workdir / "files"
    files.mkdir(mode=0o700)
    daemon_dir = workdir / "daemon"
    stack_dir = workdir / "stack"
    stack_dir.mkdir()
    return svc_php.PhpStack(stack_dir, workers=4, env={
        "SW_DAEMON": f"sessionward://{daemon_dir / 'sessionward.sock'}",
        "SW_TOKEN_FILE": str(daemon_dir / "tokens" / "app.token"),
        "SW_FILES_DIR": str(files), "SW_REDIS_SOCKET": env.redis_socket,
    }).start()


def _kinds(env: Env) -> list[str]:
    has_redis = bool(env.redis_socket) and "redis" in subprocess.run(
        ["php", "-m"], capture_output=True, text=True, check=False).stdout.split()
    return [k for k in KINDS if has_redis or not k.startswith("redis")]


# ---------------------------------------------------------------- measuring


def _first_cookie(client: httpx.Client, url: str, kind: str, path: str = "/bench") -> str:
    client.cookies.clear()  # a new session each time, not the jar's last one
    response = client.get(f"{url}{path}", params={"h": kind, "start": "1"})
    response.raise_for_status()
    value = response.cookies.get("PHPSESSID")
    if not value:
        raise RuntimeError(f"{kind}: no session cookie")
    return value


def _round(url: str, kind: str, cookies: list[str], seconds: float) -> tuple[float, list[float]]:
    """One timed round: every client loops on its own session; (req/s, latencies ms)."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in cookies]

    def client(i: int) -> None:
        with httpx.Client(timeout=30.0, cookies={"PHPSESSID": cookies[i]}) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                http.get(f"{url}/bench", params={"h": kind}).raise_for_status()
                latencies[i].append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(cookies)) as pool:
        list(pool.map(client, range(len(cookies))))
    flat = [x for row in latencies for x in row]
    return len(flat) / (time.perf_counter() - t0), flat


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def _lost(url: str, kind: str, appends: int) -> dict[str, int]:
    """CLIENTS x appends concurrent appends to one session: present / reported / lost."""
    with httpx.Client(timeout=60.0) as http:
        cookie = _first_cookie(http, url, kind, "/set")
    failed = [0] * CLIENTS
    lock = threading.Lock()

    def client(i: int) -> None:
        with httpx.Client(timeout=60.0, cookies={"PHPSESSID": cookie}) as http:
            for k in range(appends):
                r = http.get(f"{url}/append", params={"h": kind, "item": f"{i}-{k}"})
                if r.status_code != 200:
                    with lock:
                        failed[i] += 1

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    with httpx.Client(timeout=60.0, cookies={"PHPSESSID": cookie}) as http:
        items = http.get(f"{url}/get", params={"h": kind}).json()["session"].get("items", [])
    total = CLIENTS * appends
    present = len(set(items))
    reported = sum(failed)
    return {"total": total, "present": present, "reported": reported,
            "lost": max(0, total - present - reported)}


def php_workload(spec: dict[str, Any]) -> Outcome:
    env = Env(**spec["env"])
    workdir = Path(env.workdir)
    daemon = _start_daemon(workdir, env.redis_socket)
    try:
        stack = _stack(workdir, env)
        try:
            return _measure(spec, stack.url, _kinds(env))
        finally:
            stack.stop()
    finally:
        daemon.terminate()
        daemon.wait(30)


def _measure(spec: dict[str, Any], url: str, kinds: list[str]) -> Outcome:
    with httpx.Client(timeout=30.0) as http:
        sessions = {k: [_first_cookie(http, url, k) for _ in range(CLIENTS)] for k in kinds}
    for kind in kinds:  # warm-up: opcache, persistent connections, the daemon's caches
        _round(url, kind, sessions[kind], 0.3)
    rps: dict[str, list[float]] = {k: [] for k in kinds}
    lat: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(int(spec["rounds"])):
        for kind in kinds:
            r, values = _round(url, kind, sessions[kind], float(spec["round_seconds"]))
            rps[kind].append(r)
            lat[kind] += values
    appends = int(spec.get("options", {}).get("appends", 15))
    rows = {k: {"label": LABELS[k], "rps": statistics.median(rps[k]), "rps_rounds": rps[k],
                "p99_ms": _p99(lat[k]), "p50_ms": statistics.median(lat[k]),
                **_lost(url, k, appends)} for k in kinds}
    extra: dict[str, Any] = {"handlers": rows, "clients": CLIENTS, "workers": 4,
                             "unit": "req/s", "cpus": os.cpu_count()}
    if "redis" in rows:
        extra["sw_opt_vs_phpredis"] = rows["redis"]["rps"] / rows["sw-opt"]["rps"]
        extra["sw_lease_vs_phpredis"] = rows["redis"]["rps"] / rows["sw"]["rps"]
    return Outcome(spec["name"], extra=extra)


# ------------------------------------------------------------------- report


def section(by_name: dict[str, dict[str, Any]]) -> str:
    """The report's PHP section (empty when the workload did not run)."""
    res = by_name.get("php:handlers")
    if not res or res.get("status") != "ok":
        return "" if not res else f"## PHP handlers\n\n{res.get('status')}: {res.get('message')}"
    extra = res["extra"]
    lines = ["## PHP handlers (php-fpm, 4 workers, nginx)", "",
             f"{extra['clients']} concurrent HTTP clients, interleaved rounds; lost updates: "
             f"{extra['clients']} clients appending to one session.", "",
             "| handler | req/s (median) | p50 ms | p99 ms | appends kept | reported | "
             "lost silently |", "|---|---:|---:|---:|---:|---:|---:|"]
    for row in extra["handlers"].values():
        lines.append(f"| {row['label']} | {row['rps']:.0f} | {row['p50_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['present']}/{row['total']} | "
                     f"{row['reported']} | {row['lost']} |")
    if "sw_opt_vs_phpredis" in extra:
        lines += ["", f"phpredis (no locking) ÷ sessionward lock-free, req/s: "
                  f"{extra['sw_opt_vs_phpredis']:.2f}× (goal ≤ 1.5×); ÷ sessionward lease: "
                  f"{extra['sw_lease_vs_phpredis']:.2f}×."]
    return "\n".join(lines)
