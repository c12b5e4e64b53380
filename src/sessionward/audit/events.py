"""Typed lifecycle and security events, and the synchronous hub that fans
them out to subscribers (audit file, syslog, webhooks, the app's own code).

Invariants:
- an event never carries a raw session ID, token, key, password or cookie
  value: sessions appear only as ``fingerprint`` (a short keyed hash that is
  stable for one session ID, see :meth:`sessionward.core.keys.KeyRing.fingerprint`);
- a failing subscriber never breaks the request that emitted the event: the
  failure is counted in ``EventHub.failures`` and logged on
  ``sessionward.security``.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

security_log = logging.getLogger("sessionward.security")

_HOST = socket.gethostname()


class Level(IntEnum):
    """How important an event is; sinks filter with ``level >= threshold``."""

    INFO = 10
    """Routine lifecycle (created, rotated, destroyed, expired...)."""
    AUTH = 20
    """Authentication decisions (login, logout, elevated, token_consumed...)."""
    CRITICAL = 30
    """Probable attacks or misconfiguration (zombie_accessed, token_reused...)."""


EVENT_LEVELS: Mapping[str, Level] = {
    "created": Level.INFO,
    "rotated": Level.INFO,
    "touched": Level.INFO,
    "destroyed": Level.INFO,
    "expired": Level.INFO,
    "cleanup": Level.INFO,
    "conflict": Level.INFO,
    "merged": Level.INFO,
    "login": Level.AUTH,
    "logout": Level.AUTH,
    "elevated": Level.AUTH,
    "revoked": Level.AUTH,
    "token_issued": Level.AUTH,
    "token_consumed": Level.AUTH,
    "remember_me_used": Level.AUTH,
    "reauth_required": Level.AUTH,
    "data_revealed": Level.AUTH,
    "unlocked": Level.AUTH,
    "invalid_session": Level.AUTH,
    "profile_changed": Level.AUTH,
    "lock_lost": Level.CRITICAL,
    "throttled": Level.CRITICAL,
    "zombie_accessed": Level.CRITICAL,
    "token_reused": Level.CRITICAL,
    "decode_failed": Level.CRITICAL,
    "auth_failed": Level.CRITICAL,
    "config_error": Level.CRITICAL,
    "session_limit": Level.AUTH,
    "revalidation_failed": Level.AUTH,
    "key_rotated": Level.AUTH,
    "id_bruteforce_suspected": Level.CRITICAL,
    "session_index_mismatch": Level.CRITICAL,
    "store_value_corrupt": Level.CRITICAL,
}
"""The event catalogue (``docs/events.md`` documents every field)."""


def _now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle or security event.

    Attributes:
        name: catalogue name (``created``, ``zombie_accessed``...).
        ts: POSIX seconds from the manager's clock.
        namespace: the manager's namespace.
        fingerprint: short keyed hash of the session ID, or ``""``.
        user: the user id as the application gave it, or ``None``.
        client: the client address, or ``None``.
        outcome: ``success`` / ``failure`` / ``denied``.
        reason: a machine token explaining the outcome (never secret).
        fields: extra event-specific fields (all safe to log).
        event_id: random UUIDv4.
        correlation_id: the request's correlation id when known.
    """

    name: str
    ts: float
    namespace: str
    fingerprint: str = ""
    user: str | None = None
    client: str | None = None
    outcome: str = "success"
    reason: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str | None = None
    host: str = _HOST

    @property
    def level(self) -> Level:
        """The catalogue level of this event (``INFO`` for unknown names)."""
        return EVENT_LEVELS.get(self.name, Level.INFO)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the documented field names."""
        out: dict[str, Any] = {
            "timestamp": _now_iso(self.ts),
            "event": self.name,
            "level": self.level.name.lower(),
            "event_id": self.event_id,
            "correlation_id": self.correlation_id,
            "host": self.host,
            "namespace": self.namespace,
            "session": self.fingerprint or None,
            "user": self.user,
            "client": self.client,
            "outcome": self.outcome,
            "reason": self.reason or None,
        }
        for key, value in self.fields.items():
            out.setdefault(key, value)
        return out


Subscriber = Callable[[Event], None]


class EventHub:
    """Synchronous fan-out of events to subscribers.

    Subscribers must be quick (sinks that do I/O to slow targets, such as
    webhooks, queue internally).  Thread-safe.
    """

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self.failures = 0
        """Subscriber exceptions so far (also logged); shown by ``stats``."""

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add ``subscriber``; returns a function that unsubscribes it."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber; never raises."""
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception as exc:  # noqa: BLE001 - a sink must never break a request
                self.failures += 1
                security_log.error(
                    "event subscriber %r failed on %s: %s",
                    getattr(subscriber, "__name__", type(subscriber).__name__),
                    event.name,
                    type(exc).__name__,
                )
