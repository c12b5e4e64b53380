"""Admin maintenance: batched cleanup, monitoring counts, and clearing a throttle lockout."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from ..core.record import envelope_key_id
from ..guards.throttle import Throttle
from ..stores.base import Capability
from .context import STATUSES, AdminContext, AdminError, check_count, status

_THROTTLE_KEY = re.compile(r"thr:[a-z0-9_]{1,32}:[0-9a-f]{64}")


def cleanup(ctx: AdminContext, batch: int = 500, max_batches: int | None = None) -> dict[str, Any]:
    """Purge expired records in short batches (safe while the app serves).

    Args:
        batch: records per batch (one short store transaction each).
        max_batches: stop after this many batches (the CLI asks for one at
            a time to draw its progress bar); ``None``: until done.

    Returns:
        ``{"removed": n, "batches": b, "done": bool, "native_ttl": bool}``.

    Raises:
        AdminError: bad argument.
        StoreError: the store failed.
    """
    batch = check_count(batch, "batch")
    if max_batches is not None:
        max_batches = check_count(max_batches, "max_batches")
    store, removed, batches, done = ctx.manager.store, 0, 0, False
    while not done and (max_batches is None or batches < max_batches):
        count = store.purge_expired(ctx.manager.clock(), batch)
        removed, batches, done = removed + count, batches + 1, count < batch
    ctx.emit("cleanup", count=removed)
    return {"removed": removed, "batches": batches, "done": done,
            "native_ttl": Capability.NATIVE_TTL in store.capabilities}


def stats(ctx: AdminContext) -> dict[str, Any]:
    """Counts for monitoring (walks the store once with ``scan``).

    Raises:
        StoreError: the store failed.
    """
    now = ctx.manager.clock()
    store_stats = ctx.manager.store.stats(now)
    sessions: Counter[str] = Counter()
    sealed: Counter[str] = Counter()
    issued: Counter[str] = Counter()
    if Capability.SCAN in ctx.manager.store.capabilities:
        for key, stored in ctx.records():
            opened = ctx.open(key, stored)
            sessions[status(opened, now) if opened else "undecodable"] += 1
            sealed[envelope_key_id(stored.blob) or "unknown"] += 1
            if opened is not None:
                issued[opened.meta.issuer] += 1
    return {
        "namespace": ctx.manager.settings.namespace,
        "sessions": {name: sessions[name] for name in STATUSES},
        "store": {"kind": ctx.manager.store.kind, "records": store_stats.records,
                  "expired": store_stats.expired, "locks": store_stats.locks,
                  "kv_entries": store_stats.kv_entries, "bytes": store_stats.bytes},
        "keys": {"active": ctx.manager.keyring.active.kid,
                 "sealed_with": dict(sorted(sealed.items())),
                 "issued_by": dict(sorted(issued.items()))},
        "audit": _audit_failures(ctx),
    }


def _audit_failures(ctx: AdminContext) -> dict[str, Any]:
    sinks = {f"{type(s).__name__}#{i}": int(s.failures) for i, s in enumerate(ctx.sinks)}
    hub = int(ctx.manager.events.failures)
    return {"failures": hub + sum(sinks.values()), "hub_failures": hub, "sinks": sinks}


def unlock(ctx: AdminContext, key: str | None = None, user: str | None = None,
           ip: str | None = None, throttle: str = "login") -> dict[str, Any]:
    """Clear a throttle lockout (and its failure count) for real.

    Args:
        key: a raw throttle store key ``thr:<throttle>:<hex>``.
        user: or the user id the throttle counted against...
        ip: ...and/or the client address.
        throttle: the throttle's name (``login``, ``invalid``, ``daemon``...).

    Returns:
        ``{"throttle", "unlocked"}``; ``unlocked`` is false when no state
        existed (the key was not locked and had no failures).

    Raises:
        AdminError: neither a well-formed key nor a user/address, or a bad
            throttle name.
        StoreError: the store failed.
    """
    target: Any
    try:
        gate = Throttle(ctx.manager.store, ctx.manager.keyring, clock=ctx.manager.clock,
                        namespace=throttle)
        if key is not None:
            if user is not None or ip is not None or not _THROTTLE_KEY.fullmatch(key):
                raise ValueError("key must look like thr:<throttle>:<64 hex> (alone)")
            target = key
        else:
            target = gate.key_for(user, ip)
    except (ValueError, TypeError) as exc:
        raise AdminError("invalid_argument", str(exc)) from None
    cleared = gate.reset(target)
    ctx.emit("unlocked", user=user, reason="admin_unlock", throttle=throttle,
               cleared=cleared)
    return {"throttle": throttle, "unlocked": cleared}
