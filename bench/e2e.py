"""End to end: a Starlette app under uvicorn (one worker), N concurrent HTTP clients.

Every contender is the same two-route Starlette app behind its session
middleware — sessionward (``AsyncSessionManager``) on SQLite, on Redis and
through the daemon, starsessions on the same Redis, and Starlette's own
signed-cookie ``SessionMiddleware`` — each served by its own ``uvicorn``
process (one worker, uvicorn's defaults).  All servers start first; then the
rounds interleave the contenders (order rotated each round), so each sees the
same machine state.  A round drives ``clients`` keep-alive connections from
one asyncio process for ``seconds``: each request sends its session cookie,
the view reads the session and increments a counter (a load + change + save
cycle), and the client keeps whatever cookie the response sets.

Reported per contender: requests/s (median of rounds), p50/p99 latency
(median of rounds), and the server process's CPU per request (from
``/proc/<pid>/stat``).  The first request of every client creates its session
and is not timed.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import Outcome
from bench.targets import Env, Unavailable

KINDS = ["sw_sqlite", "sw_redis", "sw_daemon", "starsessions_redis", "starlette_cookie"]
LABELS = {
    "sw_sqlite": "sessionward SQLite (AsyncSessionManager)",
    "sw_redis": "sessionward Redis (AsyncSessionManager)",
    "sw_daemon": "sessionward daemon (AsyncRemoteSessionManager)",
    "starsessions_redis": "starsessions (Redis)",
    "starlette_cookie": "Starlette signed cookie (SessionMiddleware)",
}
COOKIES = {"starsessions_redis": "session", "starlette_cookie": "session"}
_CLK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK


class Server:
    """One contender's uvicorn process on a free loopback port."""

    def __init__(self, kind: str, env: Env) -> None:
        self.kind = kind
        port_file = Path(env.workdir) / f"{kind}.port"
        log = open(Path(env.workdir) / f"{kind}.log", "wb")
        self._log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.e2e_app", kind, json.dumps(env.__dict__),
             str(port_file)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (Path(env.workdir) / f"{kind}.log").read_text()[-400:]
                raise Unavailable(f"{kind}: server did not start: {tail}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   cookie: str | None, name: str) -> tuple[str | None, int]:
    head = "GET /hit HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n"
    if cookie:
        head += f"Cookie: {name}={cookie}\r\n"
    writer.write((head + "\r\n").encode())
    raw = await reader.readuntil(b"\r\n\r\n")
    status = int(raw[9:12])
    length = 0
    for line in raw.split(b"\r\n")[1:]:
        low = line.lower()
        if low.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
        elif low.startswith(b"set-cookie:") and f"{name}=".encode() in line:
            value = line.split(b"=", 1)[1].split(b";", 1)[0].decode()
            cookie = value or None
    if length:
        await reader.readexactly(length)
    return cookie, status


async def _client(port: int, name: str, until: float, latencies: list[float],
                  errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    cookie, status = await _request(reader, writer, None, name)  # creates the session
    if status != 200 or cookie is None:
        errors.append(status)
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        cookie, status = await _request(reader, writer, cookie, name)
        latencies.append(time.perf_counter() - t0)
        if status != 200:
            errors.append(status)
    writer.close()


async def _round(port: int, name: str, clients: int, seconds: float
                 ) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    until = t0 + seconds
    await asyncio.gather(*(_client(port, name, until, latencies, errors)
                           for _ in range(clients)))
    return latencies, errors, time.perf_counter() - t0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def e2e_workload(spec: dict[str, Any]) -> Outcome:
    """Requests/s, p50/p99 and server CPU per request for every contender."""
    env = Env(**spec["env"])
    clients = int(spec.get("clients", 8))
    seconds = float(spec.get("seconds", 1.0))
    kinds = [k for k in spec.get("kinds", KINDS)]
    servers: dict[str, Server] = {}
    missing: dict[str, str] = {}
    try:
        if "sw_daemon" in kinds:
            # Started here, so this process's exit stops it (a uvicorn child
            # ended by SIGTERM does not run its atexit hooks).
            from bench.sw import _start_daemon

            _start_daemon(env)
        for kind in kinds:
            try:
                servers[kind] = Server(kind, env)
            except Unavailable as exc:
                missing[kind] = str(exc)[:200]
        names = list(servers)
        for kind in names:  # warm-up: imports, connections, caches
            asyncio.run(_round(servers[kind].port, COOKIES.get(kind, "__Host-session"),
                               clients, min(0.3, seconds)))
        rows: dict[str, dict[str, list[float]]] = {
            k: {"rps": [], "p50": [], "p99": [], "cpu_us": [], "errors": []} for k in names}
        for r in range(int(spec["rounds"])):
            for kind in names[r % len(names):] + names[:r % len(names)]:
                server = servers[kind]
                cpu0 = server.cpu()
                lat, errs, wall = asyncio.run(_round(
                    server.port, COOKIES.get(kind, "__Host-session"), clients, seconds))
                cpu = server.cpu() - cpu0
                row = rows[kind]
                row["rps"].append(len(lat) / wall)
                row["p50"].append(_pct(lat, 0.50) * 1e3)
                row["p99"].append(_pct(lat, 0.99) * 1e3)
                row["cpu_us"].append(cpu / max(1, len(lat)) * 1e6)
                row["errors"].append(float(len(errs)))
    finally:
        for server in servers.values():
            server.stop()
    summary = {k: {m: statistics.median(v) for m, v in row.items()} | {
        "rps_low": min(row["rps"]), "rps_high": max(row["rps"])} for k, row in rows.items()}
    return Outcome(spec["name"], extra={"clients": clients, "seconds": seconds,
                                        "rounds": spec["rounds"], "contenders": summary,
                                        "missing": missing})


def specs(quick: bool) -> list[dict[str, Any]]:
    """The end-to-end workload: 8 clients; quick: 0.5 s × 3 rounds, full: 2 s × 5."""
    return [{"group": "e2e", "name": "e2e:starlette", "workload": "e2e", "clients": 8,
             "seconds": 0.5 if quick else 2.0, "rounds": 3 if quick else 5,
             "timeout": 180 if quick else 400}]


def section(by_name: dict[str, dict[str, Any]]) -> str:
    """The report's end-to-end table and its goals."""
    r = by_name.get("e2e:starlette")
    if not r or r.get("status") != "ok":
        return ""
    x = r["extra"]
    rows = x["contenders"]
    star = rows.get("starsessions_redis")
    lines = [
        "## End to end: Starlette under uvicorn (one worker), "
        f"{x['clients']} concurrent keep-alive clients",
        "",
        f"{x['rounds']} interleaved rounds of {x['seconds']} s per contender; medians.  Each "
        "request loads its session, increments a counter and saves it.  Server CPU is the "
        "uvicorn process's user+system time per request.",
        "",
        "| contender | requests/s (min–max) | p50 ms | p99 ms | server CPU µs/request | "
        "× starsessions req/s | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, row in rows.items():
        ratio = f"{row['rps'] / star['rps']:.2f}×" if star else "–"
        lines.append(f"| {LABELS[kind]} | {row['rps']:,.0f} ({row['rps_low']:,.0f}–"
                     f"{row['rps_high']:,.0f}) | {row['p50']:.2f} | {row['p99']:.2f} | "
                     f"{row['cpu_us']:,.0f} | {ratio} | {row['errors']:.0f} |")
    for kind, why in x.get("missing", {}).items():
        lines.append(f"| {LABELS[kind]} | not measured: {why} | | | | | |")
    if star:
        lines += ["", "| goal (issue 16) | measured | status |", "|---|---|---|"]
        for kind in ("sw_sqlite", "sw_redis", "sw_daemon"):
            row = rows.get(kind)
            if row is None:
                continue
            ok_rps = row["rps"] >= star["rps"]
            ok_p99 = row["p99"] <= 1.5 * star["p99"]
            lines.append(f"| {LABELS[kind]}: ≥ starsessions' requests/s | "
                         f"{row['rps'] / star['rps']:.2f}× | {'met' if ok_rps else 'NOT met'} |")
            lines.append(f"| {LABELS[kind]}: p99 ≤ 1.5× starsessions' | "
                         f"{row['p99']:.2f} vs {star['p99']:.2f} ms = "
                         f"{row['p99'] / star['p99']:.2f}× | {'met' if ok_p99 else 'NOT met'} |")
    return "\n".join(lines)
