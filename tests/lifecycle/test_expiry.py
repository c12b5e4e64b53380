"""SessionManager.set_expiry: a per-session expiry sealed in the metadata and enforced on load."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessionward.core.clock import FrozenClock
from sessionward.core.errors import SessionGoneError
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
