"""Redis store URLs: scheme, query options, TLS and auth, then the redis-py client.

A typo in an option fails instead of being ignored, timeouts are always
bounded, and commands are never retried (the scripts are not idempotent).
Errors never echo the URL: it may hold a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from ...core.errors import ConfigurationError
from .durable import DEFAULT_WAIT_MS, WaitFor
from .errors import _REDIS_ERRORS, _wrap

if TYPE_CHECKING:
    from .sentinel import SentinelSpec

Client = Any
"""``redis.Redis`` or ``redis.cluster.RedisCluster`` (their stubs share no base type)."""

_QUERY_OPTIONS = frozenset(
    {"db", "username", "password", "socket_timeout", "socket_connect_timeout", "max_connections",
     "wait_replicas", "wait_timeout_ms"}
)
_TLS_OPTIONS = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})
_SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})
_SCHEMES = frozenset({"redis", "rediss", "unix", "redis+cluster", "rediss+cluster",
                      "redis+sentinel", "rediss+sentinel"})


@dataclass(frozen=True)
class Built:
    """What a store URL builds: the client, the replica wait (``None``: off) and,
    for Sentinel, the recipe of the async client (:class:`.sentinel.SentinelSpec`)."""

    client: Client
    wait: WaitFor | None
    sentinel: SentinelSpec | None = None


def _url_error(what: str) -> ConfigurationError:
    """A URL error that never repeats the URL (it may hold a password)."""
    return ConfigurationError(
        f"invalid redis store URL: {what}; expected redis://[user:pass@]host:port/db, "
        "rediss://…?ssl_ca_certs=…, unix:///path/redis.sock?db=N or "
        "redis+cluster://host:port[,host:port…] or "
        "redis+sentinel://[user:pass@]host:port[,host:port…]/MASTER_NAME[/db]"
    )


def _parse_query(query: str, tls: bool, sentinel: bool = False) -> dict[str, str]:
    """Allowed query options only: a typo must fail, not be silently ignored.

    Raises:
        ConfigurationError: unknown, repeated or empty option.
    """
    allowed = _QUERY_OPTIONS | (_TLS_OPTIONS if tls else frozenset())
    allowed |= _SENTINEL_OPTIONS if sentinel else frozenset()
    options: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in allowed:
            shown = name if re.fullmatch(r"[a-z_]{1,30}", name) else "?"
            raise _url_error(f"unsupported query option {shown!r}")
        if len(values) != 1 or not values[0]:
            raise _url_error(f"option {name!r} needs exactly one non-empty value")
        options[name] = values[0]
    return options


def _conn_kwargs(
    options: dict[str, str], username: str | None, password: str | None, defaults: dict[str, float]
) -> dict[str, Any]:
    """redis-py connection keywords from URL parts and the constructor defaults.

    Raises:
        ConfigurationError: a numeric option is not a number.
    """
    try:
        kwargs: dict[str, Any] = {
            "username": options.get("username", username),
            "password": options.get("password", password),
            "socket_timeout": float(options.get("socket_timeout", defaults["socket_timeout"])),
            "socket_connect_timeout": float(
                options.get("socket_connect_timeout", defaults["socket_connect_timeout"])
            ),
            "max_connections": int(options.get("max_connections", defaults["max_connections"])),
        }
    except ValueError:
        raise _url_error("a timeout or max_connections option is not a number") from None
    if min(kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) <= 0:
        raise _url_error("timeouts must be positive (an unbounded wait is never the default)")
    if kwargs["max_connections"] < 1:
        raise _url_error("max_connections must be at least 1")
    kwargs.update({name: options[name] for name in _TLS_OPTIONS if name in options})
    # Scripts are not idempotent: never replay a command whose outcome is unknown.
    kwargs["retry"] = Retry(NoBackoff(), 0)
    return kwargs


def _parse_wait(options: dict[str, str], socket_timeout: float) -> WaitFor | None:
    """``wait_replicas=N[&wait_timeout_ms=MS]`` (see :mod:`.durable`); None when N is 0.

    Raises:
        ConfigurationError: not a number, negative, a zero (unbounded) timeout, a
            timeout the socket timeout would cut short, or a timeout without replicas.
    """
    raw_n, raw_ms = options.get("wait_replicas", "0"), options.get("wait_timeout_ms")
    if not raw_n.isdigit() or (raw_ms is not None and not raw_ms.isdigit()):
        raise _url_error("wait_replicas and wait_timeout_ms must be whole numbers")
    if int(raw_n) == 0:
        if raw_ms is not None:
            raise _url_error("wait_timeout_ms needs wait_replicas=N (N >= 1)")
        return None
    ms = int(raw_ms or DEFAULT_WAIT_MS)
    if ms < 1:
        raise _url_error("wait_timeout_ms must be at least 1 (0 would wait forever)")
    if ms / 1000 >= socket_timeout:
        raise _url_error("wait_timeout_ms must be shorter than socket_timeout")
    return WaitFor(int(raw_n), ms)


def _parse_db(options: dict[str, str], path: str) -> int:
    raw = options.get("db") or path.strip("/") or "0"
    if not raw.isdigit():
        raise _url_error("the database must be a number")
    return int(raw)


def _single_client(
    scheme: str, parts: Any, kwargs: dict[str, Any], db: int
) -> redis.Redis[bytes]:
    """A ``redis.Redis`` over a blocking pool (waits for a free connection, bounded)."""
    pool_kwargs = dict(kwargs, db=db, timeout=kwargs["socket_connect_timeout"])
    if scheme == "unix":
        if not parts.path:
            raise _url_error("unix:// needs a socket path")
        pool_kwargs["path"] = unquote(parts.path)
        pool_kwargs["connection_class"] = redis.UnixDomainSocketConnection
    else:
        if not parts.hostname:
            raise _url_error("a host is required")
        pool_kwargs.update(host=parts.hostname, port=parts.port or 6379)
        if scheme == "rediss":
            pool_kwargs["connection_class"] = redis.SSLConnection
    return redis.Redis(connection_pool=redis.BlockingConnectionPool(**pool_kwargs))


def _cluster_nodes(netloc: str) -> list[ClusterNode]:
    hosts = netloc.rpartition("@")[2]
    nodes = []
    for item in hosts.split(","):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise _url_error("cluster nodes must be host:port[,host:port…]")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    return nodes


def _cluster_client(scheme: str, parts: Any, kwargs: dict[str, Any]) -> RedisCluster[bytes]:
    """A ``RedisCluster``; it contacts the startup nodes to learn the slot map.

    Raises:
        StoreUnavailableError: no startup node answered.
    """
    if scheme == "rediss+cluster":
        kwargs["ssl"] = True
    nodes = _cluster_nodes(parts.netloc)
    try:
        return RedisCluster(startup_nodes=nodes, **kwargs)
    except _REDIS_ERRORS as exc:
        where = ",".join(f"{node.host}:{node.port}" for node in nodes)
        raise _wrap(exc, "redis-cluster", where) from exc


def _client_from_url(
    url: str, *, socket_timeout: float, socket_connect_timeout: float, max_connections: int
) -> Built:
    """The client for ``url``; :meth:`RedisStore.from_url` lists the accepted forms.

    Raises:
        ConfigurationError: malformed URL or option (the URL is never echoed).
        StoreUnavailableError: a Cluster's startup nodes did not answer.
    """
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if "+" not in scheme:
            _ = parts.port  # validates the port early (ValueError)
    except ValueError:
        raise _url_error("it could not be parsed") from None
    if scheme not in _SCHEMES:
        raise _url_error("unsupported scheme")
    sentinel = scheme.endswith("+sentinel")
    options = _parse_query(parts.query, tls=scheme.startswith("rediss"), sentinel=sentinel)
    defaults = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "max_connections": float(max_connections),
    }
    kwargs = _conn_kwargs(options, username, password, defaults)
    wait = _parse_wait(options, kwargs["socket_timeout"])
    if sentinel:
        from .sentinel import sentinel_spec

        spec = sentinel_spec(scheme, parts, options, kwargs, _url_error)
        return Built(spec.sync_client(), wait, spec)
    # unix:// paths name the socket; only redis(s):// paths carry the db number.
    db = _parse_db(options, parts.path if scheme in ("redis", "rediss") else "")
    if scheme.endswith("+cluster"):
        if db != 0:
            raise _url_error("Redis Cluster only has database 0")
        return Built(_cluster_client(scheme, parts, kwargs), wait)
    return Built(_single_client(scheme, parts, kwargs, db), wait)
