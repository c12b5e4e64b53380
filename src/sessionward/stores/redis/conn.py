"""The plumbing every part of the Redis store shares: the client, the key
layout, the registered scripts, error mapping and record parsing.

Layout (``P`` is the prefix, ``K`` a storage/kv/lock key, ``U`` a user key)::

    P:{K}:rec    hash  b=blob v=version e=expires_at t=touched_at u=user_key|""
    P:{K}:lock   hash  t=token e=expires_at
    P:{K}:kv     hash  v=value n=version e=expires_at
    P:{U}:user   set   of K (the per-user index)

The ``{K}`` hash tag puts a record and its lock in one slot, so every script
(including the fenced compare-and-set) runs on one Cluster node.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError
from redis.sentinel import SentinelConnectionPool

from ...core.errors import ConfigurationError
from ..base import StoredRecord
from .decode import tolerant_record
from .durable import READ_ONLY_SCRIPTS, WaitFor, run_waited, script_commands
from .errors import _REDIS_ERRORS, _wrap, endpoint_of
from .lane import Lane
from .scripts import _SCRIPTS
from .url import Client

_PREFIX_RE = re.compile(r"[a-z0-9_-]{1,32}")
RECORD_FIELDS = ["b", "v", "e", "t", "u"]
"""The fields of a record hash, in the order :func:`record` reads them."""


def text(raw: bytes | str) -> str:
    """An ASCII reply as ``str``."""
    return raw.decode("ascii") if isinstance(raw, bytes) else raw


def record(fields: Sequence[bytes | None]) -> StoredRecord | None:
    """A record from ``HMGET b v e t u``; None when the hash is gone or corrupt
    (for listings: :func:`.decode.tolerant_record`)."""
    return tolerant_record(fields, "redis")


def check_prefix(prefix: str) -> None:
    """Refuse a prefix that could break the key layout or the SCAN pattern.

    Raises:
        ConfigurationError: not ``[a-z0-9_-]{1,32}``.
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ConfigurationError("redis store prefix must match [a-z0-9_-]{1,32}")


def kind_of(client: Client) -> str:
    """``redis``, ``redis-cluster`` or ``redis-sentinel`` (the error-message kind)."""
    if isinstance(client, RedisCluster):
        return "redis-cluster"
    if isinstance(getattr(client, "connection_pool", None), SentinelConnectionPool):
        return "redis-sentinel"
    return "redis"


class RedisConn:
    """One Redis (Cluster, Sentinel) client with the store's key layout and scripts.

    Args:
        wait: ``WAIT`` for replicas after every write (:mod:`.durable`), or None.

    Raises:
        ConfigurationError: invalid prefix.
    """

    def __init__(self, client: Client, clock: Callable[[], float], prefix: str,
                 wait: WaitFor | None = None) -> None:
        check_prefix(prefix)
        self.client = client
        self.clock = clock
        self.prefix = prefix
        self.kind = kind_of(client)
        self.wait = wait
        """``WAIT`` after every write (:mod:`.durable`); None: off."""
        self.scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}
        self.lane = Lane.of(client)
        """The fast lane of a single node (:mod:`.lane`); None for Cluster, Sentinel."""

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn every redis-py failure into a StoreError (never None for an outage)."""
        try:
            yield
        except _REDIS_ERRORS as exc:
            raise _wrap(exc, self.kind, endpoint_of(self.client)) from exc

    def run(self, script: str, keys: list[str], args: Sequence[bytes | str]) -> Any:
        """Run one registered script (EVALSHA, loading it again after a flush).

        Raises:
            StoreError: backend failure.
        """
        with self.guard():
            if self.wait is not None and script not in READ_ONLY_SCRIPTS:
                command, fallback = script_commands(self.scripts[script], keys, args)
                return run_waited(self.client, self.lane, self.wait, self.kind, keys[0],
                                  command, fallback)
            if self.lane is not None:
                reply = self._lane_script(self.lane, script, keys, args)
                if reply is not NotImplemented:
                    return reply
            return self.scripts[script](keys=keys, args=args)

    def _lane_script(self, lane: Lane, script: str, keys: list[str],
                     args: Sequence[bytes | str]) -> Any:
        """EVALSHA on the lane; after a script-cache flush, EVAL (which caches it again).

        Raises:
            redis.RedisError: backend failure (the caller's guard maps it).
        """
        found = self.scripts[script]
        try:
            return lane.execute("EVALSHA", found.sha, len(keys), *keys, *args)
        except NoScriptError:
            return lane.execute("EVAL", found.script, len(keys), *keys, *args)

    def write(self, name: str, *command: str) -> Any:
        """One write command on key ``name`` (``SADD name m``…), then ``WAIT`` if on.

        Raises:
            StoreError: backend failure, or the replicas did not acknowledge.
        """
        with self.guard():
            if self.wait is not None:
                return run_waited(self.client, self.lane, self.wait, self.kind, name,
                                  (command[0], name, *command[1:]))
            return self.client.execute_command(command[0], name, *command[1:])

    def hmget(self, name: str, fields: Sequence[str]) -> list[bytes | None]:
        """``HMGET`` (on the lane when there is one).

        Raises:
            StoreError: backend failure.
        """
        with self.guard():
            if self.lane is not None:
                reply = self.lane.execute("HMGET", name, *fields)
                if reply is not NotImplemented:
                    return list(reply)
            return list(self.client.hmget(name, fields))

    def rec_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:rec"

    def lock_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:lock"

    def kv_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:kv"

    def user_key(self, user_key: str) -> str:
        return f"{self.prefix}:{{{user_key}}}:user"

    def ttl_ms(self, expires_at: float) -> str:
        """Relative TTL for the native expiry; at least 1 ms (0 would be refused)."""
        return str(max(1, int((expires_at - self.clock()) * 1000)))

    def fetch(self, keys: Sequence[str]) -> list[StoredRecord | None]:
        """Records for ``keys`` in one pipeline (split per node on a Cluster).

        Raises:
            StoreError: backend failure.
        """
        if not keys:
            return []
        with self.guard():
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self.rec_key(key), RECORD_FIELDS)
            return [record(fields) for fields in pipe.execute()]

    def nodes(self) -> list[tuple[str, redis.Redis[bytes]]]:
        """``(name, client)`` per primary, sorted by name; one entry on a single node.

        Raises:
            StoreError: backend failure.
        """
        if not isinstance(self.client, RedisCluster):
            return [("-", self.client)]
        with self.guard():
            primaries = sorted(self.client.get_primaries(), key=lambda n: n.name)
            return [(n.name, self.client.get_redis_connection(n)) for n in primaries]
