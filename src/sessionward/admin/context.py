"""The shared state of every admin operation: the manager, who acts, and the
helpers that page through the store and open records leniently.

Operations live in :mod:`.listing`, :mod:`.revoking`, :mod:`.maintenance` and
:mod:`.rekey` as functions over an :class:`AdminContext`;
:class:`~.service.Admin` is their facade with the keyword signatures the
daemon's admin role dispatches to.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core import ids
from ..core.errors import CodecError, ProtocolError
from ..core.record import TOMBSTONE
from ..lifecycle.inventory import info_of
from ..lifecycle.manager import SessionManager
from ..lifecycle.sealer import Opened
from ..stores.base import Capability, StoredRecord

MAX_PAGE = 10_000
"""Largest ``limit``/``batch`` a caller may ask for."""
SCAN_PAGE = 500
"""Records per internal ``scan`` page."""


class AdminError(ProtocolError):
    """An admin request could not be carried out.

    A :class:`~sessionward.core.errors.ProtocolError` so that the daemon sends
    ``code`` as ``error.type`` unchanged.

    Attributes:
        code: a protocol error token: ``session_not_found``,
            ``invalid_argument`` or ``conflict`` (a key still in use).
    """


class CountsFailures(Protocol):
    failures: int


def operator_identity() -> str:
    """The OS user running this process (by effective uid, not ``$USER``)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def check_handle(handle: object, what: str = "handle") -> str:
    if not ids.is_storage_key(handle):
        raise AdminError("invalid_argument", f"{what} must be 64 lowercase hex characters")
    return str(handle)


def check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
        raise AdminError("invalid_argument", f"{name} must be an integer from 1 to {MAX_PAGE}")
    return value


def check_user(user: object) -> str:
    if not isinstance(user, str) or not user:
        raise AdminError("invalid_argument", "user must be a non-empty string")
    return user


@dataclass
class AdminContext:
    """Who acts on which manager, and the lenient read helpers.

    Attributes:
        manager: the session manager (its store, keyring and event hub).
        operator: recorded in every event (the OS user, or the daemon's peer).
        operator_uid: the operator's uid (through the daemon: the peer's).
        sinks: event sinks whose ``failures`` counters ``stats`` reports.
    """

    manager: SessionManager
    operator: str
    operator_uid: int
    sinks: Sequence[CountsFailures] = field(default_factory=tuple)

    def emit(self, name: str, *, key: str | None = None, user: str | None = None,
             reason: str = "admin", **fields: Any) -> None:
        """Emit an admin event naming the operator."""
        self.manager.emit(name, key=key, user=user, reason=reason, operator=self.operator,
                          operator_uid=self.operator_uid, **fields)

    def open(self, key: str, stored: StoredRecord) -> Opened | None:
        """Open a record, or ``None`` (another namespace sharing the store, or damage)."""
        try:
            return self.manager.sealer.open(key, stored)
        except CodecError:
            return None

    def require_scan(self) -> None:
        """Raises AdminError when the store cannot enumerate records."""
        if Capability.SCAN not in self.manager.store.capabilities:
            raise AdminError("invalid_argument", f"the {self.manager.store.kind} store cannot "
                             "enumerate records; use --user")

    def scan_page(self, cursor: str | None, limit: int
                  ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        """One ``scan`` page.

        Raises:
            AdminError: the store cannot scan, or a malformed cursor.
            StoreError: the store failed.
        """
        self.require_scan()
        if cursor is not None and not isinstance(cursor, str):
            raise AdminError("invalid_argument", "cursor must be a string")
        try:
            return self.manager.store.scan(cursor, limit)
        except ValueError:
            raise AdminError("invalid_argument", "malformed cursor") from None

    def records(self) -> Iterator[tuple[str, StoredRecord]]:
        """Every record of the store, page by page."""
        cursor: str | None = None
        while True:
            page, cursor = self.scan_page(cursor, SCAN_PAGE)
            yield from page
            if cursor is None:
                return

    def user_records(self, user: str) -> list[Opened]:
        """The user's live-or-expired session records under every key of the ring."""
        found: dict[str, Opened] = {}
        for key in self.manager.keyring.keys:  # sessions issued under older keys too
            for skey, stored in self.manager.store.by_user(ids.user_key(user, key)):
                opened = None if skey in found else self.open(skey, stored)
                if opened is not None and opened.meta.kind != TOMBSTONE \
                        and opened.meta.user == user:
                    found[skey] = opened
        return list(found.values())

    def entry(self, opened: Opened, now: float) -> dict[str, Any]:
        """The admin listing row of a record."""
        row = info_of(opened, now).to_dict()
        del row["current"]
        row["status"] = status(opened, now)
        return row


STATUSES = ("active", "expired", "tombstones", "in_grace", "undecodable")


def status(opened: Opened, now: float) -> str:
    """``active``, ``expired``, ``tombstones`` or ``in_grace``."""
    if opened.meta.kind == TOMBSTONE:
        forward = opened.meta.forward
        live = forward is not None and not forward.closed and now < forward.grace_until
        return "in_grace" if live else "tombstones"
    return "active" if now < opened.expires_at() else "expired"
