"""Stateless CSRF for the anonymous forms (sign-in, sign-up): nothing stored server-side.

Creating a session just to hold a CSRF token would store a record for every
anonymous visitor (T-15, ASVS 5.0 7.6.2).  The anonymous forms instead use a
*signed double-submit* token:

- a random nonce (32 bytes) lives in a short-lived cookie of its own
  (``__Host-csrf`` over https; ``csrf`` in the demo's development mode),
  ``HttpOnly; SameSite=Strict; Path=/``, ``Max-Age`` = :data:`LIFETIME`;
- the form carries ``<issued>.<mac>``, where ``mac`` is HMAC-SHA-256 over
  the nonce and the issue time under a key of the demo's own (``csrf.key``
  in the data directory, never a session key);
- a POST is accepted only when the cookie's nonce, the issue time (at most
  :data:`LIFETIME` old) and the MAC all match, compared in constant time.

A forged form cannot carry a valid MAC without the key, and a token lifted
from another browser is bound to that browser's nonce.  Signed-in forms keep
the session-bound token (:func:`sessionward.demo.web.csrf_token`).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass

from starlette.responses import Response

from ..core.keys import Key

LIFETIME = 2 * 3600
"""Seconds a nonce cookie and the tokens bound to it stay valid."""
CLOCK_SKEW = 60
_LABEL = b"sessionward-demo/anonymous-csrf/v1"
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_TOKEN_RE = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AnonymousCsrf:
    """Issues and checks signed double-submit tokens.

    Attributes:
        key: the demo's CSRF key (from its own key file).
        secure: https deployment (``__Host-csrf`` with ``Secure``) or dev mode.
    """

    key: Key
    secure: bool = True

    @property
    def cookie_name(self) -> str:
        """``__Host-csrf`` over https, ``csrf`` in development mode."""
        return "__Host-csrf" if self.secure else "csrf"

    def _mac(self, nonce: str, issued: int) -> str:
        purpose = self.key.derive("token")
        return _b64(self.key.mac(purpose, _LABEL, nonce.encode(), str(issued).encode()))

    def nonce(self, cookie: str | None) -> str:
        """The browser's nonce if well-formed, else a fresh one."""
        if cookie is not None and _NONCE_RE.fullmatch(cookie):
            return cookie
        return _b64(secrets.token_bytes(32))

    def token(self, nonce: str, now: float) -> str:
        """The form token for ``nonce`` issued at ``now``."""
        issued = int(now)
        return f"{issued}.{self._mac(nonce, issued)}"

    def verify(self, cookie: str | None, token: str, now: float) -> bool:
        """True when ``token`` was issued for the cookie's nonce within LIFETIME."""
        found = _TOKEN_RE.fullmatch(token)
        if cookie is None or found is None or not _NONCE_RE.fullmatch(cookie):
            return False
        issued = int(found.group(1))
        if not now - LIFETIME <= issued <= now + CLOCK_SKEW:
            return False
        expected = self._mac(cookie, issued)
        return hmac.compare_digest(expected.encode(), found.group(2).encode())

    def set_cookie(self, response: Response, nonce: str) -> None:
        """Attach the nonce cookie (HttpOnly, SameSite=Strict, short-lived)."""
        response.set_cookie(self.cookie_name, nonce, max_age=LIFETIME, path="/",
                            secure=self.secure, httponly=True, samesite="strict")
