"""Hostile store writers, through every store (issue 15, items 6 and 7).

* A value of the wrong type or shape in any field of a session record or kv
  entry is "no session" / a refused token / a locked throttle, or a clean
  ``CorruptEntryError`` from the store itself: never ``TypeError``,
  ``ValueError``, ``KeyError`` or ``CodecError`` to the app.
* A session hidden from its user's index (so that "sign out everywhere" and
  ``sessions_of`` miss it) does not load.
* A forward-dated plaintext touch hint does not outlive the idle timeout.

Each test loops over its cases inside one store (a fresh entry per case) and
reports every failing case at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sessionward import SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import CorruptEntryError, StoreError
from sessionward.core.keys import KeyRing
from sessionward.guards.throttle import Throttle
from sessionward.guards.tokens import OneTimeTokens
from sessionward.stores.base import SessionStore

from contract._helpers import saved
from contract._tamper import tamper_for

ISSUE_CASES = {"sw_sessions.blob=int", "sw_sessions.blob=float", "sw_sessions.touched_at=text",
               "sw_sessions.version=text"}
"""The SQLite cases the issue reported (TypeError from load/save before)."""


def _manager(store: SessionStore, keyring: KeyRing, clock: FrozenClock
             ) -> tuple[SessionManager, list[Any]]:
    manager = SessionManager(store, keyring, Settings(namespace="test"), clock=clock)
    seen: list[Any] = []
    manager.events.subscribe(seen.append)
    return manager, seen


def _signed_in(manager: SessionManager, user: str = "alice") -> tuple[str, str]:
    """A saved, signed-in session: ``(cookie, storage key)``."""
    session = manager.load(saved(manager, k="v"))
    assert session is not None
    manager.login(session, user)
    assert session.cookie_value is not None and session.storage_key is not None
    return session.cookie_value, session.storage_key


def _store_load(store: SessionStore, key: str) -> str:
    """What ``store.load`` did: ``record``, ``none`` or ``corrupt`` (else it raises)."""
    try:
        return "none" if store.load(key) is None else "record"
    except CorruptEntryError:
        return "corrupt"


def test_wrong_typed_record_fields_are_no_session(store_kind: str, store: SessionStore,
                                                  keyring: KeyRing, clock: FrozenClock) -> None:
    manager, seen = _manager(store, keyring, clock)
    failures: list[str] = []
    cases = tamper_for(store_kind, store).record_cases()
    assert cases
    for label, apply in cases:
        cookie, key = _signed_in(manager)
        apply(key)
        del seen[:]
        try:
            outcome = _store_load(store, key)
            session = manager.load(cookie)
            manager.sessions_of("alice")  # one bad row must not break listings...
            manager.revoke_user("alice")  # ...nor "sign out everywhere"
        except Exception as exc:
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        if session is not None and (session.get("k") != "v" or outcome != "record"):
            failures.append(f"{label}: loaded a session from a corrupt record")
        if session is None and not any(e.name in ("decode_failed", "invalid_session",
                                                  "expired", "session_index_mismatch")
                                       for e in seen):
            failures.append(f"{label}: refused without an event")
        if label in ISSUE_CASES and (outcome != "corrupt" or session is not None):
            failures.append(f"{label}: store.load gave {outcome}, expected CorruptEntryError")
    assert not failures, "\n".join(failures)


def test_wrong_typed_kv_entries_fail_closed(store_kind: str, store: SessionStore,
                                            keyring: KeyRing, clock: FrozenClock) -> None:
    """A corrupt throttle counter locks (never resets); a corrupt token is refused."""
    failures: list[str] = []
    tamper = tamper_for(store_kind, store)
    for label, apply in tamper.kv_cases():
        throttle = Throttle(store, keyring, clock=clock, namespace="login")
        key = throttle.key_for(user=f"u{len(failures)}{label}".replace(" ", "")[:40].lower()
                               .replace("=", "").replace(".", "").replace("'", ""))
        throttle.hit(key)
        apply(key.keys[0])
        try:
            try:
                valid = store.kv_get(key.keys[0])
            except CorruptEntryError:
                valid = None
            left = throttle.check(key)
            throttle.hit(key)
            again = throttle.check(key)
        except Exception as exc:
            failures.append(f"{label}: throttle raised {type(exc).__name__}: {exc}")
            continue
        # Unlocked is right only when the writer's value still reads as a valid
        # entry (SQLite affinity turned it into one) or as an expired one.
        if left == 0 and valid is not None and not valid[0].startswith(b"{"):
            failures.append(f"{label}: a corrupt counter unlocked the key")
        if left > 0 and again <= 0:
            failures.append(f"{label}: the lockout did not hold")
        if left > 0:
            clock.advance(throttle.cap + 1)
            if throttle.check(key) != 0:
                failures.append(f"{label}: the corrupt entry never healed")
    for label, apply in tamper.kv_cases():
        tokens = OneTimeTokens(store, keyring, clock=clock)
        token = tokens.issue("reset", "alice", 600)
        apply(OneTimeTokens._kv_key(keyring.active, "reset", token))
        version_only = "version" in label or label.startswith(("n=", "n "))
        try:
            # A corrupt *version* beside an intact sealed value may be accepted:
            # kv_take reads only the value, and the value is authentic.
            if tokens.consume(token, "reset") is not None and not version_only:
                failures.append(f"{label}: a corrupt token was accepted")
        except Exception as exc:
            failures.append(f"{label}: consume raised {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_session_hidden_from_user_index_does_not_load(
        store_kind: str, store: SessionStore, keyring: KeyRing, clock: FrozenClock) -> None:
    """Item 7: "sign out everywhere" cannot miss a session that still loads."""
    manager, seen = _manager(store, keyring, clock)
    failures: list[str] = []
    for label, apply in tamper_for(store_kind, store).hide_cases():
        cookie, key = _signed_in(manager, "bob")
        apply(key)
        del seen[:]
        try:
            listed = [i.handle for i in manager.sessions_of("bob")]
        except StoreError:
            listed = []  # the index itself is corrupt: a clean error
        if key in listed:
            failures.append(f"{label}: the tamper did not hide the session (test broken)")
        try:
            session = manager.load(cookie)
        except Exception as exc:
            failures.append(f"{label}: load raised {type(exc).__name__}")
            continue
        if session is not None:
            failures.append(f"{label}: a session hidden from the user index loaded")
        elif not any(e.name in ("session_index_mismatch", "decode_failed") for e in seen):
            failures.append(f"{label}: refused without a security event")
    assert not failures, "\n".join(failures)


def test_indexed_sessions_still_load_and_revoke(store: SessionStore, keyring: KeyRing,
                                                clock: FrozenClock) -> None:
    """The control: untampered signed-in sessions load, and revoke_user ends them."""
    manager, _ = _manager(store, keyring, clock)
    cookies = [_signed_in(manager, "carol")[0] for _ in range(3)]
    assert all(manager.load(c) is not None for c in cookies)
    assert manager.revoke_user("carol") == 3
    assert all(manager.load(c) is None for c in cookies)


def test_forward_dated_touch_hint_does_not_outlive_idle(store: SessionStore, keyring: KeyRing,
                                                        clock: FrozenClock) -> None:
    """Item 7: the plaintext hint dated into the future is ignored; a hint within
    the skew still counts (the cheap touch keeps working)."""
    manager = SessionManager(store, keyring,
                             Settings(namespace="test", idle_timeout=timedelta(minutes=30)),
                             clock=clock)
    cookie, key = _signed_in(manager, "dave")
    far = clock() + 10 * 365 * 86400
    assert store.touch(key, expires_at=far, touched_at=far)
    clock.advance(31 * 60)
    assert manager.load(cookie) is None

    cookie, key = _signed_in(manager, "dave")
    clock.advance(20 * 60)
    assert store.touch(key, expires_at=clock() + 3600, touched_at=clock() + 3)  # skew: counts
    clock.advance(20 * 60)
    assert manager.load(cookie) is not None
