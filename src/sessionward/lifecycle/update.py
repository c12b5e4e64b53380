"""``update(key, fn)``: the atomic read-modify-write of one session key.

``fn`` receives the key's current *stored* value and returns the new one;
it may run several times.  Each attempt holds the session's lease and writes
with a fenced compare-and-set, so an ``update()`` never loses another
request's change and is never lost itself.

Why the lease and not compare-and-set alone: CAS makes ``update()`` atomic
against other ``update()`` calls and optimistic saves, but not against an
exclusive holder, whose fenced save would then hit a same-key conflict::

    t0  X (exclusive) loads items=[a]     t1  update() appends b: CAS ok
    t2  X saves items=[a, x]: version moved, same key -> SessionConflictError

Taking the lease for each attempt makes ``update()`` wait for X instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ..core import codec
from ..core.errors import SessionConflictError, SessionGoneError, SessionReadOnlyError
from ..core.merge import pending_changes
from . import writer
from .context import Runtime
from .lease import acquire_session_lease
from .port import Io
from .sealer import store_expiry
from .session import Session
from .writer import ENDED, fresh

_jitter = random.SystemRandom()
MAX_ATTEMPTS = 200


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
    handled, value = update_in_memory(session, key, fn)
    if handled:
        save(session)
    return handled, value


def update_in_memory(session: Session, key: str, fn: Callable[[Any], Any]) -> tuple[bool, Any]:
    """:func:`update_without_store` before its save: ``(handled, value)``, and
    when handled the session holds the new value and must be saved.

    Raises:
        SessionReadOnlyError: opened in ``read`` mode.
    """
    if session.mode == "read":
        raise SessionReadOnlyError("this session was opened in read mode and cannot be saved")
    if session.is_new or session.lock_token is not None:
        value = fn(session.data_snapshot().get(key))
        session[key] = value
        return True, value
    return False, None


async def update(rt: Runtime, io: Io, session: Session, key: str,
                 fn: Callable[[Any], Any]) -> Any:
    """:meth:`SessionManager.update` (its docstring is the contract)."""
    handled, value = update_in_memory(session, key, fn)
    if handled:
        await writer.save(rt, io, session)
        return value
    delay = 0.001
    for _attempt in range(MAX_ATTEMPTS):
        locked = session.storage_key or ""
        lease = await acquire_session_lease(rt, io, locked)
        try:
            value, done = await try_update(rt, io, session, key, fn, locked=locked,
                                           fence=lease.token)
        finally:
            await lease.release_via(io)
        if done:
            return value
        await io.sleep(_jitter.uniform(0, delay))
        delay = min(delay * 2, 0.05)
    raise SessionConflictError(
        f"update of {key!r} kept conflicting; gave up after {MAX_ATTEMPTS} tries")


async def try_update(rt: Runtime, io: Io, session: Session, key: str,
                     fn: Callable[[Any], Any], *, locked: str, fence: str) -> tuple[Any, bool]:
    """One read-modify-write attempt under the lease on ``locked`` whose token is
    ``fence``; ``(value, False)`` on a version conflict or when the session
    moved to a rotation successor (the caller then locks the successor and
    retries).

    Why the token travels as an argument and not in ``session.lock_token``:
    that field means "this request holds an exclusive lease", and another
    thread's ``update()`` on the same session object would take the in-memory
    shortcut of :func:`update_without_store` on seeing it.

    Raises:
        SessionGoneError: the session ended meanwhile.
    """
    if session.ended:
        raise SessionGoneError(ENDED)
    current = await fresh(rt, io, session)
    if current.key != locked:
        return None, False
    pending, deleted = pending_changes(session.loaded_json or b"{}", session.data_snapshot())
    stored_data = codec.decode_data(codec.loads(current.data_json))
    value = fn(stored_data.get(key))
    stored_data[key] = value
    data_json = codec.dumps_data(stored_data)
    meta = session.meta if session.meta_dirty else current.meta
    meta.last_seen = rt.clock()
    blob = rt.sealer.seal(current.key, meta, data_json)
    try:
        stored = await io.store.replace(
            current.key, blob, expected_version=current.stored.version,
            expires_at=store_expiry(meta, meta.last_seen), user_key=current.stored.user_key,
            fence=fence,
        )
    except SessionGoneError:
        session.ended = True
        raise
    except SessionConflictError:
        return None, False
    session.meta = meta
    session.mark_stored(data_json, stored.version)
    _keep_local_changes(session, stored_data, pending, deleted - {key}, key)
    return value, True


def _keep_local_changes(session: Session, stored_data: dict[str, Any],
                        pending: dict[str, Any], deleted: set[str], key: str) -> None:
    """Adopt the stored data, then re-apply this request's other unsaved changes."""
    local = dict(stored_data)
    local.update(codec.decode_data({k: v for k, v in pending.items() if k != key}))
    for gone in deleted:
        local.pop(gone, None)
    session.replace_data(local)
