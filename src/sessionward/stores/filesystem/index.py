"""The file store's indexes: expiry buckets and per-user markers, and their crash order.

A marker is an empty file: ``expiry/<ns>/<bucket>/<key>`` (``bucket`` =
``floor(expires_at / BUCKET_SECONDS)``) and ``users/<shard>/<user>/<key>``.
Markers are added *before* the data file that needs them and removed
*after* (``_commit``/``_retire``), so a crash leaves at most a stale marker,
pruned lazily under the key's mutex, and never an unindexed file.
``purge_expired`` lists only due buckets (``_purge_space``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os

from ...core.errors import StoreError
from .format import _KIND, _RECORDS, _CorruptFileError, _encode, _Entry, _is_key
from .io import _MARKER, _RETRIES, _data_path, _shard, _SymlinkRefusedError
from .mutex import _NS_TAG, _R_TAG, _Mutexes

BUCKET_SECONDS = 600
"""Width of one expiry bucket; ``purge_expired`` rescans at most one bucket of
not-yet-expired entries per call."""


def _bucket(expires_at: float) -> int:
    return math.floor(expires_at / BUCKET_SECONDS)


def _expiry_path(ns: str, bucket: int, key: str) -> str:
    return f"expiry/{ns}/{bucket}/{key}"


def _user_dir(user_key: str) -> str:
    return f"users/{_shard(user_key)}/{user_key}"


def _check_time(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expiry times must be finite POSIX seconds")
    return value


class _Indexed(_Mutexes):
    """Index markers, and publishing/deleting data files in crash-safe order."""

    def _add_marker(self, rel: str) -> None:
        """Create the empty index file ``rel``.

        Bucket and user directories are removed when they empty, so a
        concurrent ``rmdir`` may win between our ``mkdir`` and ``open``: retry.
        """
        for _ in range(_RETRIES):
            try:
                fd = os.open(rel, _MARKER, 0o600, dir_fd=self._root)
            except FileNotFoundError:
                self._mkdirs(os.path.dirname(rel))
                continue
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
            if self.durable:  # the marker must be on disk before the file it indexes
                self._fsync_dir(os.path.dirname(rel))
            return
        raise StoreError("could not create a file store index entry", store=_KIND)

    def _commit(
        self,
        ns: str,
        key: str,
        new: _Entry,
        old: _Entry | None,
        *,
        exclusive: bool = False,
        staged: str | None = None,
    ) -> None:
        """Publish ``new`` and move its index markers; caller holds the mutex.

        Order (each step may be the last before a ``kill -9``): 1. add markers
        for the new state; 2. publish the file atomically; 3. remove markers of
        the old state.  Any crash leaves extra markers, which are pruned
        lazily; never a file missing from its expiry bucket or user index.
        ``staged`` is a temp file already holding ``new`` (see :meth:`_staged`).
        """
        new_bucket = _bucket(_check_time(new.expires_at))
        old_bucket = None if old is None else _bucket(old.expires_at)
        old_user = None if old is None else old.user_key
        if new_bucket != old_bucket:
            self._add_marker(_expiry_path(ns, new_bucket, key))
        if new.user_key is not None and new.user_key != old_user:
            self._add_marker(f"{_user_dir(new.user_key)}/{key}")
        tmp = self._write_temp(_encode(ns, new)) if staged is None else staged
        self._publish(_data_path(ns, key), tmp, exclusive=exclusive)
        if old_bucket is not None and old_bucket != new_bucket:
            self._unlink(_expiry_path(ns, old_bucket, key))
        if old_user is not None and old_user != new.user_key:
            self._unlink(f"{_user_dir(old_user)}/{key}")

    def _retire(self, ns: str, key: str, old: _Entry | None) -> bool:
        """Delete the data file, then its markers; caller holds the mutex."""
        existed = self._unlink(_data_path(ns, key))
        if existed and self.durable:  # a revoked session must not come back after power loss
            self._fsync_dir(os.path.dirname(_data_path(ns, key)))
        if old is not None:
            self._unlink(_expiry_path(ns, _bucket(old.expires_at), key))
            if old.user_key is not None:
                self._unlink(f"{_user_dir(old.user_key)}/{key}")
        return existed

    def _indexed(self, key: str, entry: _Entry) -> _Entry:
        """``entry`` if it is in its user's index, else a copy without a user key
        (the manager refuses a signed-in record that is not indexed: a store
        writer could otherwise hide it from "sign out everywhere").

        The fast path is one lock-free ``stat`` of the marker.  Race timeline
        (why a missing marker is re-checked under the mutex): a lock-free
        reader reads the record (user A); a ``replace`` moving it to user B
        adds B's marker, publishes, removes A's; the reader's stat of A's
        marker now fails although nothing is wrong.  Under the key's mutex
        no writer is mid-way, so the re-read and re-stat are the truth.
        """
        if entry.user_key is None or self._has_marker(entry.user_key, key):
            return entry
        with self._mutex(key, _R_TAG):
            again = self._read(_RECORDS, key)
            if again is None or again.user_key is None or self._has_marker(again.user_key, key):
                return entry if again is None else again
            return dataclasses.replace(again, user_key=None)

    def _has_marker(self, user_key: str, key: str) -> bool:
        try:
            os.stat(f"{_user_dir(user_key)}/{key}", dir_fd=self._root, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def _prune_user_marker(self, user_key: str, key: str) -> None:
        # Re-check under the mutex: a create() may have added the marker and
        # not yet published the record; it holds the mutex until it has.
        with self._mutex(key, _R_TAG):
            entry = self._read_tolerant(_RECORDS, key)
            if entry is None or entry.user_key != user_key:
                self._unlink(f"{_user_dir(user_key)}/{key}")

    def _purge_space(self, ns: str, now: float, limit: int) -> int:
        last = _bucket(now)
        buckets = sorted(
            int(name)
            for name in self._iter_dir(f"expiry/{ns}")
            if name.lstrip("-").isdigit() and int(name) <= last
        )
        count = 0
        for bucket in buckets:
            directory = f"expiry/{ns}/{bucket}"
            with contextlib.closing(self._iter_dir(directory)) as names:  # closes the dir fd early
                for key in names:
                    if count >= limit:
                        return count
                    if _is_key(key):
                        count += self._purge_one(ns, key, bucket, now)
            self._rmdir_if_empty(directory)
        return count

    def _purge_one(self, ns: str, key: str, bucket: int, now: float) -> int:
        """Delete ``key`` if expired, or drop its marker if stale; returns 0 or 1."""
        tag = _NS_TAG[ns]
        with self._mutex(key, tag):
            try:
                entry = self._read(ns, key)
            except _SymlinkRefusedError:
                return 0  # logged; left for an operator to inspect
            except _CorruptFileError:
                self._retire(ns, key, None)  # unusable anyway: fail closed
                self._unlink(_expiry_path(ns, bucket, key))
                return 1
            if entry is None or _bucket(entry.expires_at) != bucket:
                # Stale: the entry is gone, or it moved to another bucket
                # (whose marker was added before it moved).
                self._unlink(_expiry_path(ns, bucket, key))
                return 0
            if entry.expires_at > now:
                return 0
            self._retire(ns, key, entry)
            return 1
