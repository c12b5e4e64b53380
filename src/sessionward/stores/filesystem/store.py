"""FileStore: the hardened filesystem store (``file:///abs/dir``).

One private directory (mode 0700, owned by us, never a symlink) holds every
record, kv entry and lease as one small file named by its storage key,
sharded 256 ways.  Invariants this module keeps, and which change together:

* a data file is only ever *published* whole: written to a unique temp file,
  then ``os.replace``-d (or ``os.link``-ed, for no-overwrite creates) into
  place, so readers and ``kill -9`` never see a torn record;
* every read-compare-write on one key runs under that key's ``flock`` mutex
  (a separate file, never renamed over), held for microseconds;
* an index marker (expiry bucket, user) is added *before* the data file that
  needs it and removed *after*, so a crash leaves at most a stale marker
  (pruned lazily, under the mutex) and never an unindexed file;
* only ``O_NOFOLLOW`` opens; a symlink where a data file belongs is refused
  and logged on ``sessionward.security``.

The layout and the cost of each operation are in ``docs/stores-filesystem.md``.

The class is built in layers, one module each: :mod:`.format` (the file
format), :mod:`.io` (dirfd-relative I/O and start-up checks), :mod:`.mutex`
(the per-key mutex), :mod:`.index` (markers, crash-safe commit, purge) and
:mod:`.kv` (kv entries and leases); this module holds the records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

from ...core.clock import system_clock
from ...core.errors import (
    ConfigurationError,
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    StoreUnavailableError,
)
from ..base import Capability, StoredRecord, StoreStats, check_key
from ..existing import check_layout, require_directory
from .format import _KIND, _KV, _LOCKS, _RECORDS, _as_record, _Entry, _is_key
from .index import BUCKET_SECONDS as BUCKET_SECONDS
from .index import _user_dir
from .io import _SHARDS, _check_dir_stat, _open_root, _shard, _wrap_os_errors
from .kv import _KvAndLeases
from .mutex import _R_TAG

__all__ = ["FileStore"]

_SUBDIRS = (_RECORDS, _KV, _LOCKS, "mutex", "expiry", "users", "tmp")

# ---------------------------------------------------------------- the store


class FileStore(_KvAndLeases):
    """Hardened file store; ``file:///abs/dir[?durable=true]``.  Thread- and
    process-safe on one host's local filesystem (needs ``flock`` and atomic
    ``rename``; not NFS).

    Security: file names are storage keys validated by ``check_key`` (never
    IDs, never user input); files are 0600 and directories 0700 whatever the
    umask; symlinks are refused, never followed.

    Attributes:
        durable: fsync every published file and its directory (survives power
            loss; costs two fsyncs per write).
        temp_grace_seconds: temp files older than this (real mtime) are
            crash leftovers; ``purge_expired`` removes them.
    """

    kind = _KIND
    capabilities = frozenset({Capability.CROSS_PROCESS, Capability.PERSISTENT, Capability.SCAN})
    temp_grace_seconds: float = 300.0

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = system_clock,
        durable: bool = False,
        create: bool = True,
    ) -> None:
        """Open (creating if needed, unless ``create=False``) the store directory.

        Raises:
            ConfigurationError: the directory or one of its subdirectories is a
                symlink, group/world-accessible, owned by another user, not
                writable, or its parent is missing.
            StoreNotFoundError: ``create=False`` and the directory, or one of
                its subdirectories, is missing (nothing is created).
        """
        self.clock = clock
        self.durable = durable
        self._path = os.path.abspath(os.fspath(directory))
        if not create:
            require_directory(self._path, _KIND)
        self._root = _open_root(self._path)
        try:
            if create:
                self._init_subdirs()
            else:
                check_layout(self._root, self._path, _SUBDIRS, _check_dir_stat, _KIND)
        except BaseException:
            os.close(self._root)
            raise

    @classmethod
    def from_url(cls, url: str, *, clock: Callable[[], float] = system_clock,
                 create: bool = True) -> FileStore:
        """``file:///absolute/dir`` with the optional query ``durable=true|false``.

        Raises:
            ConfigurationError: not a ``file:`` URL, relative path, host part,
                unknown option, or an insecure directory.
            StoreNotFoundError: ``create=False`` and no store directory there.
        """
        parts = urlsplit(url)
        usage = "file store URLs look like file:///absolute/dir[?durable=true]"
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.fragment:
            raise ConfigurationError(usage)
        path = unquote(parts.path)
        if not path.startswith("/") or "\x00" in path:
            raise ConfigurationError(usage)
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"durable"}:
            raise ConfigurationError(f"unknown file store URL option; {usage}")
        values = [v.lower() for v in query.get("durable", ["false"])]
        if len(values) != 1 or values[0] not in ("true", "false", "1", "0"):
            raise ConfigurationError(f"durable must be true or false; {usage}")
        return cls(path, clock=clock, durable=values[0] in ("true", "1"), create=create)

    @_wrap_os_errors  # a full disk at start-up: the same clean error as a write
    def _init_subdirs(self) -> None:
        for name in _SUBDIRS:
            self._mkdirs(name)
            _check_dir_stat(
                os.stat(name, dir_fd=self._root, follow_symlinks=False),
                os.path.join(self._path, name),
            )

    # -------------------------------------------------------------- records

    @_wrap_os_errors
    def create(
        self, key: str, blob: bytes, *, expires_at: float, user_key: str | None
    ) -> StoredRecord:
        """Insert a new record with version 1 (published with ``link``: never overwrites).

        Raises:
            ValueError: malformed key or user key.
            SessionExistsError: a record (expired or not) exists under ``key``.
            StoreError: I/O failure, a refused symlink or a corrupt file in the way.
        """
        check_key(key)
        if user_key is not None:
            check_key(user_key)
        entry = _Entry(1, expires_at, self.clock(), user_key, bytes(blob))
        with self._staged(_RECORDS, entry) as tmp, self._mutex(key, _R_TAG):
            if self._read(_RECORDS, key) is not None:
                raise SessionExistsError("a record already exists under this key")
            self._commit(_RECORDS, key, entry, None, exclusive=True, staged=tmp)
        return _as_record(entry)

    @_wrap_os_errors
    def load(self, key: str) -> StoredRecord | None:
        """Return the record or ``None``; one lock-free ``open``+``read``, creates nothing.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        entry = self._read(_RECORDS, key)
        return None if entry is None else _as_record(self._indexed(key, entry))

    @_wrap_os_errors
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
        """Compare-and-set under the key's mutex (read, compare, rename).

        Raises:
            ValueError: malformed key or user key.
            SessionGoneError: no record under ``key`` (never resurrects).
            LockLostError: ``fence`` given and the lease is not ours any more.
            SessionConflictError: the version moved.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        if user_key is not None:
            check_key(user_key)
        entry = _Entry(expected_version + 1, expires_at, self.clock(), user_key, bytes(blob))
        with self._staged(_RECORDS, entry) as tmp, self._mutex(key, _R_TAG):
            current = self._read(_RECORDS, key)
            if current is None:
                raise SessionGoneError("the session was deleted by a concurrent request")
            if fence is not None and not self._holds(key, fence):
                raise LockLostError("the session lock is no longer held by this request")
            if current.version != expected_version:
                raise SessionConflictError("the session was changed by a concurrent request")
            self._commit(_RECORDS, key, entry, current, staged=tmp)
        return _as_record(entry)

    @_wrap_os_errors
    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        """Update ``expires_at``/``touched_at`` only (same version and blob).

        The file is small, so it is republished whole (temp + rename): an
        in-place write could be seen half-done by a lock-free reader.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            current = self._read(_RECORDS, key)
            if current is None:
                return False
            entry = dataclasses.replace(current, expires_at=expires_at, touched_at=touched_at)
            self._commit(_RECORDS, key, entry, current)
            return True

    @_wrap_os_errors
    def delete(self, key: str) -> bool:
        """Delete the record and its index entries; True if it existed.

        A corrupt record is deleted too (its stale markers are pruned lazily).

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure or a refused symlink.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            current = self._read_tolerant(_RECORDS, key)
            existed = self._retire(_RECORDS, key, current)
            return existed

    @_wrap_os_errors
    def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        """Records indexed under ``user_key``: lists ``users/<shard>/<user_key>/``
        and reads those files only; stale markers are pruned here.

        Raises:
            ValueError: malformed user key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(user_key)
        directory = _user_dir(user_key)
        found: list[tuple[str, StoredRecord]] = []
        for key in sorted(filter(_is_key, self._iter_dir(directory))):
            entry = self._read_tolerant(_RECORDS, key)  # one corrupt file: left out, logged
            if entry is not None and entry.user_key == user_key:
                found.append((key, _as_record(entry)))
            else:
                self._prune_user_marker(user_key, key)
        if not found:
            self._rmdir_if_empty(directory)
        return found

    @_wrap_os_errors
    def scan(
        self, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        """One page in ``(shard, key)`` order; the cursor is the last key returned.

        Raises:
            ValueError: malformed cursor.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        if cursor is not None:
            check_key(cursor)
        if limit <= 0:
            return [], None
        start = _shard(cursor) if cursor is not None else _SHARDS[0]
        page: list[tuple[str, StoredRecord]] = []
        for shard in _SHARDS[_SHARDS.index(start) :]:
            names = sorted(filter(_is_key, self._iter_dir(f"{_RECORDS}/{shard}")))
            for key in names:
                if shard == start and cursor is not None and key <= cursor:
                    continue
                entry = self._read_tolerant(_RECORDS, key)
                if entry is None:
                    continue
                page.append((key, _as_record(entry)))
                if len(page) == limit:
                    return page, key
        return page, None

    # ---------------------------------------------------------------- purge

    @_wrap_os_errors
    def purge_expired(self, now: float, limit: int) -> int:
        """Delete up to ``limit`` expired records, and as many kv entries and
        leases; sweep crash-leftover temp files.  Returns the records deleted.

        Only expiry buckets ``<= bucket(now)`` are listed; each candidate is
        re-checked under its own mutex (held for one entry, never the batch).

        Raises:
            StoreError: I/O failure.
        """
        purged = self._purge_space(_RECORDS, now, limit)
        self._purge_space(_KV, now, limit)
        self._purge_space(_LOCKS, now, limit)
        self._sweep_temp()
        return purged

    def _sweep_temp(self) -> None:
        # Temp-file age uses the real wall clock: mtimes are real, not self.clock.
        cutoff = time.time() - self.temp_grace_seconds
        for name in self._iter_dir("tmp"):
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(f"tmp/{name}", dir_fd=self._root, follow_symlinks=False)
                if st.st_mtime <= cutoff:
                    self._unlink(f"tmp/{name}")

    def _entries(self, ns: str) -> Iterator[_Entry]:
        for shard in _SHARDS:
            for key in filter(_is_key, self._iter_dir(f"{ns}/{shard}")):
                entry = self._read_tolerant(ns, key)
                if entry is not None:
                    yield entry

    @_wrap_os_errors
    def stats(self, now: float) -> StoreStats:
        """Exact counts; reads every file (O(total): an admin command, not a hot path).

        Raises:
            StoreError: I/O failure or a refused symlink.
        """
        records = expired = size = 0
        for entry in self._entries(_RECORDS):
            records += 1
            expired += entry.expires_at <= now
            size += len(entry.blob)
        return StoreStats(
            records=records,
            expired=expired,
            kv_entries=sum(1 for e in self._entries(_KV) if e.expires_at > now),
            locks=sum(1 for e in self._entries(_LOCKS) if e.expires_at > now),
            bytes=size,
        )

    # ------------------------------------------------------------ lifecycle

    def ping(self) -> None:
        """Check the directory is still open and not deleted.

        Raises:
            StoreUnavailableError: closed, or the directory was removed.
        """
        try:
            alive = self._root >= 0 and os.fstat(self._root).st_nlink > 0
        except OSError as exc:
            raise StoreUnavailableError("file store directory is unusable", store=_KIND) from exc
        if not alive:
            raise StoreUnavailableError(
                "file store is closed or its directory is gone", store=_KIND
            )

    def close(self) -> None:
        """Close the directory handle; later calls raise ``StoreError``."""
        if self._root >= 0:
            os.close(self._root)
            self._root = -1

    def __enter__(self) -> FileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
