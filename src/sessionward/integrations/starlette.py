"""Starlette / FastAPI: pure ASGI middleware filling ``scope["session"]``.

``request.session`` is a real ``dict`` (a
:class:`~sessionward.integrations.sessiondict.SessionDict`, as Starlette
types it), and :func:`get_session` returns the typed
:class:`~sessionward.Session` behind it; async-native through
:class:`~sessionward.AsyncSessionManager`::

    from starlette.middleware import Middleware
    from sessionward.integrations.starlette import SessionMiddleware, login

    app = Starlette(routes=..., middleware=[Middleware(SessionMiddleware, manager=manager)])

    async def do_login(request):
        ...  # check the password
        await login(request, user_id)   # new ID, old one dead at once

Starlette's own cookie options (``session_cookie``, ``max_age``, ``path``,
``same_site``, ``https_only``, ``domain``, ``partitioned``) are accepted with
Starlette's meaning and validated like sessionward's settings: what a
``__Host-`` cookie or the plain-http rules forbid is refused at start-up with
the reason.  ``request.session.clear()`` (or removing its last key) ends the
session: record deleted, deletion cookie sent, user binding gone.

Do not also install Starlette's own ``SessionMiddleware`` (it would
overwrite ``scope["session"]`` with a signed-cookie dict).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import HTTPConnection

from ..core.config import Settings
from ..core.errors import ConfigurationError
from ..lifecycle.amanager import AsyncSessionManager
from ..lifecycle.manager import SessionManager
from ..lifecycle.session import Session
from . import cookies
from .asgi import MANAGER_KEY, SESSION_KEY, ASGIApp, Scope, _Exchange, manager_of, session_of
from .asgi import SessionMiddleware as _AsgiSessionMiddleware
from .sessiondict import SessionDict

_DEFAULT: Any = object()

__all__ = ["SessionMiddleware", "elevate", "get_session", "login", "logout", "rotate"]


def starlette_cookie_policy(settings: Settings, *, session_cookie: str | None = None,
                            max_age: int | None = _DEFAULT, path: str | None = None,
                            same_site: str | None = None, https_only: bool | None = None,
                            domain: str | None = None,
                            partitioned: bool | None = None) -> cookies.CookiePolicy:
    """The cookie policy for Starlette's ``SessionMiddleware`` options over ``settings``.

    Options left out keep sessionward's setting (``__Host-session``,
    ``Secure``, ``SameSite=Lax``, ``Path=/``, no ``Domain``, no ``Max-Age``).
    ``max_age`` is the cookie's ``Max-Age`` (``None``: a browser-session
    cookie), still capped at the session's remaining absolute lifetime.

    Raises:
        ConfigurationError: an option sessionward refuses (e.g. ``path`` or
            ``domain`` with a ``__Host-`` cookie, ``https_only=False`` outside
            ``unsafe_dev_http``, ``max_age`` beyond the absolute timeout).
    """
    given: dict[str, object] = {
        "session_cookie": session_cookie, "path": path, "same_site": same_site,
        "https_only": https_only, "domain": domain, "partitioned": partitioned}
    changes: dict[str, Any] = {
        field: value for field, value in (
            ("cookie_name", session_cookie), ("cookie_path", path),
            ("cookie_same_site", same_site), ("cookie_secure", https_only),
            ("cookie_domain", domain), ("cookie_partitioned", partitioned))
        if value is not None}
    if max_age is not _DEFAULT:
        given["max_age"] = max_age
        if max_age is not None and (not isinstance(max_age, int) or max_age <= 0):
            raise ConfigurationError(
                f"SessionMiddleware(max_age={max_age!r}): max_age must be a positive number "
                "of seconds, or None for a browser-session cookie")
        changes["cookie_max_age"] = None if max_age is None else timedelta(seconds=max_age)
    try:
        return cookies.CookiePolicy.from_settings(settings.replace(**changes))
    except ConfigurationError as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in given.items() if v is not None)
        raise ConfigurationError(f"SessionMiddleware({shown}): {exc}") from exc


class SessionMiddleware(_AsgiSessionMiddleware):
    """sessionward sessions for Starlette: ``request.session`` is a real ``dict``.

    Args:
        app: the ASGI app.
        manager: an :class:`AsyncSessionManager` or a sync manager.
        require_websocket_session: refuse WebSockets without a valid session.
        guard: opt-in flood guard: ``True``, a mapping of Throttle options, a
            ``Throttle`` or a guard (429 + ``Retry-After`` for an address that
            presented too many rejected cookies; see ``integrations._flood``).
        session_cookie: Starlette's cookie options, here and below (see
            :func:`starlette_cookie_policy`); left out, sessionward's settings apply.
        max_age: ``Max-Age`` of the cookie (``None``: a browser-session cookie).
        path: the cookie ``Path``.
        same_site: the cookie ``SameSite``.
        https_only: the cookie ``Secure`` flag.
        domain: the cookie ``Domain``.
        partitioned: the cookie ``Partitioned`` flag.

    Raises:
        ConfigurationError: an unusable ``guard`` spec or a refused cookie option.
    """

    vary_on_presented_cookie = False  # request.session marks the session accessed

    def __init__(self, app: ASGIApp, manager: AsyncSessionManager | SessionManager, *,
                 require_websocket_session: bool = True, guard: object = None,
                 session_cookie: str | None = None, max_age: int | None = _DEFAULT,
                 path: str | None = None, same_site: str | None = None,
                 https_only: bool | None = None, domain: str | None = None,
                 partitioned: bool | None = None) -> None:
        policy = starlette_cookie_policy(
            manager.settings, session_cookie=session_cookie, max_age=max_age, path=path,
            same_site=same_site, https_only=https_only, domain=domain,
            partitioned=partitioned)
        super().__init__(app, manager, scope_key="session",
                         require_websocket_session=require_websocket_session, guard=guard,
                         policy=policy)

    def expose(self, scope: Scope, session: Session, exchange: _Exchange | None = None) -> None:
        """``scope["session"]``: the data as a ``SessionDict``; the typed session beside it."""
        view = SessionDict(session=session)
        scope["session"] = view
        scope[SESSION_KEY] = session
        scope[MANAGER_KEY] = self.manager
        if exchange is not None:
            exchange.view = view


def get_session(conn: HTTPConnection) -> Session:
    """The typed session of a request or WebSocket (marks it accessed, like
    ``request.session``).

    Raises:
        LookupError: the middleware is not installed.
    """
    session = session_of(conn.scope, SESSION_KEY)
    session.accessed = True
    return session


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
