"""The demo web application (Starlette): sign-up, sign-in, devices, step-up, events.

Security-relevant behaviour shown here, all through the public API:

- sign-in rotates the session ID (:func:`~sessionward.integrations.starlette.login`)
  and, with step-up, is throttled per (user, address), per account and per
  address (:class:`~sessionward.guards.throttle_set.ThrottleSet`); sign-up is
  throttled per address (:mod:`sessionward.demo.auth`);
- "your devices" lists :meth:`~sessionward.SessionManager.sessions_of`
  (metadata only, never IDs); signing out one device or every other one,
  and changing the password, need a recent password entry (5 minutes)
  (:mod:`sessionward.demo.account`);
- every signed-in POST form carries a per-session CSRF token; the anonymous
  sign-in and sign-up forms use a stateless signed double-submit token
  (:mod:`sessionward.demo.csrf`), so an anonymous visit creates no session
  record and sets no session cookie (T-15, ASVS 5.0 7.6.2);
- errors are pages that say what happened and link back; a store outage is
  a 503 page (:mod:`sessionward.demo.pages`).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..integrations import starlette as sw
from . import account, auth
from .pages import RequestContext, StyledErrors, http_error
from .state import Demo

STATIC = Path(__file__).parent / "static"

ROUTES = [
    Route("/", auth.index),
    Route("/login", auth.login_page, methods=["GET"]),
    Route("/login", auth.login_submit, methods=["POST"]),
    Route("/signup", auth.signup_page, methods=["GET"]),
    Route("/signup", auth.signup_submit, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/reauth", auth.reauth_page, methods=["GET"]),
    Route("/reauth", auth.reauth_submit, methods=["POST"]),
    Route("/account", account.account),
    Route("/devices", account.devices),
    Route("/devices/revoke", account.revoke_device, methods=["POST"]),
    Route("/devices/others", account.revoke_others, methods=["POST"]),
    Route("/password", account.password_page, methods=["GET"]),
    Route("/password", account.password_submit, methods=["POST"]),
    Route("/events", account.events_page),
    Route("/api/ping", account.ping),
]


def build_app(demo: Demo) -> Starlette:
    """The Starlette app over ``demo`` (session middleware, error pages installed).

    Static files are served outside the session middleware: a stylesheet
    request neither loads a session nor fails with the store (so the 503
    page is styled too).
    """
    pages = Starlette(
        routes=ROUTES,
        middleware=[Middleware(sw.SessionMiddleware, manager=demo.manager)],
        exception_handlers={HTTPException: http_error},
    )
    app = Starlette(
        routes=[Mount("/static", StaticFiles(directory=STATIC), name="static"),
                Mount("", app=pages)],
        middleware=[Middleware(RequestContext), Middleware(StyledErrors)],
    )
    pages.state.demo = app.state.demo = demo
    return app
