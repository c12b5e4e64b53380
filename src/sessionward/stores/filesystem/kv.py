"""The kv family (throttles, one-time tokens, remember-me, replay caches) and the
lease locks of :class:`~sessionward.stores.filesystem.FileStore`.

kv entries live in ``kv/<shard>/<key>``, leases in ``locks/<shard>/<key>``,
both in the same file format as records.  Every read-compare-write runs
under the key's ``flock`` mutex; a lease uses the *record's* mutex tag, so a
fenced record write and a lease change on one key never interleave.
"""

from __future__ import annotations

import hmac

from ..base import check_key
from .format import _KV, _LOCKS, _Entry
from .index import _Indexed
from .io import _wrap_os_errors
from .mutex import _K_TAG, _R_TAG

_MAX_TOKEN = 512


class _KvAndLeases(_Indexed):
    """kv entries and leases over the indexed, mutex-guarded file layer."""

    def _live(self, entry: _Entry | None) -> _Entry | None:
        return entry if entry is not None and entry.expires_at > self.clock() else None

    @_wrap_os_errors
    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        """``(value, version)`` or ``None`` when absent or expired; lock-free read.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        entry = self._live(self._read(_KV, key))
        return None if entry is None else (entry.blob, entry.version)

    @_wrap_os_errors
    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        """Insert with version 1 if absent or expired; False if present.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _K_TAG):
            current = self._read(_KV, key)
            if self._live(current) is not None:
                return False
            entry = _Entry(1, expires_at, self.clock(), None, bytes(value))
            self._commit(_KV, key, entry, current)
            return True

    @_wrap_os_errors
    def kv_cas(self, key: str, value: bytes, *, expected_version: int, expires_at: float) -> bool:
        """Write version ``expected_version + 1`` if the live version matches.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        entry = _Entry(expected_version + 1, expires_at, self.clock(), None, bytes(value))
        with self._staged(_KV, entry) as tmp, self._mutex(key, _K_TAG):
            current = self._live(self._read(_KV, key))
            if current is None or current.version != expected_version:
                return False
            self._commit(_KV, key, entry, current, staged=tmp)
            return True

    @_wrap_os_errors
    def kv_take(self, key: str) -> bytes | None:
        """Read and delete under the kv mutex: of N processes, exactly one wins.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _K_TAG):
            current = self._read(_KV, key)
            if current is None:
                return None
            self._retire(_KV, key, current)  # an expired entry goes too
            live = self._live(current)
            return None if live is None else live.blob

    @_wrap_os_errors
    def kv_delete(self, key: str) -> bool:
        """Delete; True if a live entry existed (an expired one is removed too).

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure or a refused symlink.
        """
        check_key(key)
        with self._mutex(key, _K_TAG):
            current = self._read_tolerant(_KV, key)
            self._retire(_KV, key, current)
            return self._live(current) is not None

    # ---------------------------------------------------------------- locks

    def _holds(self, key: str, token: str) -> bool:
        """Caller holds the key's mutex; constant-time token comparison."""
        lease = self._live(self._read(_LOCKS, key))
        return lease is not None and hmac.compare_digest(lease.blob, token.encode("utf-8"))

    def _set_lease(self, key: str, token: str, ttl: float, old: _Entry | None) -> None:
        encoded = token.encode("utf-8")
        if not 0 < len(encoded) <= _MAX_TOKEN:
            raise ValueError("lock token has an invalid length")
        now = self.clock()
        self._commit(_LOCKS, key, _Entry(0, now + ttl, now, None, encoded), old)

    @_wrap_os_errors
    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        """Take the lease if free, expired or already ours; False if another holds it.

        Raises:
            ValueError: malformed key or token.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            current = self._read(_LOCKS, key)
            live = self._live(current)
            if live is not None and not hmac.compare_digest(live.blob, token.encode("utf-8")):
                return False
            self._set_lease(key, token, ttl, current)
            return True

    @_wrap_os_errors
    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend our lease by ``ttl`` from now; False if it is no longer ours.

        Raises:
            ValueError: malformed key or token.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            if not self._holds(key, token):
                return False
            self._set_lease(key, token, ttl, self._read(_LOCKS, key))
            return True

    @_wrap_os_errors
    def lock_release(self, key: str, token: str) -> bool:
        """Release if ours; never releases another holder's lease.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            if not self._holds(key, token):
                return False
            self._retire(_LOCKS, key, self._read(_LOCKS, key))
            return True

