"""Reserved session IDs and the per-request reset, for short-lived worker clients (PHP).

Why this exists.  PHP's session module asks its save handler for a new ID
(``create_sid``) and queues the ``Set-Cookie`` at ``session_start()``,
before the script has stored anything.  sessionward's contract is lazy
creation (a request that stores nothing creates no record) and strict mode
(never adopt an ID the daemon did not issue *and* store).  A plain
``create`` cannot serve that: it needs the data first, and it picks the ID
itself at that moment — too late for a cookie PHP already queued.

So an ID can be *reserved*: ``reserve`` draws a fresh 256-bit ID, returns
its cookie value and a separate random *reservation* secret, and keeps
``secret -> (ID, issuing key, deadline)`` in **this connection's** memory.
Nothing is stored.  ``create`` with that ``reservation`` later stores the
first record under the reserved ID.  The guarantees:

- An empty session stores nothing: the reservation lives only in the
  daemon's memory, bounded per connection, and dies with the connection, a
  ``reset``, its deadline, or its single use.
- A reserved-but-never-stored ID is *unknown* to every ``load``/``lock``
  (there is no record), so a later request presenting that cookie gets a
  new ID (strict mode), exactly like a forged one.
- Nobody can get a record created under an ID of their choosing: only IDs
  the daemon drew can be reserved, and creating under one needs the
  reservation secret, which never leaves the worker (it is not in the
  cookie, not in any HTTP traffic) and is only valid on the connection that
  reserved it.
- A logged-out or expired session cannot be recreated: the reservation is
  spent by the first ``create`` (success or refusal), and the store's
  atomic create refuses an existing record (``conflict``/``exists``).

Race timeline (why the secret is bound to the connection, not just to the
ID)::

    t0  worker W, request 1: reserve -> cookie C1, secret S1; stores nothing
    t1  W, request 2 (attacker replays C1): load C1 -> null (no record)
        -> strict mode: the handler reserves C2; S1 is unknown to request 2
           (the handler keeps secrets per request) and ``reset`` at the
           start of request 2 dropped it from the daemon too
    t2  worker V (another connection) cannot use S1 even if it leaked

``reset`` is sent by a worker at the start of each request on its
persistent connection: it releases every lease and reservation the
connection still holds from an earlier request that died (a fatal error, a
timeout kill) — an FPM worker serves one request at a time, so anything
held at that point is stale.  Without it a crashed request would keep its
exclusive lease until the lease TTL.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..core import codec, ids
from ..core.errors import ProtocolError
from ..lifecycle.writer import create as create_record
from . import sessions
from .context import Connection, Context, Handler, release_all, remember
from .gate import Contended
from .views import client_of, session_view

MAX_RESERVATIONS_PER_CONNECTION = 16
"""Reservations one connection may hold; the oldest is dropped beyond that."""


def _ttl(ctx: Context) -> float:
    """A reservation lives as long as an untouched session would (idle timeout)."""
    return ctx.manager.settings.idle_timeout.total_seconds()


def h_reserve(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    """Draw an ID, keep it reserved for this connection, store nothing."""
    mgr = ctx.manager
    key = mgr.keyring.active
    session_id = ids.new_session_id()
    secret = secrets.token_urlsafe(32)
    conn.reservations[secret] = (session_id, key, mgr.clock() + _ttl(ctx))
    while len(conn.reservations) > MAX_RESERVATIONS_PER_CONNECTION:
        conn.reservations.pop(next(iter(conn.reservations)))
    return {"cookie": ids.cookie_value(session_id, key), "reservation": secret,
            "expires_in": _ttl(ctx)}


def h_create(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    """``create``; with ``reservation``, under the reserved ID (spent either way).

    Raises:
        ProtocolError: ``session_not_found`` for an unknown, spent, expired
            or other connection's reservation.
        SessionExistsError: the reserved ID is taken (never overwritten).
    """
    secret = args.get("reservation")
    if secret is None:
        return sessions.h_create(ctx, conn, args)
    mgr = ctx.manager
    held = conn.reservations.get(secret)
    if held is None or mgr.clock() >= held[2]:
        conn.reservations.pop(secret, None)
        raise ProtocolError("session_not_found",
                            "unknown, used or expired reservation on this connection")
    session = mgr.new(client=client_of(args))
    data = codec.decode_data(args["data"])
    if not data and not args.get("create_empty"):
        conn.reservations.pop(secret, None)
        return session_view(session)  # lazy: nothing stored, reservation spent
    session.replace_data(data)
    sessions.apply_expiry(ctx, session, args)
    data_json = codec.dumps(codec.encode_data(session.data_snapshot()))
    try:
        create_record(mgr.runtime, session, data_json, reserved=(held[0], held[1]))
    except Contended:
        raise  # nothing was written: the pool runs this again, reservation intact
    except BaseException:
        conn.reservations.pop(secret, None)  # spent by a refusal too
        raise
    conn.reservations.pop(secret, None)
    remember(conn, session, mgr.clock(), mgr.keyring)
    return session_view(session)


def h_reset(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    """Release this connection's leases and drop its reservations."""
    leases = len(conn.leases)
    release_all(ctx, conn)
    dropped = len(conn.reservations)
    conn.reservations.clear()
    return {"released": leases, "dropped": dropped}


HANDLERS: dict[str, Handler] = {
    "reserve": h_reserve, "create": h_create, "reset": h_reset,
}
"""Merged over the session commands in :data:`.handlers.APP_HANDLERS`
(``create`` wraps the plain one)."""
