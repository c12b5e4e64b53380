"""Role tokens and the per-peer backoff for failed authentications.

Every request carries a token; :meth:`Authenticator.role_of` compares it in
constant time with *every* role's token (no early exit, so timing does not
tell which role came close).  A peer (a Unix uid or a loopback address) that
fails :data:`FAILS_BEFORE_LOCKOUT` times is locked out for 30 s, doubling per
consecutive lockout up to 1 h; the doubling decays only after a quiet hour.
Failures fire ``auth_failed`` events (audited) through the manager's hub.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..core.config import Secret

FAILS_BEFORE_LOCKOUT = 5
BASE_LOCKOUT = 30.0
MAX_LOCKOUT = 3600.0
QUIET = 3600.0
MAX_PEERS = 10_000


@dataclass(slots=True)
class _PeerState:
    fails: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    last_fail: float = 0.0


class Authenticator:
    """Maps tokens to roles and throttles peers that keep guessing.

    Args:
        tokens: role name → its token.
        monotonic: the clock for lockouts (injectable for tests).
    """

    def __init__(self, tokens: Mapping[str, Secret],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._digests = {role: _digest(tok.reveal()) for role, tok in tokens.items()}
        self._monotonic = monotonic
        self._peers: dict[str, _PeerState] = {}

    def replace_tokens(self, tokens: Mapping[str, Secret]) -> None:
        """Swap the role tokens (SIGHUP / ``reload-keys``)."""
        self._digests = {role: _digest(tok.reveal()) for role, tok in tokens.items()}

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

    def locked_for(self, peer: str) -> float:
        """Seconds until ``peer`` may try again (0 when not locked out)."""
        state = self._peers.get(peer)
        if state is None:
            return 0.0
        return max(0.0, state.locked_until - self._monotonic())

    def failed(self, peer: str) -> float:
        """Record a failure; returns the lockout now in force (0 if none)."""
        now = self._monotonic()
        state = self._peers.get(peer)
        if state is None:
            if len(self._peers) >= MAX_PEERS:
                self._forget_quiet(now)
            state = self._peers.setdefault(peer, _PeerState())
        if now - state.last_fail > QUIET:
            state.fails, state.lockouts = 0, 0
        state.fails += 1
        state.last_fail = now
        if state.fails < FAILS_BEFORE_LOCKOUT:
            return 0.0
        duration = float(min(BASE_LOCKOUT * 2.0 ** state.lockouts, MAX_LOCKOUT))
        state.fails = 0
        state.lockouts += 1
        state.locked_until = now + duration
        return duration

    def succeeded(self, peer: str) -> None:
        """A good token resets the failure count (not the escalation)."""
        state = self._peers.get(peer)
        if state is not None:
            state.fails = 0

    def _forget_quiet(self, now: float) -> None:
        for peer in [p for p, s in self._peers.items() if now - s.last_fail > QUIET]:
            del self._peers[peer]
        if len(self._peers) >= MAX_PEERS:
            # Bounded memory beats perfect memory: drop the oldest half.
            for peer in sorted(self._peers, key=lambda p: self._peers[p].last_fail)[
                : MAX_PEERS // 2
            ]:
                del self._peers[peer]


def _digest(token: str) -> bytes:
    return hashlib.sha256(b"sessionward/daemon-token\x00" + token.encode()).digest()
