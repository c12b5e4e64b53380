"""The load path: strict mode lives here.

:func:`load` turns a client-supplied cookie value into a :class:`Session` or
``None``, in this order, each step failing closed:

1. cookie shape and MAC (no store I/O for a forged value);
2. store lookup and authenticated opening (``decode_failed`` on tampering);
3. tombstone forwarding within the grace, theft detection after it;
4. a signed-in record must be in its user's index (``session_index_mismatch``
   otherwise), then idle and absolute expiry (from the sealed metadata; the
   store's plaintext touch hint may extend the idle window, but not when dated
   more than 5 s ahead, and never past the sealed absolute expiry);
5. revalidation, client binding, grace closing, periodic rotation;
6. the coalesced touch (at most once per ``touch_interval``, never a rewrite).

In ``exclusive`` mode the lease is taken before the record is read, and
re-taken on the successor when the request was forwarded.
"""

from __future__ import annotations

import contextlib

from ..core import codec, ids
from ..core.client import ClientInfo, profile_of
from ..core.config import OpenMode
from ..core.errors import (
    CodecError,
    CorruptEntryError,
    InvalidReason,
    StoreTimeoutError,
    StoreUnavailableError,
)
from ..core.keys import Key
from ..core.record import TOMBSTONE
from . import rotation, writer
from .context import Runtime
from .lease import Lease, acquire_session_lease
from .port import Io
from .rotation import MAX_CHAIN
from .sealer import Opened, store_expiry
from .session import Session, SessionOwner


async def load(rt: Runtime, io: Io, owner: SessionOwner, cookie_value: object,
               client: ClientInfo | None, mode: OpenMode
               ) -> tuple[Session | None, Lease | None]:
    """:meth:`SessionManager.load`: the session and, in ``exclusive`` mode, its lease.

    Raises:
        StoreError: the store is down (never ``None`` for an outage).
        LockTimeoutError: ``exclusive`` mode could not get the lease in time.
    """
    parsed = ids.parse_cookie_value(cookie_value, rt.keyring)
    if parsed is None:
        if cookie_value:
            await rt.invalid(io, InvalidReason.MALFORMED, client)
        return None, None
    session_id, key = parsed
    skey = ids.storage_key(session_id, key)
    if mode != "exclusive":
        return await load_id(rt, io, owner, session_id, key, skey, client, mode,
                             cookie=str(cookie_value)), None
    return await load_exclusive(rt, io, owner, session_id, key, skey, client)


async def load_exclusive(rt: Runtime, io: Io, owner: SessionOwner, session_id: str, key: Key,
                         skey: str, client: ClientInfo | None
                         ) -> tuple[Session | None, Lease | None]:
    """Lease first, then load; a forwarded request re-locks the successor and reloads it.

    Raises:
        LockTimeoutError: the lease was not free within ``lock_wait``.
        StoreError: the store failed.
    """
    lease = await acquire_session_lease(rt, io, skey)
    try:
        session = await load_id(rt, io, owner, session_id, key, skey, client, "exclusive")
        if session is not None and session.storage_key != skey:
            # Forwarded (or re-issued) to another record: lock that one, then reload it.
            await lease.release_via(io)
            lease = await acquire_session_lease(rt, io, session.storage_key or "")
            fresh_id, fresh_key = session._id or "", rt.keyring.by_id[session.meta.issuer]
            session = await load_id(rt, io, owner, fresh_id, fresh_key,
                                    session.storage_key or "", client, "exclusive",
                                    forwarded=True)
    except BaseException:
        await lease.release_via(io)
        raise
    if session is None:
        await lease.release_via(io)
        return None, None
    session.lock_token = lease.token
    return session, lease


async def load_id(rt: Runtime, io: Io, owner: SessionOwner, session_id: str, key: Key,
                  skey: str, client: ClientInfo | None, mode: OpenMode, *,
                  forwarded: bool = False, depth: int = 0,
                  cookie: str | None = None) -> Session | None:
    """Load by verified ID; ``cookie`` is the already-verified cookie value, if at hand.

    Raises:
        StoreError: the store failed.
    """
    for _hop in range(MAX_CHAIN + 2):
        try:
            stored = await io.store.load(skey)
            if stored is None:
                await rt.invalid(io, InvalidReason.UNKNOWN, client)
                return None
            opened = rt.sealer.open(skey, stored)
        except (CodecError, CorruptEntryError) as exc:
            detail = exc.reason if isinstance(exc, CodecError) else "corrupt_entry"
            rt.emit("decode_failed", key=skey, client=client, outcome="denied",
                    reason="undecodable", detail=detail)
            await rt.invalid(io, InvalidReason.TAMPERED, client, skey)
            return None
        if opened.meta.kind != TOMBSTONE:
            if not indexed(rt, opened):
                rt.emit("session_index_mismatch", key=skey, user=opened.meta.user,
                        client=client, outcome="denied", reason="not_in_user_index")
                await rt.invalid(io, InvalidReason.TAMPERED, client, skey)
                return None
            return await activate(rt, io, owner, session_id, key, opened, client, mode,
                                  forwarded=forwarded, cookie=cookie, depth=depth)
        target = await rotation.forward_target(rt, io, session_id, key, opened, client, depth)
        if target is None:
            return None
        session_id, key, skey = target
        forwarded, depth, cookie = True, depth + 1, None
    return None


def indexed(rt: Runtime, opened: Opened) -> bool:
    """Whether a live record is in its sealed user's per-user index.

    Stores report ``user_key`` only for a record that ``by_user`` would
    return under it (SQLite: the indexed column itself; Redis, the file and
    memory stores check index membership in the load).  A signed-in record
    that is not there was hidden by a store writer from ``revoke_user`` and
    ``sessions_of`` ("sign out everywhere", a password change): it must not
    load.  The user key is derived under the issuing key, as the writer
    derives it (:func:`.writer.user_key_of`).
    """
    user = opened.meta.user
    if user is None:
        return True
    stored_key = opened.stored.user_key
    issuer = rt.keyring.by_id.get(opened.meta.issuer)
    if issuer is not None:
        return stored_key == rt.user_key(user, issuer)
    return stored_key is not None and any(stored_key == rt.user_key(user, k)
                                          for k in rt.keyring.keys)


async def activate(rt: Runtime, io: Io, owner: SessionOwner, session_id: str, key: Key,
                   opened: Opened, client: ClientInfo | None, mode: OpenMode, *,
                   forwarded: bool, cookie: str | None, depth: int) -> Session | None:
    """Enforce expiry on an opened live record and build the request's Session."""
    now = rt.clock()
    meta = opened.meta
    if now >= meta.absolute or now >= opened.activity_at(now) + meta.idle:
        reason = InvalidReason.EXPIRED if now >= meta.absolute else InvalidReason.IDLE
        await io.store.delete(opened.key)
        rt.emit("expired", key=opened.key, user=meta.user, client=client, reason=reason.value)
        await rt.invalid(io, reason, client, opened.key)
        return None
    try:
        data = codec.loads_data(opened.data_json)
    except CodecError as exc:
        rt.emit("decode_failed", key=opened.key, client=client, outcome="denied",
                reason="undecodable", detail=exc.reason)
        return None
    session = Session(owner, meta=meta, data=data, data_json=opened.data_json, mode=mode,
                      client=client)
    session.bind_identity(session_id, cookie or ids.cookie_value(session_id, key), opened.key,
                          opened.stored.version)
    if forwarded:
        session.cookie_changed = True
    return await after_load(rt, io, owner, session, opened, forwarded, depth)


async def after_load(rt: Runtime, io: Io, owner: SessionOwner, session: Session,
                     opened: Opened, forwarded: bool, depth: int) -> Session | None:
    """Revalidation, binding, grace closing, periodic rotation, then the touch."""
    now = rt.clock()
    if not await revalidated(rt, io, session, now) or not await check_binding(rt, io, session):
        return None
    if session.meta.predecessor and not forwarded:
        await rotation.close_grace(rt, io, session)
    interval = rt.settings.rotation_interval
    if (not forwarded and interval is not None and session.mode != "read"
            and now - session.meta.rotated_at >= interval.total_seconds()):
        if await rotation.rotate_periodic(rt, io, session, opened):
            return session
        # Lost the rotation race: the old ID now forwards to the winner.
        issuer = rt.keyring.by_id.get(session.meta.issuer, rt.keyring.active)
        return await load_id(rt, io, owner, session._id or "", issuer, opened.key,
                             session.client, session.mode, depth=max(depth, 1))
    if session.meta_dirty and session.mode != "read":
        await writer.write(rt, io, session, session.loaded_json or b"{}")
    elif now - opened.activity_at(now) >= rt.settings.effective_touch_interval:
        await best_effort_touch(io, opened.key, store_expiry(session.meta, now), now)
    return session


async def best_effort_touch(io: Io, key: str, expires_at: float, now: float) -> None:
    """Extend the idle hint; a store that cannot write now (full disk, a
    read-only replica, an outage) does not fail the read.

    Why: the touch is a hint that only ever *lengthens* the idle window, so
    skipping it can end a session early, never keep one alive; the next
    request retries it (``last_activity`` did not move).  A read that the
    store can answer is served -- an outage is a 503 only for what needs
    the write.
    """
    with contextlib.suppress(StoreUnavailableError, StoreTimeoutError):
        await io.store.touch(key, expires_at=expires_at, touched_at=now)


async def revalidated(rt: Runtime, io: Io, session: Session, now: float) -> bool:
    """Run the app's revalidation callback when due; False ends the session."""
    interval = rt.settings.revalidate_interval
    meta = session.meta
    if rt.revalidate is None or interval is None or meta.user is None:
        return True
    since = meta.revalidated_at or meta.auth_time or meta.created
    if now - since < interval.total_seconds():
        return True
    if not await io.call(rt.revalidate, meta.user):
        rt.emit("revalidation_failed", key=session.storage_key, user=meta.user,
                outcome="denied", reason="user_invalid")
        await writer.end(rt, io, session, "revoked", reason="revalidation_failed")
        return False
    meta.revalidated_at = now
    session.meta_dirty = True
    return True


async def check_binding(rt: Runtime, io: Io, session: Session) -> bool:
    """Record a first client profile, accept a known one, else apply the policy."""
    s = rt.settings
    profile = profile_of(session.client, s.ip_prefix_v4, s.ip_prefix_v6)
    meta = session.meta
    if not profile or (s.client_binding == "ignore" and rt.binding is None):
        return True
    if not meta.profiles:
        meta.profiles = [profile]
        session.meta_dirty = True
        return True
    if profile in meta.profiles:
        return True
    return await rotation.profile_changed(rt, io, session, profile)
