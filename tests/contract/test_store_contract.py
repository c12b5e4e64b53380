"""The store contract (stores/base.py docstrings), run against every store kind."""

from __future__ import annotations

import threading

import pytest

from sessionward.core.clock import FrozenClock
from sessionward.core.errors import (
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
)
from sessionward.stores.base import SessionStore

K1 = "a" * 64
K2 = "b" * 64
U1 = "c" * 64


class TestRecords:
    def test_create_then_load(self, store: SessionStore, clock: FrozenClock) -> None:
        """create() stores version 1 with the given expiry and user key."""
        rec = store.create(K1, b"blob", expires_at=clock() + 60, user_key=U1)
        assert rec.version == 1
        loaded = store.load(K1)
        assert loaded is not None
        assert (loaded.blob, loaded.version, loaded.user_key) == (b"blob", 1, U1)
        assert loaded.expires_at == pytest.approx(clock() + 60, abs=0.01)

    def test_create_never_overwrites(self, store: SessionStore, clock: FrozenClock) -> None:
        store.create(K1, b"first", expires_at=clock() + 60, user_key=None)
        with pytest.raises(SessionExistsError):
            store.create(K1, b"second", expires_at=clock() + 60, user_key=None)
        loaded = store.load(K1)
        assert loaded is not None and loaded.blob == b"first"

    def test_load_missing_creates_nothing(self, store: SessionStore, clock: FrozenClock) -> None:
        """load() of a missing key returns None and creates nothing (Django CVE-2015-5143)."""
        assert store.load(K1) is None
        assert store.stats(clock()).records in (0, -1)
        assert store.load(K1) is None

    def test_replace_is_compare_and_set(self, store: SessionStore, clock: FrozenClock) -> None:
        store.create(K1, b"v1", expires_at=clock() + 60, user_key=None)
        rec = store.replace(K1, b"v2", expected_version=1, expires_at=clock() + 60, user_key=U1)
        assert rec.version == 2
        with pytest.raises(SessionConflictError) as info:
            store.replace(K1, b"stale", expected_version=1, expires_at=clock() + 60,
                          user_key=None)
        assert not isinstance(info.value, SessionGoneError)
        loaded = store.load(K1)
        assert loaded is not None and (loaded.blob, loaded.version) == (b"v2", 2)

    def test_replace_never_resurrects(self, store: SessionStore, clock: FrozenClock) -> None:
        store.create(K1, b"v1", expires_at=clock() + 60, user_key=None)
        assert store.delete(K1)
        with pytest.raises(SessionGoneError):
            store.replace(K1, b"v2", expected_version=1, expires_at=clock() + 60, user_key=None)
        assert store.load(K1) is None

    def test_touch_changes_only_expiry(self, store: SessionStore, clock: FrozenClock) -> None:
        store.create(K1, b"v1", expires_at=clock() + 60, user_key=None)
        assert store.touch(K1, expires_at=clock() + 120, touched_at=clock() + 5)
        loaded = store.load(K1)
        assert loaded is not None
        assert (loaded.blob, loaded.version) == (b"v1", 1)
        assert loaded.touched_at == pytest.approx(clock() + 5, abs=0.01)
        assert not store.touch(K2, expires_at=clock() + 1, touched_at=clock())

    def test_delete(self, store: SessionStore, clock: FrozenClock) -> None:
        assert not store.delete(K1)
        store.create(K1, b"v1", expires_at=clock() + 60, user_key=U1)
        assert store.delete(K1)
        assert store.load(K1) is None
        assert store.by_user(U1) == []

    def test_user_index_follows_writes(self, store: SessionStore, clock: FrozenClock) -> None:
        store.create(K1, b"1", expires_at=clock() + 60, user_key=U1)
        store.create(K2, b"2", expires_at=clock() + 60, user_key=None)
        assert [k for k, _ in store.by_user(U1)] == [K1]
        store.replace(K2, b"2", expected_version=1, expires_at=clock() + 60, user_key=U1)
        assert sorted(k for k, _ in store.by_user(U1)) == [K1, K2]
        store.replace(K1, b"1", expected_version=1, expires_at=clock() + 60, user_key=None)
        assert [k for k, _ in store.by_user(U1)] == [K2]

    def test_scan_pages_through_everything(self, store: SessionStore, clock: FrozenClock) -> None:
        keys = {f"{i:064x}" for i in range(25)}
        for key in keys:
            store.create(key, b"x", expires_at=clock() + 60, user_key=None)
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(100):
            page, cursor = store.scan(cursor, 7)
            seen.extend(k for k, _ in page)
            if cursor is None:
                break
        assert set(seen) == keys and len(seen) == len(keys)

    @pytest.mark.parametrize("bad", ["../etc/passwd", "A" * 64, "k*", "k\x00", "k\r\nSET x",
                                     "", "a" * 201, "key with space", "ключ"])
    def test_malformed_keys_refused(self, store: SessionStore, bad: str) -> None:
        """Keys outside [a-z0-9:_-] are refused before any I/O (T-06)."""
        with pytest.raises(ValueError):
            store.load(bad)
        with pytest.raises(ValueError):
            store.create(bad, b"x", expires_at=1e12, user_key=None)


class TestKV:
    def test_create_cas_take(self, store: SessionStore, clock: FrozenClock) -> None:
        assert store.kv_get("kv:1") is None
        assert store.kv_create("kv:1", b"a", expires_at=clock() + 60)
        assert not store.kv_create("kv:1", b"b", expires_at=clock() + 60)
        assert store.kv_get("kv:1") == (b"a", 1)
        assert store.kv_cas("kv:1", b"c", expected_version=1, expires_at=clock() + 60)
        assert not store.kv_cas("kv:1", b"d", expected_version=1, expires_at=clock() + 60)
        assert store.kv_get("kv:1") == (b"c", 2)
        assert store.kv_take("kv:1") == b"c"
        assert store.kv_take("kv:1") is None
        assert not store.kv_cas("kv:1", b"e", expected_version=2, expires_at=clock() + 60)

    def test_expired_entries_are_absent(self, store: SessionStore, clock: FrozenClock) -> None:
        """kv entries past expires_at are absent for every operation (store clock)."""
        store.kv_create("kv:2", b"a", expires_at=clock() + 10)
        clock.advance(11)
        assert store.kv_get("kv:2") is None
        assert store.kv_take("kv:2") is None
        assert not store.kv_cas("kv:2", b"b", expected_version=1, expires_at=clock() + 10)
        assert store.kv_create("kv:2", b"new", expires_at=clock() + 10)
        assert store.kv_get("kv:2") == (b"new", 1)

    def test_take_is_consume_once_across_threads(self, store: SessionStore,
                                                 clock: FrozenClock) -> None:
        store.kv_create("kv:once", b"token", expires_at=clock() + 60)
        winners: list[bytes] = []
        barrier = threading.Barrier(8)

        def take() -> None:
            barrier.wait()
            value = store.kv_take("kv:once")
            if value is not None:
                winners.append(value)

        threads = [threading.Thread(target=take) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert winners == [b"token"]

    def test_delete(self, store: SessionStore, clock: FrozenClock) -> None:
        assert not store.kv_delete("kv:3")
        store.kv_create("kv:3", b"a", expires_at=clock() + 60)
        assert store.kv_delete("kv:3")
        assert store.kv_get("kv:3") is None


class TestLocks:
    def test_exclusive_with_tokens(self, store: SessionStore, clock: FrozenClock) -> None:
        assert store.lock_acquire(K1, "tok-a", 30)
        assert not store.lock_acquire(K1, "tok-b", 30)
        assert not store.lock_release(K1, "tok-b")
        assert store.lock_renew(K1, "tok-a", 30)
        assert store.lock_release(K1, "tok-a")
        assert store.lock_acquire(K1, "tok-b", 30)

    def test_expired_lease_is_taken_over_and_fenced(self, store: SessionStore,
                                                    clock: FrozenClock) -> None:
        """After the TTL another holder gets the lock; the old holder cannot save."""
        store.create(K1, b"v1", expires_at=clock() + 600, user_key=None)
        assert store.lock_acquire(K1, "old", 30)
        clock.advance(31)
        assert not store.lock_renew(K1, "old", 30)
        assert store.lock_acquire(K1, "new", 30)
        with pytest.raises(LockLostError):
            store.replace(K1, b"stale", expected_version=1, expires_at=clock() + 600,
                          user_key=None, fence="old")
        rec = store.replace(K1, b"fresh", expected_version=1, expires_at=clock() + 600,
                            user_key=None, fence="new")
        assert rec.version == 2

    def test_fence_without_lock_fails(self, store: SessionStore, clock: FrozenClock) -> None:
        store.create(K1, b"v1", expires_at=clock() + 600, user_key=None)
        with pytest.raises(LockLostError):
            store.replace(K1, b"x", expected_version=1, expires_at=clock() + 600,
                          user_key=None, fence="nobody")


class TestHousekeeping:
    def test_stats_counts(self, store: SessionStore, clock: FrozenClock) -> None:
        store.create(K1, b"12345", expires_at=clock() + 60, user_key=None)
        stats = store.stats(clock())
        assert stats.records in (1, -1)
        assert stats.bytes in (-1,) or stats.bytes >= 5

    def test_ping_and_close(self, store: SessionStore) -> None:
        store.ping()
