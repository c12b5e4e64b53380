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
does not exist yet.  The successor ID is *derived* (see
:mod:`~sessionward.lifecycle.forwarding`), so no ID is ever at rest.

After the grace (or, with ``grace_ends_on_successor_use``, once the successor
was used with its own cookie) the old ID is a zombie: presenting it fires
``zombie_accessed`` and, by policy, revokes the whole family.

Nothing here loads a session: where a request must continue on another
record (it lost the race at t2, or it presented an old ID within the
grace), these functions say so and the load path
(:mod:`~sessionward.lifecycle.loader`) does the loading.
"""

from __future__ import annotations

import os
from dataclasses import replace

from ..core import ids
from ..core.client import ClientInfo
from ..core.errors import CodecError, InvalidReason, SessionConflictError, StoreError
from ..core.keys import Key
from ..core.record import TOMBSTONE, Forward
from . import writer
from .context import Runtime
from .forwarding import in_grace, successor_of
from .port import Io
from .sealer import Opened, store_expiry
from .session import Session

MAX_CHAIN = 8
"""At most this many forwards are followed (and revoked as one family)."""


async def rotate_periodic(rt: Runtime, io: Io, session: Session, opened: Opened) -> bool:
    """Rotate ``session`` to a successor, keeping the old ID as a forwarding tombstone.

    Returns:
        True when ``session`` now is the successor (its cookie must be sent);
        False when another request rotated first (t2 above): this request's
        orphan is deleted and the caller reloads the old ID, which forwards to
        the winner.

    Raises:
        SessionTooLargeError, StoreError: sealing or the store failed.
    """
    now = rt.clock()
    old_key, old_id = opened.key, session._id or ""
    issuer = rt.keyring.by_id.get(session.meta.issuer, rt.keyring.active)
    active = rt.keyring.active
    nonce = os.urandom(32)
    new_id = ids.successor_id(old_id, nonce, issuer)
    new_key = ids.storage_key(new_id, active)
    grace = rt.settings.rotation_grace.total_seconds()
    succ_meta = replace(session.meta, rotated_at=now, issuer=active.kid, last_seen=now,
                        predecessor=old_key if rt.settings.grace_ends_on_successor_use else None,
                        profiles=list(session.meta.profiles))
    blob = rt.sealer.seal(new_key, succ_meta, opened.data_json)
    stored = await io.store.create(new_key, blob, expires_at=store_expiry(succ_meta, now),
                                   user_key=opened.stored.user_key)
    tomb = replace(session.meta, kind=TOMBSTONE, last_seen=now, profiles=[],
                   forward=Forward(nonce, new_key, active.kid, now + grace))
    tomb_expiry = min(session.meta.absolute, now + max(session.meta.idle, grace))
    try:
        await io.store.replace(old_key, rt.sealer.seal(old_key, tomb, b"{}"),
                               expected_version=opened.stored.version, expires_at=tomb_expiry,
                               user_key=None)
    except SessionConflictError:
        await io.store.delete(new_key)  # lost the race (t2 above): drop our orphan
        return False
    session.meta = succ_meta
    session.bind_identity(new_id, ids.cookie_value(new_id, active), new_key, stored.version)
    session.cookie_changed = True
    rt.emit("rotated", key=new_key, user=session.user, client=session.client,
            reason="periodic", previous=rt.fingerprint(old_key))
    return True


async def forward_target(rt: Runtime, io: Io, session_id: str, key: Key, tomb: Opened,
                         client: ClientInfo | None, depth: int) -> tuple[str, Key, str] | None:
    """Where a request that presented a rotated-away ID continues.

    Returns:
        ``(successor ID, its key, its storage key)`` within the grace; else
        ``None`` after treating the request as possible theft:
        ``zombie_accessed`` fires, the family is revoked when
        ``zombie_policy`` is ``revoke``, and the cookie counts as invalid.

    Raises:
        StoreError: the store failed.
    """
    forward = tomb.meta.forward
    if forward is not None and in_grace(forward, rt.clock()) and depth < MAX_CHAIN:
        found = successor_of(rt, session_id, key, forward)
        if found is not None:
            return found[0], found[1], forward.key
    reason = "successor_used" if forward is not None and forward.closed else "after_grace"
    rt.emit("zombie_accessed", key=tomb.key, user=tomb.meta.user, client=client,
            outcome="denied", reason=reason)
    if rt.settings.zombie_policy == "revoke":
        await revoke_family(rt, io, tomb)
    await rt.invalid(io, InvalidReason.ZOMBIE, client, tomb.key)
    return None


async def revoke_family(rt: Runtime, io: Io, tomb: Opened) -> int:
    """Delete a tombstone and every successor it (transitively) forwards to.

    Returns:
        How many records went.

    Raises:
        StoreError: the store failed.
    """
    doomed = [tomb.key]
    forward = tomb.meta.forward
    for _ in range(MAX_CHAIN):
        if forward is None:
            break
        nxt = await rt.open_record(io, forward.key)
        if nxt is None:
            break
        doomed.append(nxt.key)
        forward = nxt.meta.forward if nxt.meta.kind == TOMBSTONE else None
    for key in doomed:
        await io.store.delete(key)
    rt.emit("revoked", key=doomed[-1], user=tomb.meta.user, reason="zombie_family",
            count=len(doomed))
    return len(doomed)


async def close_grace(rt: Runtime, io: Io, session: Session) -> None:
    """The successor was used with its own cookie: stop the old ID forwarding.

    A concurrent close or revoke of the tombstone wins quietly (nothing left
    to do), and so does a tombstone that no longer opens.
    """
    pred = session.meta.predecessor
    session.meta.predecessor = None
    session.meta_dirty = True
    if pred is None:
        return
    tomb = await rt.open_record(io, pred)
    if tomb is None or tomb.meta.forward is None or tomb.meta.forward.key != session.storage_key:
        return
    tomb.meta.forward.closed = True
    try:
        await io.store.replace(pred, rt.sealer.seal(pred, tomb.meta, b"{}"),
                               expected_version=tomb.stored.version,
                               expires_at=tomb.stored.expires_at, user_key=None)
    except (SessionConflictError, StoreError, CodecError):
        return  # another request closed or revoked it first; nothing to do


async def profile_changed(rt: Runtime, io: Io, session: Session,
                          profile: dict[str, str]) -> bool:
    """Apply the client-binding policy to a new client profile.

    Returns:
        False when the session was ended (policy ``deny``, or the app's
        callable refused); True otherwise (``log``; ``rotate`` also moved the
        session to a new ID).

    Raises:
        StoreError: the store failed.
    """
    meta = session.meta
    rt.emit("profile_changed", key=session.storage_key, user=meta.user, client=session.client,
            outcome="success", reason=rt.settings.client_binding,
            previous_profile=meta.profiles[-1], current_profile=profile)
    policy = rt.settings.client_binding
    if rt.binding is not None:
        try:
            allowed = await io.call(rt.binding, list(meta.profiles), profile)
            meta.profiles = list(allowed)[-8:]
        except Exception:  # noqa: BLE001 - the app's callable denies by raising anything
            policy = "deny"
        else:
            session.meta_dirty = True
            return profile in meta.profiles or await _deny(rt, io, session)
    if policy == "deny":
        return await _deny(rt, io, session)
    meta.profiles = [*meta.profiles, profile][-8:]
    session.meta_dirty = True
    if policy == "rotate" and session.mode != "read":
        await writer.reissue(rt, io, session, reason="profile_changed")
    return True


async def _deny(rt: Runtime, io: Io, session: Session) -> bool:
    await writer.end(rt, io, session, "revoked", reason="profile_denied")
    await rt.invalid(io, InvalidReason.PROFILE, session.client, session.storage_key)
    return False
