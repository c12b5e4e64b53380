"""One end-to-end contender's server: ``python -m bench.e2e_app KIND ENV_JSON PORT_FILE``.

The same Starlette app for everybody — ``GET /hit`` reads the session and
increments ``counter`` — behind the contender's session middleware, served by
uvicorn with one worker on a free loopback port (written to PORT_FILE).
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bench.common import SESSION_TTL, make_payload
from bench.targets import Env, shared_secret


async def hit(request: Request) -> PlainTextResponse:
    session = request.session
    if "counter" not in session:
        session.update(make_payload())
    session["counter"] = int(session.get("counter", 0)) + 1
    return PlainTextResponse(f"n={session['counter']}")


def middleware(kind: str, env: Env) -> list[Middleware]:
    if kind == "starlette_cookie":
        from starlette.middleware.sessions import SessionMiddleware

        return [Middleware(SessionMiddleware, secret_key=shared_secret(env).hex(),
                           max_age=SESSION_TTL)]
    if kind == "starsessions_redis":
        from redis.asyncio import Redis
        from starsessions import SessionAutoloadMiddleware, SessionMiddleware
        from starsessions.stores.redis import RedisStore

        store = RedisStore(connection=Redis(host=env.redis_host, port=env.redis_port))
        return [Middleware(SessionMiddleware, store=store, lifetime=SESSION_TTL,
                           cookie_https_only=False),
                Middleware(SessionAutoloadMiddleware)]
    from sessionward.integrations.starlette import SessionMiddleware as SwMiddleware

    return [Middleware(SwMiddleware, manager=_manager(kind, env))]


def _manager(kind: str, env: Env) -> Any:
    from bench.sw import _start_daemon, shared_keyring
    from sessionward import AsyncSessionManager, SessionManager

    if kind == "sw_daemon":
        from sessionward.remote import AsyncRemoteSessionManager

        data_dir = _start_daemon(env)
        return AsyncRemoteSessionManager.from_url(
            f"sessionward://{data_dir / 'sessionward.sock'}",
            token_file=str(data_dir / "tokens" / "app.token"))
    if kind == "sw_redis":
        from sessionward.stores.redis import RedisStore

        store: Any = RedisStore.from_url(env.redis_url, prefix="e2e")
    else:
        from sessionward.stores.sqlite import SQLiteStore

        store = SQLiteStore(f"{env.workdir}/e2e.db")
    return AsyncSessionManager(SessionManager(store, shared_keyring(env)))


def main() -> None:
    kind, env_json, port_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    env = Env(**json.loads(env_json))
    app = Starlette(routes=[Route("/hit", hit)], middleware=middleware(kind, env))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)  # clients may connect before uvicorn accepts: they queue
    port_file.write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(app, log_level="warning", access_log=False, workers=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
