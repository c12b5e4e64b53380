"""Redis Sentinel: ``redis+sentinel://`` URLs on redis-py's ``Sentinel.master_for``.

URL (the spelling of redis-sentinel-url, redisvl and LangChain)::

    redis+sentinel://[user:pass@]host:port[,host:port…]/MASTER_NAME[/db][?options]
    rediss+sentinel://…            # TLS to the sentinels and to the data nodes

- ``user:pass@`` are the credentials of the *data* nodes (the master and its
  replicas), as in every other Redis URL; ``?sentinel_username=…`` and
  ``?sentinel_password=…`` are those of the sentinels themselves (Sentinel's
  own ``requirepass``/ACL), which are often different.
- The hosts are the sentinels (default port 26379), never the data nodes:
  the master's address is asked from them on every new connection, so after a
  failover new connections go to the promoted replica.  A connection to a
  master that was demoted answers ``READONLY``; redis-py turns that into a
  connection error (a 503 here) and the next connection asks again.
- The other options (timeouts, ``max_connections``, TLS files,
  ``wait_replicas``) mean what they mean for ``redis://``.  The pool does not
  block: past ``max_connections`` concurrent commands a call fails (503).

The async flavour (:class:`AsyncSentinelPath`) asks the same sentinels with
``redis.asyncio.sentinel``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
import redis.asyncio.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.sentinel import Sentinel

from ...core.errors import ConfigurationError

DEFAULT_SENTINEL_PORT = 26379
_MASTER_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


@dataclass(frozen=True)
class SentinelSpec:
    """How to reach one Sentinel-monitored master (sync or async).

    Attributes:
        sentinels: ``(host, port)`` of each sentinel.
        master: the name the sentinels monitor (``sentinel monitor NAME …``).
        db: the database number on the data nodes.
        data_kwargs: redis-py connection keywords for the master.
        sentinel_kwargs: redis-py connection keywords for the sentinels.
    """

    sentinels: list[tuple[str, int]]
    master: str
    db: int
    data_kwargs: dict[str, Any]
    sentinel_kwargs: dict[str, Any]

    def sync_client(self) -> redis.Redis[bytes]:
        """A ``redis.Redis`` whose pool follows the sentinels' master."""
        sentinel = Sentinel(self.sentinels, sentinel_kwargs=self.sentinel_kwargs,
                            **self.data_kwargs)
        client: redis.Redis[bytes] = sentinel.master_for(self.master, db=self.db)
        return client

    def async_client(self) -> Any:
        """The ``redis.asyncio`` twin of :meth:`sync_client` (one per event loop);
        :func:`aclose_client` closes it and its sentinel connections."""
        data = dict(self.data_kwargs, retry=AsyncRetry(NoBackoff(), 0))
        sentinel = redis.asyncio.sentinel.Sentinel(
            self.sentinels, sentinel_kwargs=self.sentinel_kwargs, **data)
        return sentinel.master_for(self.master, db=self.db)


def close_sentinels(client: Any) -> None:
    """Disconnect the sentinel connections behind a sync ``master_for`` client."""
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", []):
        sentinel.close()


async def aclose_client(client: Any) -> None:
    """Close an async ``master_for`` client, its pool and its sentinel connections."""
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    await client.aclose()
    await client.connection_pool.disconnect()
    for sentinel in getattr(manager, "sentinels", []):
        await sentinel.aclose()


def _sentinel_hosts(netloc: str, error: Callable[[str], ConfigurationError]
                    ) -> list[tuple[str, int]]:
    hosts = []
    for item in netloc.rpartition("@")[2].split(","):
        if item.startswith("[") and "]" in item:  # [v6]:port
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        if not host or (port and not port.isdigit()):
            raise error("sentinels must be host[:port][,host[:port]…]")
        hosts.append((host, int(port or DEFAULT_SENTINEL_PORT)))
    return hosts


def _master_and_db(path: str, options: dict[str, str],
                   error: Callable[[str], ConfigurationError]) -> tuple[str, int]:
    parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
    if not parts or len(parts) > 2 or not _MASTER_RE.fullmatch(parts[0]):
        raise error("a Sentinel URL needs the master's name as its path: /MASTER_NAME[/db]")
    raw_db = options.get("db") or (parts[1] if len(parts) == 2 else "0")
    if not raw_db.isdigit():
        raise error("the database must be a number")
    return parts[0], int(raw_db)


def sentinel_spec(scheme: str, parts: Any, options: dict[str, str], kwargs: dict[str, Any],
                  error: Callable[[str], ConfigurationError]) -> SentinelSpec:
    """The :class:`SentinelSpec` of a parsed ``redis(s)+sentinel://`` URL.

    Args:
        kwargs: the data-node connection keywords built for every Redis URL.

    Raises:
        ConfigurationError: no master name, bad sentinel list or database.
    """
    master, db = _master_and_db(parts.path, options, error)
    data = dict(kwargs)
    common = {k: data[k] for k in ("socket_timeout", "socket_connect_timeout")}
    common.update({k: data[k] for k in _TLS_FILES if k in data})
    if scheme == "rediss+sentinel":
        data["ssl"] = common["ssl"] = True
    sentinel_kwargs = dict(common, username=options.get("sentinel_username"),
                           password=options.get("sentinel_password"))
    return SentinelSpec(_sentinel_hosts(parts.netloc, error), master, db, data, sentinel_kwargs)


class AsyncSentinelPath:
    """What :class:`~.records.AsyncCommands` needs (``execute``, ``pipeline``),
    over a ``redis.asyncio`` Sentinel client.

    redis.asyncio connections belong to the loop that made them: the client is
    made on first use in a loop and replaced (never awaited) in another one.
    """

    def __init__(self, spec: SentinelSpec) -> None:
        self._spec = spec
        self._client: Any = None  # redis.asyncio.Redis (its stubs lag behind)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or loop is not self._loop:
            self._client, self._loop = self._spec.async_client(), loop
        return self._client

    async def execute(self, *args: Any) -> Any:
        """One command (redis-py raises; the caller maps the error)."""
        return await self._current().execute_command(*args)

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Several commands on one connection; the first error reply is raised."""
        pipe = self._current().pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute())

    async def aclose(self) -> None:
        """Close this loop's client (another loop's is dropped, never awaited)."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await aclose_client(client)
