"""The demo web application (Starlette): sign-up, login, devices, step-up, events.

Security-relevant behaviour shown here, all through the public API:

- login rotates the session ID (:func:`~sessionward.integrations.starlette.login`),
  and is throttled per user and address (:class:`~sessionward.guards.throttle.Throttle`);
- "your devices" lists :meth:`~sessionward.SessionManager.sessions_of` (metadata
  only, never IDs); revoking one needs a recent authentication (5 minutes);
- "sign out everywhere else" is :meth:`~sessionward.SessionManager.revoke_user`
  with ``keep=`` the current session;
- changing the password is a sensitive action: it requires step-up
  re-authentication (:meth:`~sessionward.SessionManager.elevate` +
  ``require_recent_auth``) and then signs out every other session;
- every signed-in POST form carries a per-session CSRF token; the anonymous
  sign-in and sign-up forms use a stateless signed double-submit token
  (:mod:`sessionward.demo.csrf`), so an anonymous visit creates no session
  record and sets no session cookie (T-15, ASVS 5.0 7.6.2).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..core.errors import ReauthenticationRequired
from ..guards.throttle import Throttle
from ..integrations import starlette as sw
from ..lifecycle.amanager import AsyncSessionManager
from .csrf import AnonymousCsrf
from .db import DemoDB
from .web import (
    CSRF_KEY,
    csrf_ok,
    flash,
    new_csrf_token,
    read_form,
    redirect,
    render,
    safe_next,
)

STEP_UP = timedelta(minutes=5)
MIN_PASSWORD = 10
STATIC = Path(__file__).parent / "static"


@dataclass
class Demo:
    """What the routes share: the manager, the demo's DB, the login throttle
    and the anonymous forms' CSRF signer."""

    manager: AsyncSessionManager
    db: DemoDB
    throttle: Throttle
    csrf: AnonymousCsrf


def _demo(request: Request) -> Demo:
    demo: Demo = request.app.state.demo
    return demo


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def _checked_form(request: Request) -> dict[str, str] | None:
    form = await read_form(request)
    return form if csrf_ok(sw.get_session(request), form) else None


async def _checked_anonymous_form(request: Request) -> dict[str, str] | None:
    """The form if its stateless token matches this browser's nonce cookie."""
    form, csrf = await read_form(request), _demo(request).csrf
    cookie = request.cookies.get(csrf.cookie_name)
    now = _demo(request).manager.sync.clock()
    return form if csrf.verify(cookie, form.get(CSRF_KEY, ""), now) else None


def _render_anonymous(request: Request, template: str, *, status: int = 200,
                      **context: object) -> Response:
    """An anonymous form page: stateless CSRF token + nonce cookie, no session write."""
    csrf = _demo(request).csrf
    nonce = csrf.nonce(request.cookies.get(csrf.cookie_name))
    token = csrf.token(nonce, _demo(request).manager.sync.clock())
    response = render(request, sw.get_session(request), template, status=status, csrf=token,
                      **context)
    csrf.set_cookie(response, nonce)
    return response


def _csrf_failed() -> Response:
    return PlainTextResponse("The form expired or was not sent by this site. Go back, reload "
                             "the page and try again.", status_code=403)


# -------------------------------------------------------------- anonymous


async def index(request: Request) -> Response:
    return redirect("/account" if sw.get_session(request).user else "/login")


async def login_page(request: Request) -> Response:
    session = sw.get_session(request)
    if session.user:
        return redirect("/account")
    return _render_anonymous(request, "login.html",
                             next=safe_next(request.query_params.get("next")))


async def login_submit(request: Request) -> Response:
    session, demo = sw.get_session(request), _demo(request)
    form = await _checked_anonymous_form(request)
    if form is None:
        return _csrf_failed()
    username, password = form.get("username", "").strip(), form.get("password", "")
    key = demo.throttle.key_for(user=username.lower() or "-", ip=_client_ip(request))
    wait = await asyncio.to_thread(demo.throttle.check, key)
    if wait > 0:
        return _render_anonymous(request, "login.html", status=429, username=username,
                                 error=f"Too many failed attempts. Try again in {int(wait) + 1} "
                                       "seconds.")
    if not await asyncio.to_thread(demo.db.verify, username, password):
        await asyncio.to_thread(demo.throttle.hit, key)
        if username:
            await asyncio.to_thread(demo.db.add_event, username, "login_failed",
                                    client=_client_ip(request))
        return _render_anonymous(request, "login.html", status=401, username=username,
                                 error="Wrong user name or password.")
    await asyncio.to_thread(demo.throttle.reset, key)
    await sw.login(request, username)
    new_csrf_token(session)
    return redirect(safe_next(form.get("next")))


async def signup_page(request: Request) -> Response:
    return _render_anonymous(request, "signup.html")


async def signup_submit(request: Request) -> Response:
    session, demo = sw.get_session(request), _demo(request)
    form = await _checked_anonymous_form(request)
    if form is None:
        return _csrf_failed()
    username, password = form.get("username", "").strip(), form.get("password", "")
    error = _signup_error(username, password, form.get("confirm", ""))
    if error is None and not await asyncio.to_thread(demo.db.create_user, username, password):
        error = "That user name is taken."
    if error is not None:
        return _render_anonymous(request, "signup.html", status=400, username=username,
                                 error=error)
    await asyncio.to_thread(demo.db.add_event, username, "signup", client=_client_ip(request))
    await sw.login(request, username)
    new_csrf_token(session)
    flash(session, "Welcome! Your account is ready.")
    return redirect("/account")


def _signup_error(username: str, password: str, confirm: str) -> str | None:
    if not 3 <= len(username) <= 40 or not all(c.isalnum() or c in "._-" for c in username):
        return "User names are 3-40 letters, digits, '.', '_' or '-'."
    if len(password) < MIN_PASSWORD:
        return f"Passwords need at least {MIN_PASSWORD} characters."
    if password != confirm:
        return "The two passwords differ."
    return None


# --------------------------------------------------------------- signed in


def _needs_login(request: Request) -> Response | None:
    if sw.get_session(request).user:
        return None
    return redirect(f"/login?next={request.url.path}")


async def _signed_in_form(request: Request) -> dict[str, str] | Response:
    """The CSRF-checked form of a signed-in user, or the response refusing it
    (a redirect to sign in, or 403 for a missing/forged token)."""
    if (refused := _needs_login(request)) is not None:
        return refused
    form = await _checked_form(request)
    return _csrf_failed() if form is None else form


async def account(request: Request) -> Response:
    if (refused := _needs_login(request)) is not None:
        return refused
    session, demo = sw.get_session(request), _demo(request)
    events = await asyncio.to_thread(demo.db.events_of, session.user or "", 5)
    return render(request, session, "account.html", events=events,
                  elevated=demo.manager.is_elevated(session))


async def devices(request: Request) -> Response:
    if (refused := _needs_login(request)) is not None:
        return refused
    session, demo = sw.get_session(request), _demo(request)
    rows = await demo.manager.sessions_of(session.user or "", current=session)
    return render(request, session, "devices.html", devices=rows)


async def revoke_device(request: Request) -> Response:
    form = await _signed_in_form(request)
    if isinstance(form, Response):
        return form
    session, demo = sw.get_session(request), _demo(request)
    try:
        done = await demo.manager.revoke_device(session, form.get("handle", ""),
                                                max_auth_age=STEP_UP)
    except ReauthenticationRequired:
        flash(session, "Confirm your password to sign out another device.")
        return redirect("/reauth?next=/devices")
    flash(session, "That device is signed out." if done else "That session had already ended.")
    return redirect("/devices")


async def revoke_others(request: Request) -> Response:
    if isinstance(refused := await _signed_in_form(request), Response):
        return refused
    session, demo = sw.get_session(request), _demo(request)
    count = await demo.manager.revoke_user(session.user or "", keep=session)
    flash(session, f"Signed out {count} other session(s).")
    return redirect("/devices")


async def logout(request: Request) -> Response:
    if await _checked_form(request) is None:
        return _csrf_failed()
    await sw.logout(request)
    return redirect("/login")


# ----------------------------------------------------------------- step-up


async def reauth_page(request: Request) -> Response:
    if (refused := _needs_login(request)) is not None:
        return refused
    return render(request, sw.get_session(request), "reauth.html",
                  next=safe_next(request.query_params.get("next")))


async def reauth_submit(request: Request) -> Response:
    form = await _signed_in_form(request)
    if isinstance(form, Response):
        return form
    session, demo = sw.get_session(request), _demo(request)
    user = session.user or ""
    key = demo.throttle.key_for(user=user.lower(), ip=_client_ip(request))
    target = safe_next(form.get("next"))
    if await asyncio.to_thread(demo.throttle.check, key) > 0:
        return render(request, session, "reauth.html", status=429, next=target,
                      error="Too many failed attempts. Wait a little and try again.")
    if not await asyncio.to_thread(demo.db.verify, user, form.get("password", "")):
        await asyncio.to_thread(demo.throttle.hit, key)
        return render(request, session, "reauth.html", status=401, next=target,
                      error="That password is not right.")
    await asyncio.to_thread(demo.throttle.reset, key)
    await sw.elevate(request, STEP_UP)
    return redirect(target)


async def password_page(request: Request) -> Response:
    if (refused := _needs_login(request)) is not None:
        return refused
    session, demo = sw.get_session(request), _demo(request)
    try:
        demo.manager.require_recent_auth(session, STEP_UP)
    except ReauthenticationRequired:
        return redirect("/reauth?next=/password")
    return render(request, session, "password.html")


async def password_submit(request: Request) -> Response:
    form = await _signed_in_form(request)
    if isinstance(form, Response):
        return form
    session, demo = sw.get_session(request), _demo(request)
    try:
        demo.manager.require_recent_auth(session, STEP_UP)
    except ReauthenticationRequired:
        return redirect("/reauth?next=/password")
    new, confirm = form.get("password", ""), form.get("confirm", "")
    error = _signup_error(session.user or "", new, confirm)
    if error is not None:
        return render(request, session, "password.html", status=400, error=error)
    user = session.user or ""
    await asyncio.to_thread(demo.db.set_password, user, new)
    await asyncio.to_thread(demo.db.add_event, user, "password_changed",
                            client=_client_ip(request))
    count = await demo.manager.revoke_user(user, keep=session)
    await sw.rotate(request)
    flash(session, f"Password changed. {count} other session(s) signed out.")
    return redirect("/account")


async def events_page(request: Request) -> Response:
    if (refused := _needs_login(request)) is not None:
        return refused
    session, demo = sw.get_session(request), _demo(request)
    rows = await asyncio.to_thread(demo.db.events_of, session.user or "")
    return render(request, session, "events.html", events=rows, refresh=5)


async def ping(request: Request) -> Response:
    """A tiny JSON endpoint for scripts (never returns the session ID)."""
    session = sw.get_session(request)
    return JSONResponse({"ok": True, "user": session.user})


ROUTES = [
    Route("/", index),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/signup", signup_page, methods=["GET"]),
    Route("/signup", signup_submit, methods=["POST"]),
    Route("/account", account),
    Route("/devices", devices),
    Route("/devices/revoke", revoke_device, methods=["POST"]),
    Route("/devices/others", revoke_others, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/reauth", reauth_page, methods=["GET"]),
    Route("/reauth", reauth_submit, methods=["POST"]),
    Route("/password", password_page, methods=["GET"]),
    Route("/password", password_submit, methods=["POST"]),
    Route("/events", events_page),
    Route("/api/ping", ping),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


def build_app(demo: Demo) -> Starlette:
    """The Starlette app over ``demo`` (session middleware installed)."""
    app = Starlette(routes=ROUTES,
                    middleware=[Middleware(sw.SessionMiddleware, manager=demo.manager)])
    app.state.demo = demo
    return app
