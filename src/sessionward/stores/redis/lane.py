"""The fast lane: one command, one redis-py connection, nothing else in between.

redis-py's generic path (``Redis.execute_command``) costs ~30 µs of CPU per
command here on top of the round trip itself: the pool's ``get_connection``
polls the socket for stray data (a syscall), the observability recorders run,
the retry wrapper and the response callbacks run — twice per session cycle.
A lane keeps its own idle redis-py connections and does only what a command
needs: ``pack_command``, ``send_packed_command``, ``read_response``
(measured: 42 µs → 15 µs per ``GET`` round trip on loopback).  Connections,
packing, parsing (hiredis), authentication, database selection, TLS and
timeouts stay redis-py's.

Why the poll can go: a connection comes back to the idle list only after its
reply was read in full, or after redis-py itself disconnected it (it does on
every error and on any exception while sending or reading — a cancelled
``await`` included); a disconnected connection reconnects on its next send.

Only plain pools of plain connections take the lane (TCP, TLS, Unix socket);
Cluster, Sentinel and custom pools keep redis-py's generic path.  A lane
holds at most the pool's ``max_connections`` connections; past that, calls
take the generic path (whose blocking pool waits).  After ``fork`` a child
drops the parent's connections (it never uses a shared socket).
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

_SYNC_CLASSES = (redis.Connection, redis.UnixDomainSocketConnection, redis.SSLConnection)
_ASYNC_CLASS = {
    redis.Connection: redis.asyncio.Connection,
    redis.UnixDomainSocketConnection: redis.asyncio.UnixDomainSocketConnection,
    redis.SSLConnection: redis.asyncio.SSLConnection,
}
_ASYNC_KWARGS = ("host", "port", "path", "db", "username", "password", "socket_timeout",
                 "socket_connect_timeout", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_LANES: weakref.WeakSet[Lane] = weakref.WeakSet()


def _plain_pool(client: Any) -> redis.ConnectionPool | None:
    """The client's pool when it is a plain pool of plain connections, else None."""
    pool = getattr(client, "connection_pool", None)
    if not isinstance(pool, redis.ConnectionPool):
        return None
    if type(pool) not in (redis.ConnectionPool, redis.BlockingConnectionPool):
        return None  # a Sentinel or custom pool decides where connections go
    if pool.connection_class not in _SYNC_CLASSES:
        return None
    return pool


class Lane:
    """Commands on the lane's own idle connections (thread-safe: one connection
    per command in flight).

    Args:
        pool: the client's plain pool (connection class and arguments).
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._make = pool.connection_class
        self._kwargs = pool.connection_kwargs
        self._max = pool.max_connections
        self._idle: list[Any] = []
        self._count = 0
        self._guard = threading.Lock()
        _LANES.add(self)

    @classmethod
    def of(cls, client: Any) -> Lane | None:
        """A lane for ``client``, or None when it must keep the generic path."""
        pool = _plain_pool(client)
        return None if pool is None else cls(pool)

    def _take(self) -> Any | None:
        try:
            return self._idle.pop()
        except IndexError:
            pass
        with self._guard:
            if self._count >= self._max:
                return None
            self._count += 1
        return self._make(**self._kwargs)

    def execute(self, *args: Any) -> Any:
        """One command; ``NotImplemented`` when the lane is full (use the generic path).

        Raises:
            redis.RedisError: as redis-py raises it (the caller maps it).
        """
        conn = self._take()
        if conn is None:
            return NotImplemented
        try:
            conn.send_packed_command(conn.pack_command(*args), check_health=False)
            return conn.read_response()
        finally:
            self._idle.append(conn)

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any] | Any:
        """Several commands in one round trip; ``NotImplemented`` when full.

        Raises:
            redis.RedisError: the first error reply, after every reply was read.
        """
        conn = self._take()
        if conn is None:
            return NotImplemented
        try:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            return _read_all(conn, len(commands))
        finally:
            self._idle.append(conn)

    def close(self) -> None:
        """Disconnect the idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()
        with self._guard:
            self._count = 0

    def _after_fork(self) -> None:
        self._idle = []  # the parent's sockets: never used, never shut down here
        self._count = 0
        self._guard = threading.Lock()


def _read_all(conn: Any, count: int) -> list[Any]:
    """Read ``count`` replies, error replies too (nothing is left unread)."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(conn.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
    return _first_error_raised(replies)


def _first_error_raised(replies: list[Any]) -> list[Any]:
    """The replies, or the first error reply raised (redis-py pipeline semantics).

    Raises:
        redis.ResponseError: one of the commands failed.
    """
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies


def _reset_after_fork() -> None:
    for lane in list(_LANES):
        lane._after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)


class AsyncPath(Protocol):
    """Protocol: what the async record steps send commands through
    (:class:`AsyncLane`, or :class:`~.sentinel.AsyncSentinelPath`)."""

    async def execute(self, *args: Any) -> Any: ...
    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]: ...
    async def aclose(self) -> None: ...


class AsyncLane:
    """:class:`Lane` over ``redis.asyncio`` connections, for one event loop at a
    time (connections of a loop that went away are dropped, never awaited).

    Args:
        pool: the *sync* client's plain pool: the async connections get the same
            server, credentials, database, TLS files and timeouts.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._make = _ASYNC_CLASS[pool.connection_class]
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in _ASYNC_KWARGS}
        # Scripts are not idempotent: never replay a command whose outcome is unknown.
        kwargs["retry"] = AsyncRetry(NoBackoff(), 0)
        self._kwargs = kwargs
        self._max = pool.max_connections
        self._idle: list[Any] = []
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters = asyncio.Condition()

    @classmethod
    def of(cls, client: Any) -> AsyncLane | None:
        """An async lane mirroring ``client``, or None when it cannot be built."""
        pool = _plain_pool(client)
        return None if pool is None else cls(pool)

    async def _take(self) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._idle, self._count = loop, [], 0
            self._waiters = asyncio.Condition()
        if not self._idle and self._count >= self._max:
            async with self._waiters:
                await self._waiters.wait_for(lambda: bool(self._idle))
        if self._idle:
            return self._idle.pop()
        self._count += 1
        return self._make(**self._kwargs)

    async def _give(self, conn: Any) -> None:
        self._idle.append(conn)
        if self._count >= self._max:
            async with self._waiters:
                self._waiters.notify()

    async def execute(self, *args: Any) -> Any:
        """One command.

        Raises:
            redis.RedisError: as redis-py raises it (the caller maps it).
        """
        conn = await self._take()
        try:
            await conn.send_packed_command(conn.pack_command(*args), check_health=False)
            return await conn.read_response()
        finally:
            await self._give(conn)

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Several commands in one round trip.

        Raises:
            redis.RedisError: the first error reply.
        """
        conn = await self._take()
        try:
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies: list[Any] = []
            for _ in commands:  # every reply is read, error replies too: nothing left unread
                try:
                    replies.append(await conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
            return _first_error_raised(replies)
        finally:
            await self._give(conn)

    async def aclose(self) -> None:
        """Disconnect the idle connections of the current loop."""
        idle, self._idle = self._idle, []
        if self._loop is asyncio.get_running_loop():
            for conn in idle:
                await conn.disconnect()
        self._count = 0
