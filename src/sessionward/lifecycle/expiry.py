"""Per-session expiry (Django's ``set_expiry``) on the sealed metadata.

The load path already enforces ``meta.idle`` and ``meta.absolute`` for every
session, so a per-session expiry is just those two fields, changed and
sealed at the next save:

- ``idle``: this session's idle timeout (shorter or longer than the setting;
  the absolute expiry still caps it);
- ``at``: end the session then — ``meta.absolute`` becomes
  ``min(policy absolute, at)``, never later.  The policy absolute is kept in
  ``meta.extra`` under :data:`POLICY_ABSOLUTE` so that ``None`` restores it;
  a login (new absolute lifetime) drops it.
"""

from __future__ import annotations

from datetime import timedelta

from ..core.errors import SessionGoneError
from . import writer
from .context import Runtime
from .port import Io
from .session import Session

POLICY_ABSOLUTE = "policy_absolute"
"""``meta.extra`` key: the absolute expiry before an ``at`` shortened it."""


async def apply(rt: Runtime, io: Io, session: Session, *, idle: timedelta | None,
                at: float | None) -> None:
    """:meth:`SessionManager.set_expiry` (its docstring is the contract)."""
    if session.ended:
        raise SessionGoneError(writer.ENDED)
    if idle is not None and idle <= timedelta(0):
        raise ValueError("idle must be a positive duration (or None for the setting)")
    meta = session.meta
    policy = float(meta.extra.get(POLICY_ABSOLUTE, meta.absolute))
    new_idle = (idle or rt.settings.idle_timeout).total_seconds()
    new_absolute = policy if at is None else min(policy, at)
    if (new_idle, new_absolute) == (meta.idle, meta.absolute):
        return
    meta.idle, meta.absolute = new_idle, new_absolute
    if new_absolute < policy:
        meta.extra[POLICY_ABSOLUTE] = policy
    else:
        meta.extra.pop(POLICY_ABSOLUTE, None)
    session.meta_dirty = True
    if rt.clock() >= new_absolute:
        await writer.end(rt, io, session, "expired", reason="set_expiry")
