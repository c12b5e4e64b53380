"""Cookies and HTTP behaviour: the one tested place every integration uses.

Everything an integration needs to speak HTTP about a session lives here as
pure functions (no I/O, no framework imports):

- :func:`set_cookie_header` / :func:`delete_cookie_header` build the exact
  ``Set-Cookie`` values (T-09, T-04): by default ``__Host-session`` with
  ``Secure; HttpOnly; SameSite=Lax; Path=/``, no ``Domain``, no ``Max-Age``;
- :func:`read_session_cookie` is the hardened ``Cookie`` parser (T-23): the
  session cookie is found only under its exact byte name; two of them fail
  closed; nameless, quoted, mangled and case-variant names never match.  The
  ID is never read from a URL, a query string or a form (T-10);
- :func:`session_headers` decides, from what a request did with its
  session, which headers the response carries: the cookie (or its deletion
  plus ``Clear-Site-Data``), and ``Vary: Cookie`` + ``Cache-Control:
  no-store`` on every response that read or set the session (T-11);
- :func:`merge_headers` folds those into a framework's header list;
- :func:`transport_allowed` confines ``unsafe_dev_http`` to loopback;
- :data:`STORE_DOWN_STATUS` and :func:`store_down_headers` describe the 503
  every integration sends when the store is down — never a logout, never a
  new cookie;
- :data:`THROTTLED_STATUS` and :func:`throttled_headers` describe the 429 an
  integration with a flood guard sends to a locked-out address (T-16).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.client import ClientInfo
from ..core.config import SameSite, Settings
from ..core.net import is_loopback_host

if TYPE_CHECKING:
    from ..lifecycle.session import Session

PAST_EXPIRES = "Thu, 01 Jan 1970 00:00:00 GMT"
STORE_DOWN_STATUS = 503
STORE_DOWN_BODY = b"Service temporarily unavailable: the session store cannot be reached.\n"
DEV_HTTP_REFUSED_BODY = (
    b"sessionward: unsafe_dev_http serves session cookies over plain http to localhost only.\n"
)
THROTTLED_STATUS = 429
THROTTLED_BODY = b"Too many requests with invalid session cookies from this address.\n"
MAX_RETRY_AFTER = 86400
_SAME_SITE_TOKENS: dict[SameSite, str] = {"lax": "Lax", "strict": "Strict", "none": "None"}
MAX_UA_HEADER = 512


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    """How the session cookie looks on the wire (derived from :class:`Settings`).

    Attributes:
        name: exact cookie name (default ``__Host-session``).
        secure: send ``Secure`` (off only with ``dev_http``).
        http_only: send ``HttpOnly``.
        same_site: ``lax``, ``strict`` or ``none`` (always sent explicitly).
        path: the ``Path`` attribute.
        domain: the ``Domain`` attribute, or ``None`` (host-only, the default).
        max_age: persistent-cookie lifetime in seconds, or ``None`` (a
            browser-session cookie, the default).
        partitioned: send ``Partitioned`` (CHIPS).
        clear_site_data: send ``Clear-Site-Data: "cookies"`` on logout.
        dev_http: ``unsafe_dev_http`` is on (plain http, loopback only).
    """

    name: str = "__Host-session"
    secure: bool = True
    http_only: bool = True
    same_site: SameSite = "lax"
    path: str = "/"
    domain: str | None = None
    max_age: int | None = None
    partitioned: bool = False
    clear_site_data: bool = True
    dev_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> CookiePolicy:
        """The policy of validated ``settings`` (validation lives in Settings)."""
        max_age = settings.cookie_max_age
        return cls(
            name=settings.cookie_name,
            secure=settings.cookie_secure,
            http_only=settings.cookie_http_only,
            same_site=settings.cookie_same_site,
            path=settings.cookie_path,
            domain=settings.cookie_domain,
            max_age=int(max_age.total_seconds()) if max_age is not None else None,
            partitioned=settings.cookie_partitioned,
            clear_site_data=settings.clear_site_data,
            dev_http=settings.unsafe_dev_http,
        )


# ------------------------------------------------------------ Set-Cookie


def _attributes(policy: CookiePolicy) -> list[str]:
    parts = [f"Path={policy.path}"]
    if policy.domain is not None:
        parts.append(f"Domain={policy.domain}")
    if policy.secure:
        parts.append("Secure")
    if policy.http_only:
        parts.append("HttpOnly")
    parts.append(f"SameSite={_SAME_SITE_TOKENS[policy.same_site]}")
    if policy.partitioned:
        parts.append("Partitioned")
    return parts


def _check_value(value: str) -> str:
    if not value or not all(c.isalnum() or c in "-_." for c in value) or not value.isascii():
        raise ValueError("a session cookie value must be a non-empty [A-Za-z0-9._-] string")
    return value


def set_cookie_header(policy: CookiePolicy, value: str, *,
                      max_age: int | None = None) -> str:
    """The ``Set-Cookie`` value that hands ``value`` to the browser.

    Args:
        policy: the cookie policy.
        value: ``Session.cookie_value`` (the bearer secret).
        max_age: seconds, capping ``policy.max_age`` (e.g. the session's
            remaining absolute lifetime); ignored without ``policy.max_age``.

    Returns:
        e.g. ``__Host-session=<v>; Path=/; Secure; HttpOnly; SameSite=Lax``.

    Raises:
        ValueError: ``value`` is empty or has characters a cookie cannot carry.
    """
    parts = [f"{policy.name}={_check_value(value)}", *_attributes(policy)]
    if policy.max_age is not None:
        lifetime = policy.max_age if max_age is None else min(policy.max_age, max_age)
        parts.insert(1, f"Max-Age={max(lifetime, 0)}")
    return "; ".join(parts)


def delete_cookie_header(policy: CookiePolicy) -> str:
    """The ``Set-Cookie`` value that deletes the session cookie (T-04).

    Same name, Path, Domain and Secure flag as the cookie it replaces, an
    empty value, ``Max-Age=0`` and a past ``Expires``.

    Returns:
        e.g. ``__Host-session=; Max-Age=0; Expires=Thu, 01 Jan 1970 ...; Path=/; Secure; ...``.
    """
    parts = [f"{policy.name}=", "Max-Age=0", f"Expires={PAST_EXPIRES}", *_attributes(policy)]
    return "; ".join(parts)


# ---------------------------------------------------------------- parsing


def read_session_cookie(cookie_headers: Iterable[str], name: str) -> str | None:
    """The session cookie's value from raw ``Cookie`` header values, or ``None``.

    Security (T-23): a pair counts only when the text before its first
    ``=`` equals ``name`` byte for byte (after the separator's optional
    whitespace) — so ``=__Host-session=x``, ``"__Host-session"=x``,
    ``..Host-session=x``, ``_[Host-session=x`` and ``__host-session=x`` never
    match.  Two or more pairs with the name fail closed (``None``): a
    sibling-domain or script-planted duplicate cannot pick the session.
    Values are returned verbatim (never unquoted); the manager rejects
    anything that is not a well-formed, MAC-valid value.

    Args:
        cookie_headers: every ``Cookie`` header of the request (HTTP/2 may
            split one into several).
        name: the exact cookie name.

    Returns:
        the single value, or ``None`` when absent, empty or duplicated.
    """
    found: list[str] = []
    for header in cookie_headers:
        for pair in header.split(";"):
            key, sep, value = pair.strip(" \t").partition("=")
            if sep and key == name:
                found.append(value.strip(" \t"))
    if len(found) != 1 or not found[0]:
        return None
    return found[0]


def has_session_cookie(cookie_headers: Iterable[str], name: str) -> bool:
    """True when any pair is named exactly ``name`` (even if it fails closed).

    Used to decide whether the response depends on the cookie (``Vary``).
    """
    return any(
        pair.strip(" \t").partition("=")[0] == name
        for header in cookie_headers for pair in header.split(";")
    )


# ------------------------------------------------------- response headers


def cache_headers() -> list[tuple[str, str]]:
    """``Vary: Cookie`` and ``Cache-Control: no-store`` (T-11)."""
    return [("Vary", "Cookie"), ("Cache-Control", "no-store")]


def session_headers(policy: CookiePolicy, session: Session | None, *, cookie_sent: bool,
                    now: float | None = None) -> list[tuple[str, str]]:
    """Headers a response must carry after the request used ``session``.

    Args:
        policy: the cookie policy.
        session: the request's session (``None`` if none was opened).
        cookie_sent: treat the response as depending on the session because
            the request carried its cookie (plain ASGI/WSGI, where the app may
            read the session without marking it accessed); Flask, Starlette
            and Django pass ``False``: their accessors mark it accessed.
        now: the manager's clock, to cap a persistent cookie's ``Max-Age``
            at the remaining absolute lifetime.

    Returns:
        ``(name, value)`` pairs: ``Set-Cookie`` (new, rotated or forwarded
        ID) or the deletion cookie plus ``Clear-Site-Data`` (ended), then
        ``Vary``/``Cache-Control`` whenever a cookie is sent, the session was
        accessed (read, written or obtained — a bare ``in`` counts) or
        ``cookie_sent`` — so refresh-only and membership-test-only paths are
        covered, and a response that never touched the session (a static
        file) keeps its own caching headers.
    """
    headers: list[tuple[str, str]] = []
    if session is not None and session.ended:
        headers.append(("Set-Cookie", delete_cookie_header(policy)))
        if policy.clear_site_data:
            headers.append(("Clear-Site-Data", '"cookies"'))
    elif session is not None and session.cookie_changed and session.cookie_value:
        remaining = None
        if now is not None:
            remaining = int(session.meta.absolute - now)
        headers.append(("Set-Cookie",
                        set_cookie_header(policy, session.cookie_value, max_age=remaining)))
    touched = session is not None and session.accessed
    if headers or cookie_sent or touched:
        headers.extend(cache_headers())
    return headers


def merge_headers(existing: Sequence[tuple[str, str]],
                  additions: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Fold ``additions`` (from :func:`session_headers`) into ``existing``.

    ``Vary`` values are merged (``Cookie`` added once); ``Cache-Control`` is
    *replaced* by ``no-store`` — an app's ``public, max-age=...`` on a
    session response is exactly the leak T-11 prevents.  Other headers are
    appended.

    Returns:
        a new header list (names keep their original spelling).
    """
    adding = {name.lower() for name, _ in additions}
    out: list[tuple[str, str]] = []
    vary: list[str] = []
    for name, value in existing:
        low = name.lower()
        if low == "vary" and "vary" in adding:
            vary.extend(v.strip() for v in value.split(",") if v.strip())
        elif low == "cache-control" and "cache-control" in adding:
            continue
        else:
            out.append((name, value))
    for name, value in additions:
        if name.lower() == "vary":
            if value.lower() not in {v.lower() for v in vary}:
                vary.append(value)
            out.append(("Vary", ", ".join(vary)))
        else:
            out.append((name, value))
    return out


def store_down_headers() -> list[tuple[str, str]]:
    """Headers of the 503 sent when the store is down (no ``Set-Cookie``)."""
    return [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "5"),
            *cache_headers()]


def retry_after_value(seconds: float) -> str:
    """``Retry-After`` delta-seconds for a wait of ``seconds``: rounded up, 1..86400."""
    if not math.isfinite(seconds):
        return str(MAX_RETRY_AFTER)
    return str(min(MAX_RETRY_AFTER, max(1, math.ceil(seconds))))


def throttled_headers(retry_after: float) -> list[tuple[str, str]]:
    """Headers of the 429 for a locked-out address (no ``Set-Cookie``, not cacheable)."""
    return [("Content-Type", "text/plain; charset=utf-8"),
            ("Retry-After", retry_after_value(retry_after)), *cache_headers()]


# ------------------------------------------------------------- transport


def transport_allowed(policy: CookiePolicy, *, scheme: str, host: str | None,
                      client_ip: str | None) -> bool:
    """Whether this request may carry the session at all.

    With ``unsafe_dev_http`` the cookie has no ``Secure`` flag, so it is
    confined to a loopback client talking to a loopback host name; anything
    else is refused rather than leaking a cookie over a real network.
    Without it, ``Secure`` already keeps the cookie off plain http.
    """
    if not policy.dev_http or scheme in ("https", "wss"):
        return True
    return is_loopback_host(host) and is_loopback_host(client_ip)


def client_info(ip: str | None, user_agent: str | None,
                correlation_id: str | None = None) -> ClientInfo:
    """A :class:`ClientInfo` from request values (the User-Agent is truncated)."""
    ua = user_agent[:MAX_UA_HEADER] if user_agent else None
    return ClientInfo(ip=ip, user_agent=ua, correlation_id=correlation_id)
