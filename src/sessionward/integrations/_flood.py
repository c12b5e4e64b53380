"""The opt-in flood guard shared by every integration (T-16, CS-26).

A *flood guard* counts the cookies the manager rejects (malformed, forged,
unknown, expired...) per client address — it is a manager ``invalid_hook``,
see :class:`~sessionward.guards.flood.InvalidSessionGuard` — and, once an
address is locked out, the integration answers ``429`` with ``Retry-After``
to every request from it that presents the session cookie: no store lookup,
no session, no ``Set-Cookie``.  Requests without the cookie are served as
usual (they cannot guess IDs), and other addresses are unaffected.

The client address is the one the integration already uses
(``scope["client"]``, ``REMOTE_ADDR``), so the framework's trusted-proxy
middleware (uvicorn ``--proxy-headers``/``forwarded_allow_ips``, werkzeug
``ProxyFix``) decides which address is counted (ASVS 5.0 15.3.4).

Every integration accepts the same *spec* (``guard=`` or its config key):

- ``None`` / ``False``: off (the default);
- ``True``: a :class:`~sessionward.guards.throttle.Throttle` on the manager's store
  with :data:`DEFAULT_OPTIONS` (namespace ``invalid``, 100 attempts);
- a mapping of :class:`~sessionward.guards.throttle.Throttle` options (``attempts``,
  ``initial``, ``cap``, ``multiplier``, ``quiet_period``) over those defaults,
  plus ``block`` (default ``True``): ``False`` only counts and alerts (the
  ``throttled`` event still fires) without ever answering 429;
- a :class:`~sessionward.guards.throttle.Throttle`: attached to the manager;
- a ready guard (anything with ``retry_after(client)``, e.g. the result of
  ``attach_invalid_session_guard``): used as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..core.client import ClientInfo
from ..core.errors import ConfigurationError
from ..guards.flood import attach_invalid_session_guard
from ..guards.throttle import INVALID_SESSION_NAMESPACE, Throttle
from ..lifecycle.manager import SessionManager

DEFAULT_OPTIONS: dict[str, Any] = {"attempts": 100, "namespace": INVALID_SESSION_NAMESPACE}
"""Throttle options of ``guard=True`` (lockouts 30 s, doubling, at most 1 h)."""
_OPTION_NAMES = frozenset({"attempts", "initial", "cap", "multiplier", "quiet_period",
                           "namespace", "block"})


@runtime_checkable
class FloodGuard(Protocol):
    """Protocol: answers how long a client's address must wait (0.0: not blocked)."""

    def retry_after(self, client: ClientInfo | None) -> float:
        """Seconds of lockout left for ``client``'s address."""
        ...


def _embedded(manager: object) -> SessionManager:
    inner = getattr(manager, "sync", manager)
    if not isinstance(inner, SessionManager):
        raise ConfigurationError(
            "the flood guard counts rejected cookies through the manager's invalid_hooks, "
            "which only an embedded SessionManager has; with the daemon, pass a guard "
            "object that reads the daemon's counts"
        )
    return inner


def _options(spec: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(map(str, spec)) - _OPTION_NAMES)
    if unknown:
        raise ConfigurationError(f"unknown flood guard option(s): {', '.join(unknown)}")
    return {**DEFAULT_OPTIONS, **spec}


def _throttle_for(manager: SessionManager, options: Mapping[str, Any]) -> Throttle:
    return Throttle(manager.store, manager.keyring, clock=manager.clock,
                    events=manager.events, **options)


def resolve_guard(spec: object, manager: object) -> FloodGuard | None:
    """The flood guard described by ``spec`` for ``manager`` (``None``: off).

    Args:
        spec: see the module docstring.
        manager: the integration's manager (sync or async facade).

    Returns:
        the guard, already registered on the manager's ``invalid_hooks``
        when this function built it; ``None`` when off or count-only
        (``block=False``: the hook is registered, nothing is refused).

    Raises:
        ConfigurationError: an unusable spec, or one needing an embedded
            manager with a remote one.
    """
    if spec is None or spec is False:
        return None
    if isinstance(spec, FloodGuard):
        return spec
    if spec is True:
        spec = {}
    if isinstance(spec, Mapping):
        options = _options(spec)
        block = options.pop("block", True)
        guard = attach_invalid_session_guard(_embedded(manager),
                                             _throttle_for(_embedded(manager), options))
        return guard if block is not False else None
    if isinstance(spec, Throttle):
        return attach_invalid_session_guard(_embedded(manager), spec)
    raise ConfigurationError(
        "flood guard must be None, a bool, a mapping of Throttle options, a Throttle "
        f"or a guard object, not {type(spec).__name__}"
    )


def blocked_for(guard: FloodGuard | None, client: ClientInfo | None, *,
                cookie_sent: bool) -> float:
    """Seconds this request must wait (0.0: serve it).

    Only requests that present the session cookie are checked: they are the
    ones that could guess an ID, and the check costs a store read.

    Raises:
        StoreError: the store is down (the caller answers 503).
    """
    if guard is None or not cookie_sent:
        return 0.0
    return guard.retry_after(client)
