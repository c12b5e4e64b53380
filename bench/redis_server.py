"""A private, throw-away ``redis-server`` for one benchmark run.

Loopback TCP on a free port plus a Unix socket in a temp dir, persistence
off (no RDB, no AOF), stopped at the end.  Nothing else is contacted.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    socket_path: str
    version: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def private_redis() -> Iterator[RedisServer | None]:
    """Yield a running private server, or ``None`` when ``redis-server`` is absent."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    tmp = tempfile.mkdtemp(prefix="sw-bench-redis-")
    port = _free_port()
    sock = str(Path(tmp) / "redis.sock")
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--unixsocket", sock,
            "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", tmp,
            "--protected-mode", "yes", "--loglevel", "warning", "--maxclients", "1000"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _ping("127.0.0.1", port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.05)
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 check=False).stdout.split("v=")[-1].split()[0]
        yield RedisServer("127.0.0.1", port, sock, version)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


def flushall(server: RedisServer) -> None:
    """Empty the private server between workloads (it holds only bench data)."""
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"FLUSHALL\r\n")
        s.recv(16)


def used_memory_rss(server: RedisServer) -> int:
    """``used_memory_rss`` of the private server, in bytes."""
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"INFO memory\r\n")
        data = b""
        while b"used_memory_rss:" not in data or not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith("used_memory_rss:"):
            return int(line.split(":")[1])
    return -1
