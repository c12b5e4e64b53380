"""Admin listing: one user's sessions or one scan page of the store, and one
session's metadata (its data only on request, audited as ``data_revealed``)."""

from __future__ import annotations

from typing import Any

from ..core import codec
from ..core.record import TOMBSTONE, envelope_key_id
from .context import AdminContext, AdminError, check_count, check_handle, check_user


def list_sessions(ctx: AdminContext, user: str | None = None, expired: bool = False,
                  limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
    """Session metadata: one user's sessions, or one ``scan`` page of the store.

    Args:
        user: only this user's sessions (via the per-user index, no scan).
        expired: include sessions that expired but were not cleaned up yet.
        limit: records to scan for this page (without ``user``).
        cursor: the ``cursor`` of the previous page.

    Returns:
        ``{"sessions": [...], "cursor": next page or None, "skipped": n}``;
        ``skipped`` counts records that do not open with these keys
        (another namespace sharing the store, or damage).

    Raises:
        AdminError: bad argument, or a store that cannot scan.
        StoreError: the store failed.
    """
    now = ctx.manager.clock()
    if user is not None:
        opened = ctx.user_records(check_user(user))
        rows = [ctx.entry(o, now) for o in opened if expired or now < o.expires_at()]
        rows.sort(key=lambda r: r["last_seen"], reverse=True)
        return {"sessions": rows, "cursor": None, "skipped": 0}
    page, next_cursor = ctx.scan_page(cursor, check_count(limit, "limit"))
    rows, skipped = [], 0
    for key, stored in page:
        item = ctx.open(key, stored)
        if item is None:
            skipped += 1
        elif item.meta.kind != TOMBSTONE and (expired or now < item.expires_at()):
            rows.append(ctx.entry(item, now))
    return {"sessions": rows, "cursor": next_cursor, "skipped": skipped}


def show(ctx: AdminContext, handle: str, data: bool = False) -> dict[str, Any]:
    """One session's metadata; with ``data=True`` its data too (audited).

    Raises:
        AdminError: malformed handle, or no session under it.
        StoreError: the store failed.
    """
    key = check_handle(handle)
    opened = ctx.manager.open_record(key)
    if opened is None:
        raise AdminError("session_not_found", "no session with that handle")
    now = ctx.manager.clock()
    meta = opened.meta
    out = ctx.entry(opened, now)
    out.update({
        "auth_level": meta.auth_level, "pending": meta.pending,
        "elevated_until": meta.elevated_until, "rotated_at": meta.rotated_at,
        "issued_by": meta.issuer, "sealed_with": envelope_key_id(opened.stored.blob),
        "version": opened.stored.version, "data_bytes": len(opened.data_json),
    })
    if data:
        out["data"] = codec.loads(opened.data_json)
        ctx.emit("data_revealed", key=key, user=meta.user)
    return out
