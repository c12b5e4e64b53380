"""SQLite on an event loop: statements inline, never a wait on the loop.

:class:`LoopSQLiteStore` is the async flavour of
:class:`~sessionward.stores.sqlite.SQLiteStore` (``SQLiteStore.async_store()``).
Each call first runs inline on the loop thread's own connection, whose busy
timeout is zero: a statement either gets the database at once (the usual
case — a WAL read never waits, a write waits only for another writer's
~20–40 µs commit) or fails with ``SQLITE_BUSY`` at once.  A busy call is then
handed to a worker thread running the sync store with its full busy timeout.

Why this is safe: a statement that failed with ``SQLITE_BUSY`` changed
nothing (each write is one autocommit statement, atomic on its own; a replace
whose first statement found no row and whose second was busy wrote nothing
either), so re-running the whole call in the thread is the call.  Why not a
thread per call: the hand-off cost ~50–100 µs of CPU per call here, two to
three times the statement itself (``docs/performance.md``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from ..core.errors import StoreError
from .base import SessionStore, StoredRecord

T = TypeVar("T")


def _busy(exc: StoreError) -> bool:
    """The store error came from a locked or busy database (nothing was written)."""
    cause = exc.__cause__
    return isinstance(cause, sqlite3.OperationalError) and (
        "locked" in str(cause) or "busy" in str(cause))


class LoopSQLiteStore:
    """The records-and-leases calls of a :class:`SQLiteStore`, for an event loop.

    Args:
        store: the sync store; it serves the calls that found the database
            busy, in a worker thread, with its full busy timeout.
        inline: a store on the same file whose connections have a zero busy
            timeout, used on the loop thread.
    """

    def __init__(self, store: SessionStore, inline: SessionStore) -> None:
        self.sync = store
        self.inline = inline

    async def _run(self, inline: Callable[..., T], threaded: Callable[..., T],
                   *args: Any, **kwargs: Any) -> T:
        try:
            return inline(*args, **kwargs)
        except StoreError as exc:
            if not _busy(exc):
                raise
        return await asyncio.to_thread(threaded, *args, **kwargs)

    async def create(self, key: str, blob: bytes, *, expires_at: float,
                     user_key: str | None) -> StoredRecord:
        return await self._run(self.inline.create, self.sync.create, key, blob,
                               expires_at=expires_at, user_key=user_key)

    async def load(self, key: str) -> StoredRecord | None:
        return await self._run(self.inline.load, self.sync.load, key)

    async def replace(self, key: str, blob: bytes, *, expected_version: int,
                      expires_at: float, user_key: str | None,
                      fence: str | None = None) -> StoredRecord:
        return await self._run(self.inline.replace, self.sync.replace, key, blob,
                               expected_version=expected_version, expires_at=expires_at,
                               user_key=user_key, fence=fence)

    async def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        return await self._run(self.inline.touch, self.sync.touch, key,
                               expires_at=expires_at, touched_at=touched_at)

    async def delete(self, key: str) -> bool:
        return await self._run(self.inline.delete, self.sync.delete, key)

    async def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        return await self._run(self.inline.by_user, self.sync.by_user, user_key)

    async def purge_expired(self, now: float, limit: int) -> int:
        # A batch can take milliseconds (500 rows: ~7 ms): always off the loop.
        return await asyncio.to_thread(self.sync.purge_expired, now, limit)

    async def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        return await self._run(self.inline.lock_acquire, self.sync.lock_acquire, key, token,
                               ttl)

    async def lock_release(self, key: str, token: str) -> bool:
        return await self._run(self.inline.lock_release, self.sync.lock_release, key, token)

    async def aclose(self) -> None:
        self.inline.close()
