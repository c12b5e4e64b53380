"""The ``app`` role's session commands: one small function per command over the
real :class:`~sessionward.SessionManager` (the manager's compare-and-set,
merge, leases and policy apply unchanged; see :mod:`.views` for why a save
over the wire never means "last write wins")."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..core import codec
from ..core.errors import SessionGoneError
from ..core.version import __version__
from ..lifecycle.session import Session
from ..protocol import errors as wire_errors
from ..protocol import framing, schema
from .context import MAX_LEASES_PER_CONNECTION, Connection, Context, remember
from .views import client_of, decode, finish, restore, session_view


def h_ping(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    return {"pong": True}


def h_describe(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    role = conn.role or ""
    return {
        "version": __version__, "protocol": framing.PROTOCOL_VERSION, "role": role,
        "commands": sorted(schema.ROLES.get(role, ())), "limits": dict(ctx.limits),
        "namespace": ctx.manager.settings.namespace,
    }


def apply_expiry(ctx: Context, session: Session, args: dict[str, Any]) -> None:
    """The request's ``expiry`` (``set_expiry`` through the daemon), if any.

    Raises:
        ValueError: a non-positive idle (the schema refuses it first).
        SessionGoneError: the session has ended.
    """
    expiry = args.get("expiry")
    if expiry is None:
        return
    idle = expiry.get("idle")
    ctx.manager.set_expiry(session, idle=None if idle is None else timedelta(seconds=idle),
                           at=expiry.get("at"))


def h_create(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = ctx.manager.new(client=client_of(args))
    session.replace_data(decode(args["data"]))
    apply_expiry(ctx, session, args)
    if not session.ended:
        ctx.manager.save(session, create_empty=bool(args.get("create_empty")))
    return session_view(session)


def h_load(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = ctx.manager.load(args.get("cookie"), client=client_of(args),
                               mode=args.get("mode", "optimistic"))
    if session is None:
        return {"session": None}
    entry = remember(conn, session, ctx.manager.clock(), ctx.manager.keyring)
    return {"session": session_view(session, None, entry.fingerprint if entry else None)}


def h_lock(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    if len(conn.leases) >= MAX_LEASES_PER_CONNECTION:
        raise wire_errors.invalid(
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
    apply_expiry(ctx, session, args)
    if not session.ended:  # an expiry already past ended (deleted) it
        ctx.manager.save(session, create_empty=bool(args.get("create_empty")))
    return finish(ctx, conn, session, args.get("lease"))


def h_login(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = restore(ctx, conn, args)
    ctx.manager.login(session, args["user"], level=args.get("level", 1),
                      pending=args.get("pending", False),
                      keep_data=args.get("keep_data", True))
    return finish(ctx, conn, session, args.get("lease"))


def h_rotate(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = restore(ctx, conn, args)
    ctx.manager.rotate(session, reason=args.get("reason", "privilege_change"))
    return finish(ctx, conn, session, args.get("lease"))


def h_elevate(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    session = restore(ctx, conn, args)
    ctx.manager.elevate(session, timedelta(seconds=args.get("duration", 300)))
    return finish(ctx, conn, session, args.get("lease"))


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
    return {"applied": True, "session": finish(ctx, conn, session, args.get("lease"))}


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


HANDLERS: dict[str, Callable[[Context, Connection, dict[str, Any]], Any]] = {
    "ping": h_ping, "describe": h_describe, "create": h_create, "load": h_load,
    "lock": h_lock, "unlock": h_unlock, "touch": h_touch, "save": h_save, "login": h_login,
    "rotate": h_rotate, "elevate": h_elevate, "logout": h_logout, "destroy": h_destroy,
    "update": h_update, "sessions_of": h_sessions_of, "revoke_user": h_revoke_user,
    "revoke_device": h_revoke_device,
}
"""The ``app`` session commands (tokens and throttle live in :mod:`.kv`)."""
