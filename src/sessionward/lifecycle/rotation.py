"""Periodic rotation with a forwarding grace, theft detection, and client-profile changes.

Periodic rotation, step by step (storage keys K_old / K_new)::

    1. create K_new  (same data; meta.predecessor = K_old)
    2. CAS K_old -> tombstone {nonce, K_new, grace_until}   (expected version v)

Race timeline with N parallel requests carrying the old ID (CodeIgniter #154)::

    t0  A and B load K_old (version v); rotation is due for both
    t1  A creates K_new_a, B creates K_new_b
    t2  A's CAS(K_old, v) wins; B's CAS fails (version moved)
    t3  B deletes its orphan K_new_b, reloads K_old -> tombstone within grace
        -> follows it to K_new_a
    =>  every request lands on the same single successor.

Creating the successor first means a tombstone never points at a record that
does not exist yet.  The successor ID is *derived* (HMAC of the old ID and the
tombstone's nonce), so no ID is ever at rest, not even encrypted.

After the grace (or, with ``grace_ends_on_successor_use``, once the successor
was used with its own cookie) the old ID is a zombie: presenting it fires
``zombie_accessed`` and, by policy, revokes the whole family.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from ..core import ids
from ..core.client import ClientInfo
from ..core.config import OpenMode
from ..core.errors import CodecError, InvalidReason, SessionConflictError, StoreError
from ..core.keys import Key
from ..core.record import TOMBSTONE, Forward
from . import loader as _loading
from .sealer import Opened, store_expiry
from .session import Session

if TYPE_CHECKING:
    from .manager import SessionManager

MAX_CHAIN = 8


def rotate_periodic(mgr: SessionManager, session: Session, opened: Opened) -> Session | None:
    """Rotate ``session`` to a successor, keeping the old ID as a forwarding tombstone."""
    now = mgr.clock()
    old_key, old_id = opened.key, session._id or ""
    issuer = mgr.keyring.by_id.get(session.meta.issuer, mgr.keyring.active)
    active = mgr.keyring.active
    nonce = os.urandom(32)
    new_id = ids.successor_id(old_id, nonce, issuer)
    new_key = ids.storage_key(new_id, active)
    grace = mgr.settings.rotation_grace.total_seconds()
    succ_meta = replace(session.meta, rotated_at=now, issuer=active.kid, last_seen=now,
                        predecessor=old_key if mgr.settings.grace_ends_on_successor_use else None,
                        profiles=list(session.meta.profiles))
    data_json = opened.data_json
    blob = mgr.sealer.seal(new_key, succ_meta, data_json)
    stored = mgr.store.create(new_key, blob, expires_at=store_expiry(succ_meta, now),
                              user_key=opened.stored.user_key)
    tomb = replace(session.meta, kind=TOMBSTONE, last_seen=now, profiles=[],
                   forward=Forward(nonce, new_key, active.kid, now + grace))
    tomb_expiry = min(session.meta.absolute, now + max(session.meta.idle, grace))
    try:
        mgr.store.replace(old_key, mgr.sealer.seal(old_key, tomb, b"{}"),
                          expected_version=opened.stored.version, expires_at=tomb_expiry,
                          user_key=None)
    except SessionConflictError:
        # Lost the race (t2 above): drop our orphan and follow the winner.
        mgr.store.delete(new_key)
        return _loading.load_id(mgr, old_id, issuer, old_key, session.client, session.mode,
                            depth=1)
    session.meta = succ_meta
    session._bind(new_id, ids.cookie_value(new_id, active), new_key, stored.version)
    session.cookie_changed = True
    mgr.emit("rotated", key=new_key, user=session.user, client=session.client,
             reason="periodic", previous=mgr.keyring.fingerprint(old_key))
    return session


def follow(mgr: SessionManager, session_id: str, key: Key, tomb: Opened,
           client: ClientInfo | None, mode: OpenMode, depth: int) -> Session | None:
    """Handle a request that presented a rotated-away ID."""
    forward = tomb.meta.forward
    now = mgr.clock()
    if (forward is not None and not forward.closed and now < forward.grace_until
            and depth < MAX_CHAIN):
        succ_key = mgr.keyring.by_id.get(forward.kid)
        succ_id = ids.successor_id(session_id, forward.nonce, key)
        if succ_key is not None and ids.storage_key(succ_id, succ_key) == forward.key:
            session = _loading.load_id(mgr, succ_id, succ_key, forward.key, client, mode,
                                   forwarded=True, depth=depth + 1)
            if session is not None:
                session.cookie_changed = True
            return session
    reason = "successor_used" if forward is not None and forward.closed else "after_grace"
    mgr.emit("zombie_accessed", key=tomb.key, user=tomb.meta.user, client=client,
             outcome="denied", reason=reason)
    if mgr.settings.zombie_policy == "revoke":
        revoke_family(mgr, tomb)
    mgr.invalid(InvalidReason.ZOMBIE, client, tomb.key)
    return None


def revoke_family(mgr: SessionManager, tomb: Opened) -> int:
    """Delete a tombstone and every successor it (transitively) forwards to."""
    doomed = [tomb.key]
    forward = tomb.meta.forward
    for _ in range(MAX_CHAIN):
        if forward is None:
            break
        nxt = mgr.open_record(forward.key)
        if nxt is None:
            break
        doomed.append(nxt.key)
        forward = nxt.meta.forward if nxt.meta.kind == TOMBSTONE else None
    for key in doomed:
        mgr.store.delete(key)
    mgr.emit("revoked", key=doomed[-1], user=tomb.meta.user, reason="zombie_family",
             count=len(doomed))
    return len(doomed)


def close_grace(mgr: SessionManager, session: Session) -> None:
    """The successor was used with its own cookie: stop the old ID forwarding."""
    pred = session.meta.predecessor
    session.meta.predecessor = None
    session.meta_dirty = True
    if pred is None:
        return
    tomb = mgr.open_record(pred)
    if tomb is None or tomb.meta.forward is None or tomb.meta.forward.key != session.storage_key:
        return
    tomb.meta.forward.closed = True
    try:
        mgr.store.replace(pred, mgr.sealer.seal(pred, tomb.meta, b"{}"),
                          expected_version=tomb.stored.version,
                          expires_at=tomb.stored.expires_at, user_key=None)
    except (SessionConflictError, StoreError, CodecError):
        return  # another request closed or revoked it first; nothing to do


def rebind_to_successor(mgr: SessionManager, session: Session, tomb: Opened) -> Opened | None:
    """During a save conflict: the record was rotated away under us.  Within the
    grace, move ``session`` onto the successor (new cookie) and return it."""
    forward = tomb.meta.forward
    issuer = mgr.keyring.by_id.get(session.meta.issuer)
    if (forward is None or forward.closed or mgr.clock() >= forward.grace_until
            or issuer is None or session._id is None):
        return None
    succ_key = mgr.keyring.by_id.get(forward.kid)
    succ_id = ids.successor_id(session._id, forward.nonce, issuer)
    succ = mgr.open_record(forward.key)
    if succ is None or succ_key is None or succ.meta.kind == TOMBSTONE:
        return None
    session._bind(succ_id, ids.cookie_value(succ_id, succ_key), forward.key, succ.stored.version)
    session.cookie_changed = True
    return succ


def profile_changed(mgr: SessionManager, session: Session, profile: dict[str, str]) -> bool:
    """Apply the client-binding policy; False means the session was ended."""
    meta = session.meta
    previous = meta.profiles[-1]
    mgr.emit("profile_changed", key=session.storage_key, user=meta.user, client=session.client,
             outcome="success", reason=mgr.settings.client_binding,
             previous_profile=previous, current_profile=profile)
    policy = mgr.settings.client_binding
    if mgr.binding is not None:
        try:
            meta.profiles = list(mgr.binding(list(meta.profiles), profile))[-8:]
        except Exception:  # noqa: BLE001 - the app's callable denies by raising anything
            policy = "deny"
        else:
            session.meta_dirty = True
            return profile in meta.profiles or _deny(mgr, session)
    if policy == "deny":
        return _deny(mgr, session)
    meta.profiles = [*meta.profiles, profile][-8:]
    session.meta_dirty = True
    if policy == "rotate" and session.mode != "read":
        mgr._reissue(session, reason="profile_changed")
    return True


def _deny(mgr: SessionManager, session: Session) -> bool:
    mgr._end(session, "revoked", reason="profile_denied")
    mgr.invalid(InvalidReason.PROFILE, session.client, session.storage_key)
    return False
