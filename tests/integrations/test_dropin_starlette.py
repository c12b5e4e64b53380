"""Starlette drop-in regressions (issue 14), over a real uvicorn server.

``request.session`` is a real ``dict`` (``JSONResponse({"session": ...})``,
``|=``, ``popitem`` of the last key, ``copy``), ``request.session.clear()``
ends the session, static files keep their caching headers, and Starlette's
own cookie options are honoured or refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sessionward.core.clock import FrozenClock
from sessionward.core.errors import ConfigurationError
from sessionward.integrations import starlette as sw

from integrations.conftest import Jar, Site, cookies_set, make_manager
from integrations.harness import serve_asgi


async def set_n(request: Request) -> Response:
    request.session["n"] = request.query_params.get("n", "")
    return PlainTextResponse("ok")


async def view(request: Request) -> Response:
    return JSONResponse({"session": request.session})


async def mutate(request: Request) -> Response:
    session = request.session
    session |= {"x": 1, "y": 2}
    last = session.popitem()
    copied = session.copy()
    return JSONResponse({"session": session, "last": list(last), "copy": copied,
                         "is_dict": isinstance(session, dict)})


async def login(request: Request) -> Response:
    await sw.login(request, "alice")
    return PlainTextResponse("in")


async def clear(request: Request) -> Response:
    request.session.clear()
    return PlainTextResponse("cleared")


def routes(static: Path) -> list[Any]:
    return [Route("/set", set_n, methods=["POST"]), Route("/view", view),
            Route("/mutate", mutate, methods=["POST"]), Route("/login", login, methods=["POST"]),
            Route("/clear", clear, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=str(static)))]


@pytest.fixture(name="serve")
def serve_fixture(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """``serve(**options)``: the app behind sessionward's middleware, under uvicorn."""
    stack: list[Any] = []
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.css").write_text("body{}")

    def serve(**options: Any) -> Site:
        clock = FrozenClock()
        folder = tmp_path / f"s{len(stack)}"
        folder.mkdir()
        manager, store = make_manager(folder, clock)
        app = Starlette(routes=routes(static), middleware=[
            Middleware(sw.SessionMiddleware, manager=manager, **options)])
        server = serve_asgi(app)
        url = server.__enter__()
        site = Site("starlette", url, manager, store, clock)
        stack.append((server, site))
        return site

    yield serve
    for server, site in stack:
        site.close()
        server.__exit__(None, None, None)
        site.manager.close()


class TestSessionIsADict:
    def test_json_ior_popitem_copy(self, serve: Callable[..., Site]) -> None:
        jar = serve().jar()
        jar.post("/set", params={"n": "1"})
        body = jar.post("/mutate").json()
        assert body == {"session": {"n": "1", "x": 1}, "last": ["y", 2],
                        "copy": {"n": "1", "x": 1}, "is_dict": True}
        assert jar.get("/view").json() == {"session": {"n": "1", "x": 1}}


class TestClear:
    def test_clear_ends_the_session(self, serve: Callable[..., Site]) -> None:
        """The usual Starlette logout: record deleted, deletion cookie, user binding gone."""
        site = serve()
        jar = site.jar()
        jar.post("/login")
        cookie = jar.cookie
        assert [i.user for i in site.manager.sessions_of("alice")] == ["alice"]
        r = jar.post("/clear")
        assert any(h.startswith("__Host-session=;") for h in cookies_set(r))
        assert site.manager.sessions_of("alice") == []
        assert site.manager.load(cookie) is None
        assert site.jar().get("/view", cookie=cookie).json() == {"session": {}}


class TestCaching:
    def test_static_files_keep_their_caching_headers(self, serve: Callable[..., Site]) -> None:
        jar = serve().jar()
        jar.post("/set", params={"n": "1"})
        static = jar.get("/static/app.css")
        assert static.status_code == 200 and static.text == "body{}"
        assert "cookie" not in static.headers.get("vary", "").lower()
        assert "no-store" not in static.headers.get("cache-control", "")
        assert cookies_set(static) == []
        viewed = jar.get("/view")
        assert viewed.headers["cache-control"] == "no-store"


class TestStarletteOptions:
    def test_options_are_honoured(self, serve: Callable[..., Site]) -> None:
        site = serve(session_cookie="__Secure-sid", same_site="strict", path="/",
                     max_age=600, domain="127.0.0.1")
        jar = Jar(site.jar().client, name="__Secure-sid")
        (header,) = jar.post("/set", params={"n": "1"}).headers.get_list("set-cookie")
        assert header.startswith("__Secure-sid=")
        for part in ("Max-Age=600", "SameSite=Strict", "Domain=127.0.0.1", "Secure"):
            assert part in header
        assert jar.get("/view").json() == {"session": {"n": "1"}}

    @pytest.mark.parametrize(("options", "why"), [
        ({"path": "/app"}, "__Host-"), ({"domain": ".example.com"}, "__Host-"),
        ({"https_only": False}, "plain http"), ({"max_age": 0}, "positive"),
        ({"max_age": 30 * 86400}, "absolute_timeout"),
    ])
    def test_refused_at_start_up_with_the_reason(self, options: dict[str, Any],
                                                 why: str) -> None:
        from sessionward.testing import memory_manager

        async def app(scope: Any, receive: Any, send: Any) -> None:
            return None

        with pytest.raises(ConfigurationError, match=why) as err:
            sw.SessionMiddleware(app, manager=memory_manager(), **options)
        assert str(err.value).startswith("SessionMiddleware(")
