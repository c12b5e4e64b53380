"""The daemon client: the :class:`~sessionward.SessionManager` interface over
``sessionward serve`` (the worker holds no key; the daemon seals, opens, merges
and enforces policy).

Modules: :mod:`.manager` (session commands), :mod:`.pool` (transport, pool,
daemon URLs), :mod:`.views` (:class:`RemoteSession` and view conversion),
:mod:`.inventory` (inventory, admin, tokens and throttle calls), :mod:`.kv`
(the token and throttle clients), :mod:`.aio` (the awaitable facade).
"""

from __future__ import annotations

from .aio import AsyncRemoteSessionManager as AsyncRemoteSessionManager
from .manager import RemoteSessionManager as RemoteSessionManager
from .pool import POOL_IDLE_SECONDS as POOL_IDLE_SECONDS
from .pool import parse_url as parse_url
from .views import RemoteSession as RemoteSession

__all__ = [
    "POOL_IDLE_SECONDS", "AsyncRemoteSessionManager", "RemoteSession",
    "RemoteSessionManager", "parse_url",
]
