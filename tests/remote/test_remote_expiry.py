"""set_expiry, metadata-only saves and save(create_empty=True) behave the same
embedded and through the daemon (1.0's client raised ConfigurationError for
set_expiry, never sent a metadata-only change and stored nothing for
create_empty)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionward import SessionGoneError, SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.stores.sqlite import SQLiteStore

from svc_daemon import make_remote_manager

pytestmark = pytest.mark.daemon


@pytest.fixture(name="clock")
def clock_fixture() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(name="mgr", params=["embedded", "daemon"])
def mgr_fixture(request: pytest.FixtureRequest, tmp_path: Path,
                clock: FrozenClock) -> Iterator[Any]:
    if request.param == "daemon":
        remote = make_remote_manager(tmp_path, clock, namespace="test")
        yield remote
        remote.close()
        return
    store = SQLiteStore(tmp_path / "s.db", clock=clock)
    yield SessionManager(store, KeyRing.generate("test"), Settings(namespace="test"), clock=clock)
    store.close()


def stored(mgr: Any) -> str:
    session = mgr.new()
    session["k"] = "v"
    mgr.save(session)
    return str(session.cookie_value)


class TestSetExpiry:
    def test_shorter_idle_is_enforced(self, mgr: Any, clock: FrozenClock) -> None:
        """A metadata-only change (no data changed) is saved and then enforced."""
        cookie = stored(mgr)
        session = mgr.load(cookie)
        mgr.set_expiry(session, idle=timedelta(seconds=60))
        assert session.meta.idle == 60
        mgr.save(session)
        clock.advance(59)
        assert mgr.load(cookie) is not None
        clock.advance(61)  # past 60 s since any activity
        assert mgr.load(cookie) is None

    def test_longer_idle_outlives_the_setting_not_the_absolute(
            self, mgr: Any, clock: FrozenClock) -> None:
        cookie = stored(mgr)
        session = mgr.load(cookie)
        mgr.set_expiry(session, idle=timedelta(hours=5))
        mgr.save(session)
        clock.advance(3 * 3600)  # past the 30 min setting
        assert mgr.load(cookie) is not None
        clock.advance(10 * 3600)  # past the 12 h absolute
        assert mgr.load(cookie) is None

    def test_end_time(self, mgr: Any, clock: FrozenClock) -> None:
        cookie = stored(mgr)
        session = mgr.load(cookie)
        mgr.set_expiry(session, at=clock() + 100)
        mgr.save(session)
        clock.advance(99)
        assert mgr.load(cookie) is not None
        clock.advance(2)
        assert mgr.load(cookie) is None

    def test_restoring_the_setting(self, mgr: Any, clock: FrozenClock) -> None:
        cookie = stored(mgr)
        session = mgr.load(cookie)
        mgr.set_expiry(session, at=clock() + 100)
        mgr.save(session)
        session = mgr.load(cookie)
        mgr.set_expiry(session, at=None)
        mgr.save(session)
        clock.advance(200)
        assert mgr.load(cookie) is not None

    def test_end_time_in_the_past_ends_now(self, mgr: Any, clock: FrozenClock) -> None:
        cookie = stored(mgr)
        session = mgr.load(cookie)
        mgr.set_expiry(session, at=clock() - 1)
        assert session.ended
        assert mgr.load(cookie) is None
        with pytest.raises(SessionGoneError):
            mgr.set_expiry(session, idle=timedelta(seconds=5))

    def test_new_session_carries_its_expiry(self, mgr: Any, clock: FrozenClock) -> None:
        session = mgr.new()
        session["a"] = 1
        mgr.set_expiry(session, idle=timedelta(seconds=30))
        mgr.save(session)
        cookie = session.cookie_value
        clock.advance(31)
        assert mgr.load(cookie) is None

    def test_non_positive_idle_refused(self, mgr: Any) -> None:
        session = mgr.load(stored(mgr))
        with pytest.raises(ValueError, match="positive"):
            mgr.set_expiry(session, idle=timedelta(0))


class TestCreateEmpty:
    def test_explicit_empty_save_stores(self, mgr: Any) -> None:
        """``save(create_empty=True)`` stores an empty session (Django's
        ``request.session.save()``); a plain save of it still stores nothing."""
        lazy = mgr.new()
        mgr.save(lazy)
        assert lazy.cookie_value is None
        explicit = mgr.new()
        mgr.save(explicit, create_empty=True)
        assert explicit.cookie_value is not None
        loaded = mgr.load(explicit.cookie_value)
        assert loaded is not None and dict(loaded.data_snapshot()) == {}
