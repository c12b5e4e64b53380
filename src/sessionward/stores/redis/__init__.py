"""Redis stores: one node, TLS, a Unix socket, or a Redis Cluster
(``sessionward.stores.redis.RedisStore``); see :mod:`.store` and
docs/stores-redis.md."""

from __future__ import annotations

from .store import RedisStore as RedisStore
from .url import Client as Client

__all__ = ["Client", "RedisStore"]
