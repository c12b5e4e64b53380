"""Redis store errors: every redis-py failure mapped onto our StoreError tree."""

from __future__ import annotations

import redis
from redis.exceptions import RedisClusterException

from ...core.errors import StoreError, StoreTimeoutError, StoreUnavailableError

_REDIS_ERRORS = (redis.RedisError, RedisClusterException)
"""Everything redis-py raises (its cluster exception is not a ``RedisError``)."""


def _wrap(exc: Exception, kind: str) -> StoreError:
    """Map a redis-py error to ours; the message names the store kind only.

    The redis-py message is left out on purpose: it can hold host names or
    command arguments.  It stays reachable as ``__cause__`` for debugging.
    """
    name = type(exc).__name__
    if isinstance(exc, redis.TimeoutError):
        return StoreTimeoutError(f"{kind} store did not answer in time ({name})", store=kind)
    if isinstance(exc, redis.AuthenticationError):
        return StoreUnavailableError(f"{kind} store refused the credentials ({name})", store=kind)
    if isinstance(exc, redis.ConnectionError | redis.exceptions.ClusterError):
        return StoreUnavailableError(f"{kind} store is unreachable ({name})", store=kind)
    if isinstance(exc, RedisClusterException | redis.BusyLoadingError):
        return StoreUnavailableError(f"{kind} store is unavailable ({name})", store=kind)
    return StoreError(f"{kind} store failed ({name})", store=kind)
