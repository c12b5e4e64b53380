"""Lease renewal by the shared renewer thread (real time, short TTLs, bounded waits)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from sessionward import LockTimeoutError, SessionManager, Settings
from sessionward.core.keys import KeyRing
from sessionward.stores.memory import MemoryStore

TTL = 0.3


def manager() -> SessionManager:
    settings = Settings(namespace="l", lock_ttl=timedelta(seconds=TTL),
                        lock_wait=timedelta(seconds=0.2))
    return SessionManager(MemoryStore(), KeyRing.generate("l"), settings)


def test_healthy_holder_keeps_its_lease_past_the_ttl() -> None:
    """The renewer extends the lease, so after 4 TTLs nobody else can take it."""
    mgr = manager()
    session = mgr.new()
    session["a"] = 1
    mgr.save(session)
    held = mgr.load(session.cookie_value, mode="exclusive")
    assert held is not None
    time.sleep(4 * TTL)
    with pytest.raises(LockTimeoutError):
        mgr.load(session.cookie_value, mode="exclusive")
    held["a"] = 2
    mgr.save(held)  # fenced save still accepted: the lease was never lost
    mgr.release(held)
    again = mgr.load(session.cookie_value, mode="exclusive")
    assert again is not None and again["a"] == 2
    mgr.release(again)


def test_failed_renewal_marks_lost_and_fires_lock_lost() -> None:
    """When the lock is taken away, the next renewal fails: lock_lost, and saves refuse."""
    from sessionward import LockLostError

    mgr = manager()
    seen: list[Any] = []
    fired = threading.Event()

    def on_event(event: Any) -> None:
        if event.name == "lock_lost":
            seen.append(event)
            fired.set()

    mgr.events.subscribe(on_event)
    session = mgr.new()
    session["a"] = 1
    mgr.save(session)
    held = mgr.load(session.cookie_value, mode="exclusive")
    assert held is not None and held.storage_key is not None
    store = mgr.store
    assert isinstance(store, MemoryStore)
    store._locks.clear()  # the lock vanishes (e.g. an admin unlock)
    store.lock_acquire(held.storage_key, "someone-else", 30)
    assert fired.wait(timeout=5 * TTL)
    assert [e.reason for e in seen] == ["renewal_failed"]
    held["a"] = 3
    with pytest.raises(LockLostError):
        mgr.save(held)
    mgr.release(held)


def test_release_during_renewal_is_not_a_loss() -> None:
    """Many short leases released at random moments never fire lock_lost."""
    mgr = manager()
    lost: list[Any] = []
    mgr.events.subscribe(lambda e: lost.append(e) if e.name == "lock_lost" else None)
    session = mgr.new()
    session["a"] = 0
    mgr.save(session)
    deadline = time.monotonic() + 3 * TTL
    count = 0
    while time.monotonic() < deadline and count < 2000:
        with mgr.open(session.cookie_value, mode="exclusive") as s:
            s["a"] = s["a"] + 1
        count += 1
    assert lost == []
    final = mgr.load(session.cookie_value)
    assert final is not None and final["a"] == count


def test_exclusive_load_after_periodic_rotation_flags_the_new_cookie() -> None:
    """An exclusive load that follows a periodic rotation reports ``cookie_changed``, so
    integrations send the successor's cookie (found through the PHP client, issue 17)."""
    from sessionward.core.clock import FrozenClock

    clock = FrozenClock()
    mgr = SessionManager(MemoryStore(clock=clock), keyring=KeyRing.generate("t"), clock=clock)
    session = mgr.new()
    session["a"] = 1
    mgr.save(session)
    old = session.cookie_value
    clock.advance(16 * 60)
    loaded = mgr.load(old, mode="exclusive")
    assert loaded is not None and loaded.cookie_value != old
    assert loaded.cookie_changed is True
    mgr.release(loaded)
