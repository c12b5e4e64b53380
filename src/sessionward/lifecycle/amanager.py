"""AsyncSessionManager: the same recipe, awaitable.

Design choice (see ``docs/concepts.md``): one implementation of the policy.
Each call runs the synchronous :class:`SessionManager` method in a worker
thread (``asyncio.to_thread``), so the event loop never blocks on store I/O
or crypto, and the sync and async flavours cannot drift apart (the twin-module
drift that redis-py and Django's async sessions suffer).  Every method has the
same semantics, arguments and exceptions as its sync twin.

The facade wraps either an embedded :class:`SessionManager` or the daemon
client :class:`~sessionward.remote.RemoteSessionManager` (whose async flavour,
``AsyncRemoteSessionManager``, is this class with another ``from_url``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Protocol

from ..audit.events import EventHub
from ..core.client import ClientInfo
from ..core.clock import Clock
from ..core.config import OpenMode, Settings
from ..core.keys import KeyRing
from .inventory import SessionInfo
from .manager import SessionManager
from .session import Session


class SyncSessionManager(Protocol):
    """Protocol: the manager interface the facade wraps — the embedded
    :class:`SessionManager` or the daemon client
    :class:`~sessionward.remote.RemoteSessionManager`."""

    @property
    def settings(self) -> Settings: ...
    @property
    def clock(self) -> Clock: ...
    def new(self, *, client: ClientInfo | None = ..., mode: OpenMode | None = ...
            ) -> Session: ...
    def load(self, cookie_value: object, *, client: ClientInfo | None = ...,
             mode: OpenMode | None = ...) -> Session | None: ...
    def save(self, session: Session, *, create_empty: bool = ...) -> None: ...
    def set_expiry(self, session: Session, *, idle: timedelta | None = ...,
                   at: float | None = ...) -> None: ...
    def update(self, session: Session, key: str, fn: Callable[[Any], Any]) -> Any: ...
    def release(self, session: Session) -> None: ...
    def login(self, session: Session, user: str, *, level: int = ..., pending: bool = ...,
              keep_data: bool = ...) -> Session: ...
    def rotate(self, session: Session, *, reason: str = ...) -> Session: ...
    def elevate(self, session: Session, duration: timedelta = ...) -> Session: ...
    def is_elevated(self, session: Session) -> bool: ...
    def require_recent_auth(self, session: Session, max_age: timedelta) -> None: ...
    def logout(self, session: Session) -> None: ...
    def destroy(self, session: Session) -> None: ...
    def sessions_of(self, user: str, *, current: Session | None = ...
                    ) -> list[SessionInfo]: ...
    def revoke(self, handle: str, *, reason: str = ...) -> bool: ...
    def revoke_user(self, user: str, *, keep: Session | str | None = ...) -> int: ...
    def revoke_device(self, session: Session, handle: str, *,
                      max_auth_age: timedelta = ...) -> bool: ...
    def cleanup(self, *, batch: int = ..., max_batches: int | None = ...) -> int: ...
    def close(self) -> None: ...


class AsyncSessionManager:
    """Awaitable facade over a :class:`SessionManager` (see its docs)."""

    def __init__(self, manager: SyncSessionManager) -> None:
        self.sync = manager

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> AsyncSessionManager:
        """Same arguments as :meth:`SessionManager.from_url`."""
        return cls(SessionManager.from_url(url, **kwargs))

    @property
    def settings(self) -> Settings:
        return self.sync.settings

    @property
    def events(self) -> EventHub:
        """The embedded manager's event hub (a daemon's events stay in the daemon).

        Raises:
            AttributeError: wrapping a remote manager.
        """
        if not isinstance(self.sync, SessionManager):
            raise AttributeError("a remote manager's events are emitted inside the daemon")
        return self.sync.events

    @property
    def keyring(self) -> KeyRing:
        """The embedded manager's keys (a daemon keeps its keys to itself).

        Raises:
            AttributeError: wrapping a remote manager.
        """
        if not isinstance(self.sync, SessionManager):
            raise AttributeError("a remote manager holds no keys: the daemon does")
        return self.sync.keyring

    def new(self, *, client: ClientInfo | None = None, mode: OpenMode | None = None) -> Session:
        """A new lazy session (no I/O, so not a coroutine)."""
        return self.sync.new(client=client, mode=mode)

    async def load(self, cookie_value: object, *, client: ClientInfo | None = None,
                   mode: OpenMode | None = None) -> Session | None:
        return await asyncio.to_thread(self.sync.load, cookie_value, client=client, mode=mode)

    async def save(self, session: Session, *, create_empty: bool = False) -> None:
        await asyncio.to_thread(self.sync.save, session, create_empty=create_empty)

    async def set_expiry(self, session: Session, *, idle: timedelta | None = None,
                         at: float | None = None) -> None:
        await asyncio.to_thread(self.sync.set_expiry, session, idle=idle, at=at)

    async def update(self, session: Session, key: str, fn: Callable[[Any], Any]) -> Any:
        return await asyncio.to_thread(self.sync.update, session, key, fn)

    async def release(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.release, session)

    @asynccontextmanager
    async def open(self, cookie_value: object, *, client: ClientInfo | None = None,
                   mode: OpenMode | None = None) -> AsyncIterator[Session]:
        """Async twin of :meth:`SessionManager.open`."""
        session = await self.load(cookie_value, client=client, mode=mode)
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

    async def cleanup(self, *, batch: int = 500, max_batches: int | None = None) -> int:
        return await asyncio.to_thread(self.sync.cleanup, batch=batch, max_batches=max_batches)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)
