"""Plain WSGI middleware: a sessionward session in ``environ["sessionward.lifecycle.session"]``.

Per request: read the cookie with the hardened parser, load the session (a
fresh lazy one when absent or invalid), call the app, and when the app calls
``start_response`` save the session and add the cookie and cache headers from
:mod:`sessionward.integrations.cookies`.  A store that is down gives 503 with no
``Set-Cookie``: never a logout, never a new ID.

With ``guard=`` (opt-in, see :mod:`sessionward.integrations._flood`) an
address locked out for presenting too many rejected cookies gets ``429``
with ``Retry-After`` before any session work.

Limitation: changes made after ``start_response`` (while the body is being
produced) are not saved; finish session work before starting the response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol

from ..core.client import ClientInfo
from ..core.errors import SessionGoneError, StoreError
from ..lifecycle.manager import SessionManager
from ..lifecycle.session import Session
from . import _flood, cookies

SESSION_KEY = "sessionward.lifecycle.session"
MANAGER_KEY = "sessionward.lifecycle.manager"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
Environ = dict[str, Any]


class StartResponse(Protocol):
    def __call__(self, status: str, headers: list[tuple[str, str]],
                 exc_info: ExcInfo | None = ..., /) -> Callable[[bytes], object]: ...


WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def cookie_headers(environ: Environ) -> list[str]:
    """The raw ``Cookie`` header (WSGI joins repeated headers into one)."""
    raw = environ.get("HTTP_COOKIE")
    return [raw] if isinstance(raw, str) else []


def client_of(environ: Environ) -> ClientInfo:
    """The request's client (``REMOTE_ADDR``; apply ProxyFix for proxies)."""
    return cookies.client_info(environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT"),
                               (environ.get("HTTP_X_REQUEST_ID") or "")[:128] or None)


def store_down(start_response: StartResponse) -> list[bytes]:
    """Start and return the 503 body for a store outage."""
    body = cookies.STORE_DOWN_BODY
    start_response("503 Service Unavailable",
                   [*cookies.store_down_headers(), ("Content-Length", str(len(body)))])
    return [body]


def throttled(start_response: StartResponse, retry_after: float) -> list[bytes]:
    """Start and return the 429 for a locked-out address (no ``Set-Cookie``)."""
    body = cookies.THROTTLED_BODY
    start_response("429 Too Many Requests",
                   [*cookies.throttled_headers(retry_after), ("Content-Length", str(len(body)))])
    return [body]


def finish(manager: SessionManager, session: Session) -> None:
    """Save the request's changes; a concurrent logout becomes a deletion cookie.

    Raises:
        StoreError: the store is down.
    """
    if session.ended or session.mode == "read":
        return
    try:
        manager.save(session)
    except SessionGoneError:
        session.ended = True


class _Exchange:
    def __init__(self, owner: SessionMiddleware, session: Session, cookie_sent: bool,
                 start_response: StartResponse) -> None:
        self.owner = owner
        self.session = session
        self.cookie_sent = cookie_sent
        self.start_response = start_response
        self.failed = False
        self.started = False

    def wrapped(self, status: str, headers: list[tuple[str, str]],
                exc_info: ExcInfo | None = None, /) -> Callable[[bytes], object]:
        self.started = True
        mgr = self.owner.manager
        try:
            finish(mgr, self.session)
        except StoreError:
            self.failed = True
            store_down(self.start_response)
            return lambda _data: None
        extra = cookies.session_headers(self.owner.policy, self.session,
                                        cookie_sent=self.cookie_sent, now=mgr.clock())
        if exc_info is None:
            return self.start_response(status, cookies.merge_headers(headers, extra))
        return self.start_response(status, cookies.merge_headers(headers, extra), exc_info)


class SessionMiddleware:
    """WSGI middleware putting a :class:`~sessionward.Session` into the environ.

    Args:
        app: the WSGI application.
        manager: a :class:`~sessionward.SessionManager` (or the daemon's
            ``RemoteSessionManager``).
        environ_key: where the session goes (``"sessionward.lifecycle.session"``).
        guard: opt-in flood guard spec (``True``, Throttle options, a
            ``Throttle`` or a guard; see :mod:`sessionward.integrations._flood`).

    Raises:
        ConfigurationError: an unusable ``guard`` spec.
    """

    def __init__(self, app: WSGIApp, manager: SessionManager, *,
                 environ_key: str = SESSION_KEY, guard: object = None) -> None:
        self.app = app
        self.manager = manager
        self.guard = _flood.resolve_guard(guard, manager)
        self.policy = cookies.CookiePolicy.from_settings(manager.settings)
        self.environ_key = environ_key

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not cookies.transport_allowed(
            self.policy, scheme=str(environ.get("wsgi.url_scheme", "http")),
            host=environ.get("HTTP_HOST") or environ.get("SERVER_NAME"),
            client_ip=environ.get("REMOTE_ADDR"),
        ):
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [cookies.DEV_HTTP_REFUSED_BODY]
        raw = cookie_headers(environ)
        name = self.manager.settings.cookie_name
        client = client_of(environ)
        value = cookies.read_session_cookie(raw, name)
        try:
            wait = _flood.blocked_for(self.guard, client,
                                      cookie_sent=cookies.has_session_cookie(raw, name))
            if wait > 0:
                return throttled(start_response, wait)
            loaded = self.manager.load(value, client=client) if value is not None else None
        except StoreError:
            return store_down(start_response)
        session = loaded if loaded is not None else self.manager.new(client=client)
        environ[self.environ_key] = session
        environ[MANAGER_KEY] = self.manager
        exchange = _Exchange(self, session, cookies.has_session_cookie(raw, name),
                             start_response)
        try:
            result = self.app(environ, exchange.wrapped)
        except StoreError:
            self.manager.release(session)
            if exchange.started:
                raise
            return store_down(start_response)
        return self._body(result, exchange)

    def _body(self, result: Iterable[bytes], exchange: _Exchange) -> Iterator[bytes]:
        try:
            for chunk in result:
                if not exchange.failed:
                    yield chunk
            if exchange.failed:
                yield cookies.STORE_DOWN_BODY
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            self.manager.release(exchange.session)


def session_of(environ: Environ, key: str = SESSION_KEY) -> Session:
    """The request's session.

    Raises:
        LookupError: the middleware is not installed.
    """
    session = environ.get(key)
    if not isinstance(session, Session):
        raise LookupError("sessionward WSGI SessionMiddleware is not installed")
    return session


def manager_of(environ: Environ) -> SessionManager:
    """The manager the middleware uses.

    Raises:
        LookupError: the middleware is not installed.
    """
    manager = environ.get(MANAGER_KEY)
    if manager is None:
        raise LookupError("sessionward WSGI SessionMiddleware is not installed")
    return manager  # type: ignore[no-any-return]  # environ values are Any
