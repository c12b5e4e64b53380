"""The invalid-session flood guard (T-16, OWASP CS-26): rejected session cookies
counted per client address in a :class:`~.throttle.Throttle`.

The manager reports every cookie it rejects to its ``invalid_hooks``; the
guard turns each into one throttle failure for the client's address, and the
web layer asks :meth:`InvalidSessionGuard.is_blocked` to answer 429.  A
lockout of the ``invalid`` throttle (:data:`~.throttle.INVALID_SESSION_NAMESPACE`)
also fires ``id_bruteforce_suspected``.
"""

from __future__ import annotations

from typing import Protocol

from ..core.client import ClientInfo, InvalidHook
from ..core.errors import InvalidReason
from .throttle import Throttle


class HasInvalidHooks(Protocol):
    """Protocol: a manager that reports rejected cookies to ``invalid_hooks``
    (the embedded :class:`~sessionward.SessionManager` does)."""

    @property
    def invalid_hooks(self) -> list[InvalidHook]: ...


class InvalidSessionGuard:
    """Counts rejected session cookies per client address (T-16).

    Registered as a manager ``invalid_hook``: every cookie the manager
    rejects (malformed, forged, unknown, expired, zombie...) is one failure
    for the client's address; other clients are unaffected.  The web layer
    asks :meth:`is_blocked` and answers 429 with ``Retry-After``.

    Args:
        throttle: the throttle that counts (e.g. ``attempts=100, namespace="invalid"``).
    """

    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle

    def __call__(self, client: ClientInfo | None, reason: InvalidReason) -> None:
        """The manager hook: one failure for the client's address."""
        if client is not None and client.ip:
            self.throttle.hit(self.throttle.key_for(ip=client.ip))

    def retry_after(self, client: ClientInfo | None) -> float:
        """Seconds until ``client``'s address may present cookies again.

        Raises:
            StoreError: backend failure.
        """
        if client is None or not client.ip:
            return 0.0
        return self.throttle.check(self.throttle.key_for(ip=client.ip))

    def is_blocked(self, client: ClientInfo | None) -> bool:
        """True while ``client``'s address is locked out (answer 429).

        Raises:
            StoreError: backend failure.
        """
        return self.retry_after(client) > 0


def attach_invalid_session_guard(
    manager: HasInvalidHooks, throttle: Throttle
) -> InvalidSessionGuard:
    """Register a guard on ``manager.invalid_hooks`` and return it.

    Example::

        guard = attach_invalid_session_guard(
            manager, Throttle(store, keyring, attempts=100, namespace=INVALID_SESSION_NAMESPACE))
        if guard.is_blocked(client):
            return Response(status=429, headers={"Retry-After": ...})
    """
    guard = InvalidSessionGuard(throttle)
    hook: InvalidHook = guard
    manager.invalid_hooks.append(hook)
    return guard
