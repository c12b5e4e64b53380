"""The contract every contender implements, and the registry of contenders.

A *target* is one way of keeping a server-side session: a raw store loop,
a peer library through its normal session path, or sessionward.  The same
three operations are timed or exercised for all of them:

* ``create(data)`` – store a new session, return its handle (cookie/id);
* ``cycle(handle, value)`` – one request: load, set ``counter``, save;
* ``append(handle, item)`` – one request: load, append to ``items``, save
  (the lost-updates workload; each peer's *normal* path, no extra locking).
"""

from __future__ import annotations

import importlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Unavailable(Exception):
    """The target cannot run here (package missing, sessionward part not landed)."""


@dataclass(frozen=True)
class Env:
    """Where a target keeps its data; passed to workers as JSON."""

    workdir: str
    redis_host: str
    redis_port: int
    redis_socket: str
    quick: bool

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/0"


def shared_secret(env: Env, name: str = "peer.secret", size: int = 32) -> bytes:
    """A random secret shared by all processes of one workload (file in its workdir).

    Processes of one app share their secret key; so must the benchmark's
    concurrent clients, or they could not read each other's sessions.
    Race-free when several processes start at once: each writes a candidate
    and ``os.link`` publishes it only if no file exists yet (``os.replace``
    would let a later writer swap the key under a process that already read
    the first one, leaving it unable to open anybody's sessions).
    """
    path = os.path.join(env.workdir, name)
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(secrets.token_bytes(size))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # atomic, never overwrites: the first writer wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path, "rb") as f:
        return f.read()


class Target:
    """Base class: sync ``cycle`` looped by ``run_cycles``; override as needed."""

    store = "?"
    kind = "?"  # raw | peer | sessionward

    def create(self, data: dict[str, Any]) -> str:
        raise NotImplementedError

    def cycle(self, handle: str, value: int) -> str:
        """Load, set ``counter`` to ``value``, save; return the (new) handle."""
        raise NotImplementedError

    def run_cycles(self, handle: str, n: int, start: int) -> str:
        for i in range(start, start + n):
            handle = self.cycle(handle, i)
        return handle

    def append(self, handle: str, item: Any) -> dict[str, Any]:
        """Load, append ``item`` to ``items``, save.  Returns counters
        (``conflicts`` for reported failures) – empty on plain success."""
        raise NotImplementedError

    def read(self, handle: str) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class TargetInfo:
    """Registry row: where the factory lives and how to label the target."""

    name: str
    label: str
    store: str
    kind: str
    factory: str  # "module:function"
    cross_process: bool = True

    def build(self, env: Env, **options: Any) -> Target:
        module, func = self.factory.split(":")
        try:
            factory: Callable[..., Target] = getattr(importlib.import_module(module), func)
        except ImportError as exc:
            raise Unavailable(f"{exc}") from exc
        return factory(env, **options)


TARGETS: dict[str, TargetInfo] = {
    t.name: t
    for t in [
        TargetInfo("raw_redis", "raw redis-py GET+json+SET", "redis", "raw", "bench.raw:RawRedis"),
        TargetInfo("raw_sqlite", "raw sqlite3 WAL SELECT+json+UPDATE", "sqlite", "raw",
                   "bench.raw:RawSQLite"),
        TargetInfo("raw_file", "raw file read+json+write tmp+rename", "filesystem", "raw",
                   "bench.raw:RawFile"),
        TargetInfo("raw_file_fsync", "raw file ... +fsync", "filesystem-fsync", "raw",
                   "bench.raw:raw_file_fsync"),
        TargetInfo("flask_redis", "Flask-Session (Redis)", "redis", "peer",
                   "bench.peers.flask_session:flask_redis"),
        TargetInfo("flask_fs", "Flask-Session (cachelib FileSystemCache)", "filesystem", "peer",
                   "bench.peers.flask_session:flask_filesystem"),
        TargetInfo("django_db", "Django sessions db (SQLite WAL)", "sqlite", "peer",
                   "bench.peers.django_sessions:django_db"),
        TargetInfo("django_cache", "Django sessions cache (Redis)", "redis", "peer",
                   "bench.peers.django_sessions:django_cache"),
        TargetInfo("django_file", "Django sessions file", "filesystem", "peer",
                   "bench.peers.django_sessions:django_file"),
        TargetInfo("starsessions_redis", "starsessions (Redis)", "redis", "peer",
                   "bench.peers.starsessions:starsessions_redis"),
        TargetInfo("sw_memory", "sessionward memory", "memory", "sessionward",
                   "bench.sw:sw_memory", cross_process=False),
        TargetInfo("sw_sqlite", "sessionward SQLite", "sqlite", "sessionward",
                   "bench.sw:sw_sqlite"),
        TargetInfo("sw_fs", "sessionward filesystem", "filesystem", "sessionward",
                   "bench.sw:sw_filesystem"),
        TargetInfo("sw_fs_durable", "sessionward filesystem (fsync)", "filesystem-fsync",
                   "sessionward", "bench.sw:sw_filesystem_durable"),
        TargetInfo("sw_redis", "sessionward Redis", "redis", "sessionward", "bench.sw:sw_redis"),
        TargetInfo("sw_daemon", "sessionward daemon (Unix socket, SQLite)", "daemon",
                   "sessionward", "bench.sw:sw_daemon"),
        TargetInfo("daemon_floor", "daemon floor: embedded SQLite + 2 Unix-socket RTT",
                   "daemon", "raw", "bench.sw:daemon_floor"),
    ]
}
