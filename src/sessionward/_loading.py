"""The load path of :class:`~sessionward.manager.SessionManager` (strict mode lives here).

``load_id`` turns a verified ID into a :class:`Session` or ``None``: store
lookup, authenticated opening, tombstone forwarding, idle/absolute expiry,
revalidation, client binding, periodic rotation and the coalesced touch —
in that order, each failing closed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _lease, _rotation, _saving, codec, ids
from ._records import Opened, store_expiry
from .client import ClientInfo, profile_of
from .config import OpenMode
from .errors import CodecError, InvalidReason
from .keys import Key
from .record import TOMBSTONE
from .session import Session

if TYPE_CHECKING:
    from .manager import SessionManager


def load_exclusive(mgr: SessionManager, session_id: str, key: Key, skey: str,
                    client: ClientInfo | None) -> Session | None:
    lease = acquire(mgr, skey)
    try:
        session = load_id(mgr, session_id, key, skey, client, "exclusive")
        if session is not None and session.storage_key != skey:
            # Forwarded to a successor: lock that one instead, then reload it.
            lease.release()
            lease = acquire(mgr, session.storage_key or "")
            fresh_id, fresh_key = session._id or "", mgr.keyring.by_id[session.meta.issuer]
            session = load_id(mgr, fresh_id, fresh_key, session.storage_key or "", client,
                                    "exclusive", forwarded=True)
            if session is not None:
                # The reload is a plain load of the successor: the client still
                # holds the old cookie and must be sent the new one.
                session.cookie_changed = True
    except BaseException:
        lease.release()
        raise
    if session is None:
        lease.release()
        return None
    session.lock_token = lease.token
    mgr._leases[id(session)] = lease
    return session

def acquire(mgr: SessionManager, skey: str) -> _lease.Lease:
    fingerprint = mgr.keyring.fingerprint(skey)

    def lost(lease: _lease.Lease) -> None:
        mgr.emit("lock_lost", key=lease.key, outcome="failure", reason="renewal_failed")

    return _lease.acquire(
        mgr.store, skey, ttl=mgr.settings.lock_ttl.total_seconds(),
        wait=mgr.settings.lock_wait.total_seconds(), fingerprint=fingerprint, on_lost=lost,
    )

def load_id(mgr: SessionManager, session_id: str, key: Key, skey: str,
            client: ClientInfo | None, mode: OpenMode, *, forwarded: bool = False,
            depth: int = 0, cookie: str | None = None) -> Session | None:
    """Load by ID; ``cookie`` is the already-verified cookie value, if at hand."""
    stored = mgr.store.load(skey)
    if stored is None:
        mgr.invalid(InvalidReason.UNKNOWN, client)
        return None
    try:
        opened = mgr.sealer.open(skey, stored)
    except CodecError as exc:
        mgr.emit("decode_failed", key=skey, client=client,
                  outcome="denied", reason="undecodable", detail=exc.reason)
        mgr.invalid(InvalidReason.TAMPERED, client, skey)
        return None
    if opened.meta.kind == TOMBSTONE:
        return _rotation.follow(mgr, session_id, key, opened, client, mode, depth)
    return activate(mgr, session_id, key, opened, client, mode, forwarded, cookie)

def activate(mgr: SessionManager, session_id: str, key: Key, opened: Opened,
             client: ClientInfo | None, mode: OpenMode, forwarded: bool,
             cookie: str | None) -> Session | None:
    """Enforce expiry on an opened live record and build the request's Session."""
    now = mgr.clock()
    meta = opened.meta
    if now >= meta.absolute or now >= opened.last_activity + meta.idle:
        reason = InvalidReason.EXPIRED if now >= meta.absolute else InvalidReason.IDLE
        mgr.store.delete(opened.key)
        mgr.emit("expired", key=opened.key, user=meta.user, client=client,
                  reason=reason.value)
        mgr.invalid(reason, client, opened.key)
        return None
    try:
        data = codec.loads_data(opened.data_json)
    except CodecError as exc:
        mgr.emit("decode_failed", key=opened.key, client=client, outcome="denied",
                  reason="undecodable", detail=exc.reason)
        return None
    session = Session(mgr, meta=meta, data=data, data_json=opened.data_json, mode=mode,
                      client=client)
    session._bind(session_id, cookie or ids.cookie_value(session_id, key), opened.key,
                  opened.stored.version)
    return after_load(mgr, session, opened, forwarded)

def after_load(mgr: SessionManager, session: Session, opened: Opened,
               forwarded: bool) -> Session | None:
    """Revalidation, binding, grace closing, periodic rotation, then the touch."""
    now = mgr.clock()
    if not revalidated(mgr, session, now) or not check_binding(mgr, session):
        return None
    if session.meta.predecessor and not forwarded:
        _rotation.close_grace(mgr, session)
    interval = mgr.settings.rotation_interval
    if (not forwarded and interval is not None and session.mode != "read"
            and now - session.meta.rotated_at >= interval.total_seconds()):
        return _rotation.rotate_periodic(mgr, session, opened)
    if session.meta_dirty and session.mode != "read":
        _saving.write(mgr, session, session.loaded_json or b"{}")
    elif now - opened.last_activity >= mgr.settings.effective_touch_interval:
        mgr.store.touch(opened.key, expires_at=store_expiry(session.meta, now),
                         touched_at=now)
    return session

def revalidated(mgr: SessionManager, session: Session, now: float) -> bool:
    interval = mgr.settings.revalidate_interval
    meta = session.meta
    if mgr.revalidate is None or interval is None or meta.user is None:
        return True
    since = meta.revalidated_at or meta.auth_time or meta.created
    if now - since < interval.total_seconds():
        return True
    if not mgr.revalidate(meta.user):
        mgr.emit("revalidation_failed", key=session.storage_key, user=meta.user,
                  outcome="denied", reason="user_invalid")
        mgr._end(session, "revoked", reason="revalidation_failed")
        return False
    meta.revalidated_at = now
    session.meta_dirty = True
    return True

def check_binding(mgr: SessionManager, session: Session) -> bool:
    s = mgr.settings
    profile = profile_of(session.client, s.ip_prefix_v4, s.ip_prefix_v6)
    meta = session.meta
    if not profile or (s.client_binding == "ignore" and mgr.binding is None):
        return True
    if not meta.profiles:
        meta.profiles = [profile]
        session.meta_dirty = True
        return True
    if profile in meta.profiles:
        return True
    return _rotation.profile_changed(mgr, session, profile)
