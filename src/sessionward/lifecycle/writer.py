"""The save path: creation, compare-and-set writes, re-issue and ending.

- :func:`save` is :meth:`SessionManager.save`: nothing for an unchanged
  session (a read-only request writes nothing), creation for a new one that
  holds data or a user (lazy creation), else a compare-and-set write.
- :func:`insert` never overwrites: a fresh ID, a sealed record, ``SET NX``
  semantics in every store.
- :func:`write` is the compare-and-set with the three-way merge of disjoint
  keys on conflict (race timelines: ``docs/concurrency.md``).
- :func:`reissue` moves a session to a fresh ID with no grace (login,
  step-up, privilege change); :func:`end` deletes it (logout, revoke).
- Never resurrect: a write to a deleted record raises
  :class:`~sessionward.core.errors.SessionGoneError`.
"""

from __future__ import annotations

import random
import time

from ..core import codec, ids
from ..core.errors import (
    LockLostError,
    SessionConflictError,
    SessionGoneError,
    SessionReadOnlyError,
)
from ..core.keys import Key
from ..core.merge import three_way
from ..core.record import TOMBSTONE
from .context import Runtime
from .forwarding import rebind_to_successor
from .port import Io, drive, sync_io
from .sealer import Opened, store_expiry
from .session import Session

_jitter = random.SystemRandom()
GONE = ("the session was ended by a concurrent request (logout, revoke or login); "
        "this request's changes were not saved")
ENDED = "this session has ended (logout, revoke or login elsewhere)"


def data_json_of(session: Session) -> bytes:
    """The session's data as the codec's exact JSON bytes.

    Raises:
        TypeError: a value outside the codec's allowlist (names the key).
    """
    return codec.dumps_data(session.data_snapshot())


async def save(rt: Runtime, io: Io, session: Session, *, create_empty: bool = False) -> None:
    """:meth:`SessionManager.save` (its docstring is the contract)."""
    if session.mode == "read":
        raise SessionReadOnlyError("this session was opened in read mode and cannot be saved")
    if session.ended:
        raise SessionGoneError(ENDED)
    data_json = data_json_of(session)
    if session.is_new:
        if session.data_snapshot() or session.meta.user is not None or create_empty:
            await insert(rt, io, session, data_json)
        return
    if data_json == session.loaded_json and not session.meta_dirty:
        return
    await write(rt, io, session, data_json)


def bind_new_id(rt: Runtime, session: Session, key: Key | None = None, *,
                session_id: str | None = None) -> str:
    """Give ``session`` a fresh random ID (cookie to be sent); returns its storage key.

    Security: ``session_id`` is only ever a daemon-reserved ID
    (:mod:`sessionward.daemon.reserved`), never a client-supplied one.
    """
    key = key or rt.keyring.active
    session_id = session_id or ids.new_session_id()
    skey = ids.storage_key(session_id, key)
    session.bind_identity(session_id, ids.cookie_value(session_id, key), skey, 0)
    session.cookie_changed = True
    session.meta.issuer = key.kid
    return skey


def create(rt: Runtime, session: Session, data_json: bytes, *,
           reserved: tuple[str, Key] | None = None) -> None:
    """:func:`insert`, driven synchronously over ``rt.store`` (the daemon's
    reserved-ID ``create`` calls it).

    Raises:
        see :func:`insert`.
    """
    drive(insert(rt, sync_io(rt.store), session, data_json, reserved=reserved))


async def insert(rt: Runtime, io: Io, session: Session, data_json: bytes, *,
                 reserved: tuple[str, Key] | None = None) -> None:
    """Store ``session`` under a fresh ID, or a daemon-``reserved`` one (the ID
    and its issuing key); never overwrites.

    Raises:
        SessionExistsError: the reserved ID is taken (the store's atomic create).
        SessionTooLargeError: over ``max_record_bytes``; nothing written.
        StoreError: the store failed.
    """
    now = rt.clock()
    session.meta.last_seen = now
    if reserved is None:
        skey = bind_new_id(rt, session)
    else:
        skey = bind_new_id(rt, session, reserved[1], session_id=reserved[0])
    blob = rt.sealer.seal(skey, session.meta, data_json)
    user_key = rt.user_key(session.meta.user) if session.meta.user else None
    stored = await io.store.create(skey, blob, expires_at=store_expiry(session.meta, now),
                                   user_key=user_key)
    session.mark_stored(data_json, stored.version)
    rt.emit("created", key=skey, user=session.meta.user, client=session.client)


async def write(rt: Runtime, io: Io, session: Session, data_json: bytes) -> None:
    """Compare-and-set, merging disjoint changes on conflict.

    Retries are bounded by ``conflict_retries`` *and* by ``lock_wait``
    (whichever ends first).  Why a time bound too: against a writer in a
    tight loop each merge window can be overtaken many times in a row
    (measured: 10+ commits during one window under the GIL), so a small
    fixed count starves; jittered backoff plus a deadline does not.

    Raises:
        SessionGoneError, SessionConflictError, LockLostError,
        SessionTooLargeError, StoreError: see :meth:`SessionManager.save`.
    """
    delay = 0.001
    deadline = time.monotonic() + rt.settings.lock_wait.total_seconds()
    for attempt in range(rt.settings.conflict_retries + 1):
        if attempt:
            if time.monotonic() > deadline:
                break
            await io.sleep(_jitter.uniform(0, delay))
            delay = min(delay * 2, 0.02)
        if await try_write(rt, io, session, data_json):
            return
        data_json = await merge(rt, io, session, data_json)
    raise SessionConflictError("the session kept changing concurrently; retries exhausted")


async def try_write(rt: Runtime, io: Io, session: Session, data_json: bytes) -> bool:
    """One CAS attempt; False on a version conflict (the caller merges)."""
    now = rt.clock()
    session.meta.last_seen = now
    skey = session.storage_key or ""
    blob = rt.sealer.seal(skey, session.meta, data_json)
    try:
        stored = await io.store.replace(
            skey, blob, expected_version=session.version,
            expires_at=store_expiry(session.meta, now), user_key=user_key_of(rt, session),
            fence=session.lock_token,
        )
    except LockLostError:
        rt.emit("lock_lost", key=skey, user=session.user, outcome="failure", reason="fenced")
        raise
    except SessionGoneError:
        session.ended = True
        raise SessionGoneError(GONE) from None
    except SessionConflictError:
        if session.lock_token is not None:
            raise
        return False
    session.mark_stored(data_json, stored.version)
    return True


def user_key_of(rt: Runtime, session: Session) -> str | None:
    """The per-user index key of the session's user, under the key that issued it."""
    if session.meta.user is None:
        return None
    issuer = rt.keyring.by_id.get(session.meta.issuer, rt.keyring.active)
    return rt.user_key(session.meta.user, issuer)


async def merge(rt: Runtime, io: Io, session: Session, ours_json: bytes) -> bytes:
    """Re-load after a conflict and merge this request's changes (disjoint keys).

    Raises:
        SessionConflictError: both sides changed the same key (``keys`` names them).
        SessionGoneError: the record was deleted meanwhile.
    """
    theirs = await fresh(rt, io, session)
    merged, conflicts = three_way(session.loaded_json or b"{}", ours_json, theirs.data_json)
    if conflicts:
        rt.emit("conflict", key=session.storage_key, user=session.user, outcome="failure",
                keys=sorted(conflicts))
        raise SessionConflictError(
            f"concurrent change to the same session key(s): {', '.join(sorted(conflicts))}",
            keys=frozenset(conflicts),
        )
    if not session.meta_dirty:
        session.meta = theirs.meta
    session.version = theirs.stored.version
    session._data_json = theirs.data_json
    session.replace_data(codec.decode_data(codec.loads(merged)))
    rt.emit("merged", key=session.storage_key, user=session.user)
    return merged


async def fresh(rt: Runtime, io: Io, session: Session) -> Opened:
    """The current record of ``session``, following a rotation forward.

    Raises:
        SessionGoneError: deleted, or rotated away with the grace over.
        StoreError: the store failed.
    """
    opened = await rt.open_record(io, session.storage_key or "")
    if opened is not None and opened.meta.kind == TOMBSTONE:
        opened = await rebind_to_successor(rt, io, session, opened)
    if opened is None:
        session.ended = True
        raise SessionGoneError(GONE)
    return opened


async def reissue(rt: Runtime, io: Io, session: Session, *, reason: str) -> None:
    """Move the session to a fresh ID and delete the old record (no grace).

    The caller releases any lease first (it belongs to the old key).

    Raises:
        SessionGoneError: the session has ended.
        StoreError: the store failed.
    """
    if session.ended:
        raise SessionGoneError(ENDED)
    old_key = session.storage_key
    now = rt.clock()
    session.meta.rotated_at = now
    session.meta.predecessor = None
    if old_key is None:
        session.meta.created = now
    await insert(rt, io, session, data_json_of(session))
    if old_key is not None:
        await io.store.delete(old_key)
        rt.emit("rotated", key=session.storage_key, user=session.user, reason=reason,
                previous=rt.fingerprint(old_key))


async def end(rt: Runtime, io: Io, session: Session, event: str, *, reason: str = "") -> None:
    """Delete the session's record (if stored), emit ``event`` and mark it ended.

    The caller releases any lease first.  An in-flight save of the same
    session then fails with :class:`SessionGoneError` instead of resurrecting it.

    Raises:
        StoreError: the store failed.
    """
    if session.storage_key is not None:
        await io.store.delete(session.storage_key)
        rt.emit(event, key=session.storage_key, user=session.user, client=session.client,
                reason=reason)
    session.ended = True
    session.replace_data({})
