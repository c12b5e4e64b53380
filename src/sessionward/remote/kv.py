"""One-time tokens and throttles through the daemon (``remote.tokens``,
``remote.throttle(...)``): the signatures of
:class:`~sessionward.guards.tokens.OneTimeTokens` and
:class:`~sessionward.guards.throttle.Throttle`,
with the keyed hashing done in the daemon (the worker holds no key).

Differences from the library classes: a throttle key is built from the user
and address here and hashed in the daemon (:class:`RemoteThrottleKey`), and a
throttle policy out of range raises ``ConfigurationError`` on the first call
rather than at construction.  The ``daemon`` throttle is reserved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..guards.throttle import Duration
from ..guards.tokens import TokenGrant, well_formed

Call = Callable[..., Any]
"""``call(command, **fields)``: one request to the daemon, returning ``data``."""


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class RemoteTokens:
    """:class:`~sessionward.guards.tokens.OneTimeTokens` over the daemon.

    Args:
        call: sends one ``app`` request (the remote manager's transport).
    """

    def __init__(self, call: Call) -> None:
        self._call = call

    def issue(self, purpose: str, subject: str, ttl: timedelta | float,
              data: Any = None) -> str:
        """A new token for ``purpose`` and ``subject``, valid for ``ttl``.

        Raises:
            ValueError: bad purpose, subject, ttl (1 s..30 days) or data size.
            TypeError: ``data`` is not JSON-serialisable.
            StoreUnavailableError: the daemon is unreachable.
        """
        reply = self._call("tokens", action="issue", purpose=purpose, subject=subject,
                           ttl=_seconds(ttl), data=data)
        return str(reply["token"])

    def consume(self, token: object, purpose: str) -> TokenGrant | None:
        """Consume ``token`` for ``purpose`` exactly once (across every worker).

        Returns:
            the grant, or ``None`` (malformed, unknown, expired, consumed, or
            another purpose — then it is not consumed).

        Raises:
            StoreUnavailableError: the daemon is unreachable (never ``None``).
        """
        if not well_formed(token) or not isinstance(purpose, str) or not purpose:
            return None
        grant = self._call("tokens", action="consume", purpose=purpose, secret=token)["grant"]
        if grant is None:
            return None
        return TokenGrant(str(grant["purpose"]), str(grant["subject"]), grant["data"],
                          float(grant["issued_at"]), float(grant["expires_at"]))

    def revoke(self, token: object, purpose: str) -> bool:
        """Invalidate an unused token.

        Raises:
            StoreUnavailableError: the daemon is unreachable.
        """
        if not well_formed(token) or not isinstance(purpose, str) or not purpose:
            return False
        return bool(self._call("tokens", action="revoke", purpose=purpose,
                               secret=token)["revoked"])


@dataclass(frozen=True, slots=True)
class RemoteThrottleKey:
    """What a remote throttle counts against (hashed in the daemon).

    Attributes:
        user: the user id, if any.
        ip: the client address, if any.
    """

    user: str | None = None
    ip: str | None = None


class RemoteThrottle:
    """:class:`~sessionward.guards.throttle.Throttle` over the daemon: the counts live
    in the daemon's store, so every worker sees the same lockouts.

    Args:
        call: sends one ``app`` request.
        attempts, initial, cap, multiplier, quiet_period, namespace: as for
            :class:`~sessionward.guards.throttle.Throttle` (sent with each request).
    """

    def __init__(self, call: Call, *, attempts: int = 5, initial: Duration = 30.0,
                 cap: Duration = 3600.0, multiplier: float = 2.0,
                 quiet_period: Duration = 3600.0, namespace: str = "login") -> None:
        self._call = call
        self.namespace = namespace
        self._policy = {"attempts": attempts, "initial": _seconds(initial),
                        "cap": _seconds(cap), "multiplier": float(multiplier),
                        "quiet_period": _seconds(quiet_period), "namespace": namespace}

    def key_for(self, user: str | None = None, ip: str | None = None) -> RemoteThrottleKey:
        """The throttle key of a user, a client address, or both together.

        Raises:
            ValueError: neither ``user`` nor ``ip`` given.
        """
        if not user and not ip:
            raise ValueError("a throttle key needs a user, an address or both")
        return RemoteThrottleKey(user or None, ip or None)

    def _send(self, action: str, key: RemoteThrottleKey | str) -> Any:
        where: dict[str, Any] = {"key": key} if isinstance(key, str) else {
            "user": key.user, "ip": key.ip}
        return self._call("throttle", action=action, **self._policy, **where)

    def hit(self, key: RemoteThrottleKey | str) -> float:
        """Record one failure; the lockout seconds now in force (0.0 if none).

        Raises:
            ConfigurationError: the policy is out of range.
            SessionConflictError: the state kept changing concurrently.
            StoreUnavailableError: the daemon is unreachable.
        """
        return float(self._send("hit", key)["lockout"])

    def check(self, key: RemoteThrottleKey | str) -> float:
        """Seconds of lockout left for ``key``; 0.0 when it may try.

        Raises:
            StoreUnavailableError: the daemon is unreachable (never 0 for an outage).
        """
        return float(self._send("check", key)["retry_after"])

    def require(self, key: RemoteThrottleKey | str) -> None:
        """Raise when ``key`` is locked out (call before checking a password).

        Raises:
            ThrottledError: locked; ``retry_after`` holds the seconds left.
            StoreUnavailableError: the daemon is unreachable.
        """
        self._send("require", key)

    def reset(self, key: RemoteThrottleKey | str) -> bool:
        """Forget every failure and level of ``key`` (a successful login).

        Raises:
            StoreUnavailableError: the daemon is unreachable.
        """
        return bool(self._send("reset", key)["reset"])
