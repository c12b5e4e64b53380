"""Protocol: the awaitable store contract, and the two adapters of a sync store.

The session lifecycle is written once, as coroutines that await an
:class:`AsyncSessionStore` (``docs/architecture.md``, the lifecycle
section).  Three kinds of object satisfy it:

* a store's own async flavour, from its optional ``async_store()`` method:
  Redis over ``redis.asyncio`` (no thread per request), SQLite running its
  statements on the event loop with a zero busy timeout (a busy database
  hands that one statement to a thread, never sleeps on the loop);
* :class:`InlineAsyncStore` — coroutines that call the sync store directly
  and never suspend.  The synchronous manager drives the lifecycle over it
  (:func:`sessionward.lifecycle.port.drive`); the memory store uses it on an
  event loop too, since it never waits;
* :class:`ThreadedAsyncStore` — each call in a worker thread
  (``asyncio.to_thread``): any store without an async flavour (the file
  store, third-party stores).

Only the operations of a session's life are here (records and leases);
admin scans, stats and the kv family stay on the sync store.  Each method
means exactly what its namesake in :class:`~sessionward.stores.base.SessionStore`
means, with the same arguments, results and exceptions.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from .base import SessionStore, StoredRecord


@runtime_checkable
class AsyncSessionStore(Protocol):
    """Protocol: the awaitable records-and-leases part of a session store."""

    async def create(self, key: str, blob: bytes, *, expires_at: float,
                     user_key: str | None) -> StoredRecord: ...

    async def load(self, key: str) -> StoredRecord | None: ...

    async def replace(self, key: str, blob: bytes, *, expected_version: int,
                      expires_at: float, user_key: str | None,
                      fence: str | None = None) -> StoredRecord: ...

    async def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool: ...

    async def delete(self, key: str) -> bool: ...

    async def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]: ...

    async def purge_expired(self, now: float, limit: int) -> int: ...

    async def lock_acquire(self, key: str, token: str, ttl: float) -> bool: ...

    async def lock_release(self, key: str, token: str) -> bool: ...

    async def aclose(self) -> None:
        """Release what the async flavour holds (not the sync store it came from)."""
        ...


class InlineAsyncStore:
    """A sync store behind coroutines that call it directly and never suspend.

    Security/concurrency: on an event loop this blocks the loop for the
    duration of each call; use it only for stores that never wait (memory)
    or under the synchronous driver.
    """

    def __init__(self, store: SessionStore) -> None:
        self.sync = store

    async def create(self, key: str, blob: bytes, *, expires_at: float,
                     user_key: str | None) -> StoredRecord:
        return self.sync.create(key, blob, expires_at=expires_at, user_key=user_key)

    async def load(self, key: str) -> StoredRecord | None:
        return self.sync.load(key)

    async def replace(self, key: str, blob: bytes, *, expected_version: int,
                      expires_at: float, user_key: str | None,
                      fence: str | None = None) -> StoredRecord:
        return self.sync.replace(key, blob, expected_version=expected_version,
                                 expires_at=expires_at, user_key=user_key, fence=fence)

    async def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        return self.sync.touch(key, expires_at=expires_at, touched_at=touched_at)

    async def delete(self, key: str) -> bool:
        return self.sync.delete(key)

    async def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        return self.sync.by_user(user_key)

    async def purge_expired(self, now: float, limit: int) -> int:
        return self.sync.purge_expired(now, limit)

    async def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        return self.sync.lock_acquire(key, token, ttl)

    async def lock_release(self, key: str, token: str) -> bool:
        return self.sync.lock_release(key, token)

    async def aclose(self) -> None:
        return None


class ThreadedAsyncStore:
    """A sync store whose every call runs in a worker thread (``asyncio.to_thread``).

    The loop never blocks on the store; each call costs one thread hand-off
    (measured here: ~50–100 µs of CPU), so stores with an async flavour of
    their own do not use this.
    """

    def __init__(self, store: SessionStore) -> None:
        self.sync = store

    async def create(self, key: str, blob: bytes, *, expires_at: float,
                     user_key: str | None) -> StoredRecord:
        return await asyncio.to_thread(self.sync.create, key, blob, expires_at=expires_at,
                                       user_key=user_key)

    async def load(self, key: str) -> StoredRecord | None:
        return await asyncio.to_thread(self.sync.load, key)

    async def replace(self, key: str, blob: bytes, *, expected_version: int,
                      expires_at: float, user_key: str | None,
                      fence: str | None = None) -> StoredRecord:
        return await asyncio.to_thread(self.sync.replace, key, blob,
                                       expected_version=expected_version,
                                       expires_at=expires_at, user_key=user_key, fence=fence)

    async def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        return await asyncio.to_thread(self.sync.touch, key, expires_at=expires_at,
                                       touched_at=touched_at)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self.sync.delete, key)

    async def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        return await asyncio.to_thread(self.sync.by_user, user_key)

    async def purge_expired(self, now: float, limit: int) -> int:
        return await asyncio.to_thread(self.sync.purge_expired, now, limit)

    async def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        return await asyncio.to_thread(self.sync.lock_acquire, key, token, ttl)

    async def lock_release(self, key: str, token: str) -> bool:
        return await asyncio.to_thread(self.sync.lock_release, key, token)

    async def aclose(self) -> None:
        return None


def async_store_for(store: SessionStore) -> AsyncSessionStore:
    """The async flavour of ``store``: its class's own ``async_store()`` if it
    has one, else :class:`ThreadedAsyncStore`.

    Only a method the store's *class* defines counts: a proxy that forwards
    attributes (``__getattr__``: a spy, a fault injector, a counting wrapper)
    would otherwise hand out the inner store's flavour and be bypassed, so it
    gets the threaded adapter over itself instead.

    Raises:
        ConfigurationError: the store's async flavour cannot be built from its
            configuration (e.g. a missing extra).
    """
    own = getattr(type(store), "async_store", None)
    if callable(own):
        flavour: AsyncSessionStore = own(store)
        return flavour
    return ThreadedAsyncStore(store)
