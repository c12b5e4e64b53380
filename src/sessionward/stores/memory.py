"""MemoryStore: the reference implementation of the store contract.

A dict behind one lock, for tests and development.  Not shared between
processes (no ``CROSS_PROCESS``) and not persistent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..core.clock import system_clock
from ..core.errors import (
    CorruptEntryError,
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
)
from .base import Capability, StoredRecord, StoreStats, check_key
from .values import as_bytes, as_time, kv_of, record_of

if TYPE_CHECKING:
    from .aio import InlineAsyncStore


@dataclass(slots=True)
class _KV:
    value: bytes
    version: int
    expires_at: float


@dataclass(slots=True)
class _Lock:
    token: str
    expires_at: float


class MemoryStore:
    """In-process store; ``memory://``.  Thread-safe."""

    kind = "memory"
    capabilities = frozenset({Capability.SCAN})

    def __init__(self, *, clock: Callable[[], float] = system_clock) -> None:
        self.clock = clock
        self._records: dict[str, StoredRecord] = {}
        self._users: dict[str, set[str]] = {}
        self._kv: dict[str, _KV] = {}
        self._locks: dict[str, _Lock] = {}
        self._mutex = threading.RLock()

    @classmethod
    def from_url(cls, url: str, *, clock: Callable[[], float] = system_clock) -> MemoryStore:
        """``memory://`` (nothing else is accepted after the scheme)."""
        return cls(clock=clock)

    # ----------------------------------------------------------------- records

    def create(
        self, key: str, blob: bytes, *, expires_at: float, user_key: str | None
    ) -> StoredRecord:
        check_key(key)
        with self._mutex:
            if key in self._records:
                raise SessionExistsError("a record already exists under this key")
            record = StoredRecord(blob, 1, expires_at, self.clock(), user_key)
            self._records[key] = record
            self._index(key, None, user_key)
            return record

    def load(self, key: str) -> StoredRecord | None:
        """The record, its ``user_key`` only if the record is in that user's index.

        Raises:
            CorruptEntryError: a field of the wrong type (only in-process code
                can put one here; checked like every other store's).
        """
        check_key(key)
        with self._mutex:
            found = self._records.get(key)
            if found is None:
                return None
            checked = _checked(found, self.kind)
            if checked.user_key is not None and key not in self._users.get(checked.user_key, ()):
                return replace(checked, user_key=None)
            return checked

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
        check_key(key)
        with self._mutex:
            current = self._records.get(key)
            if current is None:
                raise SessionGoneError("the session was deleted by a concurrent request")
            if fence is not None and not self._holds(key, fence):
                raise LockLostError("the session lock is no longer held by this request")
            if current.version != expected_version:
                raise SessionConflictError("the session was changed by a concurrent request")
            record = StoredRecord(blob, expected_version + 1, expires_at, self.clock(), user_key)
            self._records[key] = record
            self._index(key, current.user_key, user_key)
            return record

    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        check_key(key)
        with self._mutex:
            current = self._records.get(key)
            if current is None:
                return False
            self._records[key] = replace(current, expires_at=expires_at, touched_at=touched_at)
            return True

    def delete(self, key: str) -> bool:
        check_key(key)
        with self._mutex:
            current = self._records.pop(key, None)
            if current is None:
                return False
            self._index(key, current.user_key, None)
            return True

    def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        check_key(user_key)
        with self._mutex:
            keys = sorted(self._users.get(user_key, ()))
            return _tolerant((k, self._records[k]) for k in keys if k in self._records)

    def scan(
        self, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        with self._mutex:
            keys = sorted(k for k in self._records if cursor is None or k > cursor)[:limit]
            page = _tolerant((k, self._records[k]) for k in keys)
        return page, (keys[-1] if len(keys) == limit else None)

    def purge_expired(self, now: float, limit: int) -> int:
        with self._mutex:
            expired = [k for k, r in self._records.items() if r.expires_at <= now][:limit]
            for key in expired:
                self.delete(key)
            for kv_key in [k for k, v in self._kv.items() if v.expires_at <= now][:limit]:
                del self._kv[kv_key]
            for lock_key in [k for k, v in self._locks.items() if v.expires_at <= now][:limit]:
                del self._locks[lock_key]
            return len(expired)

    def stats(self, now: float) -> StoreStats:
        with self._mutex:
            return StoreStats(
                records=len(self._records),
                expired=sum(1 for r in self._records.values() if r.expires_at <= now),
                kv_entries=sum(1 for v in self._kv.values() if v.expires_at > now),
                locks=sum(1 for v in self._locks.values() if v.expires_at > now),
                bytes=sum(len(r.blob) for r in self._records.values()),
            )

    def _index(self, key: str, old: str | None, new: str | None) -> None:
        if old == new:
            return
        if old is not None:
            members = self._users.get(old)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._users[old]
        if new is not None:
            self._users.setdefault(new, set()).add(key)

    # ---------------------------------------------------------------------- kv

    def _live_kv(self, key: str) -> _KV | None:
        entry = self._kv.get(key)
        if entry is not None:
            as_time(entry.expires_at, self.kind, "kv expiry")  # CorruptEntryError
        if entry is not None and entry.expires_at <= self.clock():
            del self._kv[key]
            return None
        return entry

    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        check_key(key)
        with self._mutex:
            entry = self._live_kv(key)
            return None if entry is None else kv_of(entry.value, entry.version, self.kind)

    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        check_key(key)
        with self._mutex:
            if self._live_kv(key) is not None:
                return False
            self._kv[key] = _KV(value, 1, expires_at)
            return True

    def kv_cas(self, key: str, value: bytes, *, expected_version: int, expires_at: float) -> bool:
        check_key(key)
        with self._mutex:
            entry = self._live_kv(key)
            if entry is None or entry.version != expected_version:
                return False
            self._kv[key] = _KV(value, expected_version + 1, expires_at)
            return True

    def kv_take(self, key: str) -> bytes | None:
        check_key(key)
        with self._mutex:
            entry = self._live_kv(key)
            if entry is None:
                return None
            del self._kv[key]
            return as_bytes(entry.value, self.kind, "kv value")

    def kv_delete(self, key: str) -> bool:
        check_key(key)
        with self._mutex:
            try:
                live = self._live_kv(key) is not None
            except CorruptEntryError:
                live = True  # deleting is how a corrupt entry is cleared
            return live and self._kv.pop(key, None) is not None

    # ------------------------------------------------------------------- locks

    def _holds(self, key: str, token: str) -> bool:
        lock = self._locks.get(key)
        return lock is not None and lock.token == token and lock.expires_at > self.clock()

    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        check_key(key)
        with self._mutex:
            lock = self._locks.get(key)
            if lock is not None and lock.expires_at > self.clock() and lock.token != token:
                return False
            self._locks[key] = _Lock(token, self.clock() + ttl)
            return True

    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        check_key(key)
        with self._mutex:
            if not self._holds(key, token):
                return False
            self._locks[key] = _Lock(token, self.clock() + ttl)
            return True

    def lock_release(self, key: str, token: str) -> bool:
        check_key(key)
        with self._mutex:
            if not self._holds(key, token):
                return False
            del self._locks[key]
            return True

    # -------------------------------------------------------------- lifecycle

    def async_store(self) -> InlineAsyncStore:
        """The async flavour: inline on the event loop (the memory store never waits)."""
        from .aio import InlineAsyncStore

        return InlineAsyncStore(self)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked(found: StoredRecord, kind: str) -> StoredRecord:
    """``found`` with every field checked (:func:`.values.record_of`).

    Raises:
        CorruptEntryError: a field of the wrong type or shape.
    """
    return record_of(found.blob, found.version, found.expires_at, found.touched_at,
                     found.user_key, kind)


def _tolerant(pairs: Iterable[tuple[str, StoredRecord]]) -> list[tuple[str, StoredRecord]]:
    """The pairs whose record is well-formed (listings leave a corrupt one out)."""
    found = []
    for key, record in pairs:
        try:
            found.append((key, _checked(record, "memory")))
        except CorruptEntryError:
            continue
    return found
