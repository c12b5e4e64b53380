"""The ``tokens`` and ``throttle`` commands (role ``app``): the library's
:class:`~sessionward.guards.tokens.OneTimeTokens` and :class:`~sessionward.guards.throttle.Throttle`
on the daemon's store, keyring, clock and event hub.

The worker never sees a key: the daemon computes every keyed hash (token
lookups, throttle keys), so a worker only sends user ids, addresses, purposes
and the one-time token itself.  ``consume`` uses the store's atomic
``kv_take``, so of any number of workers presenting one token exactly one
gets the grant.

The throttle named ``daemon`` is reserved (kept for the daemon's own use and
the admin ``unlock --throttle daemon``; failed authentications no longer
count there, see :mod:`.auth`): the app role may not count, read or clear it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from ..core.errors import ThrottledError
from ..guards.throttle import Throttle, ThrottleKey
from ..guards.tokens import OneTimeTokens, TokenGrant
from ..protocol import errors as wire_errors
from .context import Connection, Context

RESERVED_THROTTLES = frozenset({"daemon"})
_POLICY = ("attempts", "initial", "cap", "multiplier", "quiet_period")
_RAW_KEY = re.compile(r"thr:([a-z0-9_]{1,32}):[0-9a-f]{64}")


# ------------------------------------------------------------------ tokens


def grant_view(grant: TokenGrant | None) -> dict[str, Any] | None:
    """The JSON form of a consumed token's grant (``None`` stays ``None``)."""
    if grant is None:
        return None
    return {"purpose": grant.purpose, "subject": grant.subject, "data": grant.data,
            "issued_at": grant.issued_at, "expires_at": grant.expires_at}


def h_tokens(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    """``issue`` / ``consume`` / ``revoke`` a one-time token.

    Raises:
        ProtocolError: ``invalid_argument`` for a missing field of the action.
        ValueError: bad purpose, subject, ttl or data size (from the library).
        StoreError: the store failed.
    """
    mgr = ctx.manager
    tokens = OneTimeTokens(mgr.store, mgr.keyring, clock=mgr.clock, events=mgr.events)
    action, purpose = args["action"], args["purpose"]
    if action == "issue":
        subject, ttl = _need(args, "subject"), _need(args, "ttl")
        return {"token": tokens.issue(purpose, subject, timedelta(seconds=ttl),
                                      args.get("data"))}
    secret = _need(args, "secret")
    if action == "consume":
        return {"grant": grant_view(tokens.consume(secret, purpose))}
    return {"revoked": tokens.revoke(secret, purpose)}


def _need(args: dict[str, Any], name: str) -> Any:
    if name not in args:
        raise wire_errors.invalid(f"field {name!r} is required for action {args['action']!r}")
    return args[name]


# ---------------------------------------------------------------- throttle


def throttle_of(ctx: Context, args: dict[str, Any]) -> Throttle:
    """A :class:`Throttle` with the request's policy and name.

    Raises:
        ProtocolError: ``invalid_argument`` for the reserved ``daemon`` throttle.
        ConfigurationError: a policy value out of range (from the library).
    """
    namespace = args.get("namespace", "login")
    if namespace in RESERVED_THROTTLES:
        raise wire_errors.invalid(f"the {namespace!r} throttle is reserved for the daemon")
    mgr = ctx.manager
    policy = {name: args[name] for name in _POLICY if name in args}
    return Throttle(mgr.store, mgr.keyring, clock=mgr.clock, events=mgr.events,
                    namespace=namespace, **policy)


def throttle_key(gate: Throttle, args: dict[str, Any]) -> ThrottleKey | str:
    """The key of the request: a raw ``thr:<name>:<hex>`` key of this
    throttle, or the key of ``user`` and/or ``ip``.

    Raises:
        ProtocolError: ``invalid_argument`` for a raw key of another throttle,
            a raw key together with user/ip, or neither.
    """
    raw = args.get("key")
    if raw is None:
        if not args.get("user") and not args.get("ip"):
            raise wire_errors.invalid("a throttle key needs key, user or ip")
        return gate.key_for(args.get("user"), args.get("ip"))
    match = _RAW_KEY.fullmatch(raw)
    if match is None or match.group(1) != gate.namespace or "user" in args or "ip" in args:
        raise wire_errors.invalid("key must be thr:<this throttle>:<64 hex>, without user/ip")
    return str(raw)


def h_throttle(ctx: Context, conn: Connection, args: dict[str, Any]) -> Any:
    """``hit`` / ``check`` / ``require`` / ``reset`` one throttle key.

    Raises:
        ProtocolError: ``invalid_argument`` (see :func:`throttle_key`).
        ThrottledError: ``require`` on a locked key (wire ``throttled``).
        ConfigurationError: a policy value out of range.
        SessionConflictError: ``hit`` kept losing its compare-and-set.
        StoreError: the store failed.
    """
    gate = throttle_of(ctx, args)
    key = throttle_key(gate, args)
    action = args["action"]
    if action == "hit":
        return {"lockout": gate.hit(key)}
    if action == "reset":
        return {"reset": gate.reset(key)}
    left = gate.check(key)
    if action == "require" and left > 0:
        raise ThrottledError(left)
    return {"retry_after": left}
