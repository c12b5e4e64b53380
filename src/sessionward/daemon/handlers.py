"""The daemon's command tables: command name → handler, per role.

Handlers run on the event loop, or in the worker pool for the commands that
may wait (:func:`pooled`; see :mod:`.gate`), and return JSON-ready data.
They raise library exceptions; the server turns those into wire errors
through :data:`sessionward.protocol.errors.ERROR_TABLE`.
Exclusive mode: ``lock`` loads with a lease and keeps the server-side
session in the connection's lease table under a random lease id; saves with
that id are fenced by the lease token; closing the connection releases them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..admin.service import Admin
from ..core.errors import ProtocolError
from ..protocol import schema
from . import kv, reserved, sessions
from .context import Connection, Context, Handler

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
    **sessions.HANDLERS, "tokens": kv.h_tokens, "throttle": kv.h_throttle,
    **reserved.HANDLERS,  # reserve, reset, and create with a reservation (PHP)
}
ADMIN_HANDLERS: dict[str, Handler] = {
    "ping": sessions.h_ping, "describe": sessions.h_describe, "reload-keys": h_reload_keys,
    **{name: admin_handler(name) for name in ADMIN_METHODS},
}


POOLED_APP: frozenset[str] = frozenset({
    "lock", "unlock", "sessions_of", "revoke_user", "revoke_device",
})
"""``app`` commands that may wait (a lease wait, a lease release, per-user
listings): always in the pool, never on the event loop."""
INLINE_ADMIN: frozenset[str] = frozenset({"ping", "describe"})
"""The only ``admin`` commands on the loop (every other one may scan)."""


def pooled(role: str, command: str, conn: Connection) -> bool:
    """Whether ``command`` must run in the pool (it may wait by design).

    ``reset`` releases leases, so it is pooled only when the connection holds
    some (the PHP client sends it at the start of every request).
    """
    if role == "admin":
        return command not in INLINE_ADMIN
    return command in POOLED_APP or (command == "reset" and bool(conn.leases))


def handler_for(role: str, command: str) -> Handler:
    """The handler of an allowed ``command`` for ``role``.

    Raises:
        ProtocolError: ``forbidden_command`` (defence in depth: the server
            checked the allowlist already).
    """
    table = ADMIN_HANDLERS if role == "admin" else APP_HANDLERS
    handler = table.get(command) if schema.allowed(role, command) else None
    if handler is None:
        raise ProtocolError("forbidden_command", "command not allowed for this role")
    return handler
