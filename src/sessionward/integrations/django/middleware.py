"""``SessionGuardMiddleware``: put it right before Django's ``SessionMiddleware``.

Django's cookie parser is lenient (last duplicate wins, values unquoted), so
the guard re-reads the raw ``Cookie`` header with sessionward's hardened
parser (T-23) and fixes ``request.COOKIES`` before Django sees it.  On the way
out it owns the session cookie: the exact ``Set-Cookie`` or deletion cookie
from :mod:`sessionward.integrations.cookies`, ``Clear-Site-Data`` on logout, ``Vary:
Cookie`` + ``Cache-Control: no-store`` (T-11), and 503 when the store is down.

With ``SESSIONWARD_FLOOD_GUARD`` set (opt-in), an address locked out for
presenting too many rejected cookies gets 429 with ``Retry-After`` before
Django's ``SessionMiddleware`` runs (no session work, no cookie).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
)
from django.utils.cache import patch_vary_headers

from ...core.client import ClientInfo
from ...core.errors import StoreError
from ...lifecycle.session import Session
from .. import cookies
from .._flood import blocked_for
from .backend import SessionStore, current_client, get_guard, get_manager

Handler = Callable[[HttpRequest], HttpResponseBase]


def store_down_response() -> HttpResponse:
    """The 503 for a store outage (no cookie)."""
    response = HttpResponse(cookies.STORE_DOWN_BODY, status=cookies.STORE_DOWN_STATUS)
    for name, value in cookies.store_down_headers():
        response.headers[name] = value
    return response


def throttled_response(retry_after: float) -> HttpResponse:
    """The 429 for an address locked out by the flood guard (no cookie)."""
    response = HttpResponse(cookies.THROTTLED_BODY, status=cookies.THROTTLED_STATUS)
    for name, value in cookies.throttled_headers(retry_after):
        response.headers[name] = value
    return response


def _flood_response(raw: list[str], name: str, client: ClientInfo) -> HttpResponse | None:
    """429 (locked out) or 503 (store down) before any session work, else ``None``."""
    try:
        wait = blocked_for(get_guard(), client,
                           cookie_sent=cookies.has_session_cookie(raw, name))
    except StoreError:
        return store_down_response()
    return throttled_response(wait) if wait > 0 else None


class SessionGuardMiddleware:
    """Hardened cookie parsing and session response headers for Django."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        mgr = get_manager()
        policy = cookies.CookiePolicy.from_settings(mgr.settings)
        meta = request.META
        if not cookies.transport_allowed(policy, scheme=request.scheme or "http",
                                         host=meta.get("HTTP_HOST"),
                                         client_ip=meta.get("REMOTE_ADDR")):
            return HttpResponse(cookies.DEV_HTTP_REFUSED_BODY, status=403)
        raw = [meta.get("HTTP_COOKIE", "")]
        name = mgr.settings.cookie_name
        client = cookies.client_info(meta.get("REMOTE_ADDR"), meta.get("HTTP_USER_AGENT"))
        refused = _flood_response(raw, name, client)
        if refused is not None:
            return refused
        value = cookies.read_session_cookie(raw, name)
        if value is None:
            request.COOKIES.pop(name, None)
        else:
            request.COOKIES[name] = value
        token = current_client.set(client)
        try:
            response = self.get_response(request)
        finally:
            current_client.reset(token)
        return self._finish(request, response, policy,
                            cookies.has_session_cookie(raw, name))

    def process_exception(self, request: HttpRequest,
                          exception: Exception) -> HttpResponse | None:
        """A StoreError raised in a view becomes 503, never a 500 or a logout."""
        return store_down_response() if isinstance(exception, StoreError) else None

    def _finish(self, request: HttpRequest, response: HttpResponseBase,
                policy: cookies.CookiePolicy, sent: bool) -> HttpResponseBase:
        store = getattr(request, "session", None)
        if not isinstance(store, SessionStore):
            return response
        if store.sw_store_down:
            return store_down_response()
        response.cookies.pop(policy.name, None)
        session = _reported(store)
        extra = cookies.session_headers(policy, session, cookie_sent=sent or store.accessed,
                                        now=get_manager().clock())
        for header, value in extra:
            if header == "Vary":
                patch_vary_headers(response, ("Cookie",))
            else:
                response.headers[header] = value
        return response


def _reported(store: SessionStore) -> Session | None:
    current = store.sw_current
    if current is not None and current.cookie_changed and current.cookie_value:
        return current
    return store.sw_ended if store.sw_ended is not None else current
