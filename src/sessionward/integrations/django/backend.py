"""``SESSION_ENGINE = "sessionward.integrations.django.backend"``.

:class:`SessionStore` is Django's ``SessionBase`` API over a
:class:`~sessionward.Session` (see ``docs/integrations.md``, "Django"):

- the "session key" Django puts in the cookie is the sessionward cookie value;
  Django's ``_session_cache`` *is* the sessionward data, so ``clear()``,
  ``cycle_key()`` and every async method (``aget``, ``aset``, ``apop``,
  ``acycle_key``, ``aflush``, ``asave``...) go through the backend;
- ``cycle_key()`` rotates at once (new ID, old one dead); a new
  ``_auth_user_id`` becomes a sessionward ``login`` at save time (user
  indexed for "your devices" and ``revoke_user``); ``flush()`` is a logout;
- ``set_expiry()`` is enforced server-side from the sealed metadata, and
  ``get_expiry_age()``/``get_expiry_date()`` tell the truth (capped at the
  absolute expiry; the default age is sessionward's idle timeout);
- ``save()`` after a concurrent logout raises ``UpdateError`` (Django then
  answers 400 ``SessionInterrupted``); an explicit ``save()`` stores even an
  empty session, as Django's backends do (the middleware never saves an
  empty new session, so lazy creation holds for requests);
- a store outage is recorded (``sw_store_down``) and raised, so the guard
  middleware answers 503 instead of Django's 500.

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
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError

from ...core.client import ClientInfo
from ...core.config import Settings
from ...core.errors import SessionGoneError, StoreError
from ...lifecycle.manager import SessionManager
from ...lifecycle.session import Session
from .. import cookies
from .._flood import FloodGuard, resolve_guard
from . import _expiry, cookie

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


def current_settings() -> Settings:
    """The configured manager's settings, else ``settings.SESSIONWARD`` (no store opened).

    Raises:
        ConfigurationError: invalid settings.
    """
    with _lock:
        manager = _manager
    return manager.settings if manager is not None else settings_from_django()


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
        self.sw_ended: Session | None = None
        self.sw_store_down = False

    # ---------------------------------------------------------- plumbing

    def _raw_key(self) -> str | None:
        value = getattr(self, "_session_key", None)
        return value if isinstance(value, str) else None

    def _validate_session_key(self, key: Any) -> bool:
        return isinstance(key, str) and len(key) >= 8  # Django's rule; the manager checks more

    def sw_session(self) -> Session:
        """The underlying session (loaded on first use).

        Raises:
            StoreError: the store is down (also recorded in ``sw_store_down``).
        """
        if self._sw is None:
            mgr = get_manager()
            key = self._raw_key()
            client = current_client.get()
            try:
                loaded = mgr.load(key, client=client) if key else None
            except StoreError:
                self.sw_store_down = True
                raise
            self._sw = loaded if loaded is not None else mgr.new(client=client)
            if self._sw.cookie_changed:
                self.modified = True
        return self._sw

    @property
    def sw_current(self) -> Session | None:
        """The session if it was opened during this request."""
        return self._sw

    @property
    def _session_cache(self) -> dict[str, Any]:
        """Django's cached data dict: the sessionward data (AttributeError until loaded)."""
        if self._sw is None:
            raise AttributeError("_session_cache")
        return self._sw.data_snapshot()

    @_session_cache.setter
    def _session_cache(self, value: dict[str, Any]) -> None:
        # clear() assigns {} here: the data is replaced in the loaded session,
        # so the emptied data really is written at save (not a detached dict).
        self.sw_session().replace_data(dict(value))

    def _get_session(self, no_load: bool = False) -> dict[str, Any]:
        self.accessed = True
        return self.sw_session().data_snapshot()

    _session = property(_get_session)

    async def _aget_session(self, no_load: bool = False) -> dict[str, Any]:
        self.accessed = True
        if self._sw is None:
            await sync_to_async(self.sw_session)()
        return self.sw_session().data_snapshot()

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
        """The data as stored now (a fresh read; ``{}`` if absent or ended).

        An unknown key is forgotten (``session_key`` becomes ``None``), as
        Django's backends do: loading never adopts or creates anything.
        """
        key = self.session_key
        fresh = get_manager().load(key, client=current_client.get(), mode="read") \
            if key else None
        if fresh is None:
            if self._sw is None:
                self._session_key = None
            return {}
        return dict(fresh.data_snapshot())

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        return get_manager().load(session_key, mode="read") is not None

    def create(self) -> None:
        """A new session with a new key, stored at once (Django's contract)."""
        mgr = get_manager()
        self._sw = mgr.new(client=current_client.get())
        mgr.save(self._sw, create_empty=True)
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        """Store the session (even empty: an explicit save is the app's request).

        Raises:
            UpdateError: the session was ended meanwhile (concurrent logout,
                revoke, expiry); Django's middleware answers 400.
            StoreError: the store is down (the guard middleware answers 503).
        """
        session, mgr = self.sw_session(), get_manager()
        try:
            if session.ended:
                raise SessionGoneError("this session has ended")
            uid = session.data_snapshot().get(AUTH_USER_KEY)
            if uid is not None and session.user != str(uid):
                mgr.login(session, str(uid))
            _expiry.apply_django_expiry(mgr, session)
            if not session.ended:
                mgr.save(session, create_empty=True)
        except StoreError:
            self.sw_store_down = True
            raise
        except SessionGoneError as exc:
            self.sw_ended = session if not session.is_new else None
            raise UpdateError(str(exc)) from exc

    def delete(self, session_key: str | None = None) -> None:
        mgr = get_manager()
        if session_key is None or session_key == self.session_key:
            if self._sw is None and self._raw_key() is None:
                return
            session = self.sw_session()
            mgr.logout(session)
            if not session.is_new:
                self.sw_ended = session
            return
        other = mgr.load(session_key, mode="read")
        if other is not None:
            mgr.destroy(other)

    def cycle_key(self) -> None:
        """New ID now, data kept, the old ID dead at once (no grace)."""
        session = self.sw_session()
        if not session.is_new and not session.ended:
            get_manager().rotate(session, reason="cycle_key")
        self.modified = True

    def flush(self) -> None:
        """Log out: record deleted, a new empty (unstored) session, no key."""
        if self._sw is not None or self._raw_key():
            self.delete()
        self._sw = get_manager().new(client=current_client.get())
        self._session_key = None
        self.modified = True
        self.accessed = True

    async def acycle_key(self) -> None:
        await sync_to_async(self.cycle_key)()

    async def aflush(self) -> None:
        await sync_to_async(self.flush)()

    # ------------------------------------------------------------- expiry

    def get_session_cookie_age(self) -> int:
        """The default expiry age: sessionward's idle timeout (not SESSION_COOKIE_AGE)."""
        return int(get_manager().settings.idle_timeout.total_seconds())

    def get_expiry_age(self, **kwargs: Any) -> int:
        age: int = super().get_expiry_age(**kwargs)
        if "expiry" in kwargs:
            return age
        limit = self._absolute_left(kwargs.get("modification"))
        return age if limit is None else min(age, limit)

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        date: datetime = super().get_expiry_date(**kwargs)
        if "expiry" in kwargs:
            return date
        absolute = self.sw_session().meta.absolute
        cap = datetime.fromtimestamp(absolute, tz=date.tzinfo) if date.tzinfo \
            else datetime.fromtimestamp(absolute)
        return min(date, cap)

    def _absolute_left(self, modification: datetime | None) -> int | None:
        when = modification.timestamp() if modification is not None else get_manager().clock()
        return int(self.sw_session().meta.absolute - when)

    def get_expire_at_browser_close(self) -> bool:
        expiry = self.get("_session_expiry")
        if expiry is None:
            policy = cookies.CookiePolicy.from_settings(get_manager().settings)
            return cookie.expire_at_browser_close(policy)
        return bool(expiry == 0)

    async def aget_expiry_age(self, **kwargs: Any) -> int:
        return await sync_to_async(lambda: self.get_expiry_age(**kwargs))()

    async def aget_expiry_date(self, **kwargs: Any) -> datetime:
        return await sync_to_async(lambda: self.get_expiry_date(**kwargs))()

    async def aget_expire_at_browser_close(self) -> bool:
        return await sync_to_async(self.get_expire_at_browser_close)()

    @classmethod
    def clear_expired(cls) -> None:
        get_manager().cleanup()
