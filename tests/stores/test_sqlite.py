"""SQLite store specifics: the coarse expiry-bucket index, exact cleanup, schema migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sessionward.core.clock import FrozenClock
from sessionward.core.errors import ConfigurationError, LockLostError, SessionConflictError
from sessionward.stores.sqlite import EXPIRY_BUCKET_SECONDS, SCHEMA_VERSION, SQLiteStore

K1 = "a" * 64
K2 = "b" * 64
U1 = "c" * 64
B = EXPIRY_BUCKET_SECONDS


def row(path: Path, key: str) -> tuple[float, int, str | None]:
    """``(expires_at, expiry_bucket, user_key)`` as stored."""
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT expires_at, expiry_bucket, user_key FROM sw_sessions "
                           "WHERE key = ?", (key,)).fetchone()
    return found[0], found[1], found[2]


@pytest.fixture(name="clock")
def fixture_clock() -> FrozenClock:
    return FrozenClock(1_000 * B)  # the start of a bucket


@pytest.fixture(name="path")
def fixture_path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


@pytest.fixture(name="store")
def fixture_store(path: Path, clock: FrozenClock) -> SQLiteStore:
    return SQLiteStore(path, clock=clock)


class TestExpiryBucket:
    def test_replace_in_the_same_bucket_keeps_the_bucket_and_the_exact_expiry(
            self, store: SQLiteStore, path: Path, clock: FrozenClock) -> None:
        """A save within the bucket writes the exact expiry; the indexed bucket stays."""
        store.create(K1, b"v1", expires_at=clock() + 10, user_key=None)
        assert row(path, K1) == (clock() + 10, 1_000, None)
        rec = store.replace(K1, b"v2", expected_version=1, expires_at=clock() + 20.5,
                            user_key=None)
        assert rec.version == 2
        assert row(path, K1) == (clock() + 20.5, 1_000, None)
        loaded = store.load(K1)
        assert loaded is not None and loaded.expires_at == clock() + 20.5

    def test_replace_that_moves_the_bucket_or_the_user_writes_them(
            self, store: SQLiteStore, path: Path, clock: FrozenClock) -> None:
        store.create(K1, b"v1", expires_at=clock() + 10, user_key=None)
        store.replace(K1, b"v2", expected_version=1, expires_at=clock() + 3 * B + 1,
                      user_key=None)
        assert row(path, K1) == (clock() + 3 * B + 1, 1_003, None)
        store.replace(K1, b"v3", expected_version=2, expires_at=clock() + 3 * B + 2,
                      user_key=U1)
        assert row(path, K1) == (clock() + 3 * B + 2, 1_003, U1)
        assert [k for k, _ in store.by_user(U1)] == [K1]

    def test_compare_and_set_and_fencing_still_hold_on_both_statements(
            self, store: SQLiteStore, clock: FrozenClock) -> None:
        """A stale version or a lost lock changes nothing, whichever statement ran."""
        store.create(K1, b"v1", expires_at=clock() + 10, user_key=None)
        store.replace(K1, b"v2", expected_version=1, expires_at=clock() + 10, user_key=None)
        for expires in (clock() + 10, clock() + 5 * B):
            with pytest.raises(SessionConflictError):
                store.replace(K1, b"stale", expected_version=1, expires_at=expires,
                              user_key=None)
        assert store.lock_acquire(K1, "t1", 30)
        for expires in (clock() + 10, clock() + 5 * B):
            with pytest.raises(LockLostError):
                store.replace(K1, b"x", expected_version=2, expires_at=expires, user_key=None,
                              fence="other")
        loaded = store.load(K1)
        assert loaded is not None and (loaded.blob, loaded.version) == (b"v2", 2)

    def test_touch_within_and_across_buckets(self, store: SQLiteStore, path: Path,
                                             clock: FrozenClock) -> None:
        store.create(K1, b"v1", expires_at=clock() + 10, user_key=None)
        assert store.touch(K1, expires_at=clock() + 30, touched_at=clock() + 1)
        assert row(path, K1)[:2] == (clock() + 30, 1_000)
        assert store.touch(K1, expires_at=clock() + 2 * B, touched_at=clock() + 2)
        assert row(path, K1)[:2] == (clock() + 2 * B, 1_002)
        assert not store.touch(K2, expires_at=clock() + 30, touched_at=clock())


class TestCleanup:
    def test_purge_is_exact_inside_the_current_bucket(self, store: SQLiteStore,
                                                      clock: FrozenClock) -> None:
        """Expired rows of the current bucket go; their unexpired neighbours stay."""
        store.create(K1, b"1", expires_at=clock() + 10, user_key=None)
        store.create(K2, b"2", expires_at=clock() + 20, user_key=None)
        clock.advance(10)
        assert store.purge_expired(clock(), 10) == 1
        assert store.load(K1) is None and store.load(K2) is not None
        assert store.purge_expired(clock(), 10) == 0

    def test_purge_takes_whole_earlier_buckets_in_batches(self, store: SQLiteStore,
                                                          clock: FrozenClock) -> None:
        keys = [f"{i:064x}" for i in range(7)]
        for i, key in enumerate(keys):
            store.create(key, b"x", expires_at=clock() + i * B, user_key=None)
        clock.advance(10 * B)
        assert store.purge_expired(clock(), 4) == 4
        assert store.purge_expired(clock(), 4) == 3
        assert all(store.load(k) is None for k in keys)


class TestSchemaMigration:
    def test_a_schema_1_file_is_migrated_at_open(self, path: Path, clock: FrozenClock) -> None:
        """Rows keep their data; buckets are filled; the old expires_at index goes."""
        with sqlite3.connect(path) as db:
            db.executescript("""
                CREATE TABLE sw_sessions (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
                    blob BLOB NOT NULL, version INTEGER NOT NULL, expires_at REAL NOT NULL,
                    touched_at REAL NOT NULL, user_key TEXT);
                CREATE INDEX sw_sessions_expiry ON sw_sessions (expires_at);
                CREATE TABLE sw_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO sw_meta VALUES ('schema', '1');
            """)
            db.execute("INSERT INTO sw_sessions (key, blob, version, expires_at, touched_at, "
                       "user_key) VALUES (?, ?, 3, ?, ?, ?)",
                       (K1, b"old", clock() + 2 * B + 5, clock(), U1))
            db.execute("INSERT INTO sw_sessions (key, blob, version, expires_at, touched_at, "
                       "user_key) VALUES (?, ?, 1, ?, ?, NULL)", (K2, b"gone", clock() - 1,
                                                                  clock() - 5))
        store = SQLiteStore(path, clock=clock)
        loaded = store.load(K1)
        assert loaded is not None and (loaded.blob, loaded.version) == (b"old", 3)
        assert row(path, K1) == (clock() + 2 * B + 5, 1_002, U1)
        with sqlite3.connect(path) as db:
            indexes = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sw_sessions'")}
            schema = db.execute("SELECT value FROM sw_meta WHERE name = 'schema'").fetchone()[0]
        assert "sw_sessions_bucket" in indexes and "sw_sessions_expiry" not in indexes
        assert schema == str(SCHEMA_VERSION)
        assert store.purge_expired(clock(), 10) == 1
        store.replace(K1, b"new", expected_version=3, expires_at=clock() + 2 * B + 6,
                      user_key=U1)
        store.close()
        reopened = SQLiteStore(path, clock=clock)  # a second open finds schema 2: no-op
        rec = reopened.load(K1)
        assert rec is not None and rec.blob == b"new"
        reopened.close()

    def test_a_newer_schema_is_refused(self, path: Path, clock: FrozenClock) -> None:
        SQLiteStore(path, clock=clock).close()
        with sqlite3.connect(path) as db:
            db.execute("UPDATE sw_meta SET value = '99' WHERE name = 'schema'")
        with pytest.raises(ConfigurationError, match="newer"):
            SQLiteStore(path, clock=clock)


def _open_at(path: str, start: float) -> str:
    """Open the store at one shared instant (a forked worker); the error, if any."""
    import time

    while time.time() < start:
        pass
    try:
        SQLiteStore(path)
    except Exception as exc:  # the test reports whatever went wrong
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.slow
def test_many_processes_opening_one_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    """Daemon workers or app workers after a deploy open one fresh file together:
    the switch to WAL ("database is locked" without the busy handler) is retried."""
    import multiprocessing
    import time

    ctx = multiprocessing.get_context("fork")
    failures: list[str] = []
    with ctx.Pool(6) as pool:
        for attempt in range(20):
            path = str(tmp_path / f"fresh{attempt}.db")
            start = time.time() + 0.05
            failures += [r for r in pool.starmap(_open_at, [(path, start)] * 6) if r != "ok"]
    assert failures == []
