"""Raw limits: the least work any session library could do per cycle.

Each raw cycle moves the *same* ~1 KB JSON document through the *same*
store configuration the libraries use, with no sealing, no signing, no
framework: it is the floor sessionward and the peers are divided by.

* Redis: redis-py (hiredis parser) ``GET`` + ``json.loads`` + ``json.dumps`` +
  ``SET ... EX`` over loopback TCP (the same URL every Redis contender uses);
* SQLite: ``sqlite3`` in WAL mode, ``synchronous=NORMAL``, autocommit:
  ``SELECT data`` + json + ``UPDATE``;
* filesystem: read the file + json + write a temp file + ``os.replace``
  (optionally ``fsync`` of file and directory – the durable floor);
* Unix socket: one ~1 KB request/response round trip to an echo server in
  another process – the transport floor of the daemon.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.common import SESSION_TTL, Stats
from bench.targets import Env, Target


class RawRedis(Target):
    store, kind = "redis", "raw"

    def __init__(self, env: Env) -> None:
        import redis

        self.r = redis.Redis(host=env.redis_host, port=env.redis_port)

    def create(self, data: dict[str, Any]) -> str:
        key = "raw:" + secrets.token_hex(16)
        self.r.set(key, json.dumps(data), ex=SESSION_TTL)
        return key

    def cycle(self, handle: str, value: int) -> str:
        raw = self.r.get(handle)
        assert raw is not None
        data = json.loads(raw)
        data["counter"] = value
        self.r.set(handle, json.dumps(data), ex=SESSION_TTL)
        return handle

    def read(self, handle: str) -> dict[str, Any]:
        raw = self.r.get(handle)
        return json.loads(raw) if raw else {}

    def close(self) -> None:
        self.r.close()


def open_sqlite(path: str) -> sqlite3.Connection:
    """The SQLite settings every SQLite contender gets: WAL, synchronous=NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class RawSQLite(Target):
    store, kind = "sqlite", "raw"

    def __init__(self, env: Env) -> None:
        self.conn = open_sqlite(str(Path(env.workdir) / "raw.db"))
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS sessions"
            " (id TEXT PRIMARY KEY, data BLOB NOT NULL, expires REAL NOT NULL)"
        )

    def create(self, data: dict[str, Any]) -> str:
        key = secrets.token_hex(32)
        self.conn.execute(
            "INSERT INTO sessions VALUES (?, ?, ?)",
            (key, json.dumps(data).encode(), time.time() + SESSION_TTL),
        )
        return key

    def cycle(self, handle: str, value: int) -> str:
        row = self.conn.execute("SELECT data FROM sessions WHERE id = ?", (handle,)).fetchone()
        data = json.loads(row[0])
        data["counter"] = value
        self.conn.execute(
            "UPDATE sessions SET data = ?, expires = ? WHERE id = ?",
            (json.dumps(data).encode(), time.time() + SESSION_TTL, handle),
        )
        return handle

    def read(self, handle: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT data FROM sessions WHERE id = ?", (handle,)).fetchone()
        return json.loads(row[0]) if row else {}

    def close(self) -> None:
        self.conn.close()


class RawFile(Target):
    store, kind = "filesystem", "raw"

    def __init__(self, env: Env, durable: bool = False) -> None:
        self.dir = Path(env.workdir) / "raw-files"
        self.dir.mkdir(exist_ok=True)
        self.durable = durable

    def _write(self, path: Path, body: bytes) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if self.durable:
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def create(self, data: dict[str, Any]) -> str:
        key = secrets.token_hex(32)
        self._write(self.dir / key, json.dumps(data).encode())
        return key

    def cycle(self, handle: str, value: int) -> str:
        path = self.dir / handle
        data = json.loads(path.read_bytes())
        data["counter"] = value
        self._write(path, json.dumps(data).encode())
        return handle

    def read(self, handle: str) -> dict[str, Any]:
        return dict(json.loads((self.dir / handle).read_bytes()))


def raw_file_fsync(env: Env) -> RawFile:
    return RawFile(env, durable=True)


def _echo_server(path: str, ready: Any) -> None:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    ready.set()
    conn, _ = srv.accept()
    with conn:
        while True:
            head = _recv_exact(conn, 4)
            if not head:
                return
            body = _recv_exact(conn, int.from_bytes(head, "big"))
            conn.sendall(head + body)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return b""
        buf += chunk
    return bytes(buf)


class EchoPeer:
    """A ~1.1 KB length-prefixed round trip to an echo process (the daemon
    floor's transport part, measured interleaved with the daemon cycle)."""

    def __init__(self, env: Env, name: str = "echo.sock") -> None:
        path = str(Path(env.workdir) / name)
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.proc = ctx.Process(target=_echo_server, args=(path, ready), daemon=True)
        self.proc.start()
        if not ready.wait(20):
            raise RuntimeError("echo server did not start")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        body = os.urandom(1100)
        self.msg = len(body).to_bytes(4, "big") + body

    def round_trip(self) -> None:
        self.sock.sendall(self.msg)
        _recv_exact(self.sock, len(self.msg))

    def close(self) -> None:
        self.sock.close()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()


def unix_socket_rtt(env: Env, rounds: int, per_round: int) -> Stats:
    """µs per length-prefixed ~1.1 KB round trip over a Unix socket to another process."""
    path = str(Path(env.workdir) / "echo.sock")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_echo_server, args=(path, ready), daemon=True)
    proc.start()
    try:
        if not ready.wait(20):
            raise RuntimeError("echo server did not start")
        cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        cli.connect(path)
        body = os.urandom(1100)
        msg = len(body).to_bytes(4, "big") + body
        values: list[float] = []
        for r in range(rounds + 1):
            t0 = time.perf_counter_ns()
            for _ in range(per_round):
                cli.sendall(msg)
                _recv_exact(cli, len(msg))
            if r:  # round 0 is the warm-up
                values.append((time.perf_counter_ns() - t0) / 1000 / per_round)
        cli.close()
        return Stats.of(values)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
