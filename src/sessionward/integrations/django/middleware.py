"""``SessionGuardMiddleware``: put it right before Django's ``SessionMiddleware``.

Django's cookie parser is lenient (last duplicate wins, values unquoted), so
the guard re-reads the raw ``Cookie`` header with sessionward's hardened
parser (T-23) and fixes ``request.COOKIES`` before Django sees it.  On the way
out it owns the session cookie, built from sessionward's settings and the
project's own ``SESSION_COOKIE_*`` settings (honoured, or refused when the
guard is built — at start-up — with the reason; see
:mod:`sessionward.integrations.django.cookie`): the new, rotated or renewed
cookie whenever sessionward or Django's middleware would send one, the
deletion cookie plus ``Clear-Site-Data`` on logout, ``Vary: Cookie`` +
``Cache-Control: no-store`` whenever the session was accessed or a cookie
is sent (T-11), and 503 when the store is down.

With ``SESSIONWARD_FLOOD_GUARD`` set (opt-in), an address locked out for
presenting too many rejected cookies gets 429 with ``Retry-After`` before
Django's ``SessionMiddleware`` runs (no session work, no cookie).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
)
from django.utils.cache import patch_vary_headers

from ...core.client import ClientInfo
from ...core.errors import StoreError
from ...lifecycle.manager import SessionManager
from ...lifecycle.session import Session
from .. import cookies
from .._flood import blocked_for
from . import cookie
from .backend import SessionStore, current_client, current_settings, get_guard, get_manager

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
        self._policy: tuple[Any, cookies.CookiePolicy] | None = None
        cookie.cookie_policy(current_settings())  # refuse a bad cookie configuration now

    def policy(self) -> cookies.CookiePolicy:
        """The cookie policy for the current manager and Django settings.

        Raises:
            ConfigurationError: a ``SESSION_COOKIE_*`` setting sessionward refuses.
        """
        mgr = get_manager()
        key = (id(mgr), mgr.settings, cookie.policy_key())
        if self._policy is None or self._policy[0] != key:
            self._policy = (key, cookie.cookie_policy(mgr.settings))
        return self._policy[1]

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        mgr = get_manager()
        policy = self.policy()
        meta = request.META
        if not cookies.transport_allowed(policy, scheme=request.scheme or "http",
                                         host=meta.get("HTTP_HOST"),
                                         client_ip=meta.get("REMOTE_ADDR")):
            return HttpResponse(cookies.DEV_HTTP_REFUSED_BODY, status=403)
        raw = [meta.get("HTTP_COOKIE", "")]
        name = policy.name
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
        return self._finish(request, response, policy, mgr)

    def process_exception(self, request: HttpRequest,
                          exception: Exception) -> HttpResponse | None:
        """A StoreError raised in a view becomes 503, never a 500 or a logout."""
        return store_down_response() if isinstance(exception, StoreError) else None

    def _finish(self, request: HttpRequest, response: HttpResponseBase,
                policy: cookies.CookiePolicy, mgr: SessionManager) -> HttpResponseBase:
        store = getattr(request, "session", None)
        if not isinstance(store, SessionStore):
            return response
        if store.sw_store_down:
            return store_down_response()
        accessed = store.accessed  # before the guard's own reads below
        django_cookie = response.cookies.pop(policy.name, None)
        session = _reported(store)
        sent = False
        if session is not None and session.ended:
            _delete_cookie(response, policy)
            if policy.clear_site_data:
                response.headers["Clear-Site-Data"] = '"cookies"'
            sent = True
        elif session is not None and session.cookie_value and (
                session.cookie_changed or (django_cookie is not None and django_cookie.value)):
            # sessionward issued an ID, or Django's middleware renewed the cookie
            # (modified, SESSION_SAVE_EVERY_REQUEST): send ours, with our attributes.
            _set_cookie(response, policy, session.cookie_value,
                        _max_age(store, session, policy, mgr.clock()))
            sent = True
        # Django's deletion of a cookie it could not use (forged, expired) is dropped:
        # strict mode answers an invalid cookie with no Set-Cookie at all.
        if sent or accessed:
            patch_vary_headers(response, ("Cookie",))
            response.headers["Cache-Control"] = "no-store"
        return response


def _max_age(store: SessionStore, session: Session, policy: cookies.CookiePolicy,
             now: float) -> int | None:
    """``Max-Age``: sessionward's ``cookie_max_age``, else Django's rule
    (none when the session expires at browser close), never past the absolute expiry."""
    left = max(0, int(session.meta.absolute - now))
    if policy.max_age is not None:
        return min(policy.max_age, left)
    if store.get_expire_at_browser_close():
        return None
    return max(0, min(store.get_expiry_age(), left))


def _set_cookie(response: HttpResponseBase, policy: cookies.CookiePolicy, value: str,
                max_age: int | None) -> None:
    response.set_cookie(policy.name, value, max_age=max_age, path=policy.path,
                        domain=policy.domain, secure=policy.secure,
                        httponly=policy.http_only, samesite=policy.same_site.capitalize())


def _delete_cookie(response: HttpResponseBase, policy: cookies.CookiePolicy) -> None:
    # The exact deletion cookie (an empty value: Django's morsel would send ``""``).
    response.headers["Set-Cookie"] = cookies.delete_cookie_header(policy)


def _reported(store: SessionStore) -> Session | None:
    current = store.sw_current
    if current is not None and current.cookie_changed and current.cookie_value:
        return current
    return store.sw_ended if store.sw_ended is not None else current
