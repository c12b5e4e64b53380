"""Starlette / FastAPI: pure ASGI middleware filling ``scope["session"]``.

``request.session`` then is a :class:`~sessionward.Session` (a
``MutableMapping``), async-native through
:class:`~sessionward.AsyncSessionManager`::

    from starlette.middleware import Middleware
    from sessionward.integrations.starlette import SessionMiddleware, login

    app = Starlette(routes=..., middleware=[Middleware(SessionMiddleware, manager=manager)])

    async def do_login(request):
        ...  # check the password
        await login(request, user_id)   # new ID, old one dead at once

Do not also install Starlette's own ``SessionMiddleware`` (it would
overwrite ``scope["session"]`` with a signed-cookie dict).
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import HTTPConnection

from ..lifecycle.amanager import AsyncSessionManager
from ..lifecycle.manager import SessionManager
from ..lifecycle.session import Session
from .asgi import ASGIApp, manager_of, session_of
from .asgi import SessionMiddleware as _AsgiSessionMiddleware

__all__ = ["SessionMiddleware", "elevate", "get_session", "login", "logout", "rotate"]


class SessionMiddleware(_AsgiSessionMiddleware):
    """The ASGI middleware with Starlette's scope key (``"session"``).

    Args:
        app: the ASGI app.
        manager: an :class:`AsyncSessionManager` or a sync manager.
        require_websocket_session: refuse WebSockets without a valid session.
        guard: opt-in flood guard: ``True``, a mapping of Throttle options, a
            ``Throttle`` or a guard (429 + ``Retry-After`` for an address that
            presented too many rejected cookies; see ``integrations._flood``).

    Raises:
        ConfigurationError: an unusable ``guard`` spec.
    """

    def __init__(self, app: ASGIApp, manager: AsyncSessionManager | SessionManager, *,
                 require_websocket_session: bool = True, guard: object = None) -> None:
        super().__init__(app, manager, scope_key="session",
                         require_websocket_session=require_websocket_session, guard=guard)


def get_session(conn: HTTPConnection) -> Session:
    """The typed session of a request or WebSocket.

    Raises:
        LookupError: the middleware is not installed.
    """
    return session_of(conn.scope, "session")


async def login(conn: HTTPConnection, user: str, *, level: int = 1,
                pending: bool = False) -> Session:
    """Log ``user`` in on this request's session: new ID, old one dead at once.

    Raises:
        LookupError: the middleware is not installed.
        SessionLimitError: the per-user limit rejects another session.
    """
    return await manager_of(conn.scope).login(get_session(conn), user, level=level,
                                              pending=pending)


async def logout(conn: HTTPConnection) -> None:
    """End the session; the response deletes the cookie.

    Raises:
        LookupError: the middleware is not installed.
    """
    await manager_of(conn.scope).logout(get_session(conn))


async def rotate(conn: HTTPConnection) -> Session:
    """New ID after a privilege change (no grace).

    Raises:
        LookupError: the middleware is not installed.
    """
    return await manager_of(conn.scope).rotate(get_session(conn))


async def elevate(conn: HTTPConnection, duration: timedelta = timedelta(minutes=5)) -> Session:
    """Step-up after the app re-authenticated the user.

    Raises:
        LookupError: the middleware is not installed.
        ReauthenticationRequired: nobody is logged in.
    """
    return await manager_of(conn.scope).elevate(get_session(conn), duration)
