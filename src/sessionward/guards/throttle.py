"""Throttle: escalating lockouts counted in the store, shared by every process.

One :class:`Throttle` counts failures (bad passwords, rejected session
cookies, failed daemon authentications) per *throttle key* and locks the key
out once ``attempts`` failures accumulate.  The state lives in the store's kv
family, so every worker process and host sees the same counts.

Algorithm (defaults in brackets):

* every failure adds 1 to the key's counter; at ``attempts`` [5] the key is
  locked for ``initial * multiplier ** (level - 1)`` seconds, capped at
  ``cap`` [30 s × 2^(level-1), at most 3600 s], where ``level`` counts the
  *consecutive* lockouts; the counter restarts at 0, the level does not;
* failures while locked are not counted (the caller must :meth:`Throttle.check`
  before verifying a password; a locked key is simply refused);
* the level decays back to 0 only after ``quiet_period`` [1 h] without a
  counted failure and after the last lockout ended;
* :meth:`Throttle.reset` (a successful login, or the admin ``unlock``)
  deletes the state.

Store key naming (for ``sessionward unlock`` and the admin CLI)::

    thr:<ns>:<hex>    hex = Key.mac(K_throttle, b"sessionward/throttle", ns, user, bucket)

(``Key.mac`` is HMAC-SHA-256 over length-prefixed parts; a missing user or
address is the empty string.)

``K_throttle`` is ``Key.derive("throttle")`` of a keyring key; new state is
written under the active key, lookups try every key of the ring, so a key
rotation neither unlocks anybody nor loses counts.  ``ns`` is the
throttle's ``namespace`` (``login``, ``invalid``, ``daemon``...).  The address
bucket is the IPv4 address or the IPv6 /64.  The value is compact JSON:
``{"f": failures, "l": level, "u": locked_until, "t": last_failure}``.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from ..audit.events import Event, EventHub
from ..core.client import ip_prefix
from ..core.clock import Clock, system_clock
from ..core.errors import (
    CodecError,
    ConfigurationError,
    CorruptEntryError,
    SessionConflictError,
    ThrottledError,
)
from ..core.keys import KeyRing
from ..stores.base import SessionStore

Duration = timedelta | float
"""A duration: a ``timedelta`` or plain seconds."""

MAX_LEVEL = 64
"""Levels stop growing here (the lockout is long capped by then)."""
CAS_RETRIES = 200
"""Bound of the compare-and-set retry loop of :meth:`Throttle.hit`."""
_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_jitter = random.SystemRandom()

INVALID_SESSION_NAMESPACE = "invalid"
"""The throttle namespace that counts rejected session cookies per client (T-16)."""


def _seconds(value: Duration) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _in_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigurationError(f"throttle {name} must be between {low:g} and {high:g}")


@dataclass(frozen=True, slots=True)
class ThrottleKey:
    """What a throttle counts against: the store keys of one (user, address).

    Attributes:
        keys: the kv keys, one per keyring key, the active key's first.
        user: the user id it was built from (for events), if any.
        ip: the client address it was built from (for events), if any.
    """

    keys: tuple[str, ...]
    user: str | None = None
    ip: str | None = None

    def __str__(self) -> str:
        return self.keys[0]


@dataclass(slots=True)
class _State:
    failures: int = 0
    level: int = 0
    until: float = 0.0
    last: float = 0.0

    def encode(self) -> bytes:
        doc = {"f": self.failures, "l": self.level, "u": self.until, "t": self.last}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> _State:
        """Parse the JSON value; every field of its exact type and range.

        Raises:
            CodecError: not JSON, not an object, a field missing, of another
                type, negative, or a NaN/infinite time (``"u": NaN`` would
                read as "not locked").
        """
        try:
            doc = json.loads(raw)
            failures, level, until, last = doc["f"], doc["l"], doc["u"], doc["t"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CodecError("throttle state in the store is malformed") from exc
        counts_ok = all(type(n) is int and 0 <= n <= 10**6 for n in (failures, level))
        times_ok = all(type(t) in (int, float) and math.isfinite(t) for t in (until, last))
        if not (counts_ok and times_ok):
            raise CodecError("throttle state in the store is malformed")
        return cls(failures, min(level, MAX_LEVEL), float(until), float(last))


class Throttle:
    """Escalating lockouts per key, counted atomically in a shared store.

    Args:
        store: any store; cross-process counting needs a ``CROSS_PROCESS`` one.
        keyring: keys for the keyed hashes of user ids and addresses.
        attempts: failures before a lockout (1..100).
        initial: first lockout (1..3600 s).
        cap: longest lockout (60..86400 s, at least ``initial``).
        multiplier: growth per consecutive lockout (1.1..10).
        quiet_period: failure-free time after which the level decays to 0
            (60 s..30 days; default 1 h).
        clock: wall clock (a ``FrozenClock`` in tests).
        events: hub for ``throttled`` events.
        namespace: this throttle's name in its store keys (``[a-z0-9_]{1,32}``),
            so several throttles (``login``, ``invalid``, ``daemon``) share a store.

    Raises:
        ConfigurationError: a setting out of range.
    """

    def __init__(
        self,
        store: SessionStore,
        keyring: KeyRing,
        *,
        attempts: int = 5,
        initial: Duration = 30.0,
        cap: Duration = 3600.0,
        multiplier: float = 2.0,
        quiet_period: Duration = 3600.0,
        clock: Clock | None = None,
        events: EventHub | None = None,
        namespace: str = "login",
    ) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise ConfigurationError("throttle attempts must be an integer")
        self.attempts = attempts
        self.initial, self.cap = _seconds(initial), _seconds(cap)
        self.multiplier = float(multiplier)
        self.quiet_period = _seconds(quiet_period)
        self._validate(namespace)
        self.namespace = namespace
        self.store = store
        self.keyring = keyring
        self.clock: Clock = clock or system_clock
        self.events = events

    def _validate(self, namespace: str) -> None:
        _in_range("attempts", self.attempts, 1, 100)
        _in_range("initial", self.initial, 1, 3600)
        _in_range("cap", self.cap, 60, 86400)
        _in_range("multiplier", self.multiplier, 1.1, 10)
        _in_range("quiet_period", self.quiet_period, 60, 30 * 86400)
        if self.cap < self.initial:
            raise ConfigurationError("throttle cap must be at least the initial lockout")
        if not _NAME_RE.fullmatch(namespace):
            raise ConfigurationError("throttle namespace must be 1-32 characters of [a-z0-9_]")

    # ------------------------------------------------------------------ keys

    def key_for(self, user: str | None = None, ip: str | None = None) -> ThrottleKey:
        """The throttle key of a user, a client address, or both together.

        Raises:
            ValueError: neither ``user`` nor ``ip`` given.
        """
        if not user and not ip:
            raise ValueError("a throttle key needs a user, an address or both")
        bucket = ip_prefix(ip, 32, 64) if ip else ""
        parts = (b"sessionward/throttle", self.namespace.encode(), (user or "").encode(),
                 bucket.encode())
        keys = tuple(
            f"thr:{self.namespace}:{k.mac(k.derive('throttle'), *parts).hex()}"
            for k in self.keyring.keys
        )
        return ThrottleKey(keys, user or None, ip or None)

    @staticmethod
    def _keys(key: ThrottleKey | str) -> tuple[str, ...]:
        return key.keys if isinstance(key, ThrottleKey) else (key,)

    # ------------------------------------------------------------- queries

    def lockout_for(self, level: int) -> float:
        """Seconds of the ``level``-th consecutive lockout (level >= 1)."""
        return min(self.cap, self.initial * self.multiplier ** (max(1, level) - 1))

    def check(self, key: ThrottleKey | str) -> float:
        """Seconds of lockout left for ``key``; 0.0 when it may try.

        Raises:
            StoreError: backend failure (never 0 for an outage).  A corrupt
                stored state is a lockout of ``cap`` seconds, never an error.
        """
        now = self.clock()
        left = 0.0
        for skey in self._keys(key):
            found = self._read(skey, now)
            if found is not None:
                left = max(left, found[0].until - now)
        return max(0.0, left)

    def require(self, key: ThrottleKey | str) -> None:
        """Raise when ``key`` is locked out (call before checking a password).

        Raises:
            ThrottledError: locked; ``retry_after`` holds the seconds left.
            StoreError: backend failure.
        """
        left = self.check(key)
        if left > 0:
            raise ThrottledError(left)

    # ------------------------------------------------------------- updates

    def reset(self, key: ThrottleKey | str) -> bool:
        """Forget every failure and level of ``key`` (successful login, admin
        unlock by raw store key).  Returns True if any state existed.

        Raises:
            StoreError: backend failure.
        """
        found = False
        for skey in self._keys(key):
            found = self.store.kv_delete(skey) or found
        return found

    def hit(self, key: ThrottleKey | str) -> float:
        """Record one failure; return the lockout seconds now in force (0.0 if none).

        Emits ``throttled`` when this failure starts a lockout.

        Raises:
            SessionConflictError: the state kept changing for ``CAS_RETRIES`` tries.
            StoreError: backend failure (a corrupt stored state: a lockout).
        """
        keys = self._keys(key)
        for _attempt in range(CAS_RETRIES):
            outcome = self._try_hit(keys)
            if outcome is not None:
                left, started, state = outcome
                if started:
                    self._emit_throttled(key, state, left)
                return left
            time.sleep(_jitter.uniform(0, 0.002))
        raise SessionConflictError("throttle state kept changing concurrently; gave up")

    def _try_hit(self, keys: tuple[str, ...]) -> tuple[float, bool, _State] | None:
        """One compare-and-set attempt; ``None`` when another writer won.

        Race timeline (two processes P and Q failing at once)::

            t0  P and Q read version v (failures = 4)
            t1  P writes v+1 (failures = 5 -> lockout)   Q's CAS(v) fails
            t2  Q re-reads v+1 (locked) and returns the lockout left
        =>  no failure is lost; exactly one writer starts each lockout.
        """
        now = self.clock()
        skey = keys[0]
        entry = self._read(skey, now)
        state = entry[0] if entry is not None else self._legacy(keys[1:], now)
        if now < state.until:
            return state.until - now, False, state  # locked: not counted, nothing written
        started = self._advance(state, now)
        expires = max(state.until, now) + self.quiet_period
        if entry is None:
            written = self.store.kv_create(skey, state.encode(), expires_at=expires)
        else:
            written = self.store.kv_cas(skey, state.encode(), expected_version=entry[1],
                                        expires_at=expires)
        if not written:
            return None
        return (state.until - now if started else 0.0), started, state

    def _advance(self, state: _State, now: float) -> bool:
        """Apply one failure to ``state`` (decay first); True if a lockout starts."""
        if state.last and now - max(state.last, state.until) >= self.quiet_period:
            state.failures, state.level = 0, 0
        state.last = now
        state.failures += 1
        if state.failures < self.attempts:
            return False
        state.failures = 0
        state.level = min(state.level + 1, MAX_LEVEL)
        state.until = now + self.lockout_for(state.level)
        return True

    def _legacy(self, old_keys: tuple[str, ...], now: float) -> _State:
        """State written under an older keyring key (carried over after a rotation)."""
        for skey in old_keys:
            found = self._read(skey, now)
            if found is not None:
                return found[0]
        return _State()

    def _read(self, skey: str, now: float) -> tuple[_State, int] | None:
        """The state under ``skey`` and its version, or ``None`` when absent.

        A corrupt entry (a value or a version of the wrong type or shape) fails
        *closed*: it becomes a lockout of ``cap`` seconds from now, written
        over the corrupt entry so that it ends on its own (a store writer who
        corrupts a key never gets unlimited guesses, and the app sees the
        usual ``ThrottledError``/429, not a 500), and ``store_value_corrupt``
        is emitted.  Reading "absent" instead would reset the counter.

        Raises:
            StoreError: backend failure.
        """
        version: int | None = None
        try:
            entry = self.store.kv_get(skey)
            if entry is None:
                return None
            version = entry[1]
            return _State.decode(entry[0]), version
        except (CodecError, CorruptEntryError):
            return self._quarantine(skey, version, now), 0

    def _quarantine(self, skey: str, version: int | None, now: float) -> _State:
        """Replace the corrupt entry under ``skey`` with a ``cap`` lockout.

        Race timeline: two processes find the entry corrupt at once; both
        write a lockout (CAS on the known version, or delete + create when
        the version itself is corrupt); whichever write lands, the key is
        locked, and a concurrent fresh ``kv_create`` between delete and
        create only restarts the count at one failure, never unlocks a lockout
        that was valid.
        """
        state = _State(0, MAX_LEVEL, now + self.cap, now)
        expires = state.until + self.quiet_period
        if version is not None:
            self.store.kv_cas(skey, state.encode(), expected_version=version, expires_at=expires)
        else:
            self.store.kv_delete(skey)
            self.store.kv_create(skey, state.encode(), expires_at=expires)
        if self.events is not None:
            self.events.emit(Event(
                name="store_value_corrupt", ts=now, namespace=self.keyring.namespace,
                outcome="denied", reason="throttle_state",
                fields={"throttle": self.namespace, "throttle_key": skey}))
        return state

    def _emit_throttled(self, key: ThrottleKey | str, state: _State, left: float) -> None:
        if self.events is None:
            return
        user = key.user if isinstance(key, ThrottleKey) else None
        ip = key.ip if isinstance(key, ThrottleKey) else None
        self.events.emit(Event(
            name="throttled", ts=self.clock(), namespace=self.keyring.namespace, user=user,
            client=ip, outcome="denied", reason="lockout",
            fields={"throttle": self.namespace, "level": state.level, "lockout": left,
                    "until": state.until, "throttle_key": self._keys(key)[0]},
        ))
        if self.namespace == INVALID_SESSION_NAMESPACE:
            # The OWASP cheat sheet (CS-26) name for an ID-guessing spray.
            self.events.emit(Event(
                name="id_bruteforce_suspected", ts=self.clock(),
                namespace=self.keyring.namespace, client=ip, outcome="denied",
                reason="lockout", fields={"count": self.attempts, "level": state.level},
            ))
