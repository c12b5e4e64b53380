"""The async flavour of every store keeps the store contract, and the async
manager over it keeps the lifecycle's (one policy, two drivers)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from sessionward import AsyncSessionManager, SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import (
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
)
from sessionward.core.keys import KeyRing
from sessionward.stores.aio import AsyncSessionStore, async_store_for
from sessionward.stores.base import SessionStore

K1 = "a" * 64
K2 = "b" * 64
U1 = "c" * 64
T = TypeVar("T")


def run(step: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(step)


class TestAsyncStoreContract:
    def test_flavour_kind(self, store: SessionStore, store_kind: str) -> None:
        """Redis (one node, Sentinel) and SQLite have their own flavour; the rest threads."""
        flavour = async_store_for(store)
        assert isinstance(flavour, AsyncSessionStore)
        expected = {"redis": "AsyncRedisStore", "sentinel": "AsyncRedisStore",
                    "sqlite": "LoopSQLiteStore",
                    "memory": "InlineAsyncStore"}.get(store_kind, "ThreadedAsyncStore")
        assert type(flavour).__name__ == expected

    def test_records(self, store: SessionStore, clock: FrozenClock) -> None:
        """create / load / replace (CAS) / touch / delete / by_user, as the sync contract."""
        async def scenario() -> None:
            a = async_store_for(store)
            rec = await a.create(K1, b"v1", expires_at=clock() + 60, user_key=U1)
            assert rec.version == 1
            with pytest.raises(SessionExistsError):
                await a.create(K1, b"again", expires_at=clock() + 60, user_key=None)
            loaded = await a.load(K1)
            assert loaded is not None and (loaded.blob, loaded.user_key) == (b"v1", U1)
            assert loaded.expires_at == pytest.approx(clock() + 60, abs=0.01)
            assert (await a.replace(K1, b"v2", expected_version=1, expires_at=clock() + 90,
                                    user_key=U1)).version == 2
            with pytest.raises(SessionConflictError) as info:
                await a.replace(K1, b"stale", expected_version=1, expires_at=clock() + 90,
                                user_key=U1)
            assert not isinstance(info.value, SessionGoneError)
            assert await a.touch(K1, expires_at=clock() + 120, touched_at=clock() + 5)
            assert [k for k, _ in await a.by_user(U1)] == [K1]
            assert await a.load(K2) is None
            assert await a.delete(K1) and not await a.delete(K1)
            with pytest.raises(SessionGoneError):
                await a.replace(K1, b"v3", expected_version=2, expires_at=clock() + 60,
                                user_key=None)
            assert await a.by_user(U1) == []
            assert await a.load(K1) is None
            await a.aclose()

        run(scenario())

    def test_leases_fence_writes(self, store: SessionStore, clock: FrozenClock) -> None:
        async def scenario() -> None:
            a = async_store_for(store)
            await a.create(K1, b"v1", expires_at=clock() + 60, user_key=None)
            assert await a.lock_acquire(K1, "t1", 30)
            assert not await a.lock_acquire(K1, "t2", 30)
            with pytest.raises(LockLostError):
                await a.replace(K1, b"x", expected_version=1, expires_at=clock() + 60,
                                user_key=None, fence="t2")
            await a.replace(K1, b"ok", expected_version=1, expires_at=clock() + 60,
                            user_key=None, fence="t1")
            assert not await a.lock_release(K1, "t2")
            assert await a.lock_release(K1, "t1")
            assert await a.lock_acquire(K1, "t2", 30)
            await a.aclose()

        run(scenario())


class TestAsyncManagerOverEveryStore:
    def test_lifecycle_parity(self, store: SessionStore, clock: FrozenClock) -> None:
        """Save, load, merge of disjoint concurrent changes, periodic rotation with
        grace, login, logout: the sync manager sees what the async one did."""
        sync = SessionManager(store, KeyRing.generate("a"), Settings(namespace="a"),
                              clock=clock)

        async def scenario() -> None:
            manager = AsyncSessionManager(sync)
            session = manager.new()
            session["a"] = 1
            await manager.save(session)
            one = await manager.load(session.cookie_value)
            two = sync.load(session.cookie_value)
            assert one is not None and two is not None
            one["x"] = "from async"
            two["y"] = "from sync"
            sync.save(two)
            await manager.save(one)  # conflict on the version: disjoint keys merge
            merged = sync.load(session.cookie_value)
            assert merged is not None
            assert (merged["x"], merged["y"]) == ("from async", "from sync")
            interval = sync.settings.rotation_interval
            assert interval is not None
            clock.advance(interval.total_seconds() + 1)
            rotated = await manager.load(session.cookie_value)
            assert rotated is not None and rotated.cookie_changed
            still = await manager.load(session.cookie_value)  # old ID inside the grace
            assert still is not None and still.cookie_value == rotated.cookie_value
            await manager.login(rotated, "alice")
            assert await manager.load(still.cookie_value) is None
            assert [i.user for i in await manager.sessions_of("alice")] == ["alice"]
            await manager.logout(rotated)
            with pytest.raises(SessionGoneError):
                await manager.save(rotated)
            assert sync.load(rotated.cookie_value) is None
            await manager.store.aclose()

        run(scenario())

    def test_exclusive_mode_and_update(self, store: SessionStore, clock: FrozenClock) -> None:
        sync = SessionManager(store, KeyRing.generate("a"),
                              Settings(namespace="a", lock_wait=timedelta(seconds=2)),
                              clock=clock)

        async def scenario() -> None:
            manager = AsyncSessionManager(sync)
            session = manager.new()
            session["n"] = 0
            await manager.save(session)
            async with manager.open(session.cookie_value, mode="exclusive") as held:
                assert held.lock_token is not None
                held["n"] = 1
            assert held.lock_token is None
            loaded = await manager.load(session.cookie_value)
            assert loaded is not None
            assert await manager.update(loaded, "n", lambda v: v + 1) == 2
            final = sync.load(session.cookie_value)
            assert final is not None and final["n"] == 2
            await manager.store.aclose()

        run(scenario())
