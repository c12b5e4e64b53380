"""The daemon's commands: a table of small functions over the real manager.

Handlers run in a worker thread (they do store I/O and crypto) and return
JSON-ready data.  They raise library exceptions; the server turns those into
wire errors through :data:`sessionward.daemon.protocol.ERROR_TABLE`.

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

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from .. import __version__, codec, ids
from ..admin import Admin
from ..client import ClientInfo
from ..errors import LockLostError, ProtocolError, SessionGoneError
from ..keys import Key
from ..manager import SessionManager
from ..record import LIVE, TOMBSTONE, SessionMeta
from ..session import Session
from . import kv, protocol

MAX_LEASES_PER_CONNECTION = 16
_GONE = "the session was ended (logout, revoke, expiry or login elsewhere)"


@dataclass
class Connection:
    """Per-connection state: who the peer is and which leases it holds."""

    peer: str
    uid: int | None = None
    role: str | None = None
    leases: dict[str, Session] = field(default_factory=dict)
    recent: dict[str, tuple[int, SessionMeta, float]] = field(default_factory=dict)
    """Sealed metadata of sessions this connection just loaded or saved, by
    storage key: ``(version, meta, when)``.  Lets ``save`` skip re-opening the
    record; see :func:`remember`."""
    reservations: dict[str, tuple[str, Key, float]] = field(default_factory=dict)
    """Reserved, never-stored IDs by reservation secret: ``(id, key, deadline)``
    (see :mod:`sessionward.daemon.reserved`)."""


RECENT_PER_CONNECTION = 32


def remember(conn: Connection, session: Session, now: float) -> None:
    """Cache a live session's metadata for this connection's next save.

    Why it is safe: every stored change bumps the version, the cache is used
    only when the client's version equals the cached one, and the store's
    compare-and-set still rejects a stale version or a deleted record.
    """
    key = session.storage_key
    if key is None or session.ended or session.meta.kind != LIVE:
        conn.recent.pop(key or "", None)
        return
    meta = replace(session.meta, profiles=list(session.meta.profiles),
                   extra=dict(session.meta.extra))
    conn.recent.pop(key, None)
    conn.recent[key] = (session.version, meta, now)
    while len(conn.recent) > RECENT_PER_CONNECTION:
        conn.recent.pop(next(iter(conn.recent)))


@dataclass
class Context:
    """What every handler may use.

    Attributes:
        manager: the real session manager.
        reload_keys: re-reads the key and token files (``reload-keys``).
        limits: the caps reported by ``describe``.
        sinks: the audit sinks whose failure counters ``stats`` reports.
    """

    manager: SessionManager
    reload_keys: Callable[[], dict[str, Any]]
    limits: Mapping[str, Any]
    sinks: Sequence[Any] = ()

    def admin_for(self, conn: Connection) -> Admin:
        """The admin API acting as the connection's peer (``uid:<n>`` from
        SO_PEERCRED, or ``ip:<address>`` on loopback TCP), so every admin
        event names the real operator."""
        return Admin(self.manager, operator=conn.peer, operator_uid=conn.uid, sinks=self.sinks)


Handler = Callable[[Context, Connection, dict[str, Any]], Any]


# --------------------------------------------------------------- views


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


def _decode(tree: Any) -> dict[str, Any]:
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
    data = _decode(args.get("data"))
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
        raise SessionGoneError(_GONE)
    session_id, key = parsed
    skey = ids.storage_key(session_id, key)
    now = mgr.clock()
    meta, last_activity, version = _recent_or_stored(mgr, conn, skey, args)
    if meta.kind != TOMBSTONE and (now >= meta.absolute or now >= last_activity + meta.idle):
        raise SessionGoneError(_GONE)
    base = args.get("base") or {}
    _decode(base)
    session = Session(mgr, meta=meta, data_json=codec.dumps(base), mode="optimistic",
                      client=client_of(args))
    session._bind(session_id, args["cookie"], skey, version)
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
        raise SessionGoneError(_GONE)
    # A tombstone (rotated away meanwhile) gets version 0, which no record
    # has: the first compare-and-set fails and the manager's merge follows
    # the forward to the successor, exactly as for an embedded request.
    if opened.meta.kind == TOMBSTONE:
        version = 0
    return opened.meta, opened.last_activity, version


def _finish(conn: Connection, session: Session, lease: str | None) -> dict[str, Any]:
    """View of ``session``; forget the lease if the manager released it."""
    remember(conn, session, session._manager.clock())
    if lease is not None and session.lock_token is None:
        conn.leases.pop(lease, None)
        lease = None
    return session_view(session, lease)


# -------------------------------------------------------------- app commands


def h_ping(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    return {"pong": True}


def h_describe(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    role = conn.role or ""
    return {
        "version": __version__, "protocol": protocol.PROTOCOL_VERSION, "role": role,
        "commands": sorted(protocol.ROLES.get(role, ())), "limits": dict(ctx.limits),
        "namespace": ctx.manager.settings.namespace,
    }


def h_create(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = ctx.manager.new(client=client_of(args))
    session.data_snapshot().update(_decode(args["data"]))
    ctx.manager.save(session)
    return session_view(session)


def h_load(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = ctx.manager.load(args.get("cookie"), client=client_of(args),
                               mode=args.get("mode", "optimistic"))
    if session is None:
        return {"session": None}
    remember(conn, session, ctx.manager.clock())
    return {"session": session_view(session)}


def h_lock(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    if len(conn.leases) >= MAX_LEASES_PER_CONNECTION:
        raise protocol.invalid(
            f"at most {MAX_LEASES_PER_CONNECTION} exclusive sessions per connection")
    session = ctx.manager.load(args.get("cookie"), client=client_of(args), mode="exclusive")
    if session is None:
        return {"session": None}
    lease = secrets.token_urlsafe(16)
    conn.leases[lease] = session
    return {"session": session_view(session, lease)}


def h_unlock(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = conn.leases.pop(args["lease"], None)
    if session is not None:
        ctx.manager.release(session)
    return {"released": session is not None}


def h_touch(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = ctx.manager.load(args.get("cookie"), client=client_of(args), mode="read")
    if session is None:
        return {"alive": False, "cookie": None, "cookie_changed": False}
    return {"alive": True, "cookie": session.cookie_value,
            "cookie_changed": session.cookie_changed}


def h_save(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = restore(ctx, conn, args)
    ctx.manager.save(session)
    return _finish(conn, session, args.get("lease"))


def h_login(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = restore(ctx, conn, args)
    ctx.manager.login(session, args["user"], level=args.get("level", 1),
                      pending=args.get("pending", False),
                      keep_data=args.get("keep_data", True))
    return _finish(conn, session, args.get("lease"))


def h_rotate(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = restore(ctx, conn, args)
    ctx.manager.rotate(session, reason=args.get("reason", "privilege_change"))
    return _finish(conn, session, args.get("lease"))


def h_elevate(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = restore(ctx, conn, args)
    ctx.manager.elevate(session, timedelta(seconds=args.get("duration", 300)))
    return _finish(conn, session, args.get("lease"))


def _end(ctx: Context, conn: Connection, args: dict[str, Any], how: str) -> Any:
    try:
        session = restore(ctx, conn, args)
    except SessionGoneError:
        return {"ended": True}
    getattr(ctx.manager, how)(session)
    if args.get("lease") is not None:
        conn.leases.pop(args["lease"], None)
    return {"ended": True}


def h_logout(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    return _end(ctx, conn, args, "logout")


def h_destroy(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    return _end(ctx, conn, args, "destroy")


class _Changed(Exception):
    """The stored value differs from what the client expected (carries it)."""

    def __init__(self, current: Any) -> None:
        super().__init__("value changed")
        self.current = current


def h_update(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    """Compare-and-set of one key: write ``value`` only if the stored value
    is still ``expected``; otherwise return the current value (the client
    re-runs its function and tries again — the function never travels).

    An absent key and a ``null`` value compare equal, as ``fn(None)`` sees
    both the same way in :meth:`SessionManager.update`.
    """
    session = restore(ctx, conn, {**args, "data": args.get("base")})
    key = args["key"]
    expected = codec.dumps(args.get("expected") if args["expected_present"] else None)
    new_value = codec.decode_data({key: args.get("value")})[key]

    def check(current: Any) -> Any:
        if codec.dumps(codec.encode_value(current, key)) != expected:
            raise _Changed(current)
        return new_value

    try:
        ctx.manager.update(session, key, check)
    except _Changed as changed:
        value = codec.encode_value(changed.current, key)
        return {"applied": False, "current": value, "present": changed.current is not None}
    return {"applied": True, "session": _finish(conn, session, args.get("lease"))}


def h_sessions_of(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    current = args.get("current")
    infos = ctx.manager.sessions_of(args["user"])
    out = []
    for info in infos:
        item = info.to_dict()
        item["current"] = current is not None and info.handle == current
        out.append(item)
    return {"sessions": out}


def h_revoke_user(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    return {"count": ctx.manager.revoke_user(args["user"], keep=args.get("keep"))}


def h_revoke_device(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = restore(ctx, conn, args)
    done = ctx.manager.revoke_device(session, args["handle"], max_auth_age=timedelta(
        seconds=args.get("max_auth_age", 300)))
    return {"revoked": done}


# ------------------------------------------------------------ admin commands


ADMIN_METHODS: dict[str, Callable[..., Any]] = {
    "list": Admin.list, "show": Admin.show, "revoke": Admin.revoke,
    "revoke-user": Admin.revoke_user, "revoke-all": Admin.revoke_all,
    "cleanup": Admin.cleanup, "stats": Admin.stats, "unlock": Admin.unlock,
    "reseal": Admin.reseal, "key-usage": Admin.key_usage,
}
"""Admin command → :class:`Admin` method (an explicit table: no ``getattr`` on
a client-chosen name); the schema's field names are the method's keywords."""


def admin_handler(command: str) -> Handler:
    """A handler calling the :class:`Admin` method of ``command`` with the
    request's validated fields as keyword arguments."""
    method = ADMIN_METHODS[command]

    def call(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
        return method(ctx.admin_for(conn), **args)

    return call


def h_reload_keys(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    return ctx.reload_keys()


APP_HANDLERS: dict[str, Handler] = {
    "ping": h_ping, "describe": h_describe, "create": h_create, "load": h_load,
    "lock": h_lock, "unlock": h_unlock, "touch": h_touch, "save": h_save, "login": h_login,
    "rotate": h_rotate, "elevate": h_elevate, "logout": h_logout, "destroy": h_destroy,
    "update": h_update, "sessions_of": h_sessions_of, "revoke_user": h_revoke_user,
    "revoke_device": h_revoke_device, "tokens": kv.h_tokens, "throttle": kv.h_throttle,
}
ADMIN_HANDLERS: dict[str, Handler] = {
    "ping": h_ping, "describe": h_describe, "reload-keys": h_reload_keys,
    **{name: admin_handler(name) for name in ADMIN_METHODS},
}


def handler_for(role: str, command: str) -> Handler:
    """The handler of an allowed ``command`` for ``role``.

    Raises:
        ProtocolError: ``forbidden_command`` (defence in depth: the server
            checked the allowlist already).
    """
    table = ADMIN_HANDLERS if role == "admin" else APP_HANDLERS
    handler = table.get(command) if protocol.allowed(role, command) else None
    if handler is None:
        raise ProtocolError("forbidden_command", "command not allowed for this role")
    return handler


def release_all(ctx: Context, conn: Connection) -> None:
    """Release every lease of a closing connection."""
    for session in list(conn.leases.values()):
        ctx.manager.release(session)
    conn.leases.clear()


# Reserved IDs and the per-request reset (PHP): a module of their own that
# builds on this one, registered here so the tables stay the one lookup.
from . import reserved  # noqa: E402

APP_HANDLERS.update(reserved.APP_HANDLERS)
