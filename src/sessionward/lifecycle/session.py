"""Session: the dict-like view one request works with (no I/O of its own).

A :class:`Session` tracks what the request did with it so the manager and
the web integrations can do the least work that is correct:

- ``accessed``: any read or write happened (responses must send
  ``Vary: Cookie`` and ``Cache-Control: no-store``);
- change detection is exact and per key: at save time the data is encoded
  once and compared with the bytes it was loaded from (in-place mutation of
  a list or dict counts), so a request that only reads never writes;
- ``cookie_changed``: the response must send ``Set-Cookie`` (new ID, login,
  rotation, forward after a periodic rotation);
- ``ended``: the session was logged out, destroyed or revoked; the response
  must send the deletion cookie.

The raw ID is private and never appears in ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from datetime import timedelta
from typing import Any, Protocol, overload

from ..core.client import ClientInfo
from ..core.config import OpenMode
from ..core.errors import ReauthenticationRequired
from ..core.record import SessionMeta


class SessionOwner(Protocol):
    """Protocol: what a :class:`Session` needs from the manager that made it
    (the embedded :class:`~sessionward.SessionManager` or the daemon client)."""

    def update(self, session: Session, key: str, fn: Callable[[Any], Any]) -> Any:
        """Atomic read-modify-write of one key (see ``SessionManager.update``)."""
        ...

    def fingerprint_of(self, session: Session) -> str:
        """The short keyed fingerprint of a stored session, for logs."""
        ...


class Session(MutableMapping[str, Any]):
    """One session as seen by one request.

    Use it like a ``dict`` of JSON-like values (plus the codec's allowlist:
    datetime, bytes, set, tuple, Decimal, UUID...).
    """

    def __init__(
        self,
        owner: SessionOwner,
        *,
        meta: SessionMeta,
        data: dict[str, Any] | None = None,
        data_json: bytes | None = None,
        mode: OpenMode = "optimistic",
        client: ClientInfo | None = None,
    ) -> None:
        self._owner = owner
        self.meta = meta
        self._data: dict[str, Any] = data if data is not None else {}
        self._data_json = data_json
        self.mode: OpenMode = mode
        self.client = client
        self._id: str | None = None
        self._cookie: str | None = None
        self.storage_key: str | None = None
        self.version = 0
        self.lock_token: str | None = None
        self.accessed = False
        self.cookie_changed = False
        self.ended = False
        self.meta_dirty = False

    # ------------------------------------------------------------ identity

    @property
    def is_new(self) -> bool:
        """True until the session is first stored (no cookie exists yet)."""
        return self.storage_key is None

    @property
    def cookie_value(self) -> str | None:
        """The value for ``Set-Cookie`` (``<id>.<mac>``), or ``None`` while new.

        Security: this is the bearer secret.  Send it only in ``Set-Cookie``;
        never log it, put it in a URL, a body or another header.
        """
        return self._cookie

    @property
    def handle(self) -> str | None:
        """An opaque handle for admin and "your devices" actions (never the ID)."""
        return self.storage_key

    @property
    def fingerprint(self) -> str:
        """Short keyed fingerprint for logs ("" while new)."""
        return self._owner.fingerprint_of(self) if self.storage_key else ""

    def bind_identity(self, session_id: str | None, cookie: str, storage_key: str,
                      version: int) -> None:
        """Attach this object to a stored record (the lifecycle and the daemon
        client call it; applications never do).

        Security: ``session_id`` is the raw ID (``None`` in a daemon client,
        which never holds one); it stays private and never appears in
        ``repr``, events or errors.
        """
        self._id = session_id
        self._cookie = cookie
        self.storage_key = storage_key
        self.version = version

    # --------------------------------------------------------- auth state

    @property
    def user(self) -> str | None:
        """The logged-in user id, or ``None``."""
        return self.meta.user

    @property
    def is_authenticated(self) -> bool:
        """A user is attached (possibly only partially, see ``pending``)."""
        return self.meta.user is not None

    @property
    def is_fully_authenticated(self) -> bool:
        """A user is attached and no further factor is pending (T-21)."""
        return self.meta.user is not None and not self.meta.pending

    @property
    def auth_time(self) -> float | None:
        """When the user last authenticated (login, step-up)."""
        return self.meta.auth_time

    @property
    def auth_level(self) -> int:
        """Application-defined strength of the last authentication."""
        return self.meta.auth_level

    @property
    def elevated_until(self) -> float | None:
        """End of the step-up window, if any."""
        return self.meta.elevated_until

    def elevated_at(self, now: float) -> bool:
        """True inside the step-up window at time ``now``."""
        until = self.meta.elevated_until
        return until is not None and now < until

    def check_recent_auth(self, max_age: timedelta, now: float) -> None:
        """The guard behind ``require_recent_auth``: fully authenticated within
        ``max_age`` of ``now``.

        Raises:
            ReauthenticationRequired: not logged in, MFA pending, or too old
                (``reason`` is ``"not_full"`` or ``"auth_too_old"``).
        """
        if not self.is_fully_authenticated or self.meta.auth_time is None:
            raise ReauthenticationRequired("full authentication is required", reason="not_full")
        if now - self.meta.auth_time > max_age.total_seconds():
            raise ReauthenticationRequired("please authenticate again to continue",
                                           reason="auth_too_old")

    @property
    def created(self) -> float:
        return self.meta.created

    @property
    def last_seen(self) -> float:
        return self.meta.last_seen

    # ------------------------------------------------------------- mapping

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.accessed = True
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        self.accessed = True
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return iter(self._data)

    def __len__(self) -> int:
        self.accessed = True
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return key in self._data

    def __repr__(self) -> str:
        return (
            f"<Session fingerprint={self.fingerprint or 'new'!r} user={self.user!r} "
            f"keys={sorted(self._data)!r}>"
        )

    @overload
    def update(self, key: str, fn: Callable[[Any], Any], /) -> Any: ...

    @overload
    def update(self, other: Any = (), /, **kwargs: Any) -> None: ...

    def update(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]  # see overloads
        """Two forms:

        - ``session.update(key, fn)``: atomic read-modify-write of one key in
          the store — ``fn(current_or_None)`` returns the new value; retried
          on conflicts, never loses a concurrent update.  Returns the value
          written.  The session is saved as part of the call.
        - ``session.update(mapping, **kw)``: plain ``dict.update`` (in memory).

        Raises:
            SessionGoneError: the session ended meanwhile.
            SessionConflictError: retries exhausted.
        """
        if len(args) == 2 and isinstance(args[0], str) and callable(args[1]) and not kwargs:
            return self._owner.update(self, args[0], args[1])
        self.accessed = True
        self._data.update(*args, **kwargs)
        return None

    def data_snapshot(self) -> dict[str, Any]:
        """The data dict itself (for the manager and integrations)."""
        return self._data

    def replace_data(self, values: Mapping[str, Any]) -> None:
        """Replace the data in place, as the manager does (merge, login, logout).

        Uses ``dict``'s own methods so a tracking storage (an integration's
        ``SessionDict``) does not count the manager's work as the app's.
        """
        dict.clear(self._data)
        dict.update(self._data, values)

    def use_storage(self, storage: dict[str, Any]) -> None:
        """Keep the data in ``storage`` from now on (already holding it).

        Flask and Starlette hand the app a real ``dict`` subclass; it becomes
        the one place the data lives, so both views always agree.
        """
        self._data = storage

    @property
    def loaded_json(self) -> bytes | None:
        """The data bytes as loaded (change-detection baseline)."""
        return self._data_json

    def mark_stored(self, data_json: bytes, version: int | None = None) -> None:
        """Record that ``data_json`` (and the metadata) is what the store now
        holds, at ``version`` if given: the new change-detection baseline
        (the lifecycle and the daemon client call it; applications never do)."""
        self._data_json = data_json
        self.meta_dirty = False
        if version is not None:
            self.version = version
