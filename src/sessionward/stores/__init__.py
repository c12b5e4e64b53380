"""Stores by URL: one registry, lazy imports of optional dependencies.

=============================== ================================================
URL                             store
=============================== ================================================
``sqlite:///path/sessions.db``  :class:`~sessionward.stores.sqlite.SQLiteStore`
``file:///path/dir``            :class:`~sessionward.stores.filesystem.FileStore`
``redis://host:port/db``        :class:`~sessionward.stores.redis.RedisStore`
``rediss://…``                  Redis over TLS
``unix:///path/redis.sock``     Redis over a Unix socket (redis-py's convention)
``redis+cluster://host:port``   Redis Cluster (``rediss+cluster://`` over TLS)
``redis+sentinel://h:p/master`` Redis Sentinel (``rediss+sentinel://`` over TLS)
``memory://``                   :class:`~sessionward.stores.memory.MemoryStore`
=============================== ================================================

The daemon URLs (``sessionward:///path.sock``, ``sessionward+tcp://…``) are
served by :class:`sessionward.remote.RemoteSessionManager`, not by a store:
the daemon holds the keys and the policy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from urllib.parse import urlsplit

from ..core.clock import system_clock
from ..core.errors import ConfigurationError
from .base import Capability, SessionStore, StoredRecord, StoreStats

__all__ = ["Capability", "SessionStore", "StoreStats", "StoredRecord", "open_store"]

_REGISTRY: dict[str, tuple[str, str, str]] = {
    # scheme: (module, class, pip extra)
    "memory": ("sessionward.stores.memory", "MemoryStore", ""),
    "sqlite": ("sessionward.stores.sqlite", "SQLiteStore", ""),
    "file": ("sessionward.stores.filesystem", "FileStore", ""),
    "redis": ("sessionward.stores.redis", "RedisStore", "redis"),
    "rediss": ("sessionward.stores.redis", "RedisStore", "redis"),
    "unix": ("sessionward.stores.redis", "RedisStore", "redis"),
    "redis+cluster": ("sessionward.stores.redis", "RedisStore", "redis"),
    "rediss+cluster": ("sessionward.stores.redis", "RedisStore", "redis"),
    "redis+sentinel": ("sessionward.stores.redis", "RedisStore", "redis"),
    "rediss+sentinel": ("sessionward.stores.redis", "RedisStore", "redis"),
}


_CREATES = frozenset({"sqlite", "file"})
"""Schemes whose store is made on first open (a file, a directory) unless ``create=False``."""


def open_store(url: str, *, clock: Callable[[], float] = system_clock,
               create: bool = True) -> SessionStore:
    """Open the store named by ``url``.

    Args:
        url: the store URL (the table above).
        clock: POSIX-seconds clock.
        create: ``False`` opens an existing store only: a missing SQLite file or
            file-store directory raises :class:`~sessionward.core.errors.StoreNotFoundError`
            and nothing is written on open (what read-only tools want: a typo
            must not look like an empty store).  Servers (Redis) and
            ``memory://`` are unaffected.

    Raises:
        ConfigurationError: unknown scheme, a daemon URL, or a missing extra
            (the message names the ``pip install`` to run).
        StoreNotFoundError: ``create=False`` and the store does not exist.
    """
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in ("sessionward", "sessionward+tcp"):
        raise ConfigurationError(
            "a sessionward:// URL names the daemon; use "
            "sessionward.remote.RemoteSessionManager.from_url() instead of a store"
        )
    entry = _REGISTRY.get(scheme)
    if entry is None:
        known = ", ".join(f"{s}://" for s in sorted(_REGISTRY))
        raise ConfigurationError(f"unknown store URL scheme {scheme!r}; known: {known}")
    module_name, class_name, extra = entry
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'sessionward[{extra}]'" if extra else "reinstall sessionward"
        raise ConfigurationError(
            f"the {scheme}:// store needs a missing dependency ({exc.name}); run: {hint}"
        ) from None
    factory = getattr(module, class_name).from_url
    extra_args = {"create": False} if not create and scheme in _CREATES else {}
    store: SessionStore = factory(url, clock=clock, **extra_args)
    return store
