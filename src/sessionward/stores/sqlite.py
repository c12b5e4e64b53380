"""SQLiteStore: the embedded default — ``sqlite:///path/to/sessions.db``.

- WAL journal, ``synchronous=NORMAL``, ``busy_timeout`` set: readers never
  block the writer, several processes share one file.
- Every write is one short ``BEGIN IMMEDIATE`` transaction; compare-and-set
  is a single ``UPDATE ... WHERE key = ? AND version = ?``.
- The per-user index is a partial index on ``sw_sessions.user_key``, so it
  changes in the same row write as the record: it cannot drift.
- Records live in a rowid table with a unique index on the storage key.  Why
  not ``WITHOUT ROWID``: its rows sit in index B-tree pages, whose local
  payload limit is about 1 KB on 4 KiB pages, so every ~1.2 KB session spilled
  into overflow pages (measured: 4.5 GiB for 1,000,000 sessions, ~4.7 KB each,
  and 7 s to purge 100,000).  Table B-tree leaves hold ~4 KB locally.
- The expiry index is on a coarse ``expiry_bucket`` (``floor(expires_at /
  60 s)``), not on the exact ``expires_at``: a save that stays in the same
  bucket rewrites no index entry (an indexed column costs ~10 µs more per
  UPDATE here).  The exact ``expires_at`` is still stored and returned, the
  manager enforces expiry exactly from the sealed metadata, and cleanup
  deletes exactly the rows with ``expires_at <= now`` (see
  :meth:`SQLiteStore.purge_expired`).  Schema 1 databases are migrated once,
  at open (:func:`~.sqlite_schema.migrate`).
- Cleanup deletes expired rows through the bucket index in batches, each its
  own transaction (no lock held over the whole cleanup).
- The database, ``-wal`` and ``-shm`` files are created 0600.
- Parameterised SQL only; keys are validated before any statement runs.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..core.clock import system_clock
from ..core.errors import (
    ConfigurationError,
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    StoreError,
    StoreUnavailableError,
)
from .base import Capability, StoredRecord, StoreStats, check_key
from .disk import end_open_transaction, sqlite_disk_error, sqlite_read_error
from .disk import sqlite_error as _wrap
from .existing import check_sqlite_store
from .sqlite_rows import keyed_records, kv_row, record_row
from .sqlite_schema import EXPIRY_BUCKET_SECONDS as EXPIRY_BUCKET_SECONDS
from .sqlite_schema import (
    REPLACE,
    REPLACE_FENCED,
    SCHEMA,
    bucket_of,
    migrate,
    open_connection,
)
from .sqlite_schema import SCHEMA_VERSION as SCHEMA_VERSION

if TYPE_CHECKING:
    from .sqlite_loop import LoopSQLiteStore


class SQLiteStore:
    """SQLite-backed store; one connection per thread, shared file across processes.

    Args:
        path: database file (created 0600 with its parent 0700 if missing);
            ``":memory:"`` is refused (use ``memory://``).
        clock: POSIX-seconds clock.
        busy_timeout: seconds a writer waits for the file lock.
        create: ``False`` opens an existing store only: a missing file, or one
            without the sessionward schema, raises instead of being created,
            and neither the file, its mode nor its schema is written on open.

    Raises:
        ConfigurationError: the path is unusable.
        StoreNotFoundError: ``create=False`` and no sessionward store is there.
    """

    kind = "sqlite"
    capabilities = frozenset({Capability.CROSS_PROCESS, Capability.PERSISTENT, Capability.SCAN})

    def __init__(self, path: str | os.PathLike[str], *,
                 clock: Callable[[], float] = system_clock, busy_timeout: float = 5.0,
                 create: bool = True) -> None:
        self.path = Path(path)
        if str(path) == ":memory:":
            raise ConfigurationError("use memory:// for an in-memory store, not sqlite :memory:")
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        if not create:
            check_sqlite_store(self.path, self.busy_timeout)  # nothing written
            return
        self._prepare_file()
        try:
            # executescript manages its own transaction (it commits first).
            self._connect().executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise sqlite_disk_error(exc) or StoreUnavailableError(
                f"cannot initialise SQLite store: {exc}", store="sqlite") from exc
        with self._tx() as db:
            migrate(db)

    @classmethod
    def from_url(cls, url: str, *, clock: Callable[[], float] = system_clock,
                 create: bool = True) -> SQLiteStore:
        """``sqlite:///relative.db`` or ``sqlite:////abs/path.db``.

        Raises:
            ConfigurationError: no path in the URL.
            StoreNotFoundError: ``create=False`` and no store at the path.
        """
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc:
            path = parts.netloc + path
        # sqlite:///rel.db -> "rel.db"; sqlite:////abs/x.db -> "/abs/x.db"
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ConfigurationError("sqlite URL needs a file: sqlite:///path/to/sessions.db")
        return cls(path, clock=clock, create=create)

    # ---------------------------------------------------------- connections

    def _prepare_file(self) -> None:
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(mode=0o700, parents=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open SQLite store {self.path}: {exc.strerror}; check the path and "
                "that it is not a symlink"
            ) from None
        os.close(fd)
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)

    def set_thread_busy_timeout(self, seconds: float) -> None:
        """How long the calling thread's connection waits for the file lock
        (the daemon's event loop writes with a short one, then retries in its
        pool: :mod:`sessionward.daemon.gate`).  Other threads keep
        ``busy_timeout``.

        Raises:
            StoreUnavailableError: the database cannot be opened.
        """
        self._connect().execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            return db
        old_umask = os.umask(0o077)  # -wal and -shm are created 0600 as well
        try:
            db = open_connection(self.path, self.busy_timeout)
        except sqlite3.Error as exc:
            raise sqlite_disk_error(exc) or StoreUnavailableError(
                f"cannot open SQLite store: {exc}", store="sqlite") from exc
        finally:
            os.umask(old_umask)
        self._local.db = db
        with self._guard:
            self._all.append(db)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction; backend errors wrapped."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            finally:  # a failed statement or COMMIT (disk full) may leave it open
                end_open_transaction(db)
        except sqlite3.Error as exc:
            raise _wrap(exc) from exc

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run one write statement in autocommit (atomic by itself); its rowcount."""
        try:
            return self._connect().execute(sql, params).rowcount
        except sqlite3.Error as exc:
            end_open_transaction(self._connect())
            raise _wrap(exc) from exc

    def _write_returning(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """A write with ``RETURNING``: rows fetched before the implicit commit."""
        try:
            return self._connect().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            end_open_transaction(self._connect())
            raise _wrap(exc) from exc

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self._connect().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise sqlite_read_error(exc) from exc

    # -------------------------------------------------------------- records

    def create(self, key: str, blob: bytes, *, expires_at: float,
               user_key: str | None) -> StoredRecord:
        check_key(key)
        now = self.clock()
        try:
            self._write("INSERT INTO sw_sessions (key, blob, version, expires_at, touched_at, "
                        "user_key, expiry_bucket) VALUES (?, ?, 1, ?, ?, ?, ?)",
                        (key, blob, expires_at, now, user_key, bucket_of(expires_at)))
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise SessionExistsError("a record already exists under this key") from None
            raise
        return StoredRecord(blob, 1, expires_at, now, user_key)

    def load(self, key: str) -> StoredRecord | None:
        check_key(key)
        rows = self._read("SELECT blob, version, expires_at, touched_at, user_key "
                          "FROM sw_sessions WHERE key = ?", (key,))
        return record_row(rows[0]) if rows else None  # CorruptEntryError: wrong types

    def replace(self, key: str, blob: bytes, *, expected_version: int, expires_at: float,
                user_key: str | None, fence: str | None = None) -> StoredRecord:
        # One autocommit statement is atomic on its own: the version check, the
        # fence check (a sub-select on sw_locks) and the write happen together,
        # with no BEGIN/COMMIT round trips.  The first statement assumes the
        # expiry bucket and the user key are unchanged (the common save) and so
        # writes no indexed column; when either moved it changes no row and the
        # second statement writes them too.  Only when both changed no row is
        # the row read again, to say *why* the write failed.
        check_key(key)
        now = self.clock()
        bucket = bucket_of(expires_at)
        fence_params: tuple[Any, ...] = () if fence is None else (key, fence, now)
        same, moved = REPLACE if fence is None else REPLACE_FENCED
        if self._write(same, (blob, expires_at, now, key, expected_version, bucket, user_key,
                              *fence_params)) == 0 and self._write(
            moved, (blob, expires_at, now, user_key, bucket, key, expected_version,
                    *fence_params)) == 0:
            self._explain_failed_replace(key, fence, now)
        return StoredRecord(blob, expected_version + 1, expires_at, now, user_key)

    def _explain_failed_replace(self, key: str, fence: str | None, now: float) -> None:
        """Raise the error for a replace that changed no row."""
        if not self._read("SELECT 1 FROM sw_sessions WHERE key = ?", (key,)):
            raise SessionGoneError("the session was deleted by a concurrent request")
        if fence is not None and not self._read(
            "SELECT 1 FROM sw_locks WHERE key = ? AND token = ? AND expires_at > ?",
            (key, fence, now),
        ):
            raise LockLostError("the session lock is no longer held by this request")
        raise SessionConflictError("the session was changed by a concurrent request")

    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        check_key(key)
        bucket = bucket_of(expires_at)
        # Same bucket (the usual touch): no indexed column written; else write it too.
        return self._write("UPDATE sw_sessions SET expires_at = ?, touched_at = ? "
                           "WHERE key = ? AND expiry_bucket = ?",
                           (expires_at, touched_at, key, bucket)) > 0 or self._write(
            "UPDATE sw_sessions SET expires_at = ?, touched_at = ?, expiry_bucket = ? "
            "WHERE key = ?", (expires_at, touched_at, bucket, key)) > 0

    def delete(self, key: str) -> bool:
        check_key(key)
        return self._write("DELETE FROM sw_sessions WHERE key = ?", (key,)) > 0

    def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        check_key(user_key)
        rows = self._read("SELECT key, blob, version, expires_at, touched_at, user_key "
                          "FROM sw_sessions WHERE user_key = ? ORDER BY key", (user_key,))
        return keyed_records(rows)

    def scan(self, cursor: str | None, limit: int
             ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        rows = self._read("SELECT key, blob, version, expires_at, touched_at, user_key "
                          "FROM sw_sessions WHERE key > ? ORDER BY key LIMIT ?",
                          (cursor or "", limit))
        page = keyed_records(rows)  # a corrupt row is left out: the cursor follows rows
        return page, (str(rows[-1][0]) if len(rows) == limit else None)

    def purge_expired(self, now: float, limit: int) -> int:
        """Delete up to ``limit`` records with ``expires_at <= now`` (exactly).

        The bucket index bounds the scan: every row of an earlier bucket has
        expired, and only the current bucket (at most
        :data:`EXPIRY_BUCKET_SECONDS` of expiries) is filtered row by row.
        """
        with self._tx() as db:
            removed = db.execute(
                "DELETE FROM sw_sessions WHERE id IN (SELECT id FROM sw_sessions "
                "WHERE expiry_bucket <= ? AND expires_at <= ? LIMIT ?)",
                (bucket_of(now), now, limit)).rowcount
            db.execute("DELETE FROM sw_kv WHERE key IN (SELECT key FROM sw_kv "
                       "WHERE expires_at <= ? LIMIT ?)", (now, limit))
            db.execute("DELETE FROM sw_locks WHERE expires_at <= ?", (now,))
        return removed

    def stats(self, now: float) -> StoreStats:
        (records, expired, size), = self._read(
            "SELECT COUNT(*), COALESCE(SUM(expires_at <= ?), 0), COALESCE(SUM(LENGTH(blob)), 0) "
            "FROM sw_sessions", (now,))
        (kv,), = self._read("SELECT COUNT(*) FROM sw_kv WHERE expires_at > ?", (now,))
        (locks,), = self._read("SELECT COUNT(*) FROM sw_locks WHERE expires_at > ?", (now,))
        return StoreStats(records, expired, kv, locks, size)

    # -------------------------------------------------------------------- kv

    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        check_key(key)
        rows = self._read("SELECT value, version, expires_at FROM sw_kv WHERE key = ? "
                          "AND expires_at > ?", (key, self.clock()))
        return kv_row(rows[0]) if rows else None

    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        check_key(key)
        # Insert, or take over an entry that has expired, in one statement.
        return self._write(
            "INSERT INTO sw_kv VALUES (?, ?, 1, ?) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value, version = 1, expires_at = excluded.expires_at "
            "WHERE sw_kv.expires_at <= ?", (key, value, expires_at, self.clock())) > 0

    def kv_cas(self, key: str, value: bytes, *, expected_version: int, expires_at: float) -> bool:
        check_key(key)
        return self._write(
            "UPDATE sw_kv SET value = ?, version = version + 1, expires_at = ? "
            "WHERE key = ? AND version = ? AND expires_at > ?",
            (value, expires_at, key, expected_version, self.clock())) > 0

    def kv_take(self, key: str) -> bytes | None:
        check_key(key)
        rows = self._write_returning(
            "DELETE FROM sw_kv WHERE key = ? AND expires_at > ? RETURNING value, version, "
            "expires_at", (key, self.clock()))
        return None if not rows else kv_row(rows[0])[0]

    def kv_delete(self, key: str) -> bool:
        check_key(key)
        return self._write("DELETE FROM sw_kv WHERE key = ? AND expires_at > ?",
                           (key, self.clock())) > 0

    # ----------------------------------------------------------------- locks

    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        check_key(key)
        now = self.clock()
        return self._write(
            "INSERT INTO sw_locks VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
            "token = excluded.token, expires_at = excluded.expires_at "
            "WHERE sw_locks.expires_at <= ? OR sw_locks.token = excluded.token",
            (key, token, now + ttl, now)) > 0

    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        check_key(key)
        now = self.clock()
        return self._write("UPDATE sw_locks SET expires_at = ? WHERE key = ? AND token = ? "
                           "AND expires_at > ?", (now + ttl, key, token, now)) > 0

    def lock_release(self, key: str, token: str) -> bool:
        check_key(key)
        return self._write("DELETE FROM sw_locks WHERE key = ? AND token = ? AND expires_at > ?",
                           (key, token, self.clock())) > 0

    # ------------------------------------------------------------- lifecycle

    def ping(self) -> None:
        self._read("SELECT 1", ())

    def async_store(self) -> LoopSQLiteStore:
        """The async flavour: statements on the event loop that never wait there
        (see :mod:`~sessionward.stores.sqlite_loop`)."""
        from .sqlite_loop import LoopSQLiteStore

        inline = SQLiteStore(self.path, clock=self.clock, busy_timeout=self.busy_timeout)
        inline.close()              # its set-up connection waited like any other's
        inline.busy_timeout = 0.0   # every connection from here on: never wait on the loop
        return LoopSQLiteStore(self, inline)

    def close(self) -> None:
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
