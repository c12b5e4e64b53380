"""AsyncRedisStore: the Redis store's records and leases over ``redis.asyncio``.

The async flavour of :class:`~.store.RedisStore` (``RedisStore.async_store()``)
for :class:`~sessionward.AsyncSessionManager`: the same server, credentials,
database, TLS files, timeouts, key prefix and clock, its own ``redis.asyncio``
connections on the fast lane (:class:`~.lane.AsyncLane`), and the *same*
record steps as the sync store (:mod:`.records`), awaited instead of driven.
No thread per request.  Leases are renewed by the sync store from the shared
renewer thread, as for every store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from ..base import StoredRecord
from . import records
from .conn import RedisConn
from .durable import READ_ONLY_SCRIPTS, WaitFor, script_commands
from .lane import AsyncPath


class WaitingAsyncCommands(records.AsyncCommands):
    """:class:`~.records.AsyncCommands` whose writes are followed by ``WAIT`` on
    the same connection (one pipeline); see :mod:`.durable` for the semantics."""

    def __init__(self, conn: RedisConn, lane: AsyncPath, wait: WaitFor) -> None:
        super().__init__(conn, lane)
        self.wait = wait

    async def _waited(self, command: Sequence[Any], fallback: Sequence[Any] | None = None
                      ) -> Any:
        """``command`` then ``WAIT``; ``command``'s reply.

        Raises:
            StoreUnavailableError: the replicas did not acknowledge in time.
            StoreError: backend failure.
        """
        with self.conn.guard():
            try:
                replies = await self.lane.pipeline([command, self.wait.command()])
            except NoScriptError:  # nothing ran: the EVAL form caches the script again
                if fallback is None:
                    raise
                replies = await self.lane.pipeline([fallback, self.wait.command()])
        self.wait.check(replies[1], self.conn.kind)
        return replies[0]

    async def script(self, name: str, keys: list[str], args: Sequence[bytes | str]) -> Any:
        if name in READ_ONLY_SCRIPTS:
            return await super().script(name, keys, args)
        return await self._waited(*script_commands(self.conn.scripts[name], keys, args))

    async def sadd(self, name: str, member: str) -> None:
        await self._waited(("SADD", name, member))

    async def srem(self, name: str, member: str) -> None:
        await self._waited(("SREM", name, member))


class AsyncRedisStore:
    """:class:`~sessionward.stores.aio.AsyncSessionStore` on one Redis node or a
    Sentinel-monitored master.

    Args:
        conn: the sync store's key layout, scripts, clock and replica wait.
        lane: the ``redis.asyncio`` connections.
    """

    def __init__(self, conn: RedisConn, lane: AsyncPath) -> None:
        self._cmds = (records.AsyncCommands(conn, lane) if conn.wait is None
                      else WaitingAsyncCommands(conn, lane, conn.wait))
        self._lane = lane

    async def create(self, key: str, blob: bytes, *, expires_at: float,
                     user_key: str | None) -> StoredRecord:
        return await records.create(self._cmds, key, blob, expires_at=expires_at,
                                    user_key=user_key)

    async def load(self, key: str) -> StoredRecord | None:
        return await records.load(self._cmds, key)

    async def replace(self, key: str, blob: bytes, *, expected_version: int,
                      expires_at: float, user_key: str | None,
                      fence: str | None = None) -> StoredRecord:
        return await records.replace(self._cmds, key, blob, expected_version=expected_version,
                                     expires_at=expires_at, user_key=user_key, fence=fence)

    async def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        return await records.touch(self._cmds, key, expires_at=expires_at,
                                   touched_at=touched_at)

    async def delete(self, key: str) -> bool:
        return await records.delete(self._cmds, key)

    async def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        return await records.by_user(self._cmds, user_key)

    async def purge_expired(self, now: float, limit: int) -> int:
        """Nothing to do: every key carries a native TTL (``NATIVE_TTL``)."""
        return 0

    async def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        return await records.lock_acquire(self._cmds, key, token, ttl)

    async def lock_release(self, key: str, token: str) -> bool:
        return await records.lock_release(self._cmds, key, token)

    async def aclose(self) -> None:
        """Disconnect this flavour's connections (the sync store keeps its own)."""
        await self._lane.aclose()
