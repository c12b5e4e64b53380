"""Step-up and freshness (T-21): auth time and level, recent-auth guards, MFA-pending
logins, elevation with rotation and expiry, and periodic revalidation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessionward import SessionManager, Settings
from sessionward.audit.events import Event
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import ReauthenticationRequired
from sessionward.core.keys import KeyRing
from sessionward.lifecycle.session import Session
from sessionward.stores.base import SessionStore


def logged_in(manager: SessionManager, user: str = "alice", *, level: int = 1,
              pending: bool = False) -> Session:
    session = manager.new()
    manager.login(session, user, level=level, pending=pending)
    return session


def reload(manager: SessionManager, session: Session) -> Session:
    loaded = manager.load(session.cookie_value)
    assert loaded is not None
    return loaded


class TestAuthTime:
    def test_auth_time_and_level_are_stored(self, manager: SessionManager,
                                            clock: FrozenClock) -> None:
        """login records when and how strongly the user authenticated; both survive a reload."""
        session = logged_in(manager, level=2)
        clock.advance(10)
        loaded = reload(manager, session)
        assert loaded.auth_time == clock.now - 10
        assert loaded.meta.auth_level == 2 and loaded.is_fully_authenticated

    def test_require_recent_auth_window(self, manager: SessionManager, clock: FrozenClock,
                                        events: list[Event]) -> None:
        """Passes up to max_age (inclusive), refuses one tick later with an event."""
        session = logged_in(manager)
        clock.advance(300)
        manager.require_recent_auth(reload(manager, session), timedelta(minutes=5))
        clock.advance(0.001)
        with pytest.raises(ReauthenticationRequired):
            manager.require_recent_auth(reload(manager, session), timedelta(minutes=5))
        assert [e.reason for e in events if e.name == "reauth_required"] == ["auth_too_old"]

    def test_anonymous_session_refused(self, manager: SessionManager) -> None:
        """A session without a user never passes the recent-auth guard."""
        session = manager.new()
        session["x"] = 1
        manager.save(session)
        with pytest.raises(ReauthenticationRequired):
            manager.require_recent_auth(session, timedelta(hours=1))


class TestPending:
    def test_mfa_pending_is_never_fully_authenticated(self, manager: SessionManager,
                                                      clock: FrozenClock) -> None:
        """A pending login is authenticated but not fully; guards refuse it."""
        session = logged_in(manager, pending=True)
        loaded = reload(manager, session)
        assert loaded.is_authenticated and not loaded.is_fully_authenticated
        with pytest.raises(ReauthenticationRequired):
            manager.require_recent_auth(loaded, timedelta(hours=1))
        with pytest.raises(ReauthenticationRequired):
            manager.revoke_device(loaded, loaded.handle or "")

    def test_completing_mfa_rotates_and_authenticates(self, manager: SessionManager) -> None:
        """Finishing the second factor is a new login: new ID, full authentication."""
        pending = logged_in(manager, pending=True)
        old_cookie = pending.cookie_value
        manager.login(pending, "alice", level=2)
        assert pending.cookie_value != old_cookie
        assert manager.load(old_cookie) is None
        loaded = reload(manager, pending)
        assert loaded.is_fully_authenticated and loaded.meta.auth_level == 2
        manager.require_recent_auth(loaded, timedelta(minutes=1))


class TestElevation:
    def test_elevate_rotates_without_grace(self, manager: SessionManager,
                                           events: list[Event]) -> None:
        """Step-up issues a new ID; the old one is dead at once."""
        session = logged_in(manager)
        session["cart"] = [3]
        manager.save(session)
        old = session.cookie_value
        manager.elevate(session)
        assert session.cookie_value != old and session.cookie_changed
        assert manager.load(old) is None
        loaded = reload(manager, session)
        assert loaded["cart"] == [3] and manager.is_elevated(loaded)
        assert [e.name for e in events].count("elevated") == 1

    def test_elevation_expires(self, manager: SessionManager, clock: FrozenClock) -> None:
        """Elevated for exactly ``duration``; the session itself lives on."""
        session = logged_in(manager)
        manager.elevate(session, timedelta(minutes=2))
        clock.advance(119.999)
        assert manager.is_elevated(reload(manager, session))
        clock.advance(0.001)
        loaded = reload(manager, session)
        assert not manager.is_elevated(loaded) and loaded.user == "alice"

    def test_elevate_refreshes_auth_time(self, manager: SessionManager,
                                         clock: FrozenClock) -> None:
        """After re-authenticating, the recent-auth guard passes again."""
        session = logged_in(manager)
        clock.advance(600)
        with pytest.raises(ReauthenticationRequired):
            manager.require_recent_auth(session, timedelta(minutes=5))
        manager.elevate(session)
        manager.require_recent_auth(reload(manager, session), timedelta(minutes=5))

    def test_elevate_requires_a_user(self, manager: SessionManager) -> None:
        """An anonymous session cannot be elevated."""
        with pytest.raises(ReauthenticationRequired):
            manager.elevate(manager.new())

    def test_new_login_drops_elevation(self, manager: SessionManager) -> None:
        """A fresh login never inherits an earlier elevation."""
        session = logged_in(manager)
        manager.elevate(session)
        manager.login(session, "alice")
        assert not manager.is_elevated(reload(manager, session))


class TestRevalidation:
    @pytest.fixture(name="reval")
    def reval_fixture(self, store: SessionStore, keyring: KeyRing, clock: FrozenClock
                      ) -> tuple[SessionManager, dict[str, bool], list[str], list[Event]]:
        verdicts: dict[str, bool] = {}
        calls: list[str] = []

        def check(user: str) -> bool:
            calls.append(user)
            return verdicts.get(user, True)

        settings = Settings(namespace="test", revalidate_interval=timedelta(seconds=60))
        mgr = SessionManager(store, keyring, settings, clock=clock, revalidate=check)
        seen: list[Event] = []
        mgr.events.subscribe(seen.append)
        return mgr, verdicts, calls, seen

    def test_callback_every_interval(
        self, reval: tuple[SessionManager, dict[str, bool], list[str], list[Event]],
        clock: FrozenClock,
    ) -> None:
        """The callback runs once per interval, not on every request."""
        mgr, _, calls, _ = reval
        session = logged_in(mgr)
        for _ in range(5):
            clock.advance(11)
            reload(mgr, session)
        assert calls == []
        clock.advance(5)  # 60 s since login
        reload(mgr, session)
        assert calls == ["alice"]
        clock.advance(59)
        reload(mgr, session)
        assert calls == ["alice"]
        clock.advance(1)
        reload(mgr, session)
        assert calls == ["alice", "alice"]

    def test_false_ends_the_session(
        self, reval: tuple[SessionManager, dict[str, bool], list[str], list[Event]],
        clock: FrozenClock,
    ) -> None:
        """A user who is no longer valid loses the session at the next check."""
        mgr, verdicts, _, events = reval
        session, other = logged_in(mgr), logged_in(mgr, "bob")
        verdicts["alice"] = False
        clock.advance(60)
        assert mgr.load(session.cookie_value) is None
        assert mgr.load(session.cookie_value) is None  # revoked, not merely refused
        assert mgr.load(other.cookie_value) is not None
        failed = [e for e in events if e.name == "revalidation_failed"]
        assert [e.user for e in failed] == ["alice"]

    def test_anonymous_sessions_never_revalidated(
        self, reval: tuple[SessionManager, dict[str, bool], list[str], list[Event]],
        clock: FrozenClock,
    ) -> None:
        """Without a user there is nothing to revalidate."""
        mgr, _, calls, _ = reval
        session = mgr.new()
        session["x"] = 1
        mgr.save(session)
        clock.advance(120)
        reload(mgr, session)
        assert calls == []
