"""Where a request runs (sessionward.daemon.gate): the inline gate, and the store
proxy that makes the event loop's first write fail fast on a locked SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward.core.errors import StoreTimeoutError
from sessionward.daemon.gate import RECOVERY_RUNS, SLOW_SECONDS, Contended, GatedStore, InlineGate
from sessionward.stores.sqlite import SQLiteStore


class TestInlineGate:
    def test_slow_handler_moves_requests_to_the_pool_until_fast_again(self) -> None:
        gate = InlineGate()
        assert gate.inline_ok()
        gate.observe(SLOW_SECONDS / 10)
        assert gate.inline_ok()
        gate.observe(SLOW_SECONDS * 2)
        assert not gate.inline_ok() and gate.slow_events == 1
        for _ in range(RECOVERY_RUNS - 1):
            gate.observe(SLOW_SECONDS / 10)
        assert not gate.inline_ok()
        gate.observe(SLOW_SECONDS * 3)  # still slow: the count starts again
        for _ in range(RECOVERY_RUNS - 1):
            gate.observe(SLOW_SECONDS / 10)
        assert not gate.inline_ok()
        gate.observe(SLOW_SECONDS / 10)
        assert gate.inline_ok()


BLOB = b"x" * 32


@pytest.fixture(name="store")
def store_fixture(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "s.db", busy_timeout=0.2)
    yield store
    store.close()


@pytest.fixture(name="locked")
def locked_fixture(store: SQLiteStore) -> Iterator[sqlite3.Connection]:
    """Another connection holding the SQLite write lock."""
    other = sqlite3.connect(store.path, isolation_level=None, timeout=5)
    yield other
    if other.in_transaction:
        other.execute("ROLLBACK")
    other.close()


class TestGatedStore:
    def test_first_inline_write_on_a_locked_file_is_contended(
            self, store: SQLiteStore, locked: sqlite3.Connection) -> None:
        gated = GatedStore(store)
        locked.execute("BEGIN IMMEDIATE")
        gated.begin()
        try:
            with pytest.raises(Contended):
                gated.create("k1" * 32, BLOB, expires_at=4e9, user_key=None)
        finally:
            gated.end()
        locked.execute("ROLLBACK")
        assert store.load("k1" * 32) is None  # nothing was written

    def test_outside_an_inline_handler_the_normal_timeout_applies(
            self, store: SQLiteStore, locked: sqlite3.Connection) -> None:
        gated = GatedStore(store)
        locked.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreTimeoutError):
            gated.create("k1" * 32, BLOB, expires_at=4e9, user_key=None)

    def test_after_a_write_later_writes_wait_as_before(
            self, store: SQLiteStore, locked: sqlite3.Connection) -> None:
        """Abandoning a handler that already wrote could apply half of it twice:
        its later writes get the normal timeout (and its error), never Contended."""
        gated = GatedStore(store)
        gated.begin()
        try:
            gated.create("k1" * 32, BLOB, expires_at=4e9, user_key=None)
            locked.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreTimeoutError):
                gated.create("k2" * 32, BLOB, expires_at=4e9, user_key=None)
        finally:
            gated.end()

    def test_reads_and_attributes_pass_through(self, store: SQLiteStore) -> None:
        gated = GatedStore(store)
        assert gated.kind == "sqlite" and gated.capabilities == store.capabilities
        gated.begin()
        try:
            assert gated.load("ab" * 32) is None
        finally:
            gated.end()
