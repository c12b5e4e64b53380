"""Per-user inventory ("your devices"), revocation and batched cleanup.

Everything here goes through the store's per-user index, so its cost grows
with one user's sessions, never with the whole store.  Output carries
metadata and opaque handles only — never IDs, data or secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core import ids
from ..core.client import describe_device
from ..core.errors import CodecError, SessionLimitError
from ..core.record import TOMBSTONE
from .context import Runtime
from .port import Io
from .sealer import Opened
from .session import Session


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What may be shown about a session (to its user or an admin).

    Attributes:
        handle: opaque handle for ``revoke`` (not the ID; useless as a cookie).
        user: the user id.
        created / last_seen / expires_at: POSIX seconds.
        auth_time: last authentication.
        device: short label from the User-Agent.
        ip: the recorded network prefix (e.g. ``203.0.113.0/24``).
        current: this is the session making the request.
        elevated: inside a step-up window.
    """

    handle: str
    user: str | None
    created: float
    last_seen: float
    expires_at: float
    auth_time: float | None
    device: str
    ip: str
    current: bool = False
    elevated: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (the allowlisted fields only)."""
        return {
            "handle": self.handle, "user": self.user, "created": self.created,
            "last_seen": self.last_seen, "expires_at": self.expires_at,
            "auth_time": self.auth_time, "device": self.device, "ip": self.ip,
            "current": self.current, "elevated": self.elevated,
        }


def info_of(opened: Opened, now: float, current_key: str | None = None) -> SessionInfo:
    """Build the displayable metadata of an opened record."""
    meta = opened.meta
    profile = meta.profiles[-1] if meta.profiles else {}
    return SessionInfo(
        handle=opened.key, user=meta.user, created=meta.created,
        last_seen=opened.last_activity, expires_at=opened.expires_at(),
        auth_time=meta.auth_time, device=describe_device(profile.get("ua")),
        ip=profile.get("ip", ""), current=opened.key == current_key,
        elevated=meta.elevated_until is not None and now < meta.elevated_until,
    )


async def live_of_user(rt: Runtime, io: Io, user: str) -> list[Opened]:
    """The opened live records of ``user`` (under every key of the ring).

    Records that fail to open fire ``decode_failed`` and are left out.
    """
    now = rt.clock()
    found: dict[str, Opened] = {}
    for key in rt.keyring.keys:  # sessions issued under older keys too
        for skey, stored in await io.store.by_user(ids.user_key(user, key)):
            if skey in found:
                continue
            try:
                opened = rt.sealer.open(skey, stored)
            except CodecError as exc:
                rt.emit("decode_failed", key=skey, user=user,
                      outcome="denied", reason="undecodable", detail=exc.reason)
                continue
            if (opened.meta.kind != TOMBSTONE and opened.meta.user == user
                    and now < opened.expires_at()):
                found[skey] = opened
    return list(found.values())


async def sessions_of(rt: Runtime, io: Io, user: str, *, current: Session | None = None
                      ) -> list[SessionInfo]:
    """Live sessions of ``user``, most recently active first."""
    now = rt.clock()
    current_key = current.storage_key if current is not None else None
    infos = [info_of(o, now, current_key) for o in await live_of_user(rt, io, user)]
    return sorted(infos, key=lambda i: i.last_seen, reverse=True)


async def revoke(rt: Runtime, io: Io, handle: str, *, reason: str) -> bool:
    """Delete the session with ``handle``.  Malformed handles are refused
    before any store I/O."""
    if not ids.is_storage_key(handle):
        return False
    opened = await rt.open_record(io, handle)
    deleted: bool = await io.store.delete(handle)
    if deleted:
        rt.emit("revoked", key=handle, user=opened.meta.user if opened else None,
                 reason=reason)
    return deleted


async def revoke_user(rt: Runtime, io: Io, user: str, *,
                      keep: Session | str | None) -> int:
    """End every session of ``user`` except ``keep``."""
    keep_key = keep if isinstance(keep, str) or keep is None else keep.storage_key
    count = 0
    for opened in await live_of_user(rt, io, user):
        if opened.key != keep_key and await io.store.delete(opened.key):
            count += 1
    rt.emit("revoked", user=user, reason="revoke_user", count=count)
    return count


async def cleanup(rt: Runtime, io: Io, *, batch: int, max_batches: int | None,
                  progress: Callable[[int], None] | None) -> int:
    """Purge expired records in batches of ``batch`` until none are left."""
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        removed = await io.store.purge_expired(rt.clock(), batch)
        total += removed
        batches += 1
        if progress is not None:
            progress(removed)
        if removed < batch:
            break
    rt.emit("cleanup", count=total)
    return total


async def enforce_session_limit(rt: Runtime, io: Io, user: str, current: Session) -> None:
    """Apply ``max_sessions_per_user`` before ``current`` logs in as ``user``.

    Raises:
        SessionLimitError: the limit is reached and the policy is ``reject``
            (with ``evict_oldest`` the least recently active sessions go).
        StoreError: the store failed.
    """
    limit = rt.settings.max_sessions_per_user
    if limit is None:
        return
    others = [i for i in await sessions_of(rt, io, user) if i.handle != current.storage_key]
    if len(others) < limit:
        return
    if rt.settings.session_limit_policy == "reject":
        rt.emit("session_limit", user=user, outcome="denied", reason="reject")
        raise SessionLimitError(f"user already has {len(others)} sessions (limit {limit})")
    for info in sorted(others, key=lambda i: i.last_seen)[: len(others) - limit + 1]:
        await io.store.delete(info.handle)
        rt.emit("revoked", key=info.handle, user=user, reason="session_limit")
