"""Admin revocation: one session by handle, every session of a user, or every
session of the namespace (records of other namespaces are left alone)."""

from __future__ import annotations

from typing import Any

from .context import AdminContext, AdminError, check_handle, check_user


def revoke(ctx: AdminContext, handle: str) -> dict[str, Any]:
    """End the session with ``handle``.

    Raises:
        AdminError: malformed handle, or no session under it.
        StoreError: the store failed.
    """
    key = check_handle(handle)
    opened = ctx.manager.open_record(key)
    if not ctx.manager.store.delete(key):
        raise AdminError("session_not_found", "no session with that handle")
    user = opened.meta.user if opened is not None else None
    ctx.emit("revoked", key=key, user=user)
    return {"handle": key, "user": user, "revoked": 1}


def revoke_user(ctx: AdminContext, user: str, keep: str | None = None) -> dict[str, Any]:
    """End every session of ``user`` except the one with handle ``keep``.

    Raises:
        AdminError: empty user or malformed ``keep``.
        StoreError: the store failed.
    """
    user = check_user(user)
    keep_key = None if keep is None else check_handle(keep, "keep")
    count = 0
    for opened in ctx.user_records(user):
        if opened.key != keep_key and ctx.manager.store.delete(opened.key):
            count += 1
    ctx.emit("revoked", user=user, reason="revoke_user", count=count)
    return {"user": user, "revoked": count, "kept": keep_key}


def revoke_all(ctx: AdminContext) -> dict[str, Any]:
    """End every session of this namespace (records of other namespaces
    sharing the store do not open with these keys and are left alone).

    Raises:
        AdminError: the store cannot scan.
        StoreError: the store failed.
    """
    count = skipped = 0
    for key, stored in ctx.records():
        if ctx.open(key, stored) is None:
            skipped += 1
        elif ctx.manager.store.delete(key):
            count += 1
    ctx.emit("revoked", reason="revoke_all", count=count)
    return {"namespace": ctx.manager.settings.namespace, "revoked": count,
            "skipped": skipped}
