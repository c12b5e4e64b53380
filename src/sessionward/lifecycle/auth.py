"""Authentication transitions: login and step-up, each a new ID with no grace
(OWASP ASVS 5.0 7.2.4), and the recent-authentication guard.

The caller releases any lease first (it belongs to the old record); the
contracts are the docstrings of :meth:`SessionManager.login`,
:meth:`SessionManager.elevate` and :meth:`SessionManager.require_recent_auth`.
"""

from __future__ import annotations

from datetime import timedelta

from ..core.errors import ReauthenticationRequired
from . import expiry, inventory, writer
from .context import Runtime
from .session import Session


def login(rt: Runtime, session: Session, user: str, *, level: int, pending: bool,
          keep_data: bool, fresh: bool) -> None:
    """Attach ``user``, start a new absolute lifetime and move to a new ID.

    Raises:
        SessionLimitError, SessionGoneError, ValueError: see ``SessionManager.login``.
    """
    if not isinstance(user, str) or not user:
        raise ValueError("user must be a non-empty string")
    inventory.enforce_session_limit(rt, user, session)
    if session.meta.user not in (None, user) or not keep_data:
        session.replace_data({})
    now = rt.clock()
    meta = session.meta
    meta.user, meta.auth_level, meta.pending = user, level, pending
    meta.auth_time = now if fresh else None
    meta.absolute = now + rt.settings.absolute_timeout.total_seconds()
    meta.extra.pop(expiry.POLICY_ABSOLUTE, None)
    meta.elevated_until = None
    writer.reissue(rt, session, reason="login")
    rt.emit("login", key=session.storage_key, user=user, client=session.client,
            auth_level=level, pending=pending)


def elevate(rt: Runtime, session: Session, duration: timedelta) -> None:
    """Fresh ``auth_time``, elevated for ``duration``, and a new ID.

    Raises:
        ReauthenticationRequired, SessionGoneError: see ``SessionManager.elevate``.
    """
    if session.meta.user is None:
        raise ReauthenticationRequired("log in before elevating the session")
    now = rt.clock()
    session.meta.auth_time = now
    session.meta.elevated_until = now + duration.total_seconds()
    writer.reissue(rt, session, reason="elevate")
    rt.emit("elevated", key=session.storage_key, user=session.user, client=session.client,
            until=session.meta.elevated_until)


def require_recent_auth(rt: Runtime, session: Session, max_age: timedelta) -> None:
    """The guard; a too-old authentication also fires ``reauth_required``.

    Raises:
        ReauthenticationRequired: not logged in, MFA pending, or too old.
    """
    try:
        session.check_recent_auth(max_age, rt.clock())
    except ReauthenticationRequired as exc:
        if exc.reason == "auth_too_old":
            rt.emit("reauth_required", key=session.storage_key, user=session.user,
                    outcome="denied", reason="auth_too_old")
        raise
