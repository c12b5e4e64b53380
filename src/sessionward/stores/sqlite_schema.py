"""The SQLite store's connection set-up, schema, migration, and record statements.

Schema 2 (current): ``sw_sessions`` keeps the exact ``expires_at`` and
indexes a coarse ``expiry_bucket`` instead (see
:data:`EXPIRY_BUCKET_SECONDS`); schema 1 indexed ``expires_at`` itself and is
migrated in place by :func:`migrate`.  These statements change together with
:class:`~sessionward.stores.sqlite.SQLiteStore`, which runs them.
"""

from __future__ import annotations

import os
import sqlite3
import time

from ..core.errors import ConfigurationError

SCHEMA_VERSION = 2
EXPIRY_BUCKET_SECONDS = 60
"""Width of one ``expiry_bucket``.  Why 60 s: a session saved again within the
same minute (a page and its XHRs, a form flow) rewrites no index entry, while a
cleanup batch reads at most one minute's worth of not-yet-expired rows (those
of the current bucket) beside the expired ones."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS sw_sessions (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    blob BLOB NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    touched_at REAL NOT NULL,
    user_key TEXT,
    expiry_bucket INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sw_sessions_user ON sw_sessions (user_key)
    WHERE user_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS sw_kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sw_kv_expiry ON sw_kv (expires_at);
CREATE TABLE IF NOT EXISTS sw_locks (
    key TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sw_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_SAME_BUCKET = ("UPDATE sw_sessions SET blob = ?, version = version + 1, expires_at = ?, "
                "touched_at = ? WHERE key = ? AND version = ? AND expiry_bucket = ? "
                "AND user_key IS ?")
_MOVED = ("UPDATE sw_sessions SET blob = ?, version = version + 1, expires_at = ?, "
          "touched_at = ?, user_key = ?, expiry_bucket = ? WHERE key = ? AND version = ?")
_FENCE = " AND EXISTS (SELECT 1 FROM sw_locks WHERE key = ? AND token = ? AND expires_at > ?)"
REPLACE = (_SAME_BUCKET, _MOVED)
REPLACE_FENCED = (_SAME_BUCKET + _FENCE, _MOVED + _FENCE)
"""``replace``'s statements: (bucket and user unchanged: no indexed column
written, the usual save; bucket or user moved), unfenced and fenced."""
_BUCKET_INDEX = ("CREATE INDEX IF NOT EXISTS sw_sessions_bucket "
                 "ON sw_sessions (expiry_bucket)")


def bucket_of(expires_at: float) -> int:
    """The ``expiry_bucket`` of an expiry time."""
    return int(expires_at // EXPIRY_BUCKET_SECONDS)


def migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION` inside the caller's transaction.

    Schema 1 indexed ``expires_at`` itself: add and fill ``expiry_bucket``,
    swap the index.  Several processes opening the file at once are
    serialized by the caller's ``BEGIN IMMEDIATE``; the second finds schema 2.

    Raises:
        ConfigurationError: the file was written by a newer sessionward.
    """
    row = db.execute("SELECT value FROM sw_meta WHERE name = 'schema'").fetchone()
    found = int(row[0]) if row else SCHEMA_VERSION
    if found > SCHEMA_VERSION:
        raise ConfigurationError(
            f"the SQLite store has schema {found}, newer than this sessionward's "
            f"{SCHEMA_VERSION}; upgrade sessionward to open it")
    if found == 1:
        columns = {r[1] for r in db.execute("PRAGMA table_info(sw_sessions)")}
        if "expiry_bucket" not in columns:
            db.execute("ALTER TABLE sw_sessions ADD COLUMN expiry_bucket INTEGER NOT NULL "
                       "DEFAULT 0")
        db.execute("UPDATE sw_sessions SET expiry_bucket = CAST(expires_at / ? AS INTEGER)",
                   (EXPIRY_BUCKET_SECONDS,))
        db.execute("DROP INDEX IF EXISTS sw_sessions_expiry")
    db.execute(_BUCKET_INDEX)
    db.execute("INSERT OR REPLACE INTO sw_meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))


def open_connection(path: str | os.PathLike[str], busy_timeout: float) -> sqlite3.Connection:
    """A WAL-mode autocommit connection with the busy timeout set.

    Why the retry: switching a fresh file to WAL takes an exclusive lock, and
    SQLite answers a second connection doing the same at that instant with
    "database is locked" at once -- its busy handler is not consulted there.
    Seen as 7 failed opens in 240 when 6 processes (daemon workers, app
    workers after a deploy) opened one new file together.  The switch is
    retried until ``busy_timeout``, like any other busy lock.

    Raises:
        sqlite3.Error: the file cannot be opened, or is still locked after
            ``busy_timeout`` seconds.
    """
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                         check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        deadline = time.monotonic() + busy_timeout
        pause = 0.005
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        db.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        db.close()
        raise
    return db
