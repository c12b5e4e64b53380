"""Protocol: the store contract every backend implements.

Stores move opaque sealed bytes.  They know nothing of HTTP, crypto,
cookies or policy; they never see a raw session ID (keys are keyed hashes:
64 lowercase hex characters) and never deserialize anything.

Three families of operations:

* **records** — sessions: ``create`` / ``load`` / ``replace`` (compare-and-set
  by version, optionally fenced by a lock token) / ``touch`` / ``delete``,
  the per-user index (``by_user``), ``scan`` for admin listing and key
  rotation, ``purge_expired`` for batched cleanup;
* **kv** — small versioned values with an expiry, for throttles, one-time
  tokens, remember-me families and replay caches: ``kv_get`` /
  ``kv_create`` (if absent) / ``kv_cas`` / ``kv_take`` (atomic get+delete) /
  ``kv_delete``;
* **locks** — lease locks with random tokens: ``lock_acquire`` /
  ``lock_renew`` / ``lock_release``.

Time: every store is constructed with a ``clock`` (POSIX seconds).  Expiry
arguments are absolute POSIX times from that clock.  Stores with native TTL
(Redis) translate them to relative TTLs at call time.  ``load`` may return
a record whose ``expires_at`` has passed (the manager decides); ``kv_get``,
``kv_take`` and lock operations must treat expired entries as absent.

Errors: stores raise only :class:`~sessionward.core.errors.SessionConflictError`
subclasses, :class:`~sessionward.core.errors.LockLostError`,
:class:`~sessionward.core.errors.StoreError` subclasses (backend exceptions wrapped
with ``raise ... from exc``; a stored value of the wrong type or shape is
:class:`~sessionward.core.errors.CorruptEntryError`, never a raw ``TypeError``)
and ``ValueError`` for a malformed key.  Listings (``by_user``, ``scan``) leave a
corrupt record out rather than fail for every other one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

_KEY_SHAPE = re.compile(r"[a-z0-9:_-]{1,200}")


class Capability(StrEnum):
    """What a store can do; the manager and tests read these instead of
    catching ``NotImplementedError``."""

    NATIVE_TTL = "native_ttl"
    """Expired entries vanish by themselves; ``purge_expired`` is a no-op."""
    CROSS_PROCESS = "cross_process"
    """Several processes (or hosts) may share the store."""
    PERSISTENT = "persistent"
    """Data survives a process restart."""
    SCAN = "scan"
    """``scan`` enumerates every record (admin list, key rotation)."""


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One stored session record, as the store holds it.

    Attributes:
        blob: the sealed envelope (opaque to the store).
        version: starts at 1, +1 on every successful ``replace``.
        expires_at: when the store may drop the record (POSIX seconds).
        touched_at: the last cheap ``touch`` (POSIX seconds).  A plaintext,
            unauthenticated *hint* the manager combines with the sealed
            last-seen time for the idle timeout; it can never extend a
            session past its sealed absolute expiry.
        user_key: keyed hash of the user id, or ``None`` (anonymous).
    """

    blob: bytes
    version: int
    expires_at: float
    touched_at: float
    user_key: str | None


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts for ``sessionward stats``; ``-1`` means the store cannot tell cheaply."""

    records: int
    expired: int
    kv_entries: int
    locks: int
    bytes: int


@runtime_checkable
class SessionStore(Protocol):
    """Protocol: a synchronous session store.

    Implementations must be safe to use from several threads at once, and
    (when they declare ``CROSS_PROCESS``) from several processes at once.
    The contract suite in ``tests/contract`` is the executable form of this
    docstring; ``sessionward.testing`` exposes it for third-party stores.
    """

    kind: str
    """Short backend name for errors and stats (``"sqlite"``, ``"redis"``...)."""
    capabilities: frozenset[Capability]
    clock: Callable[[], float]

    # ----------------------------------------------------------------- records

    def create(
        self, key: str, blob: bytes, *, expires_at: float, user_key: str | None
    ) -> StoredRecord:
        """Insert a new record with version 1; ``touched_at`` = now.

        Atomic: never overwrites (SQLite primary-key insert, file ``O_EXCL``,
        Redis ``SET NX``).

        Raises:
            SessionExistsError: a record (expired or not) exists under ``key``.
            StoreError: backend failure.
        """
        ...

    def load(self, key: str) -> StoredRecord | None:
        """Return the record under ``key`` or ``None``.  Must not create anything.

        The returned ``user_key`` is the user index the record is *in*: a
        record whose stored user key has no entry in that index (a store
        writer removed it, so ``by_user`` misses it) comes back with
        ``user_key=None``, and the manager refuses it if its sealed metadata
        names a user.  Every field is checked (:mod:`.values`).

        Raises:
            CorruptEntryError: a field of the wrong type or shape.
            StoreError: backend failure (never ``None`` for an outage).
        """
        ...

    def replace(
        self,
        key: str,
        blob: bytes,
        *,
        expected_version: int,
        expires_at: float,
        user_key: str | None,
        fence: str | None = None,
    ) -> StoredRecord:
        """Compare-and-set: write only if the stored version is ``expected_version``.

        The new record has version ``expected_version + 1`` and ``touched_at``
        = now; the per-user index follows ``user_key`` in the same atomic step.
        When ``fence`` is given, the write also requires that the lock on
        ``key`` is held, unexpired, with exactly that token.

        Raises:
            SessionGoneError: no record under ``key`` (deleted: never resurrect).
            SessionConflictError: the version moved.
            LockLostError: ``fence`` given and the lock is not ours any more.
            StoreError: backend failure.
        """
        ...

    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        """Update only ``expires_at`` and ``touched_at`` (no version change, no
        blob rewrite).  Returns False when the record is gone."""
        ...

    def delete(self, key: str) -> bool:
        """Delete the record and its user-index entry; True if it existed."""
        ...

    def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        """Every record indexed under ``user_key``.

        Cost is O(that user's records), never a scan of the store.  Stale index
        entries (records gone by TTL) are pruned lazily here.
        """
        ...

    def scan(
        self, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        """One page of records in a stable order; returns ``(page, next_cursor)``,
        ``next_cursor`` is ``None`` at the end.  Safe while others write."""
        ...

    def purge_expired(self, now: float, limit: int) -> int:
        """Delete up to ``limit`` records, kv entries and locks that expired at or
        before ``now``; returns how many records went.  Each call is one short
        batch (no lock held over the whole cleanup).  Cost grows with the
        expired count, not the total.  Stores with ``NATIVE_TTL`` return 0."""
        ...

    def stats(self, now: float) -> StoreStats:
        """Counts for the admin ``stats`` command."""
        ...

    # ---------------------------------------------------------------------- kv

    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        """``(value, version)`` or ``None`` when absent or expired.

        Raises:
            CorruptEntryError: the value, version or expiry has the wrong type
                or shape (never "absent": that would reset a throttle).
        """
        ...

    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        """Insert with version 1 if absent (or expired); False if present."""
        ...

    def kv_cas(self, key: str, value: bytes, *, expected_version: int, expires_at: float) -> bool:
        """Write version ``expected_version + 1`` if the current version matches;
        False on mismatch or when absent."""
        ...

    def kv_take(self, key: str) -> bytes | None:
        """Atomically read and delete (consume-once); ``None`` when absent or
        expired.  Of N concurrent callers, exactly one gets the value."""
        ...

    def kv_delete(self, key: str) -> bool:
        """Delete; True if it existed."""
        ...

    # ------------------------------------------------------------------- locks

    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        """Take the lease lock on ``key`` for ``ttl`` seconds if it is free or
        expired; False if another token holds it."""
        ...

    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend our lease; False if the lock is no longer ours."""
        ...

    def lock_release(self, key: str, token: str) -> bool:
        """Release if ours; False otherwise (never releases another's lock)."""
        ...

    # -------------------------------------------------------------- lifecycle

    def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` if the store is unreachable."""
        ...

    def close(self) -> None:
        """Release connections and file handles."""
        ...


def check_key(key: str) -> str:
    """Validate a storage/kv/lock key before any I/O.

    Keys are produced by sessionward (hex digests, optionally with a short
    ``prefix:`` made of ``[a-z_]``); anything else is a programming error
    or an attack and is refused.

    Raises:
        ValueError: malformed key.
    """
    if type(key) is not str or not _KEY_SHAPE.fullmatch(key):
        raise ValueError("store key must be 1-200 characters of [a-z0-9:_-]")
    return key


def check_keys(keys: Sequence[str]) -> None:
    """:func:`check_key` for each of ``keys``."""
    for key in keys:
        check_key(key)
