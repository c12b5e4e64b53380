"""Error pages and the two small middlewares around the demo's routes.

- :class:`RequestContext` names the device of each request (from its
  User-Agent) for the events emitted while serving it.
- :class:`StoreUnavailable` turns a store outage (``StoreError``, raised
  while loading or saving the session, outside the routes) into a styled
  503 page with ``Retry-After``, instead of a bare 500.
- :func:`http_error` styles Starlette's 404/405 answers.

Every error page says what happened and links back (``templates/error.html``).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.client import describe_device
from ..core.errors import StoreError
from ..integrations import starlette as sw
from .db import REQUEST_DEVICE
from .web import error_page

_TITLES = {
    404: ("Page not found", "There is no page at this address. It may have moved, or the link "
                            "was mistyped."),
    405: ("Not allowed here", "This address does not accept that kind of request. Use the "
                              "buttons and links of the site."),
}


class RequestContext:
    """Pure ASGI middleware: the request's device label in :data:`~.db.REQUEST_DEVICE`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        agent = dict(scope.get("headers") or ()).get(b"user-agent", b"")
        token = REQUEST_DEVICE.set(describe_device(agent.decode("latin-1")[:512] or None))
        try:
            await self.app(scope, receive, send)
        finally:
            REQUEST_DEVICE.reset(token)


class StoreUnavailable:
    """Pure ASGI middleware: a ``StoreError`` before the response started is a 503 page.

    Why here and not an exception handler: the session is loaded and saved by
    the session middleware, outside Starlette's exception middleware.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except StoreError:
            if started:
                raise
            response = error_page(
                Request(scope), None, 503, "Sessions are unavailable",
                "The session store is not answering, so nobody can sign in or stay signed "
                "in right now. Nothing you did caused this. Try again in a minute.",
                back="/", back_label="Try again", headers={"Retry-After": "30"})
            await response(scope, receive, send)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's ``HTTPException`` (404, 405...) as a styled page."""
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    title, message = _TITLES.get(code, ("Something went wrong", "The request was not served."))
    headers = getattr(exc, "headers", None)
    try:
        session = sw.get_session(request)
    except LookupError:  # the router answered before the session middleware ran
        session = None
    return error_page(request, session, code, title, message,
                      headers=dict(headers) if headers else None)
