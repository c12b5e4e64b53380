"""RedisStore: the store contract on one Redis node or a Redis Cluster.

Layout (``P`` is the prefix, ``K`` a storage/kv/lock key, ``U`` a user key)::

    P:{K}:rec    hash  b=blob v=version e=expires_at t=touched_at u=user_key|""
    P:{K}:lock   hash  t=token e=expires_at
    P:{K}:kv     hash  v=value n=version e=expires_at
    P:{U}:user   set   of K (the per-user index)

The ``{K}`` hash tag puts a record and its lock in one slot, so every script
(including the fenced compare-and-set) runs on one Cluster node.  Every write
sets a native TTL in the same script (garbage collection), and the scripts
also compare the plaintext ``e`` with the store's clock passed in ARGV, so an
injected test clock sees the same expiry as the memory reference store.

The user index lives in another slot, so it is updated *around* the record
write instead of inside it: added before (a crash leaves an extra entry, never
a missing one) and again after (repairs a concurrent prune), removed only
with a re-check.  ``by_user`` prunes lazily.  See docs/stores-redis.md.

The Lua scripts and their KEYS/ARGV contracts live in ``_redis_lua``, URL
parsing and client construction in ``_redis_url``, and the redis-py error
mapping in ``_redis_errors``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster

from ..core.clock import system_clock
from ..core.errors import (
    ConfigurationError,
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
)
from ._redis_errors import _REDIS_ERRORS, _wrap
from ._redis_lua import _SCRIPTS, _num
from ._redis_url import Client as Client
from ._redis_url import _client_from_url
from .base import Capability, StoredRecord, StoreStats, check_key

_PREFIX_RE = re.compile(r"[a-z0-9_-]{1,32}")
_STATS_SCAN_BUDGET = 10_000
"""``stats`` counts exactly only while the prefix holds fewer keys than this."""


def _text(raw: bytes | str) -> str:
    return raw.decode("ascii") if isinstance(raw, bytes) else raw


def _record(fields: Sequence[bytes | None]) -> StoredRecord | None:
    """A record from ``HMGET b v e t u``; None when the hash is gone."""
    blob, version, expires, touched, user = fields
    if blob is None or version is None or expires is None or touched is None:
        return None
    return StoredRecord(
        blob, int(version), float(expires), float(touched), _text(user) if user else None
    )


def _check_prefix(prefix: str) -> None:
    """Refuse a prefix that could break the key layout or the SCAN pattern.

    Raises:
        ConfigurationError: not ``[a-z0-9_-]{1,32}``.
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ConfigurationError("redis store prefix must match [a-z0-9_-]{1,32}")


class RedisStore:
    """Sessions in Redis (one node or a Cluster); see the module docstring for the layout.

    Args:
        client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` created with
            ``decode_responses=False``.
        clock: the store clock (POSIX seconds); expiry is compared with it.
        prefix: the first part of every key name, ``[a-z0-9_-]{1,32}``; several
            apps or tests can share one Redis with different prefixes.
        owns_client: close the client in :meth:`close` (True from :meth:`from_url`).

    Raises:
        ConfigurationError: invalid prefix.
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
    ) -> None:
        _check_prefix(prefix)
        self.clock = clock
        self.prefix = prefix
        self.kind = "redis-cluster" if isinstance(client, RedisCluster) else "redis"
        self._client = client
        self._owns_client = owns_client
        self._scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}

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
        """Build a store from ``redis://``, ``rediss://``, ``unix://`` or ``redis+cluster://``.

        Query options: ``db``, ``username``, ``password``, ``socket_timeout``,
        ``socket_connect_timeout``, ``max_connections``; with TLS also
        ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile`` (certificates are
        always verified, host names always checked).

        Raises:
            ConfigurationError: malformed URL, option or prefix (the URL is never echoed).
            StoreUnavailableError: a Cluster's startup nodes did not answer.
        """
        _check_prefix(prefix)  # before any client exists, so nothing is left open
        client = _client_from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
        )
        return cls(client, clock=clock, prefix=prefix, owns_client=True)

    # ---------------------------------------------------------------- plumbing

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn every redis-py failure into a StoreError (never None for an outage)."""
        try:
            yield
        except _REDIS_ERRORS as exc:
            raise _wrap(exc, self.kind) from exc

    def _run(self, script: str, keys: list[str], args: Sequence[bytes | str]) -> Any:
        with self._guard():
            return self._scripts[script](keys=keys, args=args)

    def _rec_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:rec"

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:lock"

    def _kv_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:kv"

    def _user_key(self, user_key: str) -> str:
        return f"{self.prefix}:{{{user_key}}}:user"

    def _ttl_ms(self, expires_at: float) -> str:
        """Relative TTL for the native expiry; at least 1 ms (0 would be refused)."""
        return str(max(1, int((expires_at - self.clock()) * 1000)))

    # ----------------------------------------------------------------- records

    def create(
        self, key: str, blob: bytes, *, expires_at: float, user_key: str | None
    ) -> StoredRecord:
        """Insert version 1 if absent (script ``create``); see ``SessionStore.create``.

        Raises:
            SessionExistsError: a record (expired or not) exists under ``key``.
            StoreError: backend failure.
        """
        check_key(key)
        if user_key is not None:
            check_key(user_key)
            self._index_add(user_key, key)  # before: a crash leaves an extra entry only
        now = self.clock()
        args: list[bytes | str] = [
            blob, _num(expires_at), _num(now), user_key or "", self._ttl_ms(expires_at)
        ]  # fmt: skip
        if not self._run("create", [self._rec_key(key)], args):
            raise SessionExistsError("a record already exists under this key")
        if user_key is not None:
            self._index_add(user_key, key)  # after: repairs a concurrent lazy prune
        return StoredRecord(blob, 1, expires_at, now, user_key)

    def load(self, key: str) -> StoredRecord | None:
        """The record (expired or not) or None; one ``HMGET``.

        Raises:
            StoreError: backend failure (never None for an outage).
        """
        check_key(key)
        with self._guard():
            fields = self._client.hmget(self._rec_key(key), ["b", "v", "e", "t", "u"])
        return _record(fields)

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
        check_key(key)
        if user_key is not None:
            check_key(user_key)
        now = self.clock()
        args: list[bytes | str] = [
            blob, str(expected_version), _num(expires_at), _num(now), user_key or "",
            self._ttl_ms(expires_at), "0" if fence is None else "1" + fence, "0",
        ]  # fmt: skip
        keys = [self._rec_key(key), self._lock_key(key)]
        reply = self._run("replace", keys, args)
        if _text(reply[0]) == "index" and user_key is not None:
            # The user changes: index the new user before the write (crash-safe).
            self._index_add(user_key, key)
            args[-1] = "1"
            reply = self._run("replace", keys, args)
        old_user = self._check_replace(reply)
        if user_key is not None and old_user != user_key:
            self._index_add(user_key, key)
        if old_user and old_user != user_key:
            self._index_remove(old_user, key)
        return StoredRecord(blob, expected_version + 1, expires_at, now, user_key)

    @staticmethod
    def _check_replace(reply: list[bytes]) -> str:
        """The old user key ("" = none) from an ``ok`` reply, else the matching error.

        Raises:
            SessionGoneError, LockLostError, SessionConflictError: as ``replace``.
        """
        status = _text(reply[0])
        if status == "gone":
            raise SessionGoneError("the session was deleted by a concurrent request")
        if status == "lost":
            raise LockLostError("the session lock is no longer held by this request")
        if status != "ok":
            raise SessionConflictError("the session was changed by a concurrent request")
        return _text(reply[1])

    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        """Update ``expires_at``/``touched_at`` and the native TTL only (script ``touch``).

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        args = [_num(expires_at), _num(touched_at), self._ttl_ms(expires_at)]
        return bool(self._run("touch", [self._rec_key(key)], args))

    def delete(self, key: str) -> bool:
        """Delete the record (script ``delete``), then its user-index entry.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        old_user = self._run("delete", [self._rec_key(key)], [])
        if old_user is None:
            return False
        if old_user:
            self._index_remove(_text(old_user), key)
        return True

    # -------------------------------------------------------------- user index

    def _index_add(self, user_key: str, key: str) -> None:
        with self._guard():
            self._client.sadd(self._user_key(user_key), key)

    def _index_remove(self, user_key: str, key: str) -> None:
        """Remove ``key`` from the index, then put it back if the record is
        (again) the user's: a writer that indexed it concurrently may have
        finished between our read and our SREM."""
        with self._guard():
            self._client.srem(self._user_key(user_key), key)
            current = self._client.hget(self._rec_key(key), "u")
            if current is not None and _text(current) == user_key:
                self._client.sadd(self._user_key(user_key), key)

    def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        """The user's records: ``SMEMBERS`` plus one pipelined ``HMGET`` each.

        Entries whose record is gone or belongs to someone else are pruned.

        Raises:
            StoreError: backend failure.
        """
        check_key(user_key)
        with self._guard():
            members = sorted(_text(m) for m in self._client.smembers(self._user_key(user_key)))
        found = []
        for key, record in zip(members, self._fetch(members), strict=True):
            if record is None or record.user_key != user_key:
                self._index_remove(user_key, key)
            else:
                found.append((key, record))
        return found

    def _fetch(self, keys: Sequence[str]) -> list[StoredRecord | None]:
        """Records for ``keys`` in one pipeline (split per node on a Cluster)."""
        if not keys:
            return []
        with self._guard():
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self._rec_key(key), ["b", "v", "e", "t", "u"])
            return [_record(fields) for fields in pipe.execute()]

    # -------------------------------------------------------------------- scan

    def _nodes(self) -> list[tuple[str, redis.Redis[bytes]]]:
        """``(name, client)`` per primary, sorted by name; one entry on a single node."""
        if not isinstance(self._client, RedisCluster):
            return [("-", self._client)]
        with self._guard():
            primaries = sorted(self._client.get_primaries(), key=lambda n: n.name)
            return [(n.name, self._client.get_redis_connection(n)) for n in primaries]

    def scan(
        self, cursor: str | None, limit: int
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
        node, position, after = self._parse_cursor(cursor)
        page: list[tuple[str, StoredRecord]] = []
        nodes = [n for n in self._nodes() if n[0] >= node]
        if nodes and nodes[0][0] != node:
            position, after = 0, ""  # that node left the cluster: start the next one
        for name, client in nodes:
            while len(page) < limit:
                keys, next_position = self._scan_batch(client, position, limit, after)
                taken = keys[: limit - len(page)]
                page.extend(
                    (k, r) for k, r in zip(taken, self._fetch(taken), strict=True) if r is not None
                )
                if len(taken) < len(keys):
                    return page, f"{name}|{position}|{taken[-1]}"
                position, after = next_position, ""
                if position == 0:
                    break
            if len(page) >= limit:
                return page, (f"{name}|{position}|" if position else self._after(name))
            position = 0
        return page, None

    def _after(self, name: str) -> str | None:
        """Cursor that starts the node after ``name`` (None when it was the last)."""
        later = [n for n, _ in self._nodes() if n > name]
        return f"{later[0]}|0|" if later else None

    def _scan_batch(
        self, client: redis.Redis[bytes], position: int, limit: int, after: str
    ) -> tuple[list[str], int]:
        """One SCAN call: sorted storage keys (those after ``after``) and the next position."""
        match = f"{self.prefix}:{{*}}:rec"
        with self._guard():
            next_position, raw = client.scan(position, match=match, count=max(100, limit))
        start, end = len(self.prefix) + 2, -len("}:rec")
        keys = sorted(_text(k)[start:end] for k in raw)
        return [k for k in keys if k > after], int(next_position)

    @staticmethod
    def _parse_cursor(cursor: str | None) -> tuple[str, int, str]:
        """Split a cursor from :meth:`scan`.

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

    def purge_expired(self, now: float, limit: int) -> int:
        """Nothing to do: every key carries a native TTL (``NATIVE_TTL``)."""
        return 0

    def stats(self, now: float) -> StoreStats:
        """Exact key counts while the prefix holds under 10 000 keys, else -1.

        ``expired`` and ``bytes`` are always -1 (they would need every record).

        Raises:
            StoreError: backend failure.
        """
        counts = {"rec": 0, "kv": 0, "lock": 0}
        budget = _STATS_SCAN_BUDGET
        for _, client in self._nodes():
            with self._guard():
                for raw in client.scan_iter(match=f"{self.prefix}:{{*}}:*", count=1000):
                    budget -= 1
                    if budget < 0:
                        return StoreStats(-1, -1, -1, -1, -1)
                    kind = _text(raw).rpartition(":")[2]
                    if kind in counts:
                        counts[kind] += 1
        return StoreStats(counts["rec"], -1, counts["kv"], counts["lock"], -1)

    # ---------------------------------------------------------------------- kv

    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        """``(value, version)`` unless absent or expired by the store clock.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        reply = self._run("kv_get", [self._kv_key(key)], [_num(self.clock())])
        if reply is None or reply[0] is None or reply[1] is None:
            return None
        return bytes(reply[0]), int(reply[1])

    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        """Insert version 1 if absent or expired.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        now = self.clock()
        args: list[bytes | str] = [value, _num(expires_at), _num(now), self._ttl_ms(expires_at)]
        return bool(self._run("kv_create", [self._kv_key(key)], args))

    def kv_cas(self, key: str, value: bytes, *, expected_version: int, expires_at: float) -> bool:
        """Write version ``expected_version + 1`` if the live version matches.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        args: list[bytes | str] = [
            value, str(expected_version), _num(expires_at), _num(self.clock()),
            self._ttl_ms(expires_at),
        ]  # fmt: skip
        return bool(self._run("kv_cas", [self._kv_key(key)], args))

    def kv_take(self, key: str) -> bytes | None:
        """Read and delete in one script: of N concurrent callers exactly one wins.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        reply = self._run("kv_take", [self._kv_key(key)], [_num(self.clock())])
        return None if reply is None else bytes(reply)

    def kv_delete(self, key: str) -> bool:
        """Delete; True if a live entry existed.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        return bool(self._run("kv_delete", [self._kv_key(key)], [_num(self.clock())]))

    # ------------------------------------------------------------------- locks

    def _lease_args(self, token: str, ttl: float) -> list[str]:
        """ARGV ``token, now, expires_at, ttl_ms`` of ``lock_acquire`` and ``lock_renew``."""
        now = self.clock()
        return [token, _num(now), _num(now + ttl), str(max(1, int(ttl * 1000)))]

    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        """Take the lease if free, expired or already ours.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        return bool(self._run("lock_acquire", [self._lock_key(key)], self._lease_args(token, ttl)))

    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend our lease by ``ttl`` from now; False if not ours.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        return bool(self._run("lock_renew", [self._lock_key(key)], self._lease_args(token, ttl)))

    def lock_release(self, key: str, token: str) -> bool:
        """Release if ours (never another's lock).

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        return bool(self._run("lock_release", [self._lock_key(key)], [token, _num(self.clock())]))

    # -------------------------------------------------------------- lifecycle

    def ping(self) -> None:
        """Round-trip to Redis (every primary on a Cluster).

        Raises:
            StoreUnavailableError: unreachable.
            StoreTimeoutError: no answer in time.
        """
        with self._guard():
            self._client.ping()

    def close(self) -> None:
        """Close the connection pool(s) if this store created the client."""
        if not self._owns_client:
            return
        with self._guard():
            self._client.close()
            if not isinstance(self._client, RedisCluster):
                # Redis.close() leaves a pool it did not create open.
                self._client.connection_pool.disconnect()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
