"""``SESSION_ENGINE = "sessionward.integrations.django.backend"``.

:class:`SessionStore` adapts Django's ``SessionBase`` API onto a
:class:`~sessionward.SessionManager`:

- the "session key" Django puts in the cookie is the sessionward cookie value;
- ``cycle_key()`` (called by ``django.contrib.auth.login``) becomes a
  sessionward ``login`` at save time (new ID, old one dead, user indexed for
  "your devices" and ``revoke_user``); ``flush()`` becomes ``logout``;
- a store outage is recorded (``sw_store_down``) so the guard middleware
  answers 503 instead of Django's 500.

The manager comes from ``settings.SESSIONWARD`` (built once, lazily), or from
:func:`configure_manager` (tests, custom builds, the daemon's
``RemoteSessionManager``).  The opt-in flood guard comes from
``settings.SESSIONWARD_FLOOD_GUARD`` (``True`` or a dict of Throttle options;
see :mod:`sessionward.integrations._flood`) or ``configure_manager(guard=...)``,
and is built for the current manager on first use (:func:`get_guard`).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from django.conf import settings as django_settings
from django.contrib.sessions.backends.base import SessionBase

from ...core.client import ClientInfo
from ...core.config import Settings
from ...core.errors import SessionGoneError, StoreError
from ...lifecycle.manager import SessionManager
from ...lifecycle.session import Session
from .._flood import FloodGuard, resolve_guard

AUTH_USER_KEY = "_auth_user_id"
GUARD_SETTING = "SESSIONWARD_FLOOD_GUARD"
current_client: ContextVar[ClientInfo | None] = ContextVar("sessionward_client", default=None)
_manager: SessionManager | None = None
_guard_spec: object = None
_guard: tuple[SessionManager, FloodGuard | None] | None = None
_lock = threading.Lock()


def settings_from_django() -> Settings:
    """``settings.SESSIONWARD`` (a dict of Settings values) as :class:`Settings`.

    Raises:
        ConfigurationError: unknown key or bad value.
    """
    return Settings.from_mapping(getattr(django_settings, "SESSIONWARD", {}),
                                 source="settings.SESSIONWARD")


def configure_manager(manager: SessionManager | None, *, guard: object = None) -> None:
    """Use ``manager`` for every request (``None``: rebuild from settings).

    Args:
        manager: the manager, or ``None`` to build it from ``settings.SESSIONWARD``.
        guard: a flood guard spec for it; ``None`` defers to
            ``settings.SESSIONWARD_FLOOD_GUARD``.
    """
    global _manager, _guard_spec, _guard
    with _lock:
        _manager = manager
        _guard_spec = guard
        _guard = None


def get_manager() -> SessionManager:
    """The process-wide manager (built from ``settings.SESSIONWARD`` on first use).

    Raises:
        ConfigurationError: invalid settings, key file or store URL.
    """
    global _manager
    with _lock:
        if _manager is None:
            conf = settings_from_django()
            _manager = SessionManager.from_url(conf.store_url, settings=conf)
        return _manager


def get_guard() -> FloodGuard | None:
    """The flood guard of the current manager (built on first use), or ``None``.

    Raises:
        ConfigurationError: invalid settings or an unusable guard spec.
    """
    global _guard
    manager = get_manager()
    with _lock:
        if _guard is None or _guard[0] is not manager:
            spec = _guard_spec if _guard_spec is not None else getattr(
                django_settings, GUARD_SETTING, None)
            _guard = (manager, resolve_guard(spec, manager))
        return _guard[1]


class SessionStore(SessionBase):  # type: ignore[misc]  # django ships no types
    """Django's session API over a sessionward session."""

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._sw: Session | None = None
        self._cycle = False
        self.sw_ended: Session | None = None
        self.sw_store_down = False

    # ---------------------------------------------------------- plumbing

    def _raw_key(self) -> str | None:
        value = getattr(self, "_session_key", None)
        return value if isinstance(value, str) else None

    def _validate_session_key(self, key: Any) -> bool:
        return isinstance(key, str) and bool(key)

    def sw_session(self) -> Session:
        """The underlying session (loaded on first use).

        Raises:
            StoreError: the store is down.
        """
        if self._sw is None:
            mgr = get_manager()
            key = self._raw_key()
            client = current_client.get()
            loaded = mgr.load(key, client=client) if key else None
            self._sw = loaded if loaded is not None else mgr.new(client=client)
            if self._sw.cookie_changed:
                self.modified = True
        return self._sw

    @property
    def sw_current(self) -> Session | None:
        """The session if it was opened during this request."""
        return self._sw

    def _get_session(self, no_load: bool = False) -> dict[str, Any]:
        self.accessed = True
        try:
            return self.sw_session().data_snapshot()
        except StoreError:
            self.sw_store_down = True
            raise

    _session = property(_get_session)

    @property
    def session_key(self) -> str | None:
        """The cookie value Django's middleware sends (``None`` while unstored)."""
        return self._sw.cookie_value if self._sw is not None else self._raw_key()

    def is_empty(self) -> bool:
        if self._sw is None:
            return self._raw_key() is None
        return self._sw.is_new and not self._sw.data_snapshot()

    # ------------------------------------------------------- SessionBase

    def load(self) -> dict[str, Any]:
        return self.sw_session().data_snapshot()

    def exists(self, session_key: str) -> bool:
        return get_manager().load(session_key) is not None

    def create(self) -> None:
        self._sw = get_manager().new(client=current_client.get())
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        try:
            self._save()
        except StoreError:
            self.sw_store_down = True
        except SessionGoneError:
            if self._sw is not None:
                self._sw.ended = True
                self.sw_ended = self._sw

    def _save(self) -> None:
        session, mgr = self.sw_session(), get_manager()
        if session.ended:
            return
        uid = session.data_snapshot().get(AUTH_USER_KEY)
        if uid is not None and session.user != str(uid):
            mgr.login(session, str(uid))
        elif self._cycle and not session.is_new:
            mgr.rotate(session, reason="cycle_key")
        self._cycle = False
        mgr.save(session)

    def delete(self, session_key: str | None = None) -> None:
        mgr = get_manager()
        if session_key is None or session_key == self.session_key:
            session = self.sw_session()
            mgr.logout(session)
            self.sw_ended = session
            return
        other = mgr.load(session_key)
        if other is not None:
            mgr.destroy(other)

    def cycle_key(self) -> None:
        self.sw_session()
        self._cycle = True
        self.modified = True

    def flush(self) -> None:
        if self._sw is not None or self._raw_key():
            self.delete()
        self._sw = get_manager().new(client=current_client.get())
        self._session_key = None
        self.modified = True
        self.accessed = True

    @classmethod
    def clear_expired(cls) -> None:
        get_manager().cleanup()
