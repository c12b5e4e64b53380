"""The per-user index of the Redis store: ``P:{U}:user`` sets of storage keys.

The index lives in another slot than the records, so it is updated *around*
the record write instead of inside it: added before (a crash leaves an extra
entry, never a missing one) and again after (repairs a concurrent prune),
removed only with a re-check.  :func:`by_user` prunes lazily.
"""

from __future__ import annotations

from ..base import StoredRecord, check_key
from .conn import RedisConn, text


def add(conn: RedisConn, user_key: str, key: str) -> None:
    """Index ``key`` under ``user_key``.

    Raises:
        StoreError: backend failure.
    """
    with conn.guard():
        conn.client.sadd(conn.user_key(user_key), key)


def remove(conn: RedisConn, user_key: str, key: str) -> None:
    """Remove ``key`` from the index, then put it back if the record is
    (again) the user's: a writer that indexed it concurrently may have
    finished between our read and our SREM.

    Raises:
        StoreError: backend failure.
    """
    with conn.guard():
        conn.client.srem(conn.user_key(user_key), key)
        current = conn.client.hget(conn.rec_key(key), "u")
        if current is not None and text(current) == user_key:
            conn.client.sadd(conn.user_key(user_key), key)


def by_user(conn: RedisConn, user_key: str) -> list[tuple[str, StoredRecord]]:
    """The user's records: ``SMEMBERS`` plus one pipelined ``HMGET`` each.

    Entries whose record is gone or belongs to someone else are pruned.

    Raises:
        StoreError: backend failure.
    """
    check_key(user_key)
    with conn.guard():
        members = sorted(text(m) for m in conn.client.smembers(conn.user_key(user_key)))
    found = []
    for key, rec in zip(members, conn.fetch(members), strict=True):
        if rec is None or rec.user_key != user_key:
            remove(conn, user_key, key)
        else:
            found.append((key, rec))
    return found
