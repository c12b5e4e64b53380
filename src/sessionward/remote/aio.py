"""The awaitable facade over :class:`~sessionward.remote.RemoteSessionManager`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..lifecycle.amanager import AsyncSessionManager

if TYPE_CHECKING:
    from .manager import RemoteSessionManager


class AsyncRemoteSessionManager(AsyncSessionManager):
    """:class:`~sessionward.AsyncSessionManager` over a daemon client: the same
    facade (each call runs in a worker thread), built from a daemon URL."""

    def __init__(self, remote: RemoteSessionManager) -> None:
        super().__init__(remote)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> AsyncRemoteSessionManager:
        """Same arguments as :meth:`RemoteSessionManager.from_url`.

        Raises:
            ConfigurationError: see :meth:`RemoteSessionManager.from_url`.
        """
        from .manager import RemoteSessionManager

        return cls(RemoteSessionManager.from_url(url, **kwargs))
