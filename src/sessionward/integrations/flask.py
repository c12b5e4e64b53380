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

``flask.session`` is a real ``dict`` (:class:`FlaskSession`, a
:class:`~sessionward.integrations.sessiondict.SessionDict`) with Flask's
meaning of its flags: ``accessed`` is set when the app touches
``flask.session`` (Flask 3.1.3), ``modified`` when a mutating method ran or
the app set it.  ``Vary: Cookie`` + ``Cache-Control: no-store`` go only on
responses that accessed the session or send a cookie, so static files and
routes that never touch it keep their own caching headers.  Emptying the
session (``session.clear()``) ends it: record deleted, deletion cookie, user
binding gone.  ``session.permanent`` gives the cookie a lifetime of
``PERMANENT_SESSION_LIFETIME`` (never beyond the session's absolute
expiry), refreshed on each request while ``SESSION_REFRESH_EACH_REQUEST``.

Every ``SESSIONWARD_*`` key maps onto :class:`~sessionward.Settings`; Flask's
``SESSION_COOKIE_*`` keys are honoured or refused with the reason (see
:mod:`sessionward.integrations._flask_config`).  ``SESSIONWARD_FLOOD_GUARD``
is the opt-in flood guard (``True``, a dict of Throttle options, a
``Throttle`` or a guard; see :mod:`sessionward.integrations._flood`) that
answers 429 to an address that presented too many rejected cookies.  A store
outage answers 503 (never a logout, never a new cookie).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn

from flask import Flask, Response, current_app
from flask import request as flask_request
from flask import session as flask_session
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request

from ..core.errors import StoreError, StoreUnavailableError, ThrottledError
from ..lifecycle.manager import SessionManager
from ..lifecycle.session import Session
from . import _flask_config, _flood, cookies
from ._flask_config import GUARD_KEY, PREFIX, settings_from_config
from .sessiondict import SessionDict
from .wsgi import finish

EXTENSION = "sessionward"
REFUSAL_KEY = "sessionward.flask.refusal"
"""``request.environ`` key: why ``open_session`` could not open the session."""


def manager_from_config(config: Mapping[str, Any]) -> SessionManager:
    """Build the manager from ``SESSIONWARD_*`` config (store URL + key file).

    Raises:
        ConfigurationError: unknown key, bad value, missing key file, bad URL.
    """
    from ..core.config import Settings

    settings = Settings.from_mapping(settings_from_config(config), source="Flask config")
    return SessionManager.from_url(settings.store_url, settings=settings)


class FlaskSession(SessionDict, SessionMixin):
    """``flask.session``: a ``dict`` holding the request's sessionward data.

    ``inner`` (also ``.session``) is the typed :class:`~sessionward.Session`.
    ``permanent`` is Flask's ``_permanent`` key.
    """

    def __init__(self, inner: Session, *, cookie_sent: bool) -> None:
        super().__init__(session=inner)
        self.inner = inner
        self.cookie_sent = cookie_sent

    @property
    def new(self) -> bool:  # type: ignore[override]  # SessionMixin: a plain class attribute
        """True until the session is first stored."""
        return self.inner.is_new


class UnavailableSession(SessionDict, SessionMixin):
    """Stands in while the store is down: any use raises StoreUnavailableError (→ 503)."""

    def __init__(self, *, cookie_sent: bool) -> None:
        super().__init__()
        self.cookie_sent = cookie_sent

    def _down(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise StoreUnavailableError("the session store is unavailable")

    __getitem__ = __setitem__ = __delitem__ = __iter__ = __len__ = __contains__ = _down
    get = pop = popitem = setdefault = update = clear = keys = values = items = _down


class ThrottledSession(UnavailableSession):
    """Stands in while the address is locked out by the flood guard (→ 429).

    The ``before_request`` hook answers 429 before any view runs; any other
    use raises :class:`~sessionward.core.errors.ThrottledError`.
    """

    def __init__(self, *, cookie_sent: bool, retry_after: float) -> None:
        super().__init__(cookie_sent=cookie_sent)
        self.retry_after = retry_after

    def _down(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ThrottledError(self.retry_after, "this address is locked out")

    __getitem__ = __setitem__ = __delitem__ = __iter__ = __len__ = __contains__ = _down
    get = pop = popitem = setdefault = update = clear = keys = values = items = _down


class SessionwardInterface(SessionInterface):
    """Flask ``SessionInterface`` over a :class:`~sessionward.SessionManager`.

    Args:
        manager: the manager (embedded, or the daemon's ``RemoteSessionManager``).
        guard: an opt-in flood guard (see :func:`init_app`).
        config: the app's config, to check Flask's cookie keys at start-up.

    Raises:
        ConfigurationError: a Flask cookie key sessionward refuses.
    """

    def __init__(self, manager: SessionManager, *,
                 guard: _flood.FloodGuard | None = None,
                 config: Mapping[str, Any] | None = None) -> None:
        self.manager = manager
        self.guard = guard
        self._policy: tuple[tuple[Any, ...], cookies.CookiePolicy] | None = None
        if config is not None:
            self.cookie_policy(config)

    @property
    def policy(self) -> cookies.CookiePolicy:
        """The cookie policy last built (sessionward's settings before any request)."""
        if self._policy is None:
            return cookies.CookiePolicy.from_settings(self.manager.settings)
        return self._policy[1]

    def cookie_policy(self, config: Mapping[str, Any]) -> cookies.CookiePolicy:
        """The policy for ``config`` (rebuilt only when Flask's cookie keys changed).

        Raises:
            ConfigurationError: a Flask cookie key sessionward refuses.
        """
        key = _flask_config.policy_key(config)
        if self._policy is None or self._policy[0] != key:
            self._policy = (key, _flask_config.cookie_policy(config, self.manager.settings))
        return self._policy[1]

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        policy = self.cookie_policy(app.config)
        if not cookies.transport_allowed(policy, scheme=request.scheme, host=request.host,
                                         client_ip=request.remote_addr):
            return None
        raw = request.headers.getlist("Cookie")
        sent = cookies.has_session_cookie(raw, policy.name)
        value = cookies.read_session_cookie(raw, policy.name)
        client = cookies.client_info(request.remote_addr, request.headers.get("User-Agent"))
        try:
            wait = _flood.blocked_for(self.guard, client, cookie_sent=sent)
            if wait > 0:
                request.environ[REFUSAL_KEY] = wait
                return ThrottledSession(cookie_sent=sent, retry_after=wait)
            loaded = self.manager.load(value, client=client) if value is not None else None
        except StoreError:
            request.environ[REFUSAL_KEY] = 0.0
            return UnavailableSession(cookie_sent=sent)
        inner = loaded if loaded is not None else self.manager.new(client=client)
        return FlaskSession(inner, cookie_sent=sent)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskSession):
            if isinstance(session, UnavailableSession):
                _apply(response, cookies.cache_headers())
            return
        inner = session.inner
        try:
            if session.emptied_by_app and not inner.is_new and not inner.ended:
                self.manager.logout(inner)  # session.clear(): the usual Flask logout
            else:
                finish(self.manager, inner)
        except StoreError:
            _store_down(response)
            return
        finally:
            self.manager.release(inner)
        _apply(response, self._headers(app, session))

    def _headers(self, app: Flask, session: FlaskSession) -> list[tuple[str, str]]:
        """Flask's cookie rules on sessionward's session (see the module docstring)."""
        inner, policy = session.inner, self.cookie_policy(app.config)
        if session.permanent:
            policy = dataclasses.replace(policy,
                                         max_age=_flask_config.permanent_lifetime(app.config))
            refresh = session.modified or app.config.get("SESSION_REFRESH_EACH_REQUEST", True)
            if refresh and not inner.ended and inner.cookie_value is not None:
                inner.cookie_changed = True  # re-send: slide the persistent cookie's expiry
        return cookies.session_headers(policy, inner, cookie_sent=False,
                                       now=self.manager.clock())


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
    # Read the reason from the environ, not through ``flask.session``: touching
    # the proxy marks the session accessed (Flask 3.1.3), which would put
    # ``Vary: Cookie`` + ``no-store`` on every response.
    wait = flask_request.environ.get(REFUSAL_KEY)
    if wait is None:
        return None
    return _throttled_response(wait) if wait > 0 else _store_down_response()


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
        ConfigurationError: invalid ``SESSIONWARD_*`` configuration, or a Flask
            ``SESSION_COOKIE_*`` key sessionward refuses (the message says why).
    """
    mgr = manager if manager is not None else manager_from_config(app.config)
    spec = guard if guard is not None else app.config.get(GUARD_KEY)
    app.session_interface = SessionwardInterface(mgr, guard=_flood.resolve_guard(spec, mgr),
                                                 config=app.config)
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
    if not isinstance(proxied, FlaskSession):
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


__all__ = ["GUARD_KEY", "PREFIX", "FlaskSession", "SessionwardInterface", "current_session",
           "elevate", "init_app", "login", "logout", "manager_from_config", "rotate",
           "settings_from_config"]
