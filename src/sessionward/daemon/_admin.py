"""A minimal stand-in for :class:`sessionward.admin.Admin`, used only while that
module is not installed in this tree.

It follows the same interface (keyword arguments, JSON-ready dicts) so the
daemon's admin commands do not change when the real class arrives.  Output
holds metadata and opaque handles only — never IDs, tokens or data.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import inventory
from ..errors import CodecError, ConfigurationError
from ..manager import SessionManager
from ..record import TOMBSTONE


def make_admin(manager: SessionManager) -> Any:
    """``sessionward.admin.Admin(manager)`` if available, else :class:`FallbackAdmin`."""
    try:
        from ..admin import Admin  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return FallbackAdmin(manager)
    return Admin(manager)


class FallbackAdmin:
    """Admin operations over a manager (subset; see the module docstring)."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    def list(self, user: str | None = None, expired: bool = False, limit: int = 100,
             cursor: str | None = None) -> dict[str, Any]:
        """One page of sessions: metadata and handles.

        Raises:
            StoreError: backend failure.
        """
        mgr = self.manager
        now = mgr.clock()
        if user is not None:
            items = [i.to_dict() for i in mgr.sessions_of(user)][:limit]
            return {"sessions": items, "cursor": None}
        page, nxt = mgr.store.scan(cursor, limit)
        items = []
        for skey, stored in page:
            try:
                opened = mgr.sealer.open(skey, stored)
            except CodecError:
                continue
            info = inventory.info_of(opened, now)
            is_expired = now >= info.expires_at
            if opened.meta.kind != TOMBSTONE and is_expired == expired:
                items.append(info.to_dict())
        return {"sessions": items, "cursor": nxt}

    def show(self, handle: str, data: bool = False) -> dict[str, Any]:
        """Metadata of one session (never its data in this fallback).

        Raises:
            ValueError: malformed or unknown handle.
        """
        mgr = self.manager
        from ..ids import is_storage_key

        opened = mgr.open_record(handle) if is_storage_key(handle) else None
        if opened is None or opened.meta.kind == TOMBSTONE:
            raise ValueError("no session with this handle")
        return {"session": inventory.info_of(opened, mgr.clock()).to_dict()}

    def revoke(self, handle: str) -> dict[str, Any]:
        """End one session by handle."""
        return {"revoked": self.manager.revoke(handle)}

    def revoke_user(self, user: str, keep: str | None = None) -> dict[str, Any]:
        """End every session of ``user`` (except the handle ``keep``)."""
        return {"count": self.manager.revoke_user(user, keep=keep)}

    def cleanup(self, batch: int = 1000) -> dict[str, Any]:
        """Purge expired records in batches."""
        return {"removed": self.manager.cleanup(batch=batch)}

    def stats(self) -> dict[str, Any]:
        """Store counts."""
        return dataclasses.asdict(self.manager.store.stats(self.manager.clock()))

    def unlock(self, key: str) -> dict[str, Any]:
        """Not supported by the fallback.

        Raises:
            ConfigurationError: always.
        """
        raise ConfigurationError("unlock needs sessionward.admin, which is not installed")
