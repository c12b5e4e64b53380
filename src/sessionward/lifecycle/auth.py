"""Authentication steps of a session's life: login, step-up, rotation, logout.

Both managers run these same coroutines (the synchronous one through
:func:`~.port.drive`): the metadata a login or a step-up writes, the lease
released before the ID moves, and the events, live here once.  Every ID
change is a re-issue with no grace (:func:`.writer.reissue`): the old ID is
dead at once (OWASP ASVS 5.0 7.2.4).
"""

from __future__ import annotations

from datetime import timedelta

from ..core.errors import ReauthenticationRequired
from . import expiry, inventory, writer
from .context import Runtime
from .lease import LeaseTable
from .port import Io
from .session import Session


async def release(io: Io, leases: LeaseTable, session: Session) -> None:
    """Release the session's exclusive-mode lease, if it holds one."""
    lease = leases.take(session)
    if lease is not None:
        await lease.release_via(io)
    session.lock_token = None


async def reissue(rt: Runtime, io: Io, leases: LeaseTable, session: Session, *,
                  reason: str) -> None:
    """Release the lease (it belongs to the old record), then move to a new ID."""
    await release(io, leases, session)
    await writer.reissue(rt, io, session, reason=reason)


async def login(rt: Runtime, io: Io, leases: LeaseTable, session: Session, user: str, *,
                level: int, pending: bool, keep_data: bool, fresh: bool) -> Session:
    """:meth:`SessionManager.login` (its docstring is the contract)."""
    if not isinstance(user, str) or not user:
        raise ValueError("user must be a non-empty string")
    await inventory.enforce_session_limit(rt, io, user, session)
    if session.meta.user not in (None, user) or not keep_data:
        session.replace_data({})
    now = rt.clock()
    meta = session.meta
    meta.user, meta.auth_level, meta.pending = user, level, pending
    meta.auth_time = now if fresh else None
    meta.absolute = now + rt.settings.absolute_timeout.total_seconds()
    meta.extra.pop(expiry.POLICY_ABSOLUTE, None)
    meta.elevated_until = None
    await reissue(rt, io, leases, session, reason="login")
    rt.emit("login", key=session.storage_key, user=user, client=session.client,
            auth_level=level, pending=pending)
    return session


async def elevate(rt: Runtime, io: Io, leases: LeaseTable, session: Session,
                  duration: timedelta) -> Session:
    """:meth:`SessionManager.elevate` (its docstring is the contract)."""
    if session.meta.user is None:
        raise ReauthenticationRequired("log in before elevating the session")
    now = rt.clock()
    session.meta.auth_time = now
    session.meta.elevated_until = now + duration.total_seconds()
    await reissue(rt, io, leases, session, reason="elevate")
    rt.emit("elevated", key=session.storage_key, user=session.user, client=session.client,
            until=session.meta.elevated_until)
    return session


async def end(rt: Runtime, io: Io, leases: LeaseTable, session: Session, event: str) -> None:
    """Logout / destroy: release the lease, delete the record, mark it ended."""
    await release(io, leases, session)
    await writer.end(rt, io, session, event)


def require_recent_auth(rt: Runtime, session: Session, max_age: timedelta) -> None:
    """:meth:`SessionManager.require_recent_auth` (its docstring is the contract)."""
    try:
        session.check_recent_auth(max_age, rt.clock())
    except ReauthenticationRequired as exc:
        if exc.reason == "auth_too_old":
            rt.emit("reauth_required", key=session.storage_key, user=session.user,
                    outcome="denied", reason="auth_too_old")
        raise


async def revoke_device(rt: Runtime, io: Io, session: Session, handle: str,
                        max_auth_age: timedelta) -> bool:
    """:meth:`SessionManager.revoke_device` (its docstring is the contract)."""
    require_recent_auth(rt, session, max_auth_age)
    if session.user is None or not any(
        i.handle == handle for i in await inventory.sessions_of(rt, io, session.user)
    ):
        return False
    return await inventory.revoke(rt, io, handle, reason="user")
