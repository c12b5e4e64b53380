"""Redis store errors: every redis-py failure mapped onto our StoreError tree.

Connection failures name the endpoint (``host:port``, the socket path or the
Cluster's startup nodes: no password, never the URL) and the likely fix
(:func:`_unreachable`), so an operator can act on the one line they see.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.asyncio.sentinel import MasterNotFoundError as AsyncMasterNotFoundError
from redis.exceptions import RedisClusterException
from redis.sentinel import MasterNotFoundError

from ...core.errors import CorruptEntryError, StoreError, StoreTimeoutError, StoreUnavailableError

_REDIS_ERRORS = (redis.RedisError, RedisClusterException)
"""Everything redis-py raises (its cluster exception is not a ``RedisError``)."""


def _wrap(exc: Exception, kind: str, where: str = "") -> StoreError:
    """Map a redis-py error to ours; the message names the store kind and ``where``.

    The redis-py message is left out on purpose: it can hold command
    arguments.  It stays reachable as ``__cause__`` for debugging.

    Args:
        exc: the redis-py exception.
        kind: ``redis`` or ``redis-cluster``.
        where: the endpoint (:func:`endpoint_of`), or ``""`` when unknown.
    """
    name = type(exc).__name__
    at = f" at {where}" if where else ""
    if isinstance(exc, redis.TimeoutError):
        return StoreTimeoutError(
            f"{kind} store{at} did not answer in time ({name}); check that it runs and is "
            "not overloaded, or raise socket_timeout=SECONDS in the store URL", store=kind)
    if isinstance(exc, redis.AuthenticationError):
        return StoreUnavailableError(
            f"{kind} store{at} refused the credentials ({name}); fix the user name and "
            "password in the store URL (redis://USER:PASSWORD@host:port/0)", store=kind)
    if isinstance(exc, MasterNotFoundError | AsyncMasterNotFoundError):
        return StoreUnavailableError(
            f"{kind} store{at}: no sentinel named a reachable master ({name}); check that "
            "the sentinels run, that the master name in the URL is the one they monitor, "
            "or wait for the failover to finish", store=kind)
    if isinstance(exc, redis.ConnectionError | redis.exceptions.ClusterError):
        return StoreUnavailableError(_unreachable(exc, kind, at), store=kind)
    if isinstance(exc, RedisClusterException | redis.BusyLoadingError):
        if isinstance(exc.__cause__, redis.ConnectionError):  # no startup node answered
            return StoreUnavailableError(_unreachable(exc.__cause__, kind, at), store=kind)
        return StoreUnavailableError(f"{kind} store{at} is unavailable ({name})", store=kind)
    if isinstance(exc, redis.ResponseError) and ("WRONGTYPE" in str(exc)
                                                  or str(exc).startswith("CORRUPT")):
        # A string where a hash or set belongs, or a kv entry without a numeric
        # expiry (scripts.py ``live``): somebody else wrote the key.
        return CorruptEntryError(
            f"{kind} store{at} holds an entry of the wrong type or shape; the entry is "
            "refused", store=kind)
    return StoreError(f"{kind} store{at} failed ({name})", store=kind)


def _unreachable(exc: BaseException, kind: str, at: str) -> str:
    """"<kind> store at <where> is unreachable (<OS reason>); <likely fix>"."""
    cause = exc.__cause__ or exc.__context__
    reason = getattr(cause, "strerror", None) or type(exc).__name__
    errno = getattr(cause, "errno", None)
    if isinstance(cause, FileNotFoundError):
        fix = "start redis-server with that unixsocket, or fix the socket path in the URL"
    elif errno is not None and errno < 0:  # getaddrinfo: the name does not resolve
        fix = "fix the host name in the store URL"
    elif isinstance(cause, ConnectionRefusedError):
        fix = "start redis-server there, or fix host:port in the store URL"
    else:
        fix = "check that redis-server runs there and that the network lets you reach it"
    return f"{kind} store{at} is unreachable ({reason}); {fix}"


def endpoint_of(client: Any) -> str:
    """Where ``client`` connects: ``host:port``, a socket path, Cluster nodes, or
    a Sentinel master's name and its sentinels.

    Never the URL, user name or password.  ``""`` when it cannot be told.
    """
    nodes = getattr(client, "startup_nodes", None)
    if isinstance(nodes, dict) and nodes:  # RedisCluster: {"host:port": node}
        return ",".join(sorted(str(name) for name in nodes))
    pool = getattr(client, "connection_pool", None)
    manager = getattr(pool, "sentinel_manager", None)
    if manager is not None:  # Sentinel: the master's name and the sentinels asked
        sentinels = (getattr(s.connection_pool, "connection_kwargs", {}) for s in manager.sentinels)
        where = ",".join(f"{k.get('host')}:{k.get('port')}" for k in sentinels)
        return f"master {getattr(pool, 'service_name', '?')} via sentinels {where}"
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    if kwargs.get("path"):
        return str(kwargs["path"])
    if kwargs.get("host"):
        return f"{kwargs['host']}:{kwargs.get('port', 6379)}"
    return ""
