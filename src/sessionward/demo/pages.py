"""Error pages and the two small middlewares around the demo's routes.

- :class:`RequestContext` names the device of each request (from its
  User-Agent) for the events emitted while serving it.
- :class:`StyledErrors` restyles the session middleware's own plain-text
  answers (503 store down, 429 locked-out address, 403 refused transport)
  as pages, keeping ``Retry-After``.
- :func:`http_error` styles Starlette's 404/405 answers.

Every error page says what happened and links back (``templates/error.html``).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.client import describe_device
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


_PLAIN = {
    403: ("Plain http is refused here", "This address only serves pages over its own loopback "
                                        "connection. Open the link the demo printed."),
    429: ("Too many requests", "This address sent too many invalid session cookies and must "
                               "wait a little. Nothing else is wrong; try again shortly."),
    503: ("Sessions are unavailable", "The session store is not answering, so nobody can "
                                      "sign in or stay signed in right now. Nothing you did "
                                      "caused this. Try again in a minute."),
}
_KEPT_HEADERS = frozenset({b"retry-after", b"cache-control", b"pragma", b"expires"})


class StyledErrors:
    """Pure ASGI middleware: the session middleware's plain-text 403/429/503 as pages.

    The session middleware answers a store outage (503), a locked-out address
    (429) or a refused transport (403) itself, in plain text, before any route
    runs.  This restyles exactly those answers (status in :data:`_PLAIN` and
    ``text/plain``), keeping ``Retry-After`` and the cache headers; every
    other response passes through untouched and unbuffered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None

        async def restyling_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and _restyle(message):
                held = message
                return
            if held is None:
                await send(message)
            elif not message.get("more_body", False):
                await _styled(scope, held)(scope, receive, send)

        await self.app(scope, receive, restyling_send)


def _restyle(start: Message) -> bool:
    headers = dict(start.get("headers") or ())
    return start["status"] in _PLAIN and headers.get(b"content-type", b"").startswith(
        b"text/plain")


def _styled(scope: Scope, start: Message) -> Response:
    status = int(start["status"])
    kept = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers") or ()
            if k.lower() in _KEPT_HEADERS}
    title, message = _PLAIN[status]
    return error_page(Request(scope), None, status, title, message,
                      back_label="Try again", headers=kept)


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
