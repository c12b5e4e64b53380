"""Session views over the wire, and re-creating a client's session in the daemon.

Save over the wire (why there is no "last write wins"): the client sends the
cookie, the version and data it loaded (*base*) and its current data.
:func:`restore` re-creates the session server-side from the *sealed* record
(server-trusted metadata) with the client's version and baseline, and the
real :meth:`SessionManager.save` runs — its compare-and-set and three-way
merge apply unchanged.  Race timeline::

    t0  worker A loads K (version 3, data {a:1}); worker B too
    t1  B saves {a:1, b:2}         -> record version 4
    t2  A saves base {a:1}, data {a:1, c:3}, version 3
        -> CAS(version 3) fails -> merge(base, ours, theirs) = {a:1,b:2,c:3}
        -> CAS(version 4) succeeds: nothing lost.

Exclusive mode: ``lock`` loads with a lease and keeps the server-side
session in the connection's lease table under a random lease id; saves with
that id are fenced by the lease token; closing the connection releases them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import orjson

from ..core import codec, ids
from ..core.client import ClientInfo
from ..core.errors import LockLostError, SessionGoneError
from ..core.record import TOMBSTONE, SessionMeta
from ..lifecycle.manager import SessionManager
from ..lifecycle.session import Session
from .context import Connection, Context, remember

GONE = "the session was ended (logout, revoke, expiry or login elsewhere)"


def meta_view(meta: SessionMeta) -> dict[str, Any]:
    """The metadata a client may see (no issuer, no forward, no predecessor)."""
    return {
        "created": meta.created, "last_seen": meta.last_seen, "idle": meta.idle,
        "absolute": meta.absolute, "user": meta.user, "auth_time": meta.auth_time,
        "auth_level": meta.auth_level, "pending": meta.pending,
        "elevated_until": meta.elevated_until, "rotated_at": meta.rotated_at,
        "profiles": meta.profiles,
    }


def session_view(session: Session, lease: str | None = None,
                 fingerprint: str | None = None) -> dict[str, Any]:
    """Everything the client-side Session needs (the cookie is for Set-Cookie).

    ``data`` is the session's stored data bytes, embedded as they are
    (:class:`orjson.Fragment`: no codec walk, no re-serialisation).  Every
    view is taken right after the session was loaded or written, when those
    bytes *are* its data — the manager's change-detection baseline
    (``loaded_json``) is exactly the encoding of the data it holds — so the
    ``base`` of 1.0 (sent when the two differed) is never needed.  A new,
    never stored session is encoded.  ``fingerprint``: the session's,
    when the caller already has it.
    """
    stored = session.loaded_json
    data: Any = orjson.Fragment(stored) if stored is not None else codec.encode_data(
        session.data_snapshot())
    view: dict[str, Any] = {
        "cookie": session.cookie_value, "handle": session.handle,
        "fingerprint": session.fingerprint if fingerprint is None else fingerprint,
        "version": session.version,
        "mode": session.mode, "cookie_changed": session.cookie_changed,
        "ended": session.ended, "meta": meta_view(session.meta), "data": data,
    }
    if lease is not None:
        view["lease"] = lease
    return view


def client_of(args: Mapping[str, Any]) -> ClientInfo | None:
    """The :class:`ClientInfo` sent with a request, if any."""
    raw = args.get("client")
    if not raw:
        return None
    return ClientInfo(ip=raw.get("ip"), user_agent=raw.get("user_agent"),
                      correlation_id=raw.get("correlation_id"))


_TAG = codec.TAG.encode()


def decode(tree: Any, frame_json: bytes | None = None) -> dict[str, Any]:
    """The session data of a wire tree (``None`` is empty).

    Fast path: a tree whose JSON holds neither the codec's tag marker nor a
    ``\\u`` escape (which could spell the marker) has no tagged value to
    rebuild — it *is* the data.  ``frame_json`` is those bytes when the
    caller has them.

    Raises:
        CodecError: not a mapping, or a malformed tagged value.
    """
    if tree is None:
        return {}
    raw = frame_json if frame_json is not None else orjson.dumps(tree)
    if type(tree) is dict and _TAG not in raw and b"\\u" not in raw:
        return cast(dict[str, Any], tree)
    return codec.decode_data(tree)


# --------------------------------------------------------------- restore


def restore(ctx: Context, conn: Connection, args: Mapping[str, Any]) -> Session:
    """Re-create the client's session server-side (see the module docstring).

    Raises:
        SessionGoneError: bad cookie, no record, or the record expired.
        LockLostError: an unknown lease id.
        CodecError: undecodable data.
    """
    mgr = ctx.manager
    data = decode(args.get("data"))
    lease = args.get("lease")
    if lease is not None:
        session = conn.leases.get(lease)
        if session is None:
            raise LockLostError("unknown or released lease on this connection")
    elif args.get("cookie") is None:
        session = mgr.new(client=client_of(args))
    else:
        session = _from_record(mgr, args, conn)
    session.replace_data(data)
    return session


def _from_record(mgr: SessionManager, args: Mapping[str, Any], conn: Connection) -> Session:
    cookie = args["cookie"]
    version = int(args.get("version") or 0)
    cached = conn.recent.get(cookie)
    if cached is not None and cached.version == version and cached.ring is mgr.keyring:
        session_id, skey = cached.session_id, cached.storage_key
        meta = replace(cached.meta, profiles=list(cached.meta.profiles),
                       extra=dict(cached.meta.extra))
        last_activity, known = max(meta.last_seen, cached.when), cached.data_json
    else:
        parsed = ids.parse_cookie_value(cookie, mgr.keyring)
        if parsed is None:
            raise SessionGoneError(GONE)
        session_id, key = parsed
        skey = ids.storage_key(session_id, key)
        meta, last_activity, version = _stored(mgr, skey, version)
        known = None
    now = mgr.clock()
    if meta.kind != TOMBSTONE and (now >= meta.absolute or now >= last_activity + meta.idle):
        raise SessionGoneError(GONE)
    base = args.get("base") or {}
    base_json = orjson.dumps(base)
    if base_json != known:
        decode(base, base_json)  # validated: it becomes the merge baseline
    session = Session(mgr, meta=meta, data_json=base_json, mode="optimistic",
                      client=client_of(args))
    session.bind_identity(session_id, cookie, skey, version)
    return session


def _stored(mgr: SessionManager, skey: str, version: int) -> tuple[SessionMeta, float, int]:
    """``(meta, last activity, version)`` from the sealed record.

    Raises:
        SessionGoneError: no record.
    """
    opened = mgr.open_record(skey)
    if opened is None:
        raise SessionGoneError(GONE)
    # A tombstone (rotated away meanwhile) gets version 0, which no record
    # has: the first compare-and-set fails and the manager's merge follows
    # the forward to the successor, exactly as for an embedded request.
    if opened.meta.kind == TOMBSTONE:
        version = 0
    return opened.meta, opened.activity_at(mgr.clock()), version


def finish(ctx: Context, conn: Connection, session: Session,
            lease: str | None) -> dict[str, Any]:
    """View of ``session``; forget the lease if the manager released it."""
    entry = remember(conn, session, ctx.manager.clock(), ctx.manager.keyring)
    if lease is not None and session.lock_token is None:
        conn.leases.pop(lease, None)
        lease = None
    return session_view(session, lease, entry.fingerprint if entry is not None else None)
