"""Enumerating the Redis store: paged ``scan`` (admin list, key rotation) and ``stats``."""

from __future__ import annotations

import redis

from ...core.errors import CorruptEntryError
from ..base import StoredRecord, StoreStats, check_key
from .conn import RedisConn, text

STATS_SCAN_BUDGET = 10_000
"""``stats`` counts exactly only while the prefix holds fewer keys than this."""


def scan(conn: RedisConn, cursor: str | None, limit: int
         ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
    """One page via ``SCAN MATCH <prefix>:{*}:rec`` (each primary in turn on a Cluster).

    The cursor is ``"<node>|<scan cursor>|<last key taken>"``: a SCAN batch
    is sorted and may be split across pages.  A record may appear twice if
    Redis rehashes meanwhile (SCAN's own guarantee), never be skipped if
    it lives through the whole iteration.

    Raises:
        ValueError: malformed cursor or ``limit`` < 1.
        StoreError: backend failure.
    """
    if limit < 1:
        raise ValueError("scan limit must be at least 1")
    node, position, after = parse_cursor(cursor)
    page: list[tuple[str, StoredRecord]] = []
    nodes = [n for n in conn.nodes() if n[0] >= node]
    if nodes and nodes[0][0] != node:
        position, after = 0, ""  # that node left the cluster: start the next one
    for name, client in nodes:
        while len(page) < limit:
            keys, next_position = _scan_batch(conn, client, position, limit, after)
            taken = keys[: limit - len(page)]
            page.extend((k, r) for k, r in zip(taken, _fetch(conn, taken), strict=True)
                        if r is not None)
            if len(taken) < len(keys):
                return page, f"{name}|{position}|{taken[-1]}"
            position, after = next_position, ""
            if position == 0:
                break
        if len(page) >= limit:
            return page, (f"{name}|{position}|" if position else _after(conn, name))
        position = 0
    return page, None


def _fetch(conn: RedisConn, keys: list[str]) -> list[StoredRecord | None]:
    """``conn.fetch``; a key of the wrong type (WRONGTYPE) is left out, not an error
    for the whole page (retried one key at a time)."""
    try:
        return conn.fetch(keys)
    except CorruptEntryError:
        found: list[StoredRecord | None] = []
        for key in keys:
            try:
                found.extend(conn.fetch([key]))
            except CorruptEntryError:
                found.append(None)
        return found


def _after(conn: RedisConn, name: str) -> str | None:
    """Cursor that starts the node after ``name`` (None when it was the last)."""
    later = [n for n, _ in conn.nodes() if n > name]
    return f"{later[0]}|0|" if later else None


def _scan_batch(conn: RedisConn, client: redis.Redis[bytes], position: int, limit: int,
                after: str) -> tuple[list[str], int]:
    """One SCAN call: sorted storage keys (those after ``after``) and the next position."""
    match = f"{conn.prefix}:{{*}}:rec"
    with conn.guard():
        next_position, raw = client.scan(position, match=match, count=max(100, limit))
    start, end = len(conn.prefix) + 2, -len("}:rec")
    keys = sorted(text(k)[start:end] for k in raw)
    return [k for k in keys if k > after], int(next_position)


def parse_cursor(cursor: str | None) -> tuple[str, int, str]:
    """Split a cursor from :func:`scan`.

    Raises:
        ValueError: not a cursor this store produced.
    """
    if cursor is None:
        return "", 0, ""
    node, sep1, rest = cursor.partition("|")
    position, sep2, after = rest.partition("|")
    if not (sep1 and sep2 and position.isdigit()):
        raise ValueError("malformed scan cursor")
    if after:
        check_key(after)
    return node, int(position), after


def stats(conn: RedisConn) -> StoreStats:
    """Exact key counts while the prefix holds under 10 000 keys, else -1.

    ``expired`` and ``bytes`` are always -1 (they would need every record).

    Raises:
        StoreError: backend failure.
    """
    counts = {"rec": 0, "kv": 0, "lock": 0}
    budget = STATS_SCAN_BUDGET
    for _, client in conn.nodes():
        with conn.guard():
            for raw in client.scan_iter(match=f"{conn.prefix}:{{*}}:*", count=1000):
                budget -= 1
                if budget < 0:
                    return StoreStats(-1, -1, -1, -1, -1)
                kind = text(raw).rpartition(":")[2]
                if kind in counts:
                    counts[kind] += 1
    return StoreStats(counts["rec"], -1, counts["kv"], counts["lock"], -1)
