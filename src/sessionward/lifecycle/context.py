"""Runtime: the collaborators the load and save paths run against.

A :class:`Runtime` bundles what every step of a session's life needs — the
store, the keys and the sealer, the settings, the clock, the event hub, the
app's revalidation and binding callbacks — and the two reporting helpers
built on them (:meth:`Runtime.emit`, :meth:`Runtime.invalid`).  The
:class:`~sessionward.lifecycle.manager.SessionManager` owns one and hands it
down; no module of the load or save path imports the manager, so every call
in a request runs strictly downward (``docs/architecture.md``).

Key rotation (``rotate-keys``, the daemon's SIGHUP) swaps ``keyring`` and
``sealer`` together through :meth:`Runtime.replace_keys`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..audit.events import Event, EventHub
from ..core import ids
from ..core.client import ClientInfo, InvalidHook, profile_of
from ..core.clock import Clock
from ..core.config import Settings
from ..core.errors import CodecError, CorruptEntryError, InvalidReason
from ..core.keys import Key, KeyRing
from ..core.record import SessionMeta
from ..stores.base import SessionStore, StoredRecord
from .port import Io
from .sealer import Opened, RecordSealer

Revalidator = Callable[[str], bool]
"""``callback(user) -> bool``: False ends the user's session (revalidation)."""
BindingCallable = Callable[[list[dict[str, str]], dict[str, str]], list[dict[str, str]]]
"""``callback(known_profiles, current) -> allowed profiles``; raise to deny."""

_INVALID_WINDOW_SECONDS = 60.0
_INVALID_WINDOW_ADDRESSES = 10_000


@dataclass(eq=False)
class Runtime:
    """The collaborators of one manager (see the module docstring).

    Attributes:
        store: where sealed records live.
        keyring: the keys; ``sealer`` is always built from the same ring.
        sealer: seals and opens records under ``keyring``.
        settings: the policy.
        clock: wall clock, POSIX seconds.
        events: the hub every event goes to.
        revalidate: optional revalidation callback.
        binding: optional callable client-binding policy.
        invalid_hooks: called for every rejected cookie.
    """

    store: SessionStore
    keyring: KeyRing
    sealer: RecordSealer
    settings: Settings
    clock: Clock
    events: EventHub
    revalidate: Revalidator | None = None
    binding: BindingCallable | None = None
    invalid_hooks: list[InvalidHook] = field(default_factory=list)
    _invalid_window: dict[str, tuple[float, int]] = field(default_factory=dict)

    def replace_keys(self, keyring: KeyRing) -> None:
        """Swap the keys and the sealer together (key rotation, SIGHUP)."""
        self.keyring = keyring
        self.sealer = RecordSealer(keyring, self.settings.max_record_bytes)

    def new_meta(self, client: ClientInfo | None) -> SessionMeta:
        """The metadata of a new session: timeouts from the settings, issued by
        the active key, the client's profile recorded."""
        s = self.settings
        now = self.clock()
        profile = profile_of(client, s.ip_prefix_v4, s.ip_prefix_v6)
        return SessionMeta(
            created=now, last_seen=now, idle=s.idle_timeout.total_seconds(),
            absolute=now + s.absolute_timeout.total_seconds(), rotated_at=now,
            issuer=self.keyring.active.kid, profiles=[profile] if profile else [],
        )

    def emit(self, name: str, *, key: str | None = None, user: str | None = None,
             client: ClientInfo | None = None, outcome: str = "success", reason: str = "",
             **fields: Any) -> None:
        """Emit an event; a storage key appears only as its keyed fingerprint."""
        self.events.emit(Event(
            name=name, ts=self.clock(), namespace=self.settings.namespace,
            fingerprint=self.keyring.fingerprint(key) if key else "", user=user,
            client=client.ip if client else None, outcome=outcome, reason=reason,
            fields=fields, correlation_id=client.correlation_id if client else None,
        ))

    async def invalid(self, io: Io, reason: InvalidReason, client: ClientInfo | None,
                      key: str | None = None) -> None:
        """Record a rejected cookie: the hooks always run (through ``io.call``);
        the ``invalid_session`` event is rate-limited to ``invalid_event_limit``
        per address per minute.

        Memory stays bounded: past 10,000 addresses the window starts over.
        """
        for hook in self.invalid_hooks:
            await io.call(hook, client, reason)
        address = (client.ip if client else None) or "-"
        now = self.clock()
        start, count = self._invalid_window.get(address, (now, 0))
        if now - start >= _INVALID_WINDOW_SECONDS:
            start, count = now, 0
        self._invalid_window[address] = (start, count + 1)
        if len(self._invalid_window) > _INVALID_WINDOW_ADDRESSES:
            self._invalid_window.clear()
        if count < self.settings.invalid_event_limit:
            self.emit("invalid_session", key=key, client=client, outcome="denied",
                      reason=reason.value)

    async def open_record(self, io: Io, key: str, *,
                          client: ClientInfo | None = None) -> Opened | None:
        """Load and open the record under ``key``.

        Returns:
            The opened record, or ``None`` when absent or undecodable (a
            ``decode_failed`` event fires for the latter).

        Raises:
            StoreError: the store failed.
        """
        try:
            stored = await io.store.load(key)
        except CorruptEntryError:
            self.emit("decode_failed", key=key, client=client, outcome="denied",
                      reason="undecodable", detail="corrupt_entry")
            return None
        if stored is None:
            return None
        return self.open_stored(key, stored, client=client)

    def open_stored(self, key: str, stored: StoredRecord, *,
                    client: ClientInfo | None = None) -> Opened | None:
        """Open a record already read from the store; ``None`` (and a
        ``decode_failed`` event) when it does not authenticate or decode."""
        try:
            return self.sealer.open(key, stored)
        except CodecError as exc:
            self.emit("decode_failed", key=key, client=client, outcome="denied",
                      reason="undecodable", detail=exc.reason)
            return None

    def user_key(self, user: str, key: Key | None = None) -> str:
        """The per-user index key of ``user`` under ``key`` (default: the active key)."""
        return ids.user_key(user, key or self.keyring.active)

    def fingerprint(self, storage_key: str) -> str:
        """The short keyed fingerprint of a storage key (for logs and events)."""
        return self.keyring.fingerprint(storage_key)
