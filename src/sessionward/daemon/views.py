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
from typing import Any

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


def session_view(session: Session, lease: str | None = None) -> dict[str, Any]:
    """Everything the client-side Session needs (the cookie is for Set-Cookie)."""
    data = codec.encode_data(session.data_snapshot())
    base = codec.loads(session.loaded_json) if session.loaded_json else {}
    view: dict[str, Any] = {
        "cookie": session.cookie_value, "handle": session.handle,
        "fingerprint": session.fingerprint, "version": session.version,
        "mode": session.mode, "cookie_changed": session.cookie_changed,
        "ended": session.ended, "meta": meta_view(session.meta), "data": data,
    }
    if base != data:
        view["base"] = base
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


def decode(tree: Any) -> dict[str, Any]:
    return codec.decode_data(tree if tree is not None else {})


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
    snapshot = session.data_snapshot()
    snapshot.clear()
    snapshot.update(data)
    return session


def _from_record(mgr: SessionManager, args: Mapping[str, Any],
                 conn: Connection | None = None) -> Session:
    parsed = ids.parse_cookie_value(args["cookie"], mgr.keyring)
    if parsed is None:
        raise SessionGoneError(GONE)
    session_id, key = parsed
    skey = ids.storage_key(session_id, key)
    now = mgr.clock()
    meta, last_activity, version = _recent_or_stored(mgr, conn, skey, args)
    if meta.kind != TOMBSTONE and (now >= meta.absolute or now >= last_activity + meta.idle):
        raise SessionGoneError(GONE)
    base = args.get("base") or {}
    decode(base)
    session = Session(mgr, meta=meta, data_json=codec.dumps(base), mode="optimistic",
                      client=client_of(args))
    session.bind_identity(session_id, args["cookie"], skey, version)
    return session


def _recent_or_stored(mgr: SessionManager, conn: Connection | None, skey: str,
                      args: Mapping[str, Any]) -> tuple[SessionMeta, float, int]:
    """``(meta, last activity, version)`` from this connection's cache when the
    client's version matches it, else from the sealed record.

    Raises:
        SessionGoneError: no record.
    """
    version = int(args.get("version") or 0)
    cached = conn.recent.get(skey) if conn is not None else None
    if cached is not None and cached[0] == version:
        meta = cached[1]
        return replace(meta, profiles=list(meta.profiles), extra=dict(meta.extra)), \
            max(meta.last_seen, cached[2]), version
    opened = mgr.open_record(skey)
    if opened is None:
        raise SessionGoneError(GONE)
    # A tombstone (rotated away meanwhile) gets version 0, which no record
    # has: the first compare-and-set fails and the manager's merge follows
    # the forward to the successor, exactly as for an embedded request.
    if opened.meta.kind == TOMBSTONE:
        version = 0
    return opened.meta, opened.last_activity, version


def finish(ctx: Context, conn: Connection, session: Session,
            lease: str | None) -> dict[str, Any]:
    """View of ``session``; forget the lease if the manager released it."""
    remember(conn, session, ctx.manager.clock())
    if lease is not None and session.lock_token is None:
        conn.leases.pop(lease, None)
        lease = None
    return session_view(session, lease)
