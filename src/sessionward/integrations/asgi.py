"""Plain ASGI middleware: a sessionward session in ``scope["sessionward.lifecycle.session"]``.

Per HTTP request: read the cookie with the hardened parser, load the session
through :class:`~sessionward.AsyncSessionManager` (a fresh lazy one when
absent or invalid), run the app, and — when the app starts its response —
save the session and add the cookie and cache headers from
:mod:`sessionward.integrations.cookies`.  A store that is down gives 503 with no
``Set-Cookie``: never a logout, never a new ID.

WebSocket handshakes need a valid session (``require_websocket_session``);
anything else is refused before ``accept``.  Sessions on WebSockets are
opened read-only: a long-lived socket never writes the session.

With ``guard=`` (opt-in, see :mod:`sessionward.integrations._flood`) an
address locked out for presenting too many rejected cookies gets ``429``
with ``Retry-After`` (WebSockets: close code 1008) before any session work.

Limitation: changes made after ``http.response.start`` (while streaming the
body) are not saved; finish session work before responding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..core.client import ClientInfo
from ..core.errors import SessionGoneError, StoreError
from ..lifecycle.amanager import AsyncSessionManager
from ..lifecycle.manager import SessionManager
from ..lifecycle.session import Session
from . import _flood, cookies
from .sessiondict import SessionDict

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MANAGER_KEY = "sessionward.lifecycle.manager"
SESSION_KEY = "sessionward.lifecycle.session"
WS_POLICY_VIOLATION = 1008


def header_values(scope: Scope, name: bytes) -> list[str]:
    """Every value of header ``name`` (lower-case bytes), latin-1 decoded."""
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]


def client_of(scope: Scope) -> ClientInfo:
    """The request's client (address from the server; see ProxyHeadersMiddleware)."""
    peer = scope.get("client")
    agents = header_values(scope, b"user-agent")
    ids = header_values(scope, b"x-request-id")
    return cookies.client_info(peer[0] if peer else None, agents[0] if agents else None,
                               ids[0][:128] if ids else None)


def _host(scope: Scope) -> str | None:
    hosts = header_values(scope, b"host")
    if hosts:
        return hosts[0]
    server = scope.get("server")
    return str(server[0]) if server else None


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def _decode(raw: Any) -> list[tuple[str, str]]:
    return [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in raw or ()]


async def plain_response(send: Send, status: int, body: bytes,
                         headers: list[tuple[str, str]]) -> None:
    """Send a complete small response."""
    await send({"type": "http.response.start", "status": status,
                "headers": _encode([*headers, ("Content-Length", str(len(body)))])})
    await send({"type": "http.response.body", "body": body})


def as_async(manager: AsyncSessionManager | SessionManager) -> AsyncSessionManager:
    """Wrap a sync manager (embedded or remote) for async use."""
    return manager if isinstance(manager, AsyncSessionManager) else AsyncSessionManager(manager)


class _Exchange:
    """One HTTP request/response pair and its session."""

    def __init__(self, owner: SessionMiddleware, scope: Scope, send: Send) -> None:
        self.owner = owner
        self.scope = scope
        self.send = send
        self.session: Session | None = None
        self.view: SessionDict | None = None
        self.cookie_sent = False
        self.started = False
        self.swallow = False

    async def open(self) -> Session:
        """Load (or start) the request's session.

        Raises:
            StoreError: the store is down.
        """
        mgr = self.owner.manager
        raw = header_values(self.scope, b"cookie")
        name = self.owner.policy.name
        self.cookie_sent = cookies.has_session_cookie(raw, name)
        client = client_of(self.scope)
        value = cookies.read_session_cookie(raw, name)
        session = await mgr.load(value, client=client) if value is not None else None
        self.session = session if session is not None else mgr.new(client=client)
        return self.session

    async def finish(self, session: Session) -> None:
        """Save changes (a concurrent logout turns into the deletion cookie).

        Raises:
            StoreError: the store is down.
        """
        if session.ended or session.mode == "read":
            return
        if self.view is not None and self.view.emptied_by_app and not session.is_new:
            await self.owner.manager.logout(session)  # session.clear(): the usual logout
            return
        try:
            await self.owner.manager.save(session)
        except SessionGoneError:
            session.ended = True

    async def wrapped_send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            session = self.session
            if session is not None:
                try:
                    await self.finish(session)
                except StoreError:
                    self.swallow = True
                    await self.store_down()
                    return
                extra = cookies.session_headers(
                    self.owner.policy, session,
                    cookie_sent=self.cookie_sent and self.owner.vary_on_presented_cookie,
                    now=self.owner.manager.sync.clock())
                merged = cookies.merge_headers(_decode(message.get("headers")), extra)
                message = {**message, "headers": _encode(merged)}
        elif self.swallow:
            return
        await self.send(message)

    async def store_down(self) -> None:
        await plain_response(self.send, cookies.STORE_DOWN_STATUS, cookies.STORE_DOWN_BODY,
                             cookies.store_down_headers())


class SessionMiddleware:
    """ASGI middleware putting a :class:`~sessionward.Session` into the scope.

    Args:
        app: the ASGI application.
        manager: an :class:`AsyncSessionManager` or any sync manager
            (``SessionManager``, ``RemoteSessionManager``), wrapped for you.
        scope_key: where the session goes (``"sessionward.lifecycle.session"``).
        require_websocket_session: refuse WebSocket handshakes without a
            valid session (default True).
        guard: opt-in flood guard spec (``True``, Throttle options, a
            ``Throttle`` or a guard; see :mod:`sessionward.integrations._flood`).

    Raises:
        ConfigurationError: an unusable ``guard`` spec.
    """

    scope_key = SESSION_KEY
    vary_on_presented_cookie = True
    """A presented cookie alone makes the response ``Vary: Cookie`` (plain ASGI,
    where the app may read the scope's session without marking it accessed)."""

    def __init__(self, app: ASGIApp, manager: AsyncSessionManager | SessionManager, *,
                 scope_key: str | None = None, require_websocket_session: bool = True,
                 guard: object = None, policy: cookies.CookiePolicy | None = None) -> None:
        self.app = app
        self.manager = as_async(manager)
        self.guard = _flood.resolve_guard(guard, manager)
        self.policy = policy or cookies.CookiePolicy.from_settings(self.manager.settings)
        if scope_key is not None:
            self.scope_key = scope_key
        self.require_websocket_session = require_websocket_session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _transport_ok(self, scope: Scope) -> bool:
        peer = scope.get("client")
        return cookies.transport_allowed(self.policy, scheme=str(scope.get("scheme", "http")),
                                         host=_host(scope), client_ip=peer[0] if peer else None)

    async def _blocked_for(self, scope: Scope) -> float:
        """Seconds the request's address must wait (0.0: serve it).

        Raises:
            StoreError: the store is down.
        """
        if self.guard is None:
            return 0.0
        sent = cookies.has_session_cookie(header_values(scope, b"cookie"), self.policy.name)
        return await asyncio.to_thread(_flood.blocked_for, self.guard, client_of(scope),
                                       cookie_sent=sent)

    async def _refused(self, scope: Scope, send: Send) -> bool:
        """Answer 403 (dev-mode transport), 429 (flood guard) or 503; True if answered."""
        if not self._transport_ok(scope):
            await plain_response(send, 403, cookies.DEV_HTTP_REFUSED_BODY,
                                 [("Content-Type", "text/plain; charset=utf-8")])
            return True
        try:
            wait = await self._blocked_for(scope)
        except StoreError:
            await plain_response(send, cookies.STORE_DOWN_STATUS, cookies.STORE_DOWN_BODY,
                                 cookies.store_down_headers())
            return True
        if wait > 0:
            await plain_response(send, cookies.THROTTLED_STATUS, cookies.THROTTLED_BODY,
                                 cookies.throttled_headers(wait))
            return True
        return False

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await self._refused(scope, send):
            return
        exchange = _Exchange(self, scope, send)
        try:
            session = await exchange.open()
        except StoreError:
            await exchange.store_down()
            return
        self.expose(scope, session, exchange)
        try:
            await self.app(scope, receive, exchange.wrapped_send)
        except StoreError:
            if exchange.started:
                raise
            await exchange.store_down()
        finally:
            await self.manager.release(session)

    async def _websocket_session(self, scope: Scope) -> tuple[Session | None, bool]:
        """The handshake's session (read-only) and whether to refuse regardless.

        A store outage or a locked-out address refuses the handshake even when
        anonymous sockets are allowed.
        """
        value = cookies.read_session_cookie(header_values(scope, b"cookie"), self.policy.name)
        if not self._transport_ok(scope):
            return None, True
        try:
            if await self._blocked_for(scope) > 0:
                return None, True
            if value is None:
                return None, False
            return await self.manager.load(value, client=client_of(scope), mode="read"), False
        except StoreError:
            return None, True

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        session, refuse = await self._websocket_session(scope)
        if refuse or (session is None and self.require_websocket_session):
            await receive()  # the websocket.connect message
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        self.expose(scope, session if session is not None else self.manager.new(mode="read"))
        await self.app(scope, receive, send)

    def expose(self, scope: Scope, session: Session, exchange: _Exchange | None = None) -> None:
        """Put the session (and the manager) where the app finds them."""
        scope[self.scope_key] = session
        scope[MANAGER_KEY] = self.manager


# ------------------------------------------------------------------ helpers


def session_of(scope: Scope, key: str = SESSION_KEY) -> Session:
    """The request's session.

    Raises:
        LookupError: the middleware is not installed.
    """
    session = scope.get(key)
    if not isinstance(session, Session):
        raise LookupError("sessionward SessionMiddleware is not installed for this app")
    return session


def manager_of(scope: Scope) -> AsyncSessionManager:
    """The manager the middleware uses.

    Raises:
        LookupError: the middleware is not installed.
    """
    manager = scope.get(MANAGER_KEY)
    if not isinstance(manager, AsyncSessionManager):
        raise LookupError("sessionward SessionMiddleware is not installed for this app")
    return manager
