"""The remote manager's authentication lifecycle and per-session expiry:
login, rotation, step-up, logout/destroy, ``set_expiry`` — each one command
in the daemon, which rotates, seals and enforces the policy."""

from __future__ import annotations

from datetime import timedelta

from ..core.errors import ReauthenticationRequired, SessionGoneError
from ..lifecycle.session import Session
from .base import RemoteBase
from .views import RemoteSession

ENDED = "this session has ended (logout, revoke or login elsewhere)"


class RemoteLifecycle(RemoteBase):
    """Login, rotation, step-up, logout and expiry over the daemon."""

    def login(self, session: Session, user: str, *, level: int = 1, pending: bool = False,
              keep_data: bool = True) -> Session:
        """Attach ``user`` and rotate to a new ID (in the daemon).

        Raises:
            SessionLimitError: the user's session limit with policy ``reject``.
            SessionGoneError: the session ended meanwhile.
            ValueError: empty user id.
        """
        if not isinstance(user, str) or not user:
            raise ValueError("user must be a non-empty string")
        self._state_call("login", session, user=user, level=level, pending=pending,
                         keep_data=keep_data)
        return session

    def rotate(self, session: Session, *, reason: str = "privilege_change") -> Session:
        """Rotate to a new ID with no grace.

        Raises:
            SessionGoneError: the session ended meanwhile.
        """
        self._state_call("rotate", session, reason=reason)
        return session

    def elevate(self, session: Session, duration: timedelta = timedelta(minutes=5)) -> Session:
        """Step-up: new ID, fresh auth time, elevated for ``duration``.

        Raises:
            ReauthenticationRequired: no user is logged in.
        """
        if session.meta.user is None:
            raise ReauthenticationRequired("log in before elevating the session")
        self._state_call("elevate", session, duration=duration.total_seconds())
        return session

    def is_elevated(self, session: Session) -> bool:
        """True inside the step-up window (this process's clock)."""
        return session.elevated_at(self.clock())

    def require_recent_auth(self, session: Session, max_age: timedelta) -> None:
        """Guard for sensitive actions (this process's clock; no event).

        Raises:
            ReauthenticationRequired: not logged in, MFA pending, or too old.
        """
        session.check_recent_auth(max_age, self.clock())

    def set_expiry(self, session: Session, *, idle: timedelta | None = None,
                   at: float | None = None) -> None:
        """A per-session expiry, sealed by the daemon (:meth:`SessionManager.set_expiry`).

        ``idle`` replaces this session's idle timeout; ``at`` (POSIX seconds)
        ends it then — never later than its absolute expiry.  ``None``
        restores the setting.  The request travels with the next
        :meth:`save` (the daemon applies it to the sealed metadata); an
        ``at`` already past ends the session now, as embedded.

        Raises:
            ValueError: ``idle`` is not positive.
            SessionGoneError: the session has ended.
            TypeError: ``session`` did not come from this manager.
        """
        if session.ended:
            raise SessionGoneError(ENDED)
        if idle is not None and idle <= timedelta(0):
            raise ValueError("idle must be a positive duration (or None for the setting)")
        if not isinstance(session, RemoteSession):
            raise TypeError("set_expiry needs a session from this RemoteSessionManager")
        seconds = idle.total_seconds() if idle is not None else None
        session.pending_expiry = {"idle": seconds, "at": None if at is None else float(at)}
        session.meta.idle = seconds or self.settings.idle_timeout.total_seconds()
        if at is not None:
            session.meta.absolute = min(session.meta.absolute, float(at))
        session.meta_dirty = True
        if at is not None and self.clock() >= at:
            self._expire_now(session)

    def _expire_now(self, session: Session) -> None:
        """An ``at`` in the past: end the session now (the daemon deletes it)."""
        if not session.is_new:
            self._state_call("save", session)
        session.ended = True
        session.lock_token = None
        self._unpin(session)
        session.replace_data({})

    def logout(self, session: Session) -> None:
        """End the session in the daemon; the cookie must be cleared."""
        self._end(session, "logout")

    def destroy(self, session: Session) -> None:
        """Like :meth:`logout`, for sessions without a login."""
        self._end(session, "destroy")

    def _end(self, session: Session, command: str) -> None:
        if not session.is_new:
            self._call(command, session=session, **self._state(session))
        session.lock_token = None
        self._unpin(session)
        session.ended = True
        session.replace_data({})
