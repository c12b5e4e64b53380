"""Role tokens, and what a failed authentication costs.

Every request carries a token; :meth:`Authenticator.role_of` compares it in
constant time with *every* role's token (no early exit, so timing does not
tell which role came close).

Failures cost the failing *connection*, never an address (issue 15): over
loopback TCP every client is ``127.0.0.1``, so the per-address lockout of 1.0
let five wrong tokens lock the real app out for up to an hour.  Now:

- a connection that sends a wrong token is answered ``auth_failed`` after
  :data:`FAIL_DELAY` seconds and closed; nothing else it sent is read;
- at most :data:`MAX_PENDING_FAILURES` failed connections wait out their
  delay at once, daemon-wide; past that, a failing connection is closed at
  once without an answer — so failed attempts cost bounded memory, timers
  and audit lines whatever the attacker's rate;
- ``auth_failed`` audit events are written at most :data:`AUDIT_PER_SECOND`
  per second; the next written event carries the count it stands for
  (``suppressed``);
- a correct token is accepted at once, always: no state an attacker can
  fill makes the daemon refuse it.

What bounds guessing is the token itself (at least 32 characters of
``secrets.token_urlsafe``, about 192 bits or more), not a lockout.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from ..core.config import Secret

FAIL_DELAY = 0.5
"""Seconds before a failing connection gets its ``auth_failed`` and is closed."""
MAX_PENDING_FAILURES = 32
"""Failed connections waiting out :data:`FAIL_DELAY` at once, daemon-wide."""
AUDIT_PER_SECOND = 10
"""``auth_failed`` events written per second at most (the rest are counted)."""


class Authenticator:
    """Maps tokens to roles and keeps the failure budget.

    Args:
        tokens: role name → its token.
        monotonic: the clock of the audit rate limit (injectable for tests).
    """

    def __init__(self, tokens: Mapping[str, Secret],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._digests = {role: _digest(tok.reveal()) for role, tok in tokens.items()}
        self.generation = 0
        """Bumped by :meth:`replace_tokens` (connections re-check their token)."""
        self._monotonic = monotonic
        self.pending_failures = 0
        self.failures = 0
        self._window = 0.0
        self._audited_in_window = 0
        self._suppressed = 0

    def replace_tokens(self, tokens: Mapping[str, Secret]) -> None:
        """Swap the role tokens (SIGHUP / ``reload-keys``)."""
        self._digests = {role: _digest(tok.reveal()) for role, tok in tokens.items()}
        self.generation += 1

    def role_of(self, token: object) -> str | None:
        """The role ``token`` belongs to, or ``None``.

        Security: both sides are hashed to fixed-length digests first, so the
        comparison time does not depend on the length or prefix of the guess.
        """
        if not isinstance(token, str) or not token:
            return None
        guess = _digest(token)
        found: str | None = None
        for role, digest in self._digests.items():
            if hmac.compare_digest(guess, digest):
                found = role
        return found

    def begin_failure(self) -> bool:
        """Count a failure; whether its connection may wait for an answer
        (``False``: the budget is full, close it at once)."""
        self.failures += 1
        if self.pending_failures >= MAX_PENDING_FAILURES:
            return False
        self.pending_failures += 1
        return True

    def end_failure(self) -> None:
        """A failed connection's delay is over (answered and closed)."""
        self.pending_failures = max(0, self.pending_failures - 1)

    def audit_slot(self) -> int | None:
        """``None`` when this failure's event is suppressed, else how many
        suppressed failures the event stands for besides itself."""
        now = self._monotonic()
        if now - self._window >= 1.0:
            self._window, self._audited_in_window = now, 0
        if self._audited_in_window >= AUDIT_PER_SECOND:
            self._suppressed += 1
            return None
        self._audited_in_window += 1
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed


def _digest(token: str) -> bytes:
    return hashlib.sha256(b"sessionward/daemon-token\x00" + token.encode()).digest()
