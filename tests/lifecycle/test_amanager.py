"""AsyncSessionManager: the same semantics as the sync manager, awaitable."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sessionward import AsyncSessionManager, SessionGoneError, SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.stores.memory import MemoryStore


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
