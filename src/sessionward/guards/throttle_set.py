"""ThrottleSet: several throttle keys checked and counted as one attempt.

A password form keyed only on (user, address) lets an attacker who controls
many addresses make ``attempts`` guesses *per address* at one account, and
lets one address spray ``attempts - 1`` guesses at *every* account without
ever being refused.  A :class:`ThrottleSet` closes both by counting each
failure under up to three keys at once, each with its own limit:

======== ================================== ==========================================
scope    key (``Throttle.key_for``)         stops
======== ================================== ==========================================
``pair`` ``(user, address)``                one client guessing one account (default 5)
``user`` ``(user, "")``: every address      many addresses guessing one account (10)
``ip``   ``("", address)``: every account   one address spraying many accounts (20)
======== ================================== ==========================================

All scopes share one throttle ``namespace`` and :class:`Throttle`'s key
derivation, so ``sessionward unlock USER`` clears the per-account lockout,
``unlock --ip ADDRESS`` the per-address one and ``unlock USER --ip ADDRESS``
the pair's.  An attempt is refused while *any* of its keys is locked, and a
refused attempt is not counted (as with a single :class:`Throttle`).

Trade-off (``docs/abuse.md``): the ``user`` scope lets anybody lock an
account out for everybody, its owner included, for ``initial`` seconds and
longer as lockouts repeat.  That is the price of bounding guesses per account
whatever the number of addresses; keep its limit above the ``pair`` limit so
the owner's own typos lock only the owner's pair first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from ..audit.events import EventHub
from ..core.clock import Clock
from ..core.errors import ConfigurationError, ThrottledError
from ..core.keys import KeyRing
from ..stores.base import SessionStore
from .throttle import Duration, Throttle, ThrottleKey

Scope = Literal["pair", "user", "ip"]
"""What one key of a set counts against (see the module docstring)."""

SCOPES: tuple[Scope, ...] = ("pair", "user", "ip")
"""Every scope, in the order keys are checked and counted."""

LOGIN_LIMITS: Mapping[Scope, int] = {"pair": 5, "user": 10, "ip": 20}
"""The default limits: failures before each scope's first lockout."""


@dataclass(frozen=True, slots=True)
class ThrottleKeys:
    """The keys of one attempt, one per scope that applies.

    Attributes:
        keys: ``(scope, key)`` pairs; a scope whose part is missing (no user
            name, no address) is left out.
        user: the user id the keys were built from, if any.
        ip: the client address, if any.
    """

    keys: tuple[tuple[Scope, ThrottleKey], ...]
    user: str | None = None
    ip: str | None = None

    def __iter__(self) -> Iterator[tuple[Scope, ThrottleKey]]:
        return iter(self.keys)

    def scopes(self) -> tuple[Scope, ...]:
        """The scopes present, in order."""
        return tuple(scope for scope, _ in self.keys)


class ThrottleSet:
    """Check and count one attempt under several throttle keys at once.

    Args:
        store: any store (``CROSS_PROCESS`` to share counts between processes).
        keyring: keys for the keyed hashes of user ids and addresses.
        limits: failures before a lockout, per scope; a scope left out is not
            counted at all (``{"ip": 10}`` throttles addresses only).
        namespace: the throttle name in the store keys (``[a-z0-9_]{1,32}``).
        initial: first lockout of every scope (see
            :class:`~sessionward.guards.throttle.Throttle`).
        cap: longest lockout.
        multiplier: growth per consecutive lockout.
        quiet_period: failure-free time after which the level decays to 0.
        clock: wall clock (a ``FrozenClock`` in tests).
        events: hub for ``throttled`` events.

    Raises:
        ConfigurationError: no scope, an unknown scope, or a setting out of
            range (each limit 1..100).
    """

    def __init__(self, store: SessionStore, keyring: KeyRing, *,
                 limits: Mapping[Scope, int] = LOGIN_LIMITS, namespace: str = "login",
                 initial: Duration = 30.0, cap: Duration = 3600.0, multiplier: float = 2.0,
                 quiet_period: Duration = 3600.0, clock: Clock | None = None,
                 events: EventHub | None = None) -> None:
        unknown = set(limits) - set(SCOPES)
        if not limits or unknown:
            raise ConfigurationError(
                f"throttle set limits need one or more of {', '.join(SCOPES)}"
                + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else ""))
        self.namespace = namespace
        self.throttles: dict[Scope, Throttle] = {
            scope: Throttle(store, keyring, attempts=limits[scope], initial=initial, cap=cap,
                            multiplier=multiplier, quiet_period=quiet_period, clock=clock,
                            events=events, namespace=namespace)
            for scope in SCOPES if scope in limits
        }

    def keys_for(self, user: str | None = None, ip: str | None = None) -> ThrottleKeys:
        """The keys of an attempt by ``ip`` at account ``user``.

        ``pair`` needs both, ``user`` a user, ``ip`` an address; scopes whose
        part is missing are left out.  Normalise ``user`` first (the demo
        lower-cases it) so ``Alice`` and ``alice`` count together.

        Raises:
            ValueError: neither ``user`` nor ``ip`` given.
        """
        if not user and not ip:
            raise ValueError("throttle keys need a user, an address or both")
        parts: dict[Scope, tuple[str | None, str | None]] = {
            "pair": (user, ip) if user and ip else (None, None),
            "user": (user, None), "ip": (None, ip)}
        keys = tuple((scope, throttle.key_for(*parts[scope]))
                     for scope, throttle in self.throttles.items() if any(parts[scope]))
        return ThrottleKeys(keys, user or None, ip or None)

    def status(self, keys: ThrottleKeys) -> dict[Scope, float]:
        """Seconds of lockout left per scope (0.0 where it may try).

        Raises:
            StoreError: backend failure (never "not locked" for an outage).
        """
        return {scope: self.throttles[scope].check(key) for scope, key in keys}

    def check(self, keys: ThrottleKeys) -> float:
        """Seconds until every key of ``keys`` may try again; 0.0 when the attempt may go on.

        Call it before verifying the password; on a positive answer refuse
        without verifying (and without :meth:`hit`).

        Raises:
            StoreError: backend failure.
        """
        return max(self.status(keys).values(), default=0.0)

    def require(self, keys: ThrottleKeys) -> None:
        """Raise while any key of ``keys`` is locked out.

        Raises:
            ThrottledError: locked; ``retry_after`` holds the seconds left.
            StoreError: backend failure.
        """
        left = self.check(keys)
        if left > 0:
            raise ThrottledError(left)

    def hit(self, keys: ThrottleKeys) -> float:
        """Count one failure under every key; return the longest lockout now in force.

        Raises:
            SessionConflictError: a state kept changing (see :meth:`Throttle.hit`).
            StoreError: backend failure.
        """
        return max((self.throttles[scope].hit(key) for scope, key in keys), default=0.0)

    def reset(self, keys: ThrottleKeys, scopes: tuple[Scope, ...] = ("pair",)) -> bool:
        """Forget the failures of ``keys`` in ``scopes`` (a successful sign-in).

        Only the ``pair`` by default: a correct password proves nothing about
        the other addresses guessing this account, nor about the other
        accounts this address tried, so their counts stay (and decay after
        ``quiet_period``).  Returns True if any state existed.

        Raises:
            StoreError: backend failure.
        """
        found = False
        for scope, key in keys:
            if scope in scopes:
                found = self.throttles[scope].reset(key) or found
        return found
