"""AsyncSessionManager: the same semantics as the sync manager, awaitable."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionward import AsyncSessionManager, SessionGoneError, SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.stores.memory import MemoryStore
from sessionward.stores.sqlite import SQLiteStore


def make() -> tuple[AsyncSessionManager, FrozenClock]:
    clock = FrozenClock()
    sync = SessionManager(MemoryStore(clock=clock), KeyRing.generate("a"),
                          Settings(namespace="a"), clock=clock)
    return AsyncSessionManager(sync), clock


def test_lifecycle() -> None:
    """save/load/login/update/logout behave as in the sync manager."""
    async def scenario() -> None:
        manager, clock = make()
        session = manager.new()
        session["n"] = 0
        await manager.save(session)
        old = session.cookie_value
        loaded = await manager.load(old)
        assert loaded is not None
        await manager.login(loaded, "alice")
        assert await manager.load(old) is None
        await asyncio.gather(*(manager.update(loaded, "n", lambda v: (v or 0) + 1)
                               for _ in range(20)))
        fresh = await manager.load(loaded.cookie_value)
        assert fresh is not None and fresh["n"] == 20
        assert [i.user for i in await manager.sessions_of("alice")] == ["alice"]
        await manager.elevate(fresh, timedelta(minutes=5))
        assert manager.is_elevated(fresh)
        await manager.logout(fresh)
        with pytest.raises(SessionGoneError):
            await manager.save(fresh)
        clock.advance(1)
        assert await manager.cleanup() == 0

    asyncio.run(scenario())


def test_open_saves_and_releases_exclusive() -> None:
    async def scenario() -> None:
        manager, _ = make()
        async with manager.open(None) as session:
            session["x"] = 1
        cookie = session.cookie_value
        async with manager.open(cookie, mode="exclusive") as again:
            again["x"] = 2
            assert again.lock_token is not None
        assert again.lock_token is None
        final = await manager.load(cookie)
        assert final is not None and final["x"] == 2

    asyncio.run(scenario())


class _NoThreads(concurrent.futures.ThreadPoolExecutor):
    """A default executor that refuses work: any ``asyncio.to_thread`` fails."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a worker thread was used for {fn!r}")


def _sqlite_manager(tmp_path: Path) -> AsyncSessionManager:
    return AsyncSessionManager(SessionManager(SQLiteStore(tmp_path / "s.db"),
                                              KeyRing.generate("a"), Settings(namespace="a")))


class TestNativePath:
    """Embedded, the async manager runs the shared lifecycle on the loop itself."""

    @pytest.mark.parametrize("kind", ["memory", "sqlite"])
    def test_a_request_uses_no_worker_thread(self, kind: str, tmp_path: Path) -> None:
        """load, save, release and a read-only request: no thread hand-off at all."""
        async def scenario() -> None:
            asyncio.get_running_loop().set_default_executor(_NoThreads(1))
            manager = make()[0] if kind == "memory" else _sqlite_manager(tmp_path)
            session = manager.new()
            session["n"] = 1
            await manager.save(session)
            for i in range(3):
                loaded = await manager.load(session.cookie_value)
                assert loaded is not None and loaded["n"] == i + 1
                loaded["n"] = i + 2
                await manager.save(loaded)
                await manager.release(loaded)
            reader = await manager.load(session.cookie_value, mode="read")
            assert reader is not None and reader["n"] == 4
            await manager.store.aclose()

        asyncio.run(scenario())

    def test_a_busy_sqlite_database_never_blocks_the_loop(self, tmp_path: Path) -> None:
        """A write lock held elsewhere: the save waits in a thread while the loop
        keeps running (here: the task that releases the lock), then succeeds."""
        async def scenario() -> None:
            manager = _sqlite_manager(tmp_path)
            session = manager.new()
            session["n"] = 1
            await manager.save(session)
            blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            released: list[bool] = []

            async def release_soon() -> None:
                await asyncio.sleep(0.05)
                blocker.execute("COMMIT")
                released.append(True)

            session["n"] = 2
            await asyncio.gather(manager.save(session), release_soon())
            assert released == [True]
            blocker.close()
            again = await manager.load(session.cookie_value)
            assert again is not None and again["n"] == 2
            await manager.close()

        asyncio.run(scenario())

    def test_sync_and_async_managers_share_leases(self) -> None:
        """An exclusive session opened by the async manager is released by the sync one."""
        async def scenario() -> None:
            manager, _ = make()
            session = manager.new()
            session["n"] = 1
            await manager.save(session)
            held = await manager.load(session.cookie_value, mode="exclusive")
            assert held is not None and held.lock_token is not None
            manager.sync.release(held)
            assert held.lock_token is None
            again = await manager.load(session.cookie_value, mode="exclusive")
            assert again is not None
            await manager.release(again)

        asyncio.run(scenario())

    def test_async_callbacks_are_awaited_and_sync_ones_leave_the_loop(self) -> None:
        """Revalidation: a coroutine function is awaited on the loop, a plain one
        runs in a worker thread; the sync manager refuses a coroutine function."""
        seen: list[tuple[str, bool]] = []

        async def async_check(user: str) -> bool:
            seen.append((user, threading.get_ident() == loop_thread[0]))
            return user != "bob"

        def sync_check(user: str) -> bool:
            seen.append((user, threading.get_ident() == loop_thread[0]))
            return user != "bob"

        loop_thread: list[int] = []

        async def scenario(check: Any) -> tuple[SessionManager, FrozenClock]:
            loop_thread[:] = [threading.get_ident()]
            clock = FrozenClock()
            sync = SessionManager(MemoryStore(clock=clock), KeyRing.generate("a"),
                                  Settings(namespace="a",
                                           revalidate_interval=timedelta(seconds=60)),
                                  clock=clock, revalidate=check)
            manager = AsyncSessionManager(sync)
            for user in ("alice", "bob"):
                session = manager.new()
                await manager.login(session, user)
                clock.advance(61)
                assert (await manager.load(session.cookie_value) is None) == (user == "bob")
            return sync, clock

        sync, clock = asyncio.run(scenario(async_check))
        assert seen == [("alice", True), ("bob", True)]
        session = sync.login(sync.new(), "carol")
        clock.advance(61)
        with pytest.raises(TypeError, match="asynchronous"):
            sync.load(session.cookie_value)
        seen.clear()
        asyncio.run(scenario(sync_check))
        assert seen == [("alice", False), ("bob", False)]
