"""The awaitable facade over :class:`~sessionward.remote.RemoteSessionManager`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ._remote_views import RemoteSession
from .client import ClientInfo
from .config import OpenMode, Settings
from .inventory import SessionInfo
from .session import Session

if TYPE_CHECKING:
    from .remote import RemoteSessionManager


class AsyncRemoteSessionManager:
    """Awaitable facade over :class:`RemoteSessionManager` (same design as
    :class:`~sessionward.AsyncSessionManager`: each call runs in a worker
    thread, so one implementation serves both flavours)."""

    def __init__(self, remote: RemoteSessionManager) -> None:
        self.sync = remote

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> AsyncRemoteSessionManager:
        """Same arguments as :meth:`RemoteSessionManager.from_url`.

        Raises:
            ConfigurationError: see :meth:`RemoteSessionManager.from_url`.
        """
        from .remote import RemoteSessionManager

        return cls(RemoteSessionManager.from_url(url, **kwargs))

    @property
    def settings(self) -> Settings:
        return self.sync.settings

    def new(self, *, client: ClientInfo | None = None,
            mode: OpenMode | None = None) -> RemoteSession:
        return self.sync.new(client=client, mode=mode)

    async def load(self, cookie_value: object, *, client: ClientInfo | None = None,
                   mode: OpenMode | None = None) -> RemoteSession | None:
        return await asyncio.to_thread(self.sync.load, cookie_value, client=client, mode=mode)

    async def save(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.save, session)

    async def update(self, session: Session, key: str, fn: Callable[[Any], Any]) -> Any:
        return await asyncio.to_thread(self.sync.update, session, key, fn)

    async def release(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.release, session)

    @asynccontextmanager
    async def open(self, cookie_value: object, *, client: ClientInfo | None = None,
                   mode: OpenMode | None = None) -> AsyncIterator[Session]:
        """Async twin of :meth:`RemoteSessionManager.open`."""
        session: Session | None = await self.load(cookie_value, client=client, mode=mode)
        if session is None:
            session = self.new(client=client, mode=mode)
        try:
            yield session
            if not session.ended and session.mode != "read":
                await self.save(session)
        finally:
            await self.release(session)

    async def login(self, session: Session, user: str, *, level: int = 1,
                    pending: bool = False, keep_data: bool = True) -> Session:
        return await asyncio.to_thread(self.sync.login, session, user, level=level,
                                       pending=pending, keep_data=keep_data)

    async def rotate(self, session: Session, *, reason: str = "privilege_change") -> Session:
        return await asyncio.to_thread(self.sync.rotate, session, reason=reason)

    async def elevate(self, session: Session,
                      duration: timedelta = timedelta(minutes=5)) -> Session:
        return await asyncio.to_thread(self.sync.elevate, session, duration)

    def is_elevated(self, session: Session) -> bool:
        return self.sync.is_elevated(session)

    def require_recent_auth(self, session: Session, max_age: timedelta) -> None:
        self.sync.require_recent_auth(session, max_age)

    async def logout(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.logout, session)

    async def destroy(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.destroy, session)

    async def sessions_of(self, user: str, *, current: Session | None = None
                          ) -> list[SessionInfo]:
        return await asyncio.to_thread(self.sync.sessions_of, user, current=current)

    async def revoke(self, handle: str, *, reason: str = "admin") -> bool:
        return await asyncio.to_thread(self.sync.revoke, handle, reason=reason)

    async def revoke_user(self, user: str, *, keep: Session | str | None = None) -> int:
        return await asyncio.to_thread(self.sync.revoke_user, user, keep=keep)

    async def revoke_device(self, session: Session, handle: str, *,
                            max_auth_age: timedelta = timedelta(minutes=5)) -> bool:
        return await asyncio.to_thread(self.sync.revoke_device, session, handle,
                                       max_auth_age=max_auth_age)

    async def cleanup(self, *, batch: int = 1000, max_batches: int | None = None) -> int:
        return await asyncio.to_thread(self.sync.cleanup, batch=batch, max_batches=max_batches)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)
