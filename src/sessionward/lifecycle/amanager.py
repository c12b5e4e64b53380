"""AsyncSessionManager: the same recipe, awaitable — and, embedded, native.

Over an embedded :class:`SessionManager` the async manager runs the *same*
lifecycle coroutines as the sync manager (:mod:`.loader`, :mod:`.writer`,
:mod:`.update`, :mod:`.auth`...), awaited on the event loop over the store's
async flavour (:func:`~sessionward.stores.aio.async_store_for`): Redis over
``redis.asyncio``, SQLite on the loop with a zero busy timeout (a busy
database hands that statement to a thread), memory inline, any other store
one worker thread per store call.  There is no second copy of the policy to
drift (the twin-module drift of redis-py and Django's async sessions), and no
thread hand-off per request: measured, the hand-offs were ~46% of the
worker's CPU (``docs/performance.md``).

Over the daemon client (:class:`~sessionward.remote.RemoteSessionManager`,
which holds no policy: the daemon does) each call runs the sync client in a
worker thread, as before; ``release`` of a session without a lease needs no
thread.

Every method has the same semantics, arguments and exceptions as its sync
twin.
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
from ..stores.aio import AsyncSessionStore, async_store_for
from . import auth, expiry, inventory, loader, update, writer
from .inventory import SessionInfo
from .manager import SessionManager
from .port import async_io
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
    """Awaitable manager over a :class:`SessionManager` (native) or a daemon
    client (thread per call); see the module docstring.

    Args:
        manager: the embedded manager (its store, keys, settings, events and
            leases are shared) or a ``RemoteSessionManager``.
        store: the async flavour of the embedded manager's store, when the
            default (``async_store_for(manager.store)``) is not wanted.

    Raises:
        ConfigurationError: the store's async flavour cannot be built.
    """

    def __init__(self, manager: SyncSessionManager, *,
                 store: AsyncSessionStore | None = None) -> None:
        self.sync = manager
        self._embedded = manager if isinstance(manager, SessionManager) else None
        if self._embedded is not None:
            self.store = store or async_store_for(self._embedded.store)
            self.io = async_io(self.store)

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
        if self._embedded is None:
            raise AttributeError("a remote manager's events are emitted inside the daemon")
        return self._embedded.events

    @property
    def keyring(self) -> KeyRing:
        """The embedded manager's keys (a daemon keeps its keys to itself).

        Raises:
            AttributeError: wrapping a remote manager.
        """
        if self._embedded is None:
            raise AttributeError("a remote manager holds no keys: the daemon does")
        return self._embedded.keyring

    def new(self, *, client: ClientInfo | None = None, mode: OpenMode | None = None) -> Session:
        """A new lazy session (no I/O, so not a coroutine)."""
        return self.sync.new(client=client, mode=mode)

    async def load(self, cookie_value: object, *, client: ClientInfo | None = None,
                   mode: OpenMode | None = None) -> Session | None:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.load, cookie_value, client=client,
                                           mode=mode)
        session, lease = await loader.load(m.runtime, self.io, m, cookie_value, client,
                                           mode or m.settings.default_mode)
        if session is not None and lease is not None:
            m.leases.hold(session, lease)
        return session

    async def save(self, session: Session, *, create_empty: bool = False) -> None:
        m = self._embedded
        if m is None:
            await asyncio.to_thread(self.sync.save, session, create_empty=create_empty)
            return
        await writer.save(m.runtime, self.io, session, create_empty=create_empty)

    async def set_expiry(self, session: Session, *, idle: timedelta | None = None,
                         at: float | None = None) -> None:
        m = self._embedded
        if m is None:
            await asyncio.to_thread(self.sync.set_expiry, session, idle=idle, at=at)
            return
        await expiry.apply(m.runtime, self.io, session, idle=idle, at=at)

    async def update(self, session: Session, key: str, fn: Callable[[Any], Any]) -> Any:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.update, session, key, fn)
        return await update.update(m.runtime, self.io, session, key, fn)

    async def release(self, session: Session) -> None:
        """Release an exclusive-mode lease (no I/O, no thread, when none is held)."""
        m = self._embedded
        if m is not None:
            await auth.release(self.io, m.leases, session)
        elif session.lock_token is None:
            self.sync.release(session)  # no lease: nothing to send to the daemon
        else:
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
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.login, session, user, level=level,
                                           pending=pending, keep_data=keep_data)
        return await auth.login(m.runtime, self.io, m.leases, session, user, level=level,
                                pending=pending, keep_data=keep_data, fresh=True)

    async def rotate(self, session: Session, *, reason: str = "privilege_change") -> Session:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.rotate, session, reason=reason)
        await auth.reissue(m.runtime, self.io, m.leases, session, reason=reason)
        return session

    async def elevate(self, session: Session,
                      duration: timedelta = timedelta(minutes=5)) -> Session:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.elevate, session, duration)
        return await auth.elevate(m.runtime, self.io, m.leases, session, duration)

    def is_elevated(self, session: Session) -> bool:
        return self.sync.is_elevated(session)

    def require_recent_auth(self, session: Session, max_age: timedelta) -> None:
        self.sync.require_recent_auth(session, max_age)

    async def logout(self, session: Session) -> None:
        m = self._embedded
        if m is None:
            await asyncio.to_thread(self.sync.logout, session)
            return
        await auth.end(m.runtime, self.io, m.leases, session, "logout")

    async def destroy(self, session: Session) -> None:
        m = self._embedded
        if m is None:
            await asyncio.to_thread(self.sync.destroy, session)
            return
        await auth.end(m.runtime, self.io, m.leases, session, "destroyed")

    async def sessions_of(self, user: str, *, current: Session | None = None
                          ) -> list[SessionInfo]:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.sessions_of, user, current=current)
        return await inventory.sessions_of(m.runtime, self.io, user, current=current)

    async def revoke(self, handle: str, *, reason: str = "admin") -> bool:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.revoke, handle, reason=reason)
        return await inventory.revoke(m.runtime, self.io, handle, reason=reason)

    async def revoke_user(self, user: str, *, keep: Session | str | None = None) -> int:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.revoke_user, user, keep=keep)
        return await inventory.revoke_user(m.runtime, self.io, user, keep=keep)

    async def revoke_device(self, session: Session, handle: str, *,
                            max_auth_age: timedelta = timedelta(minutes=5)) -> bool:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.revoke_device, session, handle,
                                           max_auth_age=max_auth_age)
        return await auth.revoke_device(m.runtime, self.io, session, handle, max_auth_age)

    async def cleanup(self, *, batch: int = 500, max_batches: int | None = None) -> int:
        m = self._embedded
        if m is None:
            return await asyncio.to_thread(self.sync.cleanup, batch=batch,
                                           max_batches=max_batches)
        return await inventory.cleanup(m.runtime, self.io, batch=batch,
                                       max_batches=max_batches, progress=None)

    async def close(self) -> None:
        if self._embedded is not None:
            await self.store.aclose()
        await asyncio.to_thread(self.sync.close)
