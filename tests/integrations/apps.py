"""The same tiny app written for every integration, so one suite drives all five.

Routes (each integration's natural way of writing them):

- ``GET /plain``   never touches the session;
- ``GET /whoami``  ``user=<user or anon>;n=<session["n"]>``;
- ``GET /peek``    only a membership test (``"n" in session``);
- ``POST /set?n=`` stores ``n``;
- ``POST /login``  logs ``alice`` in and redirects (303) to ``/whoami``;
- ``POST /logout`` logs out;
- ``POST /form``   like whoami; the body may carry hostile ``session`` fields;
- ``WS /ws``       (Starlette and ASGI) accepts, sends ``user=<user>``, closes.

Every builder takes an optional flood ``guard`` spec and passes it through that
integration's own configuration (constructor keyword, ``SESSIONWARD_FLOOD_GUARD``
in Flask's config or Django's settings).  :func:`behind_proxy` puts the
framework's trusted-proxy middleware in front, as a deployment behind a
reverse proxy would (uvicorn already trusts ``X-Forwarded-For`` from loopback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from sessionward import SessionManager
from sessionward.lifecycle.session import Session

USER = "alice"


def whoami_text(user: str | None, n: object) -> str:
    return f"user={user or 'anon'};n={n}"


# ------------------------------------------------------------------ Starlette


def build_starlette(manager: SessionManager, guard: object = None) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    from sessionward.integrations import starlette as sw

    async def plain(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def whoami(request: Request) -> Response:
        s = sw.get_session(request)
        return PlainTextResponse(whoami_text(s.user, s.get("n")))

    async def peek(request: Request) -> Response:
        return PlainTextResponse("yes" if "n" in request.session else "no")

    async def set_n(request: Request) -> Response:
        request.session["n"] = request.query_params.get("n", "")
        return PlainTextResponse("ok")

    async def login(request: Request) -> Response:
        await sw.login(request, USER)
        return RedirectResponse("/whoami", status_code=303)

    async def logout(request: Request) -> Response:
        await sw.logout(request)
        return PlainTextResponse("bye")

    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text(f"user={sw.get_session(socket).user or 'anon'}")
        await socket.close()

    routes = [
        WebSocketRoute("/ws", ws), Route("/plain", plain), Route("/whoami", whoami),
        Route("/peek", peek),
        Route("/set", set_n, methods=["POST"]), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]), Route("/form", whoami, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(sw.SessionMiddleware, manager=manager,
                                                           guard=guard)])


# ------------------------------------------------------------------ raw ASGI


def build_asgi(manager: SessionManager, guard: object = None) -> Any:
    from sessionward.integrations.asgi import SessionMiddleware, manager_of, session_of

    async def websocket(scope: dict[str, Any], receive: Callable[..., Any],
                        send: Callable[..., Any]) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": f"user={session_of(scope).user or 'anon'}"})
        await send({"type": "websocket.close", "code": 1000})

    async def app(scope: dict[str, Any], receive: Callable[..., Any],
                  send: Callable[..., Any]) -> None:
        if scope["type"] == "websocket":
            await websocket(scope, receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        s = session_of(scope)
        path, status, headers = scope["path"], 200, [(b"content-type", b"text/plain")]
        query = parse_qs(scope.get("query_string", b"").decode())
        body = "ok"
        if path in ("/whoami", "/form"):
            body = whoami_text(s.user, s.get("n"))
        elif path == "/peek":
            body = "yes" if "n" in s else "no"
        elif path == "/set":
            s["n"] = query.get("n", [""])[0]
        elif path == "/login":
            await manager_of(scope).login(s, USER)
            status, body = 303, ""
            headers.append((b"location", b"/whoami"))
        elif path == "/logout":
            await manager_of(scope).logout(s)
            body = "bye"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})

    return SessionMiddleware(app, manager, guard=guard)


# ------------------------------------------------------------------ raw WSGI


def build_wsgi(manager: SessionManager, guard: object = None) -> Any:
    from sessionward.integrations.wsgi import SessionMiddleware, manager_of, session_of

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        s: Session = session_of(environ)
        mgr = manager_of(environ)
        path = environ["PATH_INFO"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        status, headers, body = "200 OK", [("Content-Type", "text/plain")], "ok"
        if path in ("/whoami", "/form"):
            body = whoami_text(s.user, s.get("n"))
        elif path == "/peek":
            body = "yes" if "n" in s else "no"
        elif path == "/set":
            s["n"] = query.get("n", [""])[0]
        elif path == "/login":
            mgr.login(s, USER)
            status, body = "303 See Other", ""
            headers.append(("Location", "/whoami"))
        elif path == "/logout":
            mgr.logout(s)
            body = "bye"
        start_response(status, headers)
        return [body.encode()]

    return SessionMiddleware(app, manager, guard=guard)


# ------------------------------------------------------------------ Flask


def build_flask(manager: SessionManager, guard: object = None) -> Any:
    import flask

    from sessionward.integrations import flask as sw

    app = flask.Flask("sw_flask_test")
    app.config["SESSIONWARD_FLOOD_GUARD"] = guard
    sw.init_app(app, manager=manager)

    @app.get("/plain")
    def plain() -> str:
        return "ok"

    @app.get("/whoami")
    def whoami() -> str:
        return whoami_text(sw.current_session().user, flask.session.get("n"))

    @app.post("/form")
    def form() -> str:
        return whoami()

    @app.get("/peek")
    def peek() -> str:
        return "yes" if "n" in flask.session else "no"

    @app.post("/set")
    def set_n() -> str:
        flask.session["n"] = flask.request.args.get("n", "")
        return "ok"

    @app.post("/login")
    def login() -> Any:
        sw.login(USER)
        return flask.redirect("/whoami", code=303)

    @app.post("/logout")
    def logout() -> str:
        sw.logout()
        return "bye"

    return app


# ------------------------------------------------------------------ Django


def build_django(manager: SessionManager, guard: object = None) -> Any:
    from sessionward.integrations.django.backend import configure_manager

    from integrations.django_app import wsgi_application

    application = wsgi_application()
    from django.conf import settings

    settings.SESSIONWARD_FLOOD_GUARD = guard  # process-wide; every build resets it
    configure_manager(manager)
    return application


def behind_proxy(app: Any, kind: str) -> Any:
    """``app`` behind its trusted-proxy middleware (werkzeug ``ProxyFix`` for WSGI).

    The test servers listen on loopback only, so the one proxy hop trusted
    here is the test client itself; uvicorn's own proxy-headers support
    (on by default, trusting 127.0.0.1) does the same for ASGI.
    """
    if kind != "wsgi":
        return app
    from werkzeug.middleware.proxy_fix import ProxyFix

    return ProxyFix(app, x_for=1)


Builder = Callable[..., Any]  # (manager, guard=None) -> app

BUILDERS: dict[str, tuple[Builder, str]] = {
    "starlette": (build_starlette, "asgi"),
    "asgi": (build_asgi, "asgi"),
    "wsgi": (build_wsgi, "wsgi"),
    "flask": (build_flask, "wsgi"),
    "django": (build_django, "wsgi"),
}
