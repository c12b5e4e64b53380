"""starsessions: its ``SessionHandler.load`` / ``save`` over ``RedisStore``.

``SessionMiddleware`` builds one ``SessionHandler`` per request and calls
``load`` then ``save``; we do the same on a minimal ASGI scope, inside one
event loop (so no per-cycle loop start-up is charged), with its default
``JsonSerializer`` and an async redis-py connection to the same Redis.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.common import SESSION_TTL
from bench.targets import Env, Target


class StarsessionsTarget(Target):
    store, kind = "redis", "peer"

    def __init__(self, env: Env) -> None:
        from redis.asyncio import Redis
        from starsessions import JsonSerializer
        from starsessions.stores.redis import RedisStore

        self.loop = asyncio.new_event_loop()
        self.conn: Any = Redis(host=env.redis_host, port=env.redis_port)
        self.sstore = RedisStore(connection=self.conn)
        self.serializer = JsonSerializer()

    def _handler(self, sid: str | None) -> Any:
        from starlette.requests import HTTPConnection
        from starsessions.session import SessionHandler

        conn = HTTPConnection({"type": "http", "headers": [], "session": {}})
        return conn, SessionHandler(conn, sid, self.sstore, self.serializer, SESSION_TTL)

    async def _cycle(self, sid: str | None, change: Any) -> tuple[str, dict[str, Any]]:
        conn, handler = self._handler(sid)
        await handler.load()
        change(conn.session)
        sid = await handler.save(remaining_time=SESSION_TTL)
        return sid, conn.session

    async def _many(self, sid: str, n: int, start: int) -> None:
        for i in range(start, start + n):
            await self._cycle(sid, lambda s, i=i: s.__setitem__("counter", i))

    def create(self, data: dict[str, Any]) -> str:
        sid, _ = self.loop.run_until_complete(self._cycle(None, lambda s: s.update(data)))
        return sid

    def cycle(self, handle: str, value: int) -> str:
        self.loop.run_until_complete(self._many(handle, 1, value))
        return handle

    def run_cycles(self, handle: str, n: int, start: int) -> str:
        self.loop.run_until_complete(self._many(handle, n, start))
        return handle

    def append(self, handle: str, item: Any) -> dict[str, Any]:
        def change(s: dict[str, Any]) -> None:
            s["items"] = [*s.get("items", []), item]

        self.loop.run_until_complete(self._cycle(handle, change))
        return {}

    def read(self, handle: str) -> dict[str, Any]:
        _, data = self.loop.run_until_complete(self._cycle(handle, lambda s: None))
        return dict(data)

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.aclose())
        self.loop.close()


def starsessions_redis(env: Env) -> StarsessionsTarget:
    return StarsessionsTarget(env)
