"""Rendering, forms and CSRF for the demo (small helpers, no routes).

Every page is server-rendered by Jinja2 with autoescaping on, so anything a
user typed is escaped.  Every signed-in POST form carries a per-session CSRF
token that is checked in constant time (:func:`csrf_ok`); the anonymous forms
use the stateless token of :mod:`sessionward.demo.csrf` (passed as ``csrf=``
to :func:`render`), so an anonymous visit stores nothing.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from ..lifecycle.session import Session

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 16 * 1024
CSRF_KEY = "csrf"
FLASH_KEY = "flash"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def when(ts: float | None) -> str:
    """A POSIX time as ``2026-05-01 12:00:00 UTC`` (or an em dash)."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["when"] = when


def csrf_token(session: Session) -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def new_csrf_token(session: Session) -> None:
    """Replace the token (after login: never reuse a pre-login token)."""
    session[CSRF_KEY] = secrets.token_urlsafe(32)


def csrf_ok(session: Session, form: dict[str, str]) -> bool:
    """The form's token equals the session's (constant-time comparison)."""
    expected = session.get(CSRF_KEY)
    given = form.get(CSRF_KEY, "")
    if not isinstance(expected, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body as ``{name: first value}`` (bounded size).

    Returns:
        the fields, or ``{}`` for oversized or non-form bodies.
    """
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=20)
    return {k: v[0] for k, v in fields.items() if v}


def flash(session: Session, message: str, kind: str = "info") -> None:
    """Queue a one-time message for the next page."""
    session[FLASH_KEY] = {"message": message, "kind": kind}


def render(request: Request, session: Session | None, template: str, *, status: int = 200,
           csrf: str | None = None, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """Render ``template`` with the common context (user, CSRF token, flash).

    Args:
        request: the request.
        session: its session (never written unless it has a flash or needs a
            token); ``None`` where no session could be loaded (store down).
        template: the template name.
        status: the HTTP status.
        csrf: the form token; by default the session-bound one (created on
            first use, which stores the session).
        headers: extra response headers (``Retry-After``).
        **context: template variables.
    """
    note = token = None
    if session is not None:
        note = session.pop(FLASH_KEY, None) if FLASH_KEY in session else None
        token = csrf if csrf is not None else csrf_token(session)
    page = _env.get_template(template).render(
        user=session.user if session is not None else None, csrf=token, flash=note,
        path=request.url.path, **context)
    return HTMLResponse(page, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def error_page(request: Request, session: Session | None, status: int, title: str,
               message: str, *, back: str = "/", back_label: str = "Back to the start page",
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """A styled error page (403, 404, 405, 429, 503) with a link back.

    ``session`` gives the header its user; pass ``None`` when none loaded.
    It is never written here (no CSRF token is created for an error page).
    """
    csrf = "" if session is None or not isinstance(session.get(CSRF_KEY), str) \
        else str(session[CSRF_KEY])
    return render(request, session, "error.html", status=status, csrf=csrf, headers=headers,
                  title=title, message=message, status_code=status, back=safe_next(back, "/"),
                  back_label=back_label)


def redirect(path: str) -> RedirectResponse:
    """303 to a local path."""
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def safe_next(value: str | None, default: str = "/account") -> str:
    """Only local absolute paths are valid redirect targets (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default
