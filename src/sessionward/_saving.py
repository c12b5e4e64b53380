"""The write path of :class:`~sessionward.manager.SessionManager`.

Creation (never overwrites), compare-and-set writes with the three-way
merge of disjoint keys on conflict, the atomic ``update(key, fn)``, and the
"never resurrect" rule: a write to a deleted record raises
:class:`SessionGoneError`.  Race timelines: ``docs/concurrency.md``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _loading, _rotation, codec
from ._merge import pending_changes, three_way
from ._records import Opened, store_expiry
from .errors import LockLostError, SessionConflictError, SessionGoneError, SessionReadOnlyError
from .record import TOMBSTONE
from .session import Session

if TYPE_CHECKING:
    from .keys import Key
    from .manager import SessionManager

_jitter = random.SystemRandom()


def create(mgr: SessionManager, session: Session, data_json: bytes, *,
           reserved: tuple[str, Key] | None = None) -> None:
    """Store a new record under a fresh ID (or a daemon-``reserved`` one: the
    ID and its issuing key from ``daemon/reserved.py``); never overwrites.

    Raises:
        SessionExistsError: the ID is taken (the store's atomic create).
    """
    now = mgr.clock()
    session.meta.last_seen = now
    if reserved is None:
        skey = mgr._bind_new_id(session)
    else:
        skey = mgr._bind_new_id(session, reserved[1], session_id=reserved[0])
    blob = mgr.sealer.seal(skey, session.meta, data_json)
    user_key = mgr.user_key(session.meta.user) if session.meta.user else None
    stored = mgr.store.create(skey, blob, expires_at=store_expiry(session.meta, now),
                               user_key=user_key)
    session.version = stored.version
    session._reset_baseline(data_json)
    mgr.emit("created", key=skey, user=session.meta.user, client=session.client)

def write(mgr: SessionManager, session: Session, data_json: bytes) -> None:
    """Compare-and-set, merging disjoint changes on conflict.

    Retries are bounded by ``conflict_retries`` *and* by ``lock_wait``
    (whichever ends first).  Why a time bound too: against a writer in a
    tight loop each merge window can be overtaken many times in a row
    (measured: 10+ commits during one window under the GIL), so a small
    fixed count starves; jittered backoff plus a deadline does not.
    """
    delay = 0.001
    deadline = time.monotonic() + mgr.settings.lock_wait.total_seconds()
    for attempt in range(mgr.settings.conflict_retries + 1):
        if attempt:
            if time.monotonic() > deadline:
                break
            time.sleep(_jitter.uniform(0, delay))
            delay = min(delay * 2, 0.02)
        if try_write(mgr, session, data_json):
            return
        data_json = merge(mgr, session, data_json)
    raise SessionConflictError("the session kept changing concurrently; retries exhausted")

def try_write(mgr: SessionManager, session: Session, data_json: bytes) -> bool:
    """One CAS attempt; False on a version conflict (caller merges)."""
    now = mgr.clock()
    session.meta.last_seen = now
    skey = session.storage_key or ""
    blob = mgr.sealer.seal(skey, session.meta, data_json)
    try:
        stored = mgr.store.replace(
            skey, blob, expected_version=session.version,
            expires_at=store_expiry(session.meta, now), user_key=user_key_of(mgr, session),
            fence=session.lock_token,
        )
    except LockLostError:
        mgr.emit("lock_lost", key=skey, user=session.user, outcome="failure",
                  reason="fenced")
        raise
    except SessionGoneError:
        session.ended = True
        raise SessionGoneError(
            "the session was ended by a concurrent request (logout, revoke or login); "
            "this request's changes were not saved"
        ) from None
    except SessionConflictError:
        if session.lock_token is not None:
            raise
        return False
    session.version = stored.version
    session._reset_baseline(data_json)
    return True

def user_key_of(mgr: SessionManager, session: Session) -> str | None:
    if session.meta.user is None:
        return None
    issuer = mgr.keyring.by_id.get(session.meta.issuer, mgr.keyring.active)
    return mgr.user_key(session.meta.user, issuer)

def merge(mgr: SessionManager, session: Session, ours_json: bytes) -> bytes:
    """Re-load after a conflict and merge this request's changes (disjoint keys)."""
    theirs = fresh(mgr, session)
    merged, conflicts = three_way(session.loaded_json or b"{}", ours_json, theirs.data_json)
    if conflicts:
        mgr.emit("conflict", key=session.storage_key, user=session.user, outcome="failure",
                  keys=sorted(conflicts))
        raise SessionConflictError(
            f"concurrent change to the same session key(s): {', '.join(sorted(conflicts))}",
            keys=frozenset(conflicts),
        )
    if not session.meta_dirty:
        session.meta = theirs.meta
    session.version = theirs.stored.version
    session._data_json = theirs.data_json
    data = session.data_snapshot()
    data.clear()
    data.update(codec.decode_data(codec.loads(merged)))
    mgr.emit("merged", key=session.storage_key, user=session.user)
    return merged

def fresh(mgr: SessionManager, session: Session) -> Opened:
    """The current record of ``session``, following a rotation forward.

    Raises:
        SessionGoneError: deleted, or rotated away with the grace over.
    """
    opened = mgr.open_record(session.storage_key or "")
    if opened is not None and opened.meta.kind == TOMBSTONE:
        opened = _rotation.rebind_to_successor(mgr, session, opened)
    if opened is None:
        session.ended = True
        raise SessionGoneError(
            "the session was ended by a concurrent request (logout, revoke or login); "
            "this request's changes were not saved"
        )
    return opened

# --------------------------------------------------------------- update

def update_without_store(session: Session, key: str, fn: Callable[[Any], Any],
                         save: Callable[[Session], None]) -> tuple[bool, Any]:
    """The part of ``update()`` shared by the embedded and remote managers.

    Read mode is refused; a session that is new, or whose exclusive lease this
    request already holds, is updated in memory and saved (nobody else can
    interleave).  Returns ``(handled, value)``; when not handled the caller does
    its atomic read-modify-write against the store.

    Raises:
        SessionReadOnlyError: opened in ``read`` mode.
    """
    if session.mode == "read":
        raise SessionReadOnlyError("this session was opened in read mode and cannot be saved")
    if session.is_new or session.lock_token is not None:
        value = fn(session.data_snapshot().get(key))
        session[key] = value
        save(session)
        return True, value
    return False, None


def update(mgr: SessionManager, session: Session, key: str, fn: Callable[[Any], Any]) -> Any:
    """:meth:`SessionManager.update` (its docstring is the contract)."""
    handled, value = update_without_store(session, key, fn, mgr.save)
    if handled:
        return value
    # Why the lease: compare-and-set alone makes update() atomic against other
    # update() calls and optimistic saves, but not against an exclusive holder,
    # whose fenced save would then hit a same-key conflict:
    #   t0  X (exclusive) loads items=[a]     t1  update() appends b: CAS ok
    #   t2  X saves items=[a, x]: version moved, same key -> SessionConflictError
    # Taking the lease for each attempt makes update() wait for X instead.
    delay = 0.001
    for _attempt in range(200):
        locked = session.storage_key or ""
        lease = _loading.acquire(mgr, locked)
        session.lock_token = lease.token
        try:
            value, done = try_update(mgr, session, key, fn, locked=locked)
        finally:
            session.lock_token = None
            lease.release()
        if done:
            return value
        time.sleep(_jitter.uniform(0, delay))
        delay = min(delay * 2, 0.05)
    raise SessionConflictError(f"update of {key!r} kept conflicting; gave up after 200 tries")


def try_update(mgr: SessionManager, session: Session, key: str,
               fn: Callable[[Any], Any], *, locked: str) -> tuple[Any, bool]:
    """One fenced read-modify-write attempt under the lease on ``locked``;
    ``(value, False)`` on a version conflict or when the session moved to a
    rotation successor (the caller then locks the successor and retries)."""
    if session.ended:
        raise SessionGoneError("this session has ended (logout, revoke or login elsewhere)")
    current = fresh(mgr, session)
    if current.key != locked:
        return None, False
    pending, deleted = pending_changes(session.loaded_json or b"{}", session.data_snapshot())
    stored_data = codec.decode_data(codec.loads(current.data_json))
    value = fn(stored_data.get(key))
    stored_data[key] = value
    data_json = codec.dumps(codec.encode_data(stored_data))
    meta = session.meta if session.meta_dirty else current.meta
    meta.last_seen = mgr.clock()
    blob = mgr.sealer.seal(current.key, meta, data_json)
    try:
        stored = mgr.store.replace(
            current.key, blob, expected_version=current.stored.version,
            expires_at=store_expiry(meta, meta.last_seen), user_key=current.stored.user_key,
            fence=session.lock_token,
        )
    except SessionGoneError:
        session.ended = True
        raise
    except SessionConflictError:
        return None, False
    session.meta, session.version = meta, stored.version
    session._reset_baseline(data_json)
    local = dict(stored_data)
    local.update(codec.decode_data({k: v for k, v in pending.items() if k != key}))
    for gone in deleted - {key}:
        local.pop(gone, None)
    session.data_snapshot().clear()
    session.data_snapshot().update(local)
    return value, True
