"""RedisStore: the store contract on one Redis node or a Redis Cluster.

The key layout is in :mod:`.conn`.  Every write sets a native TTL in the same
script (garbage collection), and the scripts also compare the plaintext ``e``
with the store's clock passed in ARGV, so an injected test clock sees the same
expiry as the memory reference store.  The per-user index (:mod:`.index`) is
maintained around the record scripts; see docs/stores-redis.md.

Parts: :mod:`.scripts` (the Lua scripts and their KEYS/ARGV contracts),
:mod:`.url` (URLs and client construction), :mod:`.errors` (redis-py error
mapping), :mod:`.index`, :mod:`.listing` (scan, stats), :mod:`.kv` (kv and
locks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.cluster import RedisCluster

from ...core.clock import system_clock
from ...core.drive import drive
from ...core.errors import ConfigurationError
from ..base import Capability, StoredRecord, StoreStats
from . import kv, listing, records
from .conn import RedisConn, check_prefix
from .durable import DEFAULT_WAIT_MS, WaitFor
from .url import Client, _client_from_url

if TYPE_CHECKING:
    from ..aio import AsyncSessionStore
    from .sentinel import SentinelSpec


class _WaitingSync(records.SyncCommands):
    """The index writes through :meth:`RedisConn.write` (``WAIT`` after each);
    the scripts wait in :meth:`RedisConn.run`."""

    async def sadd(self, name: str, member: str) -> None:
        self.conn.write(name, "SADD", member)

    async def srem(self, name: str, member: str) -> None:
        self.conn.write(name, "SREM", member)


def _wait_for(replicas: int, timeout_ms: int) -> WaitFor | None:
    """Raises: ConfigurationError: negative replicas or a timeout < 1 ms."""
    if replicas < 0 or timeout_ms < 1:
        raise ConfigurationError("wait_replicas must be >= 0 and wait_timeout_ms >= 1 "
                                 "(WAIT with 0 ms would block forever)")
    return WaitFor(replicas, timeout_ms) if replicas else None


class RedisStore:
    """Sessions in Redis (one node or a Cluster); see the module docstring for the layout.

    Args:
        client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` created with
            ``decode_responses=False``.
        clock: the store clock (POSIX seconds); expiry is compared with it.
        prefix: the first part of every key name, ``[a-z0-9_-]{1,32}``; several
            apps or tests can share one Redis with different prefixes.
        owns_client: close the client in :meth:`close` (True from :meth:`from_url`).
        wait_replicas: after every write, ``WAIT`` until this many replicas have
            it (0: off); a shortfall raises ``StoreUnavailableError`` (see
            :mod:`.durable` and docs/stores-redis.md).
        wait_timeout_ms: how long that ``WAIT`` may block (>= 1).
        sentinel: the Sentinel recipe (from :meth:`from_url`), for the async flavour.

    Raises:
        ConfigurationError: invalid prefix or wait settings.
    """

    capabilities = frozenset(
        {Capability.NATIVE_TTL, Capability.CROSS_PROCESS, Capability.PERSISTENT, Capability.SCAN}
    )

    def __init__(
        self,
        client: Client,
        *,
        clock: Callable[[], float] = system_clock,
        prefix: str = "sw",
        owns_client: bool = False,
        wait_replicas: int = 0,
        wait_timeout_ms: int = DEFAULT_WAIT_MS,
        sentinel: SentinelSpec | None = None,
    ) -> None:
        wait = _wait_for(wait_replicas, wait_timeout_ms)
        self._conn = RedisConn(client, clock, prefix, wait)
        self._cmds = records.SyncCommands(self._conn) if wait is None else _WaitingSync(self._conn)
        self._sentinel = sentinel
        self.clock = clock
        self.prefix = prefix
        self.kind = self._conn.kind
        self._client = client
        self._owns_client = owns_client

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Callable[[], float] = system_clock,
        prefix: str = "sw",
        socket_timeout: float = 3.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> RedisStore:
        """Build a store from ``redis://``, ``rediss://``, ``unix://``,
        ``redis+cluster://`` or ``redis+sentinel://`` (:mod:`.sentinel`).

        Query options: ``db``, ``username``, ``password``, ``socket_timeout``,
        ``socket_connect_timeout``, ``max_connections``, ``wait_replicas``,
        ``wait_timeout_ms`` (:mod:`.durable`); with TLS also ``ssl_ca_certs``,
        ``ssl_certfile``, ``ssl_keyfile`` (certificates are always verified,
        host names always checked); with Sentinel also ``sentinel_username``,
        ``sentinel_password``.

        Raises:
            ConfigurationError: malformed URL, option or prefix (the URL is never echoed).
            StoreUnavailableError: a Cluster's startup nodes did not answer.
        """
        check_prefix(prefix)  # before any client exists, so nothing is left open
        built = _client_from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
        )
        wait = built.wait or WaitFor(0, DEFAULT_WAIT_MS)
        return cls(built.client, clock=clock, prefix=prefix, owns_client=True,
                   wait_replicas=wait.replicas, wait_timeout_ms=wait.timeout_ms,
                   sentinel=built.sentinel)

    # ----------------------------------------------------------------- records

    def create(
        self, key: str, blob: bytes, *, expires_at: float, user_key: str | None
    ) -> StoredRecord:
        """Insert version 1 if absent (script ``create``); see ``SessionStore.create``.

        Raises:
            SessionExistsError: a record (expired or not) exists under ``key``.
            StoreError: backend failure.
        """
        return drive(records.create(self._cmds, key, blob, expires_at=expires_at,
                                    user_key=user_key))

    def load(self, key: str) -> StoredRecord | None:
        """The record (expired or not) or None; one ``HMGET``.

        Raises:
            StoreError: backend failure (never None for an outage).
        """
        return drive(records.load(self._cmds, key))

    def replace(
        self,
        key: str,
        blob: bytes,
        *,
        expected_version: int,
        expires_at: float,
        user_key: str | None,
        fence: str | None = None,
    ) -> StoredRecord:
        """Compare-and-set by version, optionally fenced (script ``replace``).

        Raises:
            SessionGoneError: no record under ``key``.
            SessionConflictError: the version moved.
            LockLostError: ``fence`` given and the lock is not ours any more.
            StoreError: backend failure.
        """
        return drive(records.replace(self._cmds, key, blob, expected_version=expected_version,
                                     expires_at=expires_at, user_key=user_key, fence=fence))

    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        """Update ``expires_at``/``touched_at`` and the native TTL only (script ``touch``).

        Raises:
            StoreError: backend failure.
        """
        return drive(records.touch(self._cmds, key, expires_at=expires_at,
                                   touched_at=touched_at))

    def delete(self, key: str) -> bool:
        """Delete the record (script ``delete``), then its user-index entry.

        Raises:
            StoreError: backend failure.
        """
        return drive(records.delete(self._cmds, key))

    def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        """The user's records (pruning stale index entries); see :func:`.records.by_user`.

        Raises:
            StoreError: backend failure.
        """
        return drive(records.by_user(self._cmds, user_key))

    def scan(
        self, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        """One page of records (see :func:`.listing.scan`).

        Raises:
            ValueError: malformed cursor or ``limit`` < 1.
            StoreError: backend failure.
        """
        return listing.scan(self._conn, cursor, limit)

    def purge_expired(self, now: float, limit: int) -> int:
        """Nothing to do: every key carries a native TTL (``NATIVE_TTL``)."""
        return 0

    def stats(self, now: float) -> StoreStats:
        """Key counts (see :func:`.listing.stats`).

        Raises:
            StoreError: backend failure.
        """
        return listing.stats(self._conn)

    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        """``(value, version)`` unless absent or expired (``StoreError`` on failure)."""
        return kv.kv_get(self._conn, key)

    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        """Insert version 1 if absent or expired (``StoreError`` on failure)."""
        return kv.kv_create(self._conn, key, value, expires_at=expires_at)

    def kv_cas(self, key: str, value: bytes, *, expected_version: int, expires_at: float) -> bool:
        """Compare-and-set by version (``StoreError`` on failure)."""
        return kv.kv_cas(self._conn, key, value, expected_version=expected_version,
                         expires_at=expires_at)

    def kv_take(self, key: str) -> bytes | None:
        """Read and delete atomically (``StoreError`` on failure)."""
        return kv.kv_take(self._conn, key)

    def kv_delete(self, key: str) -> bool:
        """Delete; True if a live entry existed (``StoreError`` on failure)."""
        return kv.kv_delete(self._conn, key)

    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        """Take the lease if free, expired or already ours (``StoreError`` on failure)."""
        return drive(records.lock_acquire(self._cmds, key, token, ttl))

    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend our lease; False if not ours (``StoreError`` on failure)."""
        return kv.lock_renew(self._conn, key, token, ttl)

    def lock_release(self, key: str, token: str) -> bool:
        """Release if ours, never another's lock (``StoreError`` on failure)."""
        return drive(records.lock_release(self._cmds, key, token))

    def ping(self) -> None:
        """Round-trip to Redis (every primary on a Cluster).

        Raises:
            StoreUnavailableError: unreachable.
            StoreTimeoutError: no answer in time.
        """
        with self._conn.guard():
            self._client.ping()

    def async_store(self) -> AsyncSessionStore:
        """The async flavour: :class:`~.aio.AsyncRedisStore` over ``redis.asyncio``
        for one node and for Sentinel (from :meth:`from_url`); Cluster and custom
        pools get a worker thread per store call
        (:class:`~sessionward.stores.aio.ThreadedAsyncStore`)."""
        from ..aio import ThreadedAsyncStore
        from .aio import AsyncRedisStore
        from .lane import AsyncLane, AsyncPath
        from .sentinel import AsyncSentinelPath

        lane: AsyncPath | None = (AsyncLane.of(self._client) if self._sentinel is None
                                  else AsyncSentinelPath(self._sentinel))
        if lane is None:
            return ThreadedAsyncStore(self)
        return AsyncRedisStore(self._conn, lane)

    def close(self) -> None:
        """Close the connection pool(s) if this store created the client."""
        if not self._owns_client:
            return
        with self._conn.guard():
            self._client.close()
            if not isinstance(self._client, RedisCluster):
                # Redis.close() leaves a pool it did not create open.
                self._client.connection_pool.disconnect()
            if self._sentinel is not None:
                from .sentinel import close_sentinels

                close_sentinels(self._client)

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
