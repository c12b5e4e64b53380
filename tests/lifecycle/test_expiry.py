"""SessionManager.set_expiry: a per-session expiry sealed in the metadata and enforced on load."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessionward.core.clock import FrozenClock
from sessionward.core.errors import (
    SessionGoneError,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from sessionward.stores.memory import MemoryStore
from sessionward.testing import memory_manager


def _stored(clock: FrozenClock):  # type: ignore[no-untyped-def]
    mgr = memory_manager(clock=clock)
    session = mgr.new()
    session["a"] = 1
    mgr.save(session)
    return mgr, session


def test_shorter_idle_ends_the_session_after_it() -> None:
    clock = FrozenClock()
    mgr, session = _stored(clock)
    mgr.set_expiry(session, idle=timedelta(seconds=60))
    mgr.save(session)
    clock.advance(59)
    assert mgr.load(session.cookie_value) is not None
    clock.advance(61)
    assert mgr.load(session.cookie_value) is None


def test_end_time_never_extends_the_absolute_expiry_and_none_restores_it() -> None:
    clock = FrozenClock()
    mgr, session = _stored(clock)
    policy = session.meta.absolute
    mgr.set_expiry(session, at=clock() + 10 * 86400)
    assert session.meta.absolute == policy
    mgr.set_expiry(session, at=clock() + 120)
    assert session.meta.absolute == clock() + 120
    mgr.set_expiry(session)
    assert session.meta.absolute == policy
    assert session.meta.idle == mgr.settings.idle_timeout.total_seconds()


def test_an_end_time_in_the_past_ends_the_session_now() -> None:
    clock = FrozenClock()
    mgr, session = _stored(clock)
    cookie = session.cookie_value
    mgr.set_expiry(session, at=clock() - 1)
    assert session.ended and mgr.load(cookie) is None
    with pytest.raises(SessionGoneError):
        mgr.set_expiry(session, idle=timedelta(seconds=5))


def test_login_starts_a_new_absolute_lifetime() -> None:
    clock = FrozenClock()
    mgr, session = _stored(clock)
    mgr.set_expiry(session, at=clock() + 100)
    clock.advance(50)
    mgr.login(session, "alice")
    assert session.meta.absolute == clock() + mgr.settings.absolute_timeout.total_seconds()
    assert "policy_absolute" not in session.meta.extra


def test_unchanged_expiry_writes_nothing() -> None:
    clock = FrozenClock()
    mgr, session = _stored(clock)
    mgr.set_expiry(session)
    assert not session.meta_dirty
    with pytest.raises(ValueError, match="positive"):
        mgr.set_expiry(session, idle=timedelta(0))


class _TouchFails(MemoryStore):
    """A store whose disk refuses writes for the touch (full disk, read-only replica)."""

    fail: type[Exception] | None = None
    touches = 0

    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        self.touches += 1
        if self.fail is not None:
            raise self.fail("the disk holding the store is full", store="memory")
        return super().touch(key, expires_at=expires_at, touched_at=touched_at)


@pytest.mark.parametrize("error", [StoreUnavailableError, StoreTimeoutError])
def test_a_failed_touch_still_serves_the_read_and_is_retried(
        error: type[StoreUnavailableError | StoreTimeoutError]) -> None:
    """The idle hint is best effort: the read succeeds, the next request touches again,
    and a touch that never lands can only end the session early, never keep it alive."""
    clock = FrozenClock()
    store = _TouchFails(clock=clock)
    mgr = memory_manager(clock=clock, store=store, idle_timeout=timedelta(seconds=600),
                         touch_interval=timedelta(seconds=60))
    session = mgr.new()
    session["a"] = 1
    mgr.save(session)
    store.fail = error
    clock.advance(120)
    assert mgr.load(session.cookie_value) is not None
    assert store.touches == 1
    clock.advance(1)
    assert mgr.load(session.cookie_value) is not None
    assert store.touches == 2  # retried: last_activity did not move
    clock.advance(600 - 121 + 1)
    assert mgr.load(session.cookie_value) is None  # idle counted from the last landed write
    store.fail = None


def test_other_store_errors_from_the_touch_still_raise() -> None:
    clock = FrozenClock()
    store = _TouchFails(clock=clock)
    mgr = memory_manager(clock=clock, store=store, touch_interval=timedelta(seconds=60))
    session = mgr.new()
    session["a"] = 1
    mgr.save(session)
    store.fail = StoreError
    clock.advance(120)
    with pytest.raises(StoreError):
        mgr.load(session.cookie_value)
