"""Admin operations over one :class:`~sessionward.SessionManager`: the CLI's and
the daemon's admin role share this class.

Every method takes plain keyword arguments and returns a JSON-ready value
(dicts, lists, strings, numbers), so the daemon can dispatch a request
``{"command": "revoke-user", "user": "alice"}`` to ``Admin.revoke_user(user=
"alice")`` and send the result back unchanged, and the CLI renders local and
remote results with the same code.

Output hygiene: results carry metadata and opaque handles (storage keys) only;
never a session ID, a cookie value, a key or a token.  Session data leaves
only through ``show(handle, data=True)``, which emits ``data_revealed``.
Every state change emits an event whose fields name the operator (the OS user
of the process that built this object, or what the daemon passes in).

Cost: ``list``/``show``/``revoke``/``revoke_user`` touch one record or one
user's records; ``list`` without a user, ``revoke_all``, ``stats``,
``key_usage`` and ``reseal`` walk the store with ``scan`` pages.
"""

from __future__ import annotations

import os
import pwd
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..core import codec, ids
from ..core.errors import CodecError, ProtocolError, SessionConflictError, SessionGoneError
from ..core.record import TOMBSTONE, envelope_key_id
from ..lifecycle.inventory import info_of
from ..lifecycle.sealer import Opened
from ..stores.base import Capability, StoredRecord

if TYPE_CHECKING:
    from ..lifecycle.manager import SessionManager

MAX_PAGE = 10_000
"""Largest ``limit``/``batch`` a caller may ask for."""

_SCAN_PAGE = 500
_THROTTLE_KEY = re.compile(r"thr:[a-z0-9_]{1,32}:[0-9a-f]{64}")
_RESEAL_RETRIES = 3


class AdminError(ProtocolError):
    """An admin request could not be carried out.

    A :class:`~sessionward.core.errors.ProtocolError` so that the daemon sends
    ``code`` as ``error.type`` unchanged.

    Attributes:
        code: a protocol error token: ``session_not_found``,
            ``invalid_argument`` or ``conflict`` (a key still in use).
    """


class _CountsFailures(Protocol):
    failures: int


def operator_identity() -> str:
    """The OS user running this process (by effective uid, not ``$USER``)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def _check_handle(handle: object, what: str = "handle") -> str:
    if not ids.is_storage_key(handle):
        raise AdminError("invalid_argument", f"{what} must be 64 lowercase hex characters")
    return str(handle)


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
        raise AdminError("invalid_argument", f"{name} must be an integer from 1 to {MAX_PAGE}")
    return value


def _check_user(user: object) -> str:
    if not isinstance(user, str) or not user:
        raise AdminError("invalid_argument", "user must be a non-empty string")
    return user


class Admin:
    """Admin commands over ``manager``.

    Args:
        manager: the session manager (its store, keyring and event hub).
        operator: who acts, recorded in every event; default: the OS user.
        sinks: event sinks whose ``failures`` counters ``stats`` reports.
    """

    def __init__(self, manager: SessionManager, *, operator: str | None = None,
                 operator_uid: int | None = None,
                 sinks: Sequence[_CountsFailures] = ()) -> None:
        self.manager = manager
        self.operator = operator or operator_identity()
        # Through the daemon the operator is the peer, not the daemon's own user.
        self.operator_uid = os.geteuid() if operator_uid is None else operator_uid
        self.sinks = tuple(sinks)

    # ----------------------------------------------------------- internals

    def _emit(self, name: str, *, key: str | None = None, user: str | None = None,
              reason: str = "admin", **fields: Any) -> None:
        self.manager.emit(name, key=key, user=user, reason=reason, operator=self.operator,
                          operator_uid=self.operator_uid, **fields)

    def _open(self, key: str, stored: StoredRecord) -> Opened | None:
        try:
            return self.manager.sealer.open(key, stored)
        except CodecError:
            return None  # another namespace sharing the store, or a damaged record

    def _require_scan(self) -> None:
        if Capability.SCAN not in self.manager.store.capabilities:
            raise AdminError("invalid_argument", f"the {self.manager.store.kind} store cannot "
                             "enumerate records; use --user")

    def _scan_page(self, cursor: str | None, limit: int
                   ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        self._require_scan()
        if cursor is not None and not isinstance(cursor, str):
            raise AdminError("invalid_argument", "cursor must be a string")
        try:
            return self.manager.store.scan(cursor, limit)
        except ValueError:
            raise AdminError("invalid_argument", "malformed cursor") from None

    def _records(self) -> Iterator[tuple[str, StoredRecord]]:
        cursor: str | None = None
        while True:
            page, cursor = self._scan_page(cursor, _SCAN_PAGE)
            yield from page
            if cursor is None:
                return

    def _user_records(self, user: str) -> list[Opened]:
        found: dict[str, Opened] = {}
        for key in self.manager.keyring.keys:  # sessions issued under older keys too
            for skey, stored in self.manager.store.by_user(ids.user_key(user, key)):
                opened = None if skey in found else self._open(skey, stored)
                if opened is not None and opened.meta.kind != TOMBSTONE \
                        and opened.meta.user == user:
                    found[skey] = opened
        return list(found.values())

    def _entry(self, opened: Opened, now: float) -> dict[str, Any]:
        entry = info_of(opened, now).to_dict()
        del entry["current"]
        entry["status"] = _status(opened, now)
        return entry

    # ------------------------------------------------------------- listing

    def list(self, user: str | None = None, expired: bool = False, limit: int = 100,
             cursor: str | None = None) -> dict[str, Any]:
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
        now = self.manager.clock()
        if user is not None:
            opened = self._user_records(_check_user(user))
            rows = [self._entry(o, now) for o in opened if expired or now < o.expires_at()]
            rows.sort(key=lambda r: r["last_seen"], reverse=True)
            return {"sessions": rows, "cursor": None, "skipped": 0}
        page, next_cursor = self._scan_page(cursor, _check_count(limit, "limit"))
        rows, skipped = [], 0
        for key, stored in page:
            item = self._open(key, stored)
            if item is None:
                skipped += 1
            elif item.meta.kind != TOMBSTONE and (expired or now < item.expires_at()):
                rows.append(self._entry(item, now))
        return {"sessions": rows, "cursor": next_cursor, "skipped": skipped}

    def show(self, handle: str, data: bool = False) -> dict[str, Any]:
        """One session's metadata; with ``data=True`` its data too (audited).

        Raises:
            AdminError: malformed handle, or no session under it.
            StoreError: the store failed.
        """
        key = _check_handle(handle)
        opened = self.manager.open_record(key)
        if opened is None:
            raise AdminError("session_not_found", "no session with that handle")
        now = self.manager.clock()
        meta = opened.meta
        out = self._entry(opened, now)
        out.update({
            "auth_level": meta.auth_level, "pending": meta.pending,
            "elevated_until": meta.elevated_until, "rotated_at": meta.rotated_at,
            "issued_by": meta.issuer, "sealed_with": envelope_key_id(opened.stored.blob),
            "version": opened.stored.version, "data_bytes": len(opened.data_json),
        })
        if data:
            out["data"] = codec.loads(opened.data_json)
            self._emit("data_revealed", key=key, user=meta.user)
        return out

    # ---------------------------------------------------------- revocation

    def revoke(self, handle: str) -> dict[str, Any]:
        """End the session with ``handle``.

        Raises:
            AdminError: malformed handle, or no session under it.
            StoreError: the store failed.
        """
        key = _check_handle(handle)
        opened = self.manager.open_record(key)
        if not self.manager.store.delete(key):
            raise AdminError("session_not_found", "no session with that handle")
        user = opened.meta.user if opened is not None else None
        self._emit("revoked", key=key, user=user)
        return {"handle": key, "user": user, "revoked": 1}

    def revoke_user(self, user: str, keep: str | None = None) -> dict[str, Any]:
        """End every session of ``user`` except the one with handle ``keep``.

        Raises:
            AdminError: empty user or malformed ``keep``.
            StoreError: the store failed.
        """
        user = _check_user(user)
        keep_key = None if keep is None else _check_handle(keep, "keep")
        count = 0
        for opened in self._user_records(user):
            if opened.key != keep_key and self.manager.store.delete(opened.key):
                count += 1
        self._emit("revoked", user=user, reason="revoke_user", count=count)
        return {"user": user, "revoked": count, "kept": keep_key}

    def revoke_all(self) -> dict[str, Any]:
        """End every session of this namespace (records of other namespaces
        sharing the store do not open with these keys and are left alone).

        Raises:
            AdminError: the store cannot scan.
            StoreError: the store failed.
        """
        count = skipped = 0
        for key, stored in self._records():
            if self._open(key, stored) is None:
                skipped += 1
            elif self.manager.store.delete(key):
                count += 1
        self._emit("revoked", reason="revoke_all", count=count)
        return {"namespace": self.manager.settings.namespace, "revoked": count,
                "skipped": skipped}

    # --------------------------------------------------------- maintenance

    def cleanup(self, batch: int = 500, max_batches: int | None = None) -> dict[str, Any]:
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
        batch = _check_count(batch, "batch")
        if max_batches is not None:
            max_batches = _check_count(max_batches, "max_batches")
        store, removed, batches, done = self.manager.store, 0, 0, False
        while not done and (max_batches is None or batches < max_batches):
            count = store.purge_expired(self.manager.clock(), batch)
            removed, batches, done = removed + count, batches + 1, count < batch
        self._emit("cleanup", count=removed)
        return {"removed": removed, "batches": batches, "done": done,
                "native_ttl": Capability.NATIVE_TTL in store.capabilities}

    def stats(self) -> dict[str, Any]:
        """Counts for monitoring (walks the store once with ``scan``).

        Raises:
            StoreError: the store failed.
        """
        now = self.manager.clock()
        store_stats = self.manager.store.stats(now)
        sessions: Counter[str] = Counter()
        sealed: Counter[str] = Counter()
        issued: Counter[str] = Counter()
        if Capability.SCAN in self.manager.store.capabilities:
            for key, stored in self._records():
                opened = self._open(key, stored)
                sessions[_status(opened, now) if opened else "undecodable"] += 1
                sealed[envelope_key_id(stored.blob) or "unknown"] += 1
                if opened is not None:
                    issued[opened.meta.issuer] += 1
        return {
            "namespace": self.manager.settings.namespace,
            "sessions": {name: sessions[name] for name in _STATUSES},
            "store": {"kind": self.manager.store.kind, "records": store_stats.records,
                      "expired": store_stats.expired, "locks": store_stats.locks,
                      "kv_entries": store_stats.kv_entries, "bytes": store_stats.bytes},
            "keys": {"active": self.manager.keyring.active.kid,
                     "sealed_with": dict(sorted(sealed.items())),
                     "issued_by": dict(sorted(issued.items()))},
            "audit": self._audit_failures(),
        }

    def _audit_failures(self) -> dict[str, Any]:
        sinks = {f"{type(s).__name__}#{i}": int(s.failures) for i, s in enumerate(self.sinks)}
        hub = int(self.manager.events.failures)
        return {"failures": hub + sum(sinks.values()), "hub_failures": hub, "sinks": sinks}

    def unlock(self, key: str | None = None, user: str | None = None, ip: str | None = None,
               throttle: str = "login") -> dict[str, Any]:
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
        from ..guards.throttle import Throttle  # the throttle owns its key naming

        target: Any
        try:
            gate = Throttle(self.manager.store, self.manager.keyring, clock=self.manager.clock,
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
        self._emit("unlocked", user=user, reason="admin_unlock", throttle=throttle,
                   cleared=cleared)
        return {"throttle": throttle, "unlocked": cleared}

    # --------------------------------------------------------------- keys

    def reseal(self, batch: int = _SCAN_PAGE, cursor: str | None = None) -> dict[str, Any]:
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
        page, next_cursor = self._scan_page(cursor, _check_count(batch, "batch"))
        counts: Counter[str] = Counter()
        for key, stored in page:
            counts[self._reseal_one(key, stored)] += 1
        if counts["resealed"]:
            self._emit("key_rotated", reason="reseal", count=counts["resealed"],
                       kid=self.manager.keyring.active.kid)
        out: dict[str, Any] = {name: counts[name] for name in _RESEAL_OUTCOMES}
        out["cursor"] = next_cursor
        return out

    def _reseal_one(self, key: str, stored: StoredRecord | None) -> str:
        active = self.manager.keyring.active.kid
        store = self.manager.store
        for _attempt in range(_RESEAL_RETRIES):
            if stored is None:
                return "current"  # deleted meanwhile: nothing left to re-seal
            if envelope_key_id(stored.blob) == active:
                return "current"
            opened = self._open(key, stored)
            if opened is None:
                return "skipped"
            if self.manager.clock() >= opened.expires_at():
                return "expired"
            blob = self.manager.sealer.seal(key, opened.meta, opened.data_json)
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

    def note_key_change(self, action: str, kid: str) -> None:
        """Emit ``key_rotated`` for a key file change made by the caller
        (``action``: ``rotate`` or ``retire``)."""
        self._emit("key_rotated", reason=action, kid=kid)

    def key_usage(self, kid: str) -> dict[str, Any]:
        """How many records still need key ``kid``: sealed with it, or issued
        under it (their storage key and cookie MAC derive from it).

        Raises:
            AdminError: ``kid`` is not a key of this keyring.
            StoreError: the store failed.
        """
        if kid not in self.manager.keyring.by_id:
            raise AdminError("invalid_argument", f"no key {kid!r} in the keyring")
        now = self.manager.clock()
        sealed = issued = expired = 0
        for key, stored in self._records():
            opened = self._open(key, stored)
            uses_sealed = envelope_key_id(stored.blob) == kid
            uses_issued = opened is not None and opened.meta.issuer == kid
            sealed, issued = sealed + uses_sealed, issued + uses_issued
            if (uses_sealed or uses_issued) and (opened is None or now >= opened.expires_at()):
                expired += 1
        return {"kid": kid, "sealed_with": sealed, "issued_by": issued, "expired": expired}


_STATUSES = ("active", "expired", "tombstones", "in_grace", "undecodable")
_RESEAL_OUTCOMES = ("resealed", "current", "expired", "skipped", "conflicts")


def _status(opened: Opened, now: float) -> str:
    if opened.meta.kind == TOMBSTONE:
        forward = opened.meta.forward
        live = forward is not None and not forward.closed and now < forward.grace_until
        return "in_grace" if live else "tombstones"
    return "active" if now < opened.expires_at() else "expired"

