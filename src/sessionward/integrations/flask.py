"""Flask: a ``SessionInterface`` so ``flask.session`` is a sessionward session.

::

    app = Flask(__name__)
    app.config["SESSIONWARD_STORE_URL"] = "sqlite:////var/lib/myapp/sessions.db"
    app.config["SESSIONWARD_KEY_FILE"] = "/etc/myapp/session.key"
    init_app(app)

    @app.post("/login")
    def do_login():
        ...  # check the password
        login(user_id)            # new ID; the old one is dead at once

Every ``SESSIONWARD_*`` key maps onto :class:`~sessionward.Settings` (``*_SECONDS``
become durations) in :func:`settings_from_config`, except
``SESSIONWARD_FLOOD_GUARD``: the opt-in flood guard (``True``, a dict of
Throttle options, a ``Throttle`` or a guard; see
:mod:`sessionward.integrations._flood`) that answers 429 to an address that
presented too many rejected cookies.  Cookie and cache headers
come from :mod:`sessionward.integrations.cookies`; a store outage answers 503 (never a
logout, never a new cookie).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from flask import Flask, Response, current_app
from flask import session as flask_session
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request

from ..core.errors import StoreError, StoreUnavailableError, ThrottledError
from ..lifecycle.manager import SessionManager
from ..lifecycle.session import Session
from . import _flood, cookies
from .wsgi import finish

EXTENSION = "sessionward"
PREFIX = "SESSIONWARD_"
GUARD_KEY = "SESSIONWARD_FLOOD_GUARD"
"""The Flask config key of the flood guard spec (not a Settings field)."""


def settings_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``SESSIONWARD_*`` keys of a Flask config as Settings values.

    ``SESSIONWARD_STORE`` is accepted as an alias of ``SESSIONWARD_STORE_URL``.

    Returns:
        a mapping for :meth:`Settings.from_mapping` (keys lower-cased, prefix dropped).
    """
    values: dict[str, Any] = {}
    for name, value in config.items():
        if isinstance(name, str) and name.startswith(PREFIX) and name != GUARD_KEY:
            key = name[len(PREFIX):].lower()
            values["store_url" if key == "store" else key] = value
    return values


def manager_from_config(config: Mapping[str, Any]) -> SessionManager:
    """Build the manager from ``SESSIONWARD_*`` config (store URL + key file).

    Raises:
        ConfigurationError: unknown key, bad value, missing key file, bad URL.
    """
    from ..core.config import Settings

    settings = Settings.from_mapping(settings_from_config(config), source="Flask config")
    return SessionManager.from_url(settings.store_url, settings=settings)


class FlaskSession(SessionMixin):
    """``flask.session``: a view over the request's :class:`~sessionward.Session`."""

    def __init__(self, inner: Session, *, cookie_sent: bool) -> None:
        self.inner = inner
        self.cookie_sent = cookie_sent

    def __getitem__(self, key: str) -> Any:
        return self.inner[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.inner[key] = value

    def __delitem__(self, key: str) -> None:
        del self.inner[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)

    def __contains__(self, key: object) -> bool:
        return key in self.inner

    @property
    def accessed(self) -> bool:
        return self.inner.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        # Flask marks the session accessed when the app touches it; keep that.
        if value:
            self.inner.accessed = True

    @property
    def new(self) -> bool:
        return self.inner.is_new

    @new.setter
    def new(self, value: bool) -> None:
        return None

    @property
    def modified(self) -> bool:
        return self.inner.accessed

    @modified.setter
    def modified(self, value: bool) -> None:
        return None

    @property
    def permanent(self) -> bool:
        """Persistence comes from ``Settings.cookie_max_age``, not from this flag."""
        return False

    @permanent.setter
    def permanent(self, value: bool) -> None:
        return None


class UnavailableSession(FlaskSession):
    """Stands in while the store is down: any use raises StoreUnavailableError (→ 503)."""

    def __init__(self, *, cookie_sent: bool) -> None:
        self.cookie_sent = cookie_sent

    def _down(self) -> StoreUnavailableError:
        return StoreUnavailableError("the session store is unavailable")

    def __getitem__(self, key: str) -> Any:
        raise self._down()

    def __setitem__(self, key: str, value: Any) -> None:
        raise self._down()

    def __delitem__(self, key: str) -> None:
        raise self._down()

    def __iter__(self) -> Iterator[str]:
        raise self._down()

    def __len__(self) -> int:
        raise self._down()

    def __contains__(self, key: object) -> bool:
        raise self._down()

    @property
    def accessed(self) -> bool:
        return True

    @accessed.setter
    def accessed(self, value: bool) -> None:
        return None

    @property
    def new(self) -> bool:
        return False

    @new.setter
    def new(self, value: bool) -> None:
        return None


class ThrottledSession(UnavailableSession):
    """Stands in while the address is locked out by the flood guard (→ 429).

    The ``before_request`` hook answers 429 before any view runs; any other
    use raises :class:`~sessionward.core.errors.ThrottledError`.
    """

    def __init__(self, *, cookie_sent: bool, retry_after: float) -> None:
        super().__init__(cookie_sent=cookie_sent)
        self.retry_after = retry_after

    def _down(self) -> StoreUnavailableError:
        raise ThrottledError(self.retry_after, "this address is locked out")


class SessionwardInterface(SessionInterface):
    """Flask ``SessionInterface`` over a :class:`~sessionward.SessionManager`.

    Args:
        manager: the manager (embedded, or the daemon's ``RemoteSessionManager``).
        guard: an opt-in flood guard (see :func:`init_app`).
    """

    def __init__(self, manager: SessionManager, *,
                 guard: _flood.FloodGuard | None = None) -> None:
        self.manager = manager
        self.guard = guard
        self.policy = cookies.CookiePolicy.from_settings(manager.settings)

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if not cookies.transport_allowed(self.policy, scheme=request.scheme, host=request.host,
                                         client_ip=request.remote_addr):
            return None
        raw = request.headers.getlist("Cookie")
        name = self.manager.settings.cookie_name
        sent = cookies.has_session_cookie(raw, name)
        value = cookies.read_session_cookie(raw, name)
        client = cookies.client_info(request.remote_addr, request.headers.get("User-Agent"))
        try:
            wait = _flood.blocked_for(self.guard, client, cookie_sent=sent)
            if wait > 0:
                return ThrottledSession(cookie_sent=sent, retry_after=wait)
            loaded = self.manager.load(value, client=client) if value is not None else None
        except StoreError:
            return UnavailableSession(cookie_sent=sent)
        inner = loaded if loaded is not None else self.manager.new(client=client)
        return FlaskSession(inner, cookie_sent=sent)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if isinstance(session, UnavailableSession) or not isinstance(session, FlaskSession):
            _apply(response, cookies.cache_headers())
            return
        try:
            finish(self.manager, session.inner)
        except StoreError:
            _store_down(response)
            return
        finally:
            self.manager.release(session.inner)
        _apply(response, cookies.session_headers(self.policy, session.inner,
                                                 cookie_sent=session.cookie_sent,
                                                 now=self.manager.clock()))


def _apply(response: Response, extra: list[tuple[str, str]]) -> None:
    merged = cookies.merge_headers(list(response.headers.items()), extra)
    response.headers.clear()
    response.headers.extend(merged)


def _store_down(response: Response) -> None:
    response.status_code = cookies.STORE_DOWN_STATUS
    response.set_data(cookies.STORE_DOWN_BODY)
    response.headers.clear()
    response.headers.extend(cookies.store_down_headers())


def _store_down_response(_exc: StoreError | None = None) -> Response:
    return Response(cookies.STORE_DOWN_BODY, status=cookies.STORE_DOWN_STATUS,
                    headers=cookies.store_down_headers())


def _throttled_response(retry_after: float) -> Response:
    return Response(cookies.THROTTLED_BODY, status=cookies.THROTTLED_STATUS,
                    headers=cookies.throttled_headers(retry_after))


def _refuse_when_down() -> Response | None:
    proxied = flask_session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(proxied, ThrottledSession):
        return _throttled_response(proxied.retry_after)
    return _store_down_response() if isinstance(proxied, UnavailableSession) else None


def init_app(app: Flask, *, manager: SessionManager | None = None,
             guard: object = None) -> SessionManager:
    """Install sessionward as ``app``'s session backend.

    Args:
        app: the Flask app.
        manager: a ready manager; by default built from ``SESSIONWARD_*`` config.
        guard: the flood guard spec; by default ``SESSIONWARD_FLOOD_GUARD``
            (off when absent): ``True``, a dict of Throttle options, a
            ``Throttle`` or a guard.

    Returns:
        the manager in use (also ``app.extensions["sessionward"]``).

    Raises:
        ConfigurationError: invalid ``SESSIONWARD_*`` configuration.
    """
    mgr = manager if manager is not None else manager_from_config(app.config)
    spec = guard if guard is not None else app.config.get(GUARD_KEY)
    app.session_interface = SessionwardInterface(mgr, guard=_flood.resolve_guard(spec, mgr))
    app.extensions[EXTENSION] = mgr
    app.before_request(_refuse_when_down)
    app.register_error_handler(StoreError, _store_down_response)
    return mgr


# ------------------------------------------------------------------ helpers


def _manager() -> SessionManager:
    mgr: SessionManager = current_app.extensions[EXTENSION]
    return mgr


def current_session() -> Session:
    """The request's :class:`~sessionward.Session` (typed access to ``user`` etc.).

    Raises:
        LookupError: sessionward is not installed or the store is down.
    """
    proxied = flask_session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(proxied, UnavailableSession) or not isinstance(proxied, FlaskSession):
        raise LookupError("no sessionward session for this request")
    return proxied.inner


def login(user: str, *, level: int = 1, pending: bool = False) -> Session:
    """Log ``user`` in: new ID, the old one dead at once.

    Raises:
        LookupError: no sessionward session.
        SessionLimitError: the per-user limit rejects another session.
    """
    return _manager().login(current_session(), user, level=level, pending=pending)


def logout() -> None:
    """End the session; the response deletes the cookie.

    Raises:
        LookupError: no sessionward session.
    """
    _manager().logout(current_session())


def rotate() -> Session:
    """New ID after a privilege change (no grace).

    Raises:
        LookupError: no sessionward session.
    """
    return _manager().rotate(current_session())


def elevate(duration: timedelta = timedelta(minutes=5)) -> Session:
    """Step-up after re-authentication.

    Raises:
        LookupError: no sessionward session.
        ReauthenticationRequired: nobody is logged in.
    """
    return _manager().elevate(current_session(), duration)


__all__ = ["FlaskSession", "SessionwardInterface", "current_session", "elevate", "init_app",
           "login", "logout", "manager_from_config", "rotate", "settings_from_config"]
