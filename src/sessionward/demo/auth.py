"""Sign-in, sign-up, step-up and sign-out: every password form, each one throttled.

- Sign-in and step-up share one :class:`~sessionward.guards.throttle_set.ThrottleSet`
  (``login``): a failure counts for the (user, address) pair, for the account
  from every address, and for the address across every account.  A locked
  attempt is refused before the password is checked, and not counted.  A
  correct password clears only its pair.
- Sign-up says when a name is taken (a user name must be unique and there is
  no e-mail round trip to hide it behind); each such answer counts against
  the address (``signup``), so probing for names is throttled (the trade-off
  is written down in ``docs/abuse.md``).
- Sign-in rotates the session ID (:func:`~sessionward.integrations.starlette.login`);
  the anonymous forms carry a stateless CSRF token (:mod:`sessionward.demo.csrf`),
  so an anonymous visit stores nothing.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from ..guards.throttle_set import Scope, ThrottleKeys, ThrottleSet
from ..integrations import starlette as sw
from .db import REQUEST_DEVICE
from .state import MIN_PASSWORD, STEP_UP, client_ip, demo_of, throttle_user
from .texts import NOTICES
from .web import (
    CSRF_KEY,
    csrf_ok,
    error_page,
    flash,
    new_csrf_token,
    read_form,
    redirect,
    render,
    safe_next,
)

_LOCKED: dict[Scope, str] = {
    "pair": "Too many failed attempts from this device.",
    "user": "This account is locked for a while after too many failed sign-ins.",
    "ip": "Too many failed sign-ins from your network.",
}


async def checked_form(request: Request) -> dict[str, str] | None:
    """The signed-in form if its CSRF token matches the session's."""
    form = await read_form(request)
    return form if csrf_ok(sw.get_session(request), form) else None


async def _checked_anonymous_form(request: Request) -> dict[str, str] | None:
    """The form if its stateless token matches this browser's nonce cookie."""
    form, csrf = await read_form(request), demo_of(request).csrf
    cookie = request.cookies.get(csrf.cookie_name)
    now = demo_of(request).manager.sync.clock()
    return form if csrf.verify(cookie, form.get(CSRF_KEY, ""), now) else None


def render_anonymous(request: Request, template: str, *, status: int = 200,
                     headers: dict[str, str] | None = None, **context: object) -> Response:
    """An anonymous form page: stateless CSRF token + nonce cookie, no session write."""
    csrf = demo_of(request).csrf
    nonce = csrf.nonce(request.cookies.get(csrf.cookie_name))
    token = csrf.token(nonce, demo_of(request).manager.sync.clock())
    response = render(request, sw.get_session(request), template, status=status, csrf=token,
                      headers=headers, **context)
    csrf.set_cookie(response, nonce)
    return response


def csrf_failed(request: Request, back: str) -> Response:
    """403: the form's token is missing, stale or not this site's."""
    return error_page(request, sw.get_session(request), 403, "This form has expired",
                      "The form was open too long, or it was not sent by this site. Nothing "
                      "was changed. Open the page again and resend it.",
                      back=back, back_label="Open the form again")


async def _locked(throttle: ThrottleSet, keys: ThrottleKeys) -> tuple[float, str] | None:
    """``(seconds, message)`` while any key is locked, else None."""
    status = await asyncio.to_thread(throttle.status, keys)
    left = max(status.values(), default=0.0)
    if left <= 0:
        return None
    scope = max(status, key=lambda s: status[s])
    return left, f"{_LOCKED[scope]} Try again in {int(left) + 1} seconds."


def _last_try(left: float) -> str:
    """The sentence added when this failure started a lockout."""
    return f" That was the last try for now: wait {int(left) + 1} seconds." if left > 0 else ""


def _retry_after(left: float) -> dict[str, str]:
    return {"Retry-After": str(int(left) + 1)}


# ---------------------------------------------------------------- sign-in


async def index(request: Request) -> Response:
    return redirect("/account" if sw.get_session(request).user else "/login")


async def login_page(request: Request) -> Response:
    if sw.get_session(request).user:
        return redirect("/account")
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return render_anonymous(request, "login.html", notice=notice,
                            next=safe_next(request.query_params.get("next")))


async def login_submit(request: Request) -> Response:
    session, demo = sw.get_session(request), demo_of(request)
    form = await _checked_anonymous_form(request)
    if form is None:
        return csrf_failed(request, "/login")
    username, password = form.get("username", "").strip(), form.get("password", "")
    target = safe_next(form.get("next"))
    keys = demo.login.keys_for(user=throttle_user(username), ip=client_ip(request) or None)
    if (locked := await _locked(demo.login, keys)) is not None:
        return render_anonymous(request, "login.html", status=429, username=username,
                                next=target, error=locked[1], headers=_retry_after(locked[0]))
    if not await asyncio.to_thread(demo.db.verify, username, password):
        left = await asyncio.to_thread(demo.login.hit, keys)
        if username:
            await asyncio.to_thread(demo.db.add_event, username, "login_failed",
                                    client=client_ip(request))
        return render_anonymous(request, "login.html", status=401, username=username,
                                next=target,
                                error="Wrong user name or password." + _last_try(left))
    await asyncio.to_thread(demo.login.reset, keys)
    await sw.login(request, username)
    new_csrf_token(session)
    return redirect(target)


async def logout(request: Request) -> Response:
    if await checked_form(request) is None:
        return csrf_failed(request, "/account")
    await sw.logout(request)
    return redirect("/login?notice=signed_out")


# ---------------------------------------------------------------- sign-up


async def signup_page(request: Request) -> Response:
    if sw.get_session(request).user:
        return redirect("/account")
    return render_anonymous(request, "signup.html")


async def signup_submit(request: Request) -> Response:
    session, demo = sw.get_session(request), demo_of(request)
    form = await _checked_anonymous_form(request)
    if form is None:
        return csrf_failed(request, "/signup")
    username, password = form.get("username", "").strip(), form.get("password", "")
    keys = demo.signup.keys_for(ip=client_ip(request) or "-")
    if (locked := await _locked(demo.signup, keys)) is not None:
        return render_anonymous(request, "signup.html", status=429, username=username,
                                error=f"Too many sign-up attempts from your network. Try again "
                                      f"in {int(locked[0]) + 1} seconds.",
                                headers=_retry_after(locked[0]))
    error = signup_error(username, password, form.get("confirm", ""))
    if error is None and not await asyncio.to_thread(demo.db.create_user, username, password):
        await asyncio.to_thread(demo.signup.hit, keys)
        error = "That user name is taken. Choose another one."
    if error is not None:
        return render_anonymous(request, "signup.html", status=400, username=username,
                                error=error)
    await asyncio.to_thread(demo.db.add_event, username, "signup", detail=REQUEST_DEVICE.get(),
                            client=client_ip(request))
    await sw.login(request, username)
    new_csrf_token(session)
    flash(session, "Welcome! Your account is ready.")
    return redirect("/account")


def signup_error(username: str, password: str, confirm: str) -> str | None:
    """Why a user name / password pair is refused, or None."""
    if not 3 <= len(username) <= 40 or not all(c.isalnum() or c in "._-" for c in username):
        return "User names are 3-40 letters, digits, '.', '_' or '-'."
    if len(password) < MIN_PASSWORD:
        return f"Passwords need at least {MIN_PASSWORD} characters."
    if password != confirm:
        return "The two passwords differ."
    return None


# ---------------------------------------------------------------- step-up


def needs_login(request: Request) -> Response | None:
    """None for a signed-in request; else the redirect to the sign-in page.

    A request that still carried a session cookie had its session ended
    elsewhere (another device, a password change, a timeout): the sign-in
    page then says so, and the stale cookie is dropped so it says it once.
    """
    session = sw.get_session(request)
    if session.user:
        return None
    settings = demo_of(request).manager.settings
    ended = request.cookies.get(settings.cookie_name) is not None
    notice = "ended" if ended else "signin"
    response = redirect(f"/login?notice={notice}&next={request.url.path}")
    if ended:
        response.delete_cookie(settings.cookie_name, path=settings.cookie_path,
                               secure=settings.cookie_secure, httponly=True, samesite="lax")
    return response


async def reauth_page(request: Request) -> Response:
    if (refused := needs_login(request)) is not None:
        return refused
    return render(request, sw.get_session(request), "reauth.html",
                  next=safe_next(request.query_params.get("next")))


async def reauth_submit(request: Request) -> Response:
    if (refused := needs_login(request)) is not None:
        return refused
    form = await checked_form(request)
    if form is None:
        return csrf_failed(request, "/account")
    session, demo = sw.get_session(request), demo_of(request)
    user = session.user or ""
    keys = demo.login.keys_for(user=throttle_user(user), ip=client_ip(request) or None)
    target = safe_next(form.get("next"))
    if (locked := await _locked(demo.login, keys)) is not None:
        return render(request, session, "reauth.html", status=429, next=target,
                      error=locked[1], headers=_retry_after(locked[0]))
    if not await asyncio.to_thread(demo.db.verify, user, form.get("password", "")):
        left = await asyncio.to_thread(demo.login.hit, keys)
        return render(request, session, "reauth.html", status=401, next=target,
                      error="That password is not right." + _last_try(left))
    await asyncio.to_thread(demo.login.reset, keys)
    await sw.elevate(request, STEP_UP)
    flash(session, "Password confirmed for 5 minutes.")
    return redirect(target)
