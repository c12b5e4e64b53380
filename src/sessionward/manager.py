"""SessionManager: the synchronous recipe layer — all session policy lives here.

Guarantees (each pinned by the contract suite in ``tests/contract``):

- **lazy**: ``new()`` touches no store; nothing is written and no cookie is
  issued until data (or a login) is saved;
- **strict**: a cookie that is malformed, forged, unknown, expired, revoked,
  tampered or rotated-away-after-grace is never adopted: ``load`` returns
  ``None`` and an ``invalid_session`` event fires (rate-limited per client);
- **timeouts**: idle and absolute, enforced from sealed metadata; loads touch
  cheaply (at most once per ``touch_interval``) and never rewrite the record;
- **rotation**: ``login``/``rotate``/``elevate`` issue a new ID and kill the old
  one at once; periodic rotation keeps a short forwarding grace;
- **no lost updates**: optimistic compare-and-set with a three-way merge of
  disjoint keys, ``update(key, fn)`` retried atomically, or exclusive leases
  with fencing;
- **no resurrection**: a save after logout/revoke raises ``SessionGoneError``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from . import _lease, _loading, _saving, codec, ids, inventory
from ._clock import Clock, system_clock
from ._records import Opened, RecordSealer
from .client import ClientInfo, profile_of
from .config import OpenMode, Settings
from .errors import (
    CodecError,
    ConfigurationError,
    InvalidReason,
    ReauthenticationRequired,
    SessionGoneError,
    SessionLimitError,
    SessionReadOnlyError,
)
from .events import Event, EventHub
from .keys import Key, KeyRing, load_keyring
from .record import SessionMeta
from .session import Session
from .stores.base import SessionStore

_jitter = random.SystemRandom()
Revalidator = Callable[[str], bool]
BindingCallable = Callable[[list[dict[str, str]], dict[str, str]], list[dict[str, str]]]


class SessionManager:
    """Create, load, save, rotate and end sessions over any store.

    Args:
        store: any :class:`~sessionward.stores.base.SessionStore`.
        keyring: the keys (see :mod:`sessionward.keys`).
        settings: policy; its namespace must match the keyring's.
        clock: wall clock (inject a ``FrozenClock`` in tests).
        events: an :class:`EventHub` to share; a new one by default.
        revalidate: optional ``callback(user) -> bool`` run every
            ``settings.revalidate_interval``; False ends the session.
        binding: optional callable policy for client-profile changes (see
            ``Settings.client_binding``); it returns the new allowed profiles
            or raises to deny.

    Raises:
        ConfigurationError: namespace mismatch.
    """

    def __init__(
        self,
        store: SessionStore,
        keyring: KeyRing,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        events: EventHub | None = None,
        revalidate: Revalidator | None = None,
        binding: BindingCallable | None = None,
    ) -> None:
        self.settings = settings or Settings(namespace=keyring.namespace)
        if self.settings.namespace != keyring.namespace:
            raise ConfigurationError(
                f"settings namespace {self.settings.namespace!r} differs from the keyring's "
                f"{keyring.namespace!r}; load the keys with the same namespace"
            )
        self.store = store
        self.keyring = keyring
        self.clock: Clock = clock or system_clock
        self.events = events or EventHub()
        self.revalidate = revalidate
        self.binding = binding
        self.sealer = RecordSealer(keyring, self.settings.max_record_bytes)
        self.invalid_hooks: list[Callable[[ClientInfo | None, InvalidReason], None]] = []
        self._invalid_window: dict[str, tuple[float, int]] = {}
        self._leases: dict[int, _lease.Lease] = {}

    # -------------------------------------------------------------- builders

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_file: str | None = None,
        keyring: KeyRing | None = None,
        settings: Settings | None = None,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> SessionManager:
        """Open the store at ``url`` with keys from ``key_file`` (or ``keyring``).

        Raises:
            ConfigurationError: bad URL, missing extra, unusable key file.
        """
        from .stores import open_store

        base = settings or Settings()
        if overrides:
            base = base.replace(**overrides)
        if keyring is None:
            path = key_file or base.key_file
            if path is None:
                raise ConfigurationError(
                    "no key file given; create one with `sessionward keygen --out PATH` "
                    "and pass key_file=PATH"
                )
            keyring = load_keyring(path, base.namespace)
        real_clock = clock or system_clock
        return cls(open_store(url, clock=real_clock), keyring, base, clock=real_clock)

    # ------------------------------------------------------------ internals

    def emit(self, name: str, *, key: str | None = None, user: str | None = None,
             client: ClientInfo | None = None, outcome: str = "success", reason: str = "",
             **fields: Any) -> None:
        """Emit an event (IDs only as fingerprints)."""
        self.events.emit(Event(
            name=name, ts=self.clock(), namespace=self.settings.namespace,
            fingerprint=self.keyring.fingerprint(key) if key else "", user=user,
            client=client.ip if client else None, outcome=outcome, reason=reason,
            fields=fields, correlation_id=client.correlation_id if client else None,
        ))

    def invalid(self, reason: InvalidReason, client: ClientInfo | None,
                key: str | None = None) -> None:
        """Record a rejected cookie: rate-limited event + throttle hooks."""
        for hook in self.invalid_hooks:
            hook(client, reason)
        address = (client.ip if client else None) or "-"
        now = self.clock()
        start, count = self._invalid_window.get(address, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        self._invalid_window[address] = (start, count + 1)
        if len(self._invalid_window) > 10_000:
            self._invalid_window.clear()
        if count < self.settings.invalid_event_limit:
            self.emit("invalid_session", key=key, client=client, outcome="denied",
                      reason=reason.value)

    def _new_meta(self, now: float, client: ClientInfo | None) -> SessionMeta:
        s = self.settings
        profile = profile_of(client, s.ip_prefix_v4, s.ip_prefix_v6)
        return SessionMeta(
            created=now, last_seen=now, idle=s.idle_timeout.total_seconds(),
            absolute=now + s.absolute_timeout.total_seconds(), rotated_at=now,
            issuer=self.keyring.active.kid, profiles=[profile] if profile else [],
        )

    def open_record(self, key: str) -> Opened | None:
        """Load and open the record under ``key``; ``None`` if absent or undecodable
        (a ``decode_failed`` event fires for the latter)."""
        stored = self.store.load(key)
        if stored is None:
            return None
        try:
            return self.sealer.open(key, stored)
        except CodecError as exc:
            self.emit("decode_failed", key=key,
                      outcome="denied", reason="undecodable", detail=exc.reason)
            return None

    def user_key(self, user: str, key: Key | None = None) -> str:
        """The per-user index key of ``user`` under ``key`` (default: active)."""
        return ids.user_key(user, key or self.keyring.active)

    def _bind_new_id(self, session: Session, key: Key | None = None, *,
                     session_id: str | None = None) -> str:
        # ``session_id`` is only ever a daemon-reserved ID (daemon/reserved.py),
        # never a client-supplied one.
        key = key or self.keyring.active
        session_id = session_id or ids.new_session_id()
        skey = ids.storage_key(session_id, key)
        session._bind(session_id, ids.cookie_value(session_id, key), skey, 0)
        session.cookie_changed = True
        session.meta.issuer = key.kid
        return skey

    # ------------------------------------------------------------------ new

    def new(self, *, client: ClientInfo | None = None, mode: OpenMode | None = None) -> Session:
        """A new, empty session; nothing is stored until it holds data (lazy)."""
        meta = self._new_meta(self.clock(), client)
        return Session(self, meta=meta, data_json=b"{}", mode=mode or self.settings.default_mode,
                       client=client)

    # ----------------------------------------------------------------- load

    def load(self, cookie_value: object, *, client: ClientInfo | None = None,
             mode: OpenMode | None = None) -> Session | None:
        """The session for a client-supplied cookie value, or ``None``.

        ``None`` covers malformed, forged, unknown, expired, revoked, tampered
        and rotated-away-after-grace values alike (strict mode).  In
        ``exclusive`` mode the lease is held until :meth:`save` + :meth:`release`
        (or use :meth:`open`).

        Raises:
            StoreError: the store is down (never ``None`` for an outage).
            LockTimeoutError: ``exclusive`` mode could not get the lease in time.
        """
        mode = mode or self.settings.default_mode
        parsed = ids.parse_cookie_value(cookie_value, self.keyring)
        if parsed is None:
            if cookie_value:
                self.invalid(InvalidReason.MALFORMED, client)
            return None
        session_id, key = parsed
        skey = ids.storage_key(session_id, key)
        if mode != "exclusive":
            return _loading.load_id(self, session_id, key, skey, client, mode,
                                    cookie=str(cookie_value))
        return _loading.load_exclusive(self, session_id, key, skey, client)


    # ----------------------------------------------------------------- save

    def save(self, session: Session) -> None:
        """Persist the session if it changed (a read-only request writes nothing).

        A new session with no data stays unstored (lazy creation).

        Raises:
            SessionReadOnlyError: opened in ``read`` mode.
            SessionGoneError: ended (logout/revoke/login elsewhere) meanwhile.
            SessionConflictError: a concurrent request changed the same key.
            LockLostError: exclusive mode and the lease was lost.
            SessionTooLargeError: over ``max_record_bytes``; nothing written.
            TypeError: a value outside the codec's allowlist (names the key).
        """
        if session.mode == "read":
            raise SessionReadOnlyError("this session was opened in read mode and cannot be saved")
        if session.ended:
            raise SessionGoneError("this session has ended (logout, revoke or login elsewhere)")
        data_json = codec.dumps(codec.encode_data(session.data_snapshot()))
        if session.is_new:
            if session.data_snapshot() or session.meta.user is not None:
                _saving.create(self, session, data_json)
            return
        if data_json == session.loaded_json and not session.meta_dirty:
            return
        _saving.write(self, session, data_json)

    def update(self, session: Session, key: str, fn: Callable[[Any], Any]) -> Any:
        """Atomic read-modify-write of one key, retried on conflict.

        ``fn`` receives the key's current stored value (``None`` if absent) and
        returns the new value; it may run several times.  Other unsaved
        changes of this request are kept (and merged on the next save).

        Raises:
            SessionGoneError: the session ended meanwhile.
            SessionConflictError: still conflicting after many retries.
            SessionReadOnlyError: opened in ``read`` mode.
        """
        return _saving.update(self, session, key, fn)

    # ------------------------------------------------- open / release (leases)

    @contextmanager
    def open(self, cookie_value: object, *, client: ClientInfo | None = None,
             mode: OpenMode | None = None) -> Iterator[Session]:
        """Load (or start) a session, save it on success, always release its lease.

        Raises:
            see :meth:`load` and :meth:`save`.
        """
        session = self.load(cookie_value, client=client, mode=mode)
        if session is None:
            session = self.new(client=client, mode=mode)
        try:
            yield session
            if not session.ended and session.mode != "read":
                self.save(session)
        finally:
            self.release(session)

    def release(self, session: Session) -> None:
        """Release an exclusive-mode lease (no-op otherwise)."""
        lease = self._leases.pop(id(session), None)
        if lease is not None:
            lease.release()
        session.lock_token = None

    # ------------------------------------------------------- auth lifecycle

    def login(self, session: Session, user: str, *, level: int = 1, pending: bool = False,
              keep_data: bool = True, fresh: bool = True) -> Session:
        """Attach ``user`` and rotate to a new ID; the old ID is dead at once.

        ``keep_data`` carries the data over, except when a *different* user
        was logged in (then it starts empty).  ``pending=True`` records a
        half-open login (e.g. MFA pending): never fully authenticated.
        ``fresh=False`` (remember-me) records no ``auth_time``, so
        ``require_recent_auth`` still asks for the password.

        Raises:
            SessionLimitError: ``max_sessions_per_user`` reached with policy ``reject``.
            ValueError: empty user id.
        """
        if not isinstance(user, str) or not user:
            raise ValueError("user must be a non-empty string")
        self._enforce_session_limit(user, session)
        if session.meta.user not in (None, user) or not keep_data:
            session.data_snapshot().clear()
        now = self.clock()
        meta = session.meta
        meta.user, meta.auth_level, meta.pending = user, level, pending
        meta.auth_time = now if fresh else None
        meta.absolute = now + self.settings.absolute_timeout.total_seconds()
        meta.elevated_until = None
        self._reissue(session, reason="login")
        self.emit("login", key=session.storage_key, user=user, client=session.client,
                  auth_level=level, pending=pending)
        return session

    def rotate(self, session: Session, *, reason: str = "privilege_change") -> Session:
        """Rotate to a new ID with no grace (role or privilege change).

        Raises:
            SessionGoneError: the session ended meanwhile.
        """
        self._reissue(session, reason=reason)
        return session

    def elevate(self, session: Session, duration: timedelta = timedelta(minutes=5)) -> Session:
        """Step-up after the app re-authenticated the user: new ID (no grace),
        fresh ``auth_time``, elevated for ``duration``.

        Raises:
            ReauthenticationRequired: no user is logged in.
        """
        if session.meta.user is None:
            raise ReauthenticationRequired("log in before elevating the session")
        now = self.clock()
        session.meta.auth_time = now
        session.meta.elevated_until = now + duration.total_seconds()
        self._reissue(session, reason="elevate")
        self.emit("elevated", key=session.storage_key, user=session.user, client=session.client,
                  until=session.meta.elevated_until)
        return session

    def is_elevated(self, session: Session) -> bool:
        """True inside the step-up window."""
        return session.elevated_at(self.clock())

    def require_recent_auth(self, session: Session, max_age: timedelta) -> None:
        """Guard for sensitive actions: fully authenticated within ``max_age``.

        Raises:
            ReauthenticationRequired: not logged in, MFA pending, or too old.
        """
        try:
            session.check_recent_auth(max_age, self.clock())
        except ReauthenticationRequired as exc:
            if exc.reason == "auth_too_old":
                self.emit("reauth_required", key=session.storage_key, user=session.user,
                          outcome="denied", reason="auth_too_old")
            raise

    def _reissue(self, session: Session, *, reason: str) -> None:
        """Move the session to a fresh ID and delete the old record (no grace)."""
        if session.ended:
            raise SessionGoneError("this session has ended (logout, revoke or login elsewhere)")
        old_key = session.storage_key
        self.release(session)
        now = self.clock()
        session.meta.rotated_at = now
        session.meta.predecessor = None
        if old_key is None:
            session.meta.created = now
        _saving.create(self, session, codec.dumps(codec.encode_data(session.data_snapshot())))
        if old_key is not None:
            self.store.delete(old_key)
            self.emit("rotated", key=session.storage_key, user=session.user, reason=reason,
                      previous=self.keyring.fingerprint(old_key))

    def _enforce_session_limit(self, user: str, current: Session) -> None:
        limit = self.settings.max_sessions_per_user
        if limit is None:
            return
        others = [i for i in inventory.sessions_of(self, user)
                  if i.handle != current.storage_key]
        if len(others) < limit:
            return
        if self.settings.session_limit_policy == "reject":
            self.emit("session_limit", user=user, outcome="denied", reason="reject")
            raise SessionLimitError(f"user already has {len(others)} sessions (limit {limit})")
        for info in sorted(others, key=lambda i: i.last_seen)[: len(others) - limit + 1]:
            self.store.delete(info.handle)
            self.emit("revoked", key=info.handle, user=user, reason="session_limit")

    def logout(self, session: Session) -> None:
        """End the session: delete the record; the cookie must be cleared.

        An in-flight save on the same session then fails with
        ``SessionGoneError`` instead of resurrecting it.  Logging out an
        anonymous, never-stored session writes nothing.
        """
        self._end(session, "logout")

    def destroy(self, session: Session) -> None:
        """Like :meth:`logout`, for sessions without a login."""
        self._end(session, "destroyed")

    def _end(self, session: Session, event: str, *, reason: str = "") -> None:
        self.release(session)
        if session.storage_key is not None:
            self.store.delete(session.storage_key)
            self.emit(event, key=session.storage_key, user=session.user, client=session.client,
                      reason=reason)
        session.ended = True
        session.data_snapshot().clear()

    # ------------------------------------------------------------- inventory

    def sessions_of(self, user: str, *, current: Session | None = None
                    ) -> list[inventory.SessionInfo]:
        """Metadata of every live session of ``user`` (never IDs), newest first.
        Cost: O(that user's sessions)."""
        return inventory.sessions_of(self, user, current=current)

    def revoke(self, handle: str, *, reason: str = "admin") -> bool:
        """End the session with this opaque handle; True if it existed."""
        return inventory.revoke(self, handle, reason=reason)

    def revoke_user(self, user: str, *, keep: Session | str | None = None) -> int:
        """End every session of ``user`` except ``keep`` (a session or handle).

        Returns the number ended.  Cost: O(that user's sessions).
        """
        return inventory.revoke_user(self, user, keep=keep)

    def revoke_device(self, session: Session, handle: str, *,
                      max_auth_age: timedelta = timedelta(minutes=5)) -> bool:
        """A user ends one of *their own* sessions ("your devices").

        Raises:
            ReauthenticationRequired: the caller did not authenticate recently.
        """
        self.require_recent_auth(session, max_auth_age)
        if session.user is None or not any(
            i.handle == handle for i in inventory.sessions_of(self, session.user)
        ):
            return False
        return inventory.revoke(self, handle, reason="user")

    def cleanup(self, *, batch: int = 500, max_batches: int | None = None,
                progress: Callable[[int], None] | None = None) -> int:
        """Delete expired records in short batches; returns how many went.

        Cost grows with the expired records, not the total.  Each batch is one
        short store transaction (measured on SQLite: 500 rows of ~1.2 KB take
        7 ms median, 22 ms worst, so no lock is held anywhere near 50 ms).
        """
        return inventory.cleanup(self, batch=batch, max_batches=max_batches, progress=progress)

    def close(self) -> None:
        """Release leases and close the store."""
        for lease in list(self._leases.values()):
            lease.release()
        self._leases.clear()
        self.store.close()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
