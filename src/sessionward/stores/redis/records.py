"""The Redis store's record and lease steps, written once for both drivers.

:class:`~.store.RedisStore` runs these coroutines synchronously
(:func:`~sessionward.core.drive.drive` over :class:`SyncCommands`, which never
suspends) and :class:`~.aio.AsyncRedisStore` awaits them over
:class:`AsyncCommands` (``redis.asyncio`` on the fast lane).  So the order of
the index updates around each script, the two-phase ``replace`` and the reply
checks exist once: no sync/async twin to drift apart.

The per-user index lives in another slot than the records, so it is updated
*around* the record write instead of inside it: added before (a crash leaves
an extra entry, never a missing one) and again after (repairs a concurrent
prune), removed only with a re-check.  :func:`by_user` prunes lazily.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from ...core.errors import (
    CorruptEntryError,
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    StoreError,
)
from ..base import StoredRecord, check_key
from .conn import RECORD_FIELDS, RedisConn, record, text
from .decode import parse_record
from .lane import AsyncPath
from .scripts import _num


class Commands(Protocol):
    """Protocol: the Redis commands the steps await (errors already mapped to
    :class:`~sessionward.core.errors.StoreError`), and ``conn``: the key layout
    and clock."""

    conn: RedisConn

    async def script(self, name: str, keys: list[str], args: Sequence[bytes | str]) -> Any: ...
    async def hmget(self, name: str, fields: Sequence[str]) -> list[bytes | None]: ...
    async def hget(self, name: str, field: str) -> bytes | None: ...
    async def sadd(self, name: str, member: str) -> None: ...
    async def srem(self, name: str, member: str) -> None: ...
    async def smembers(self, name: str) -> set[bytes]: ...
    async def sismember(self, name: str, member: str) -> bool: ...
    async def fetch(self, keys: Sequence[str]) -> list[StoredRecord | None]: ...


class SyncCommands:
    """:class:`Commands` over the sync client; never suspends."""

    def __init__(self, conn: RedisConn) -> None:
        self.conn = conn

    async def script(self, name: str, keys: list[str], args: Sequence[bytes | str]) -> Any:
        return self.conn.run(name, keys, args)

    async def hmget(self, name: str, fields: Sequence[str]) -> list[bytes | None]:
        return self.conn.hmget(name, fields)

    async def hget(self, name: str, field: str) -> bytes | None:
        with self.conn.guard():
            found: bytes | None = self.conn.client.hget(name, field)
        return found

    async def sadd(self, name: str, member: str) -> None:
        with self.conn.guard():
            self.conn.client.sadd(name, member)

    async def srem(self, name: str, member: str) -> None:
        with self.conn.guard():
            self.conn.client.srem(name, member)

    async def smembers(self, name: str) -> set[bytes]:
        with self.conn.guard():
            return set(self.conn.client.smembers(name))

    async def sismember(self, name: str, member: str) -> bool:
        with self.conn.guard():
            return bool(self.conn.client.sismember(name, member))

    async def fetch(self, keys: Sequence[str]) -> list[StoredRecord | None]:
        return self.conn.fetch(keys)


class AsyncCommands:
    """:class:`Commands` over an :class:`~.lane.AsyncLane` (one node) or a Sentinel path."""

    def __init__(self, conn: RedisConn, lane: AsyncPath) -> None:
        self.conn = conn
        self.lane = lane

    async def script(self, name: str, keys: list[str], args: Sequence[bytes | str]) -> Any:
        from redis.exceptions import NoScriptError

        found = self.conn.scripts[name]
        with self.conn.guard():
            try:
                return await self.lane.execute("EVALSHA", found.sha, len(keys), *keys, *args)
            except NoScriptError:  # the script cache was flushed: EVAL caches it again
                return await self.lane.execute("EVAL", found.script, len(keys), *keys, *args)

    async def hmget(self, name: str, fields: Sequence[str]) -> list[bytes | None]:
        with self.conn.guard():
            return list(await self.lane.execute("HMGET", name, *fields))

    async def hget(self, name: str, field: str) -> bytes | None:
        with self.conn.guard():
            found: bytes | None = await self.lane.execute("HGET", name, field)
        return found

    async def sadd(self, name: str, member: str) -> None:
        with self.conn.guard():
            await self.lane.execute("SADD", name, member)

    async def srem(self, name: str, member: str) -> None:
        with self.conn.guard():
            await self.lane.execute("SREM", name, member)

    async def smembers(self, name: str) -> set[bytes]:
        with self.conn.guard():
            return set(await self.lane.execute("SMEMBERS", name))

    async def sismember(self, name: str, member: str) -> bool:
        with self.conn.guard():
            return bool(await self.lane.execute("SISMEMBER", name, member))

    async def fetch(self, keys: Sequence[str]) -> list[StoredRecord | None]:
        if not keys:
            return []
        with self.conn.guard():
            replies = await self.lane.pipeline(
                [("HMGET", self.conn.rec_key(k), *RECORD_FIELDS) for k in keys])
        return [record(fields) for fields in replies]


# ------------------------------------------------------------------ index


async def index_add(c: Commands, user_key: str, key: str) -> None:
    """Index ``key`` under ``user_key``."""
    await c.sadd(c.conn.user_key(user_key), key)


async def index_remove(c: Commands, user_key: str, key: str) -> None:
    """Remove ``key`` from the index, then put it back if the record is (again)
    the user's: a writer that indexed it concurrently may have finished between
    our read and our SREM."""
    conn = c.conn
    await c.srem(conn.user_key(user_key), key)
    current = await c.hget(conn.rec_key(key), "u")
    if current is not None and text(current) == user_key:
        await c.sadd(conn.user_key(user_key), key)


# ---------------------------------------------------------------- records


async def create(c: Commands, key: str, blob: bytes, *, expires_at: float,
                 user_key: str | None) -> StoredRecord:
    """Insert version 1 if absent (script ``create``); see ``SessionStore.create``.

    Raises:
        SessionExistsError: a record (expired or not) exists under ``key``.
        StoreError: backend failure.
    """
    conn = c.conn
    check_key(key)
    if user_key is not None:
        check_key(user_key)
        await index_add(c, user_key, key)  # before: a crash leaves an extra entry only
    now = conn.clock()
    args: list[bytes | str] = [
        blob, _num(expires_at), _num(now), user_key or "", conn.ttl_ms(expires_at)
    ]  # fmt: skip
    if not await c.script("create", [conn.rec_key(key)], args):
        raise SessionExistsError("a record already exists under this key")
    if user_key is not None:
        await index_add(c, user_key, key)  # after: repairs a concurrent lazy prune
    return StoredRecord(blob, 1, expires_at, now, user_key)


async def load(c: Commands, key: str) -> StoredRecord | None:
    """The record (expired or not) or None; its ``user_key`` only if the record
    is in that user's index (``None`` otherwise: the manager then refuses a
    record whose sealed user is not indexed).

    One round trip on a single node (script ``load``: HMGET + SISMEMBER); on a
    Cluster the index lives in another slot, so a signed-in record costs a
    second command (``SISMEMBER``).

    Race timeline (why "not indexed" cannot be a writer of ours mid-way):
    ``create``/``replace`` add the index entry *before* the record names the
    user and remove the old one only *after* it stopped naming it, so at
    every instant a record naming user U is in U's index.

    Raises:
        CorruptEntryError: a field missing or of the wrong type (WRONGTYPE too).
        StoreError: backend failure (never None for an outage).
    """
    check_key(key)
    conn = c.conn
    if conn.kind == "redis-cluster":
        found = parse_record(await c.hmget(conn.rec_key(key), RECORD_FIELDS), conn.kind)
        if found is None or found.user_key is None:
            return found
        indexed = await c.sismember(conn.user_key(found.user_key), key)
    else:
        reply = await c.script("load", [conn.rec_key(key)], [conn.prefix, key])
        if not isinstance(reply, list) or len(reply) != 6:
            raise StoreError(f"{conn.kind} store gave a malformed load reply", store=conn.kind)
        found = parse_record(reply[:5], conn.kind)
        indexed = reply[5] == 1
    if found is None or indexed or found.user_key is None:
        return found
    return dataclasses.replace(found, user_key=None)


async def replace(c: Commands, key: str, blob: bytes, *, expected_version: int,
                  expires_at: float, user_key: str | None,
                  fence: str | None = None) -> StoredRecord:
    """Compare-and-set by version, optionally fenced (script ``replace``).

    Raises:
        SessionGoneError: no record under ``key``.
        SessionConflictError: the version moved.
        LockLostError: ``fence`` given and the lock is not ours any more.
        StoreError: backend failure.
    """
    conn = c.conn
    check_key(key)
    if user_key is not None:
        check_key(user_key)
    now = conn.clock()
    args: list[bytes | str] = [
        blob, str(expected_version), _num(expires_at), _num(now), user_key or "",
        conn.ttl_ms(expires_at), "0" if fence is None else "1" + fence, "0",
    ]  # fmt: skip
    keys = [conn.rec_key(key), conn.lock_key(key)]
    reply = await c.script("replace", keys, args)
    if text(reply[0]) == "index" and user_key is not None:
        # The user changes: index the new user before the write (crash-safe).
        await index_add(c, user_key, key)
        args[-1] = "1"
        reply = await c.script("replace", keys, args)
    old_user = check_replace(reply)
    if user_key is not None and old_user != user_key:
        await index_add(c, user_key, key)
    if old_user and old_user != user_key:
        await index_remove(c, old_user, key)
    return StoredRecord(blob, expected_version + 1, expires_at, now, user_key)


def check_replace(reply: list[bytes]) -> str:
    """The old user key ("" = none) from an ``ok`` reply, else the matching error.

    Raises:
        SessionGoneError, LockLostError, SessionConflictError: as ``replace``.
    """
    status = text(reply[0])
    if status == "gone":
        raise SessionGoneError("the session was deleted by a concurrent request")
    if status == "lost":
        raise LockLostError("the session lock is no longer held by this request")
    if status != "ok":
        raise SessionConflictError("the session was changed by a concurrent request")
    return text(reply[1])


async def touch(c: Commands, key: str, *, expires_at: float, touched_at: float) -> bool:
    """Update ``expires_at``/``touched_at`` and the native TTL only (script ``touch``)."""
    conn = c.conn
    check_key(key)
    args = [_num(expires_at), _num(touched_at), conn.ttl_ms(expires_at)]
    return bool(await c.script("touch", [conn.rec_key(key)], args))


async def delete(c: Commands, key: str) -> bool:
    """Delete the record (script ``delete``), then its user-index entry."""
    check_key(key)
    old_user = await c.script("delete", [c.conn.rec_key(key)], [])
    if old_user is None:
        return False
    if old_user:
        await index_remove(c, text(old_user), key)
    return True


async def by_user(c: Commands, user_key: str) -> list[tuple[str, StoredRecord]]:
    """The user's records: ``SMEMBERS`` plus one pipelined ``HMGET`` each;
    entries whose record is gone or belongs to someone else are pruned."""
    check_key(user_key)
    members = sorted(text(m) for m in await c.smembers(c.conn.user_key(user_key)))
    found = []
    for key, rec in zip(members, await fetch_tolerant(c, members), strict=True):
        if rec is CORRUPT:
            continue  # left out (a key of the wrong type); never pruned: it may be fixed
        if not isinstance(rec, StoredRecord) or rec.user_key != user_key:
            await index_remove(c, user_key, key)
        else:
            found.append((key, rec))
    return found


CORRUPT = object()
"""What :func:`fetch_tolerant` gives for a key of the wrong type."""


async def fetch_tolerant(c: Commands, keys: list[str]) -> list[StoredRecord | object | None]:
    """:meth:`Commands.fetch`, but one key of the wrong type (``WRONGTYPE``: a
    string where the record hash belongs) fails only itself: the batch is
    fetched again one key at a time, and that key is :data:`CORRUPT`.

    Raises:
        StoreError: backend failure.
    """
    try:
        return list(await c.fetch(keys))
    except CorruptEntryError:
        pass
    found: list[StoredRecord | object | None] = []
    for key in keys:
        try:
            found.extend(await c.fetch([key]))
        except CorruptEntryError:
            found.append(CORRUPT)
    return found


# ------------------------------------------------------------------ leases


def lease_args(conn: RedisConn, token: str, ttl: float) -> list[str]:
    """ARGV ``token, now, expires_at, ttl_ms`` of ``lock_acquire`` and ``lock_renew``."""
    now = conn.clock()
    return [token, _num(now), _num(now + ttl), str(max(1, int(ttl * 1000)))]


async def lock_acquire(c: Commands, key: str, token: str, ttl: float) -> bool:
    """Take the lease if free, expired or already ours."""
    conn = c.conn
    check_key(key)
    return bool(await c.script("lock_acquire", [conn.lock_key(key)],
                               lease_args(conn, token, ttl)))


async def lock_release(c: Commands, key: str, token: str) -> bool:
    """Release if ours (never another's lock)."""
    conn = c.conn
    check_key(key)
    return bool(await c.script("lock_release", [conn.lock_key(key)],
                               [token, _num(conn.clock())]))
