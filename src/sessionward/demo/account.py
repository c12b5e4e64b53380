"""The signed-in pages: account, "your devices", password change, security events.

- "Your devices" lists :meth:`~sessionward.SessionManager.sessions_of`
  (metadata only, never IDs): this device first, then by last activity, so
  the order is the same on every load.
- Signing out one device (:meth:`~sessionward.SessionManager.revoke_device`),
  signing out everywhere else (:meth:`~sessionward.SessionManager.revoke_user`
  with ``keep=``) and changing the password all need a password entered in
  the last 5 minutes (step-up): the same rule for all three.
- Each sign-out is recorded naming the devices it ended.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.errors import ReauthenticationRequired
from ..integrations import starlette as sw
from ..lifecycle.inventory import SessionInfo
from ..lifecycle.session import Session
from .auth import checked_form, csrf_failed, needs_login, signup_error
from .db import REQUEST_DEVICE
from .state import STEP_UP, client_ip, demo_of
from .texts import device_list, plural
from .web import flash, redirect, render


def device_order(rows: list[SessionInfo]) -> list[SessionInfo]:
    """This device first, then the most recently active; ties by creation and handle."""
    return sorted(rows, key=lambda r: (not r.current, -r.last_seen, -r.created, r.handle))


def _label(row: SessionInfo) -> str:
    return f"{row.device} ({row.ip})" if row.ip else row.device


async def _signed_in_form(request: Request, back: str) -> dict[str, str] | Response:
    """The CSRF-checked form of a signed-in user, or the response refusing it."""
    if (refused := needs_login(request)) is not None:
        return refused
    form = await checked_form(request)
    return csrf_failed(request, back) if form is None else form


def _stepped_up(request: Request, session: Session, why: str, back: str) -> Response | None:
    """None inside the step-up window; else the redirect to confirm the password."""
    try:
        demo_of(request).manager.require_recent_auth(session, STEP_UP)
    except ReauthenticationRequired:
        flash(session, why)
        return redirect(f"/reauth?next={back}")
    return None


async def account(request: Request) -> Response:
    if (refused := needs_login(request)) is not None:
        return refused
    session, demo = sw.get_session(request), demo_of(request)
    events = await asyncio.to_thread(demo.db.events_of, session.user or "", 5)
    return render(request, session, "account.html", events=events,
                  elevated=demo.manager.is_elevated(session))


async def devices(request: Request) -> Response:
    if (refused := needs_login(request)) is not None:
        return refused
    session, demo = sw.get_session(request), demo_of(request)
    rows = await demo.manager.sessions_of(session.user or "", current=session)
    return render(request, session, "devices.html", devices=device_order(rows),
                  elevated=demo.manager.is_elevated(session))


async def revoke_device(request: Request) -> Response:
    form = await _signed_in_form(request, "/devices")
    if isinstance(form, Response):
        return form
    session, demo = sw.get_session(request), demo_of(request)
    if (refused := _stepped_up(request, session, "Confirm your password to sign out another "
                               "device.", "/devices")) is not None:
        return refused
    handle, user = form.get("handle", ""), session.user or ""
    rows = {r.handle: r for r in await demo.manager.sessions_of(user, current=session)}
    try:
        done = await demo.manager.revoke_device(session, handle, max_auth_age=STEP_UP)
    except ReauthenticationRequired:  # the 5 minutes ran out since the check above
        flash(session, "Confirm your password to sign out another device.")
        return redirect("/reauth?next=/devices")
    if done and handle in rows:
        await asyncio.to_thread(demo.db.add_event, user, "device_signed_out",
                                detail=f"{_label(rows[handle])}, from {REQUEST_DEVICE.get()}",
                                client=client_ip(request))
    flash(session, f"{rows[handle].device} is signed out." if done and handle in rows
          else "That device was already signed out.")
    return redirect("/devices")


async def revoke_others(request: Request) -> Response:
    form = await _signed_in_form(request, "/devices")
    if isinstance(form, Response):
        return form
    session = sw.get_session(request)
    if (refused := _stepped_up(request, session, "Confirm your password to sign out your "
                               "other devices.", "/devices")) is not None:
        return refused
    count = await _sign_out_others(request, session, "others_signed_out")
    flash(session, f"Signed out {plural(count, 'other device')}." if count
          else "No other device was signed in.")
    return redirect("/devices")


async def _sign_out_others(request: Request, session: Session, event: str) -> int:
    """End every other session of the user; record which devices went."""
    demo, user = demo_of(request), session.user or ""
    others = [r for r in await demo.manager.sessions_of(user, current=session) if not r.current]
    count = await demo.manager.revoke_user(user, keep=session)
    if others:
        await asyncio.to_thread(
            demo.db.add_event, user, event, client=client_ip(request),
            detail=f"{plural(count, 'device')}: {device_list([_label(r) for r in others])}")
    return count


async def password_page(request: Request) -> Response:
    if (refused := needs_login(request)) is not None:
        return refused
    session = sw.get_session(request)
    if (refused := _stepped_up(request, session, "Confirm your current password first.",
                               "/password")) is not None:
        return refused
    return render(request, session, "password.html")


async def password_submit(request: Request) -> Response:
    form = await _signed_in_form(request, "/password")
    if isinstance(form, Response):
        return form
    session, demo = sw.get_session(request), demo_of(request)
    if (refused := _stepped_up(request, session, "Confirm your current password first.",
                               "/password")) is not None:
        return refused
    new, confirm = form.get("password", ""), form.get("confirm", "")
    error = signup_error(session.user or "", new, confirm)
    if error is not None:
        return render(request, session, "password.html", status=400, error=error)
    user = session.user or ""
    await asyncio.to_thread(demo.db.set_password, user, new)
    await asyncio.to_thread(demo.db.add_event, user, "password_changed",
                            detail=REQUEST_DEVICE.get(), client=client_ip(request))
    count = await _sign_out_others(request, session, "others_signed_out")
    await sw.rotate(request)
    flash(session, f"Password changed. {plural(count, 'other device')} signed out."
          if count else "Password changed.")
    return redirect("/account")


async def events_page(request: Request) -> Response:
    if (refused := needs_login(request)) is not None:
        return refused
    session, demo = sw.get_session(request), demo_of(request)
    rows = await asyncio.to_thread(demo.db.events_of, session.user or "")
    return render(request, session, "events.html", events=rows, refresh=5)


async def ping(request: Request) -> Response:
    """A tiny JSON endpoint for scripts (never returns the session ID)."""
    session = sw.get_session(request)
    return JSONResponse({"ok": True, "user": session.user})
