"""Key rotation support: re-sealing records under the active key (nobody is
logged out, no idle session is extended) and counting what still needs an old key."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..core.errors import SessionConflictError, SessionGoneError
from ..core.record import envelope_key_id
from ..stores.base import StoredRecord
from .context import SCAN_PAGE, AdminContext, AdminError, check_count

_RESEAL_RETRIES = 3
_RESEAL_OUTCOMES = ("resealed", "current", "expired", "skipped", "conflicts")


def reseal(ctx: AdminContext, batch: int = SCAN_PAGE, cursor: str | None = None) -> dict[str, Any]:
    """Re-seal one ``scan`` page of records under the active key.

    Each record sealed under an older key is opened and written back with
    a compare-and-set ``replace`` (a concurrent save wins and is simply
    retried).  Storage keys, cookies and the sealed idle clock are kept,
    so nobody is logged out and no idle session is extended.

    Returns:
        ``{"resealed", "current", "expired", "skipped", "conflicts", "cursor"}``.

    Raises:
        AdminError: bad argument, or a store that cannot scan.
        StoreError: the store failed.
    """
    page, next_cursor = ctx.scan_page(cursor, check_count(batch, "batch"))
    counts: Counter[str] = Counter()
    for key, stored in page:
        counts[_reseal_one(ctx, key, stored)] += 1
    if counts["resealed"]:
        ctx.emit("key_rotated", reason="reseal", count=counts["resealed"],
                   kid=ctx.manager.keyring.active.kid)
    out: dict[str, Any] = {name: counts[name] for name in _RESEAL_OUTCOMES}
    out["cursor"] = next_cursor
    return out


def _reseal_one(ctx: AdminContext, key: str, stored: StoredRecord | None) -> str:
    active = ctx.manager.keyring.active.kid
    store = ctx.manager.store
    for _attempt in range(_RESEAL_RETRIES):
        if stored is None:
            return "current"  # deleted meanwhile: nothing left to re-seal
        if envelope_key_id(stored.blob) == active:
            return "current"
        opened = ctx.open(key, stored)
        if opened is None:
            return "skipped"
        if ctx.manager.clock() >= opened.expires_at():
            return "expired"
        blob = ctx.manager.sealer.seal(key, opened.meta, opened.data_json)
        try:
            store.replace(key, blob, expected_version=stored.version,
                          expires_at=stored.expires_at, user_key=stored.user_key)
        except SessionGoneError:
            return "current"
        except SessionConflictError:
            stored = store.load(key)
            continue
        # replace() stamps touched_at = now; put the idle clock back.
        store.touch(key, expires_at=stored.expires_at, touched_at=stored.touched_at)
        return "resealed"
    return "conflicts"


def note_key_change(ctx: AdminContext, action: str, kid: str) -> None:
    """Emit ``key_rotated`` for a key file change made by the caller
    (``action``: ``rotate`` or ``retire``)."""
    ctx.emit("key_rotated", reason=action, kid=kid)


def key_usage(ctx: AdminContext, kid: str) -> dict[str, Any]:
    """How many records still need key ``kid``: sealed with it, or issued
    under it (their storage key and cookie MAC derive from it).

    Raises:
        AdminError: ``kid`` is not a key of this keyring.
        StoreError: the store failed.
    """
    if kid not in ctx.manager.keyring.by_id:
        raise AdminError("invalid_argument", f"no key {kid!r} in the keyring")
    now = ctx.manager.clock()
    sealed = issued = expired = 0
    for key, stored in ctx.records():
        opened = ctx.open(key, stored)
        uses_sealed = envelope_key_id(stored.blob) == kid
        uses_issued = opened is not None and opened.meta.issuer == kid
        sealed, issued = sealed + uses_sealed, issued + uses_issued
        if (uses_sealed or uses_issued) and (opened is None or now >= opened.expires_at()):
            expired += 1
    return {"kid": kid, "sealed_with": sealed, "issued_by": issued, "expired": expired}
