"""Client binding: the profile (IP prefix + User-Agent) recorded at creation, and the
ignore / log / rotate / deny / callable policies applied when it changes."""

from __future__ import annotations

from typing import Any

import pytest

from sessionward import SessionManager, Settings
from sessionward.audit.events import Event
from sessionward.core.client import ClientInfo
from sessionward.core.clock import FrozenClock
from sessionward.core.config import BindingPolicy
from sessionward.core.errors import InvalidReason
from sessionward.core.keys import KeyRing
from sessionward.lifecycle.session import Session
from sessionward.stores.base import SessionStore

UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
HOME = ClientInfo(ip="203.0.113.5", user_agent=UA)
AWAY = ClientInfo(ip="198.51.100.7", user_agent=UA)


def build(store: SessionStore, keyring: KeyRing, clock: FrozenClock,
          policy: BindingPolicy = "log",
          **kwargs: Any) -> tuple[SessionManager, list[Event]]:
    mgr = SessionManager(store, keyring, Settings(namespace="test", client_binding=policy),
                         clock=clock, **kwargs)
    seen: list[Event] = []
    mgr.events.subscribe(seen.append)
    return mgr, seen


def start(mgr: SessionManager, client: ClientInfo = HOME) -> Session:
    session = mgr.new(client=client)
    session["cart"] = [1]
    mgr.save(session)
    return session


def changes(events: list[Event]) -> list[Event]:
    return [e for e in events if e.name == "profile_changed"]


class TestPolicies:
    def test_ignore(self, store: SessionStore, keyring: KeyRing, clock: FrozenClock) -> None:
        """`ignore`: any client may use the session, nothing is recorded or emitted."""
        mgr, events = build(store, keyring, clock, "ignore")
        session = start(mgr)
        loaded = mgr.load(session.cookie_value, client=AWAY)
        assert loaded is not None and loaded.cookie_value == session.cookie_value
        assert not changes(events)

    def test_log_default(self, manager: SessionManager, events: list[Event]) -> None:
        """`log` (the default): the session continues, one event carries both profiles."""
        assert manager.settings.client_binding == "log"
        session = start(manager)
        loaded = manager.load(session.cookie_value, client=AWAY)
        assert loaded is not None and not loaded.cookie_changed
        (event,) = changes(events)
        assert event.fields["previous_profile"] == {"ip": "203.0.113.0/24", "ua": UA}
        assert event.fields["current_profile"] == {"ip": "198.51.100.0/24", "ua": UA}
        assert event.reason == "log" and event.fingerprint == session.fingerprint
        again = manager.load(session.cookie_value, client=AWAY)
        assert again is not None and len(changes(events)) == 1  # now a known profile
        assert manager.load(session.cookie_value, client=HOME) is not None
        assert len(changes(events)) == 1

    def test_rotate(self, store: SessionStore, keyring: KeyRing, clock: FrozenClock) -> None:
        """`rotate`: the session continues under a new ID; the old ID is dead."""
        mgr, events = build(store, keyring, clock, "rotate")
        session = start(mgr)
        loaded = mgr.load(session.cookie_value, client=AWAY)
        assert loaded is not None and loaded.cookie_changed
        assert loaded.cookie_value != session.cookie_value and loaded["cart"] == [1]
        assert mgr.load(session.cookie_value, client=AWAY) is None
        fresh = mgr.load(loaded.cookie_value, client=AWAY)
        assert fresh is not None and fresh["cart"] == [1] and not fresh.cookie_changed
        assert len(changes(events)) == 1

    def test_deny(self, store: SessionStore, keyring: KeyRing, clock: FrozenClock) -> None:
        """`deny`: the session is ended for everybody and counted as an invalid cookie."""
        mgr, events = build(store, keyring, clock, "deny")
        reasons: list[InvalidReason] = []
        mgr.invalid_hooks.append(lambda client, reason: reasons.append(reason))
        session = start(mgr)
        assert mgr.load(session.cookie_value, client=AWAY) is None
        assert mgr.load(session.cookie_value, client=HOME) is None
        assert InvalidReason.PROFILE in reasons
        assert [e.reason for e in events if e.name == "revoked"] == ["profile_denied"]
        assert len(changes(events)) == 1

    def test_deny_keeps_same_profile(self, store: SessionStore, keyring: KeyRing,
                                     clock: FrozenClock) -> None:
        """`deny` never hurts the client the session was created for."""
        mgr, events = build(store, keyring, clock, "deny")
        session = start(mgr)
        for _ in range(3):
            assert mgr.load(session.cookie_value, client=HOME) is not None
        assert not changes(events)


class TestCallable:
    @staticmethod
    def same_browser(profiles: list[dict[str, str]], new: dict[str, str]
                     ) -> list[dict[str, str]]:
        """Allow a new address for the same User-Agent; refuse a new browser."""
        if new.get("ua") != profiles[-1].get("ua"):
            raise PermissionError("new browser")
        return [*profiles, new]

    def test_callable_allows_and_denies(self, store: SessionStore, keyring: KeyRing,
                                        clock: FrozenClock) -> None:
        """The callable returns the allowed set; raising denies and ends the session."""
        mgr, events = build(store, keyring, clock, binding=self.same_browser)
        session = start(mgr)
        moved = mgr.load(session.cookie_value, client=AWAY)
        assert moved is not None
        reloaded = mgr.load(session.cookie_value, client=AWAY)
        assert reloaded is not None and len(reloaded.meta.profiles) == 2
        thief = ClientInfo(ip="203.0.113.5", user_agent="curl/8.5")
        assert mgr.load(session.cookie_value, client=thief) is None
        assert mgr.load(session.cookie_value, client=HOME) is None
        assert len(changes(events)) == 2

    def test_callable_that_omits_the_profile_denies(self, store: SessionStore,
                                                    keyring: KeyRing,
                                                    clock: FrozenClock) -> None:
        """Returning a set without the new profile is a denial."""
        mgr, _ = build(store, keyring, clock, binding=lambda profiles, new: profiles)
        session = start(mgr)
        assert mgr.load(session.cookie_value, client=AWAY) is None
        assert mgr.load(session.cookie_value, client=HOME) is None

    def test_callable_runs_even_with_ignore(self, store: SessionStore, keyring: KeyRing,
                                            clock: FrozenClock) -> None:
        """A callable takes precedence over the `ignore` setting."""
        calls: list[dict[str, str]] = []

        def allow(profiles: list[dict[str, str]], new: dict[str, str]) -> list[dict[str, str]]:
            calls.append(new)
            return [*profiles, new]

        mgr, _ = build(store, keyring, clock, "ignore", binding=allow)
        session = start(mgr)
        assert mgr.load(session.cookie_value, client=AWAY) is not None
        assert calls == [{"ip": "198.51.100.0/24", "ua": UA}]


class TestTolerance:
    @pytest.mark.parametrize(("first", "second", "changed"), [
        ("203.0.113.5", "203.0.113.250", False),
        ("203.0.113.5", "203.0.114.5", True),
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", False),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", True),
        ("::ffff:192.0.2.10", "192.0.2.99", False),
    ])
    def test_prefix_tolerance(self, manager: SessionManager, events: list[Event],
                              first: str, second: str, changed: bool) -> None:
        """Moves inside one IPv4 /24 or IPv6 /64 are not a change."""
        session = start(manager, ClientInfo(ip=first, user_agent=UA))
        assert manager.load(session.cookie_value, client=ClientInfo(ip=second, user_agent=UA))
        assert bool(changes(events)) is changed

    def test_user_agent_change_is_a_change(self, manager: SessionManager,
                                           events: list[Event]) -> None:
        """A different User-Agent from the same network is a profile change."""
        session = start(manager)
        other = ClientInfo(ip=HOME.ip, user_agent="Chrome/126.0")
        assert manager.load(session.cookie_value, client=other) is not None
        (event,) = changes(events)
        assert event.fields["current_profile"] == {"ip": "203.0.113.0/24", "ua": "Chrome/126.0"}

    def test_profiles_compared_by_value_after_store_round_trip(
        self, manager: SessionManager, events: list[Event], clock: FrozenClock,
    ) -> None:
        """Many loads by the same client (fresh ClientInfo objects) never look like a change."""
        session = start(manager)
        for _ in range(10):
            clock.advance(30)
            client = ClientInfo(ip="203.0.113.5", user_agent=str(UA))
            assert manager.load(session.cookie_value, client=client) is not None
        assert not changes(events)

    def test_custom_prefixes(self, store: SessionStore, keyring: KeyRing,
                             clock: FrozenClock) -> None:
        """ip_prefix_v4=32 makes every address change count."""
        mgr = SessionManager(store, keyring, Settings(namespace="test", ip_prefix_v4=32),
                             clock=clock)
        seen: list[Event] = []
        mgr.events.subscribe(seen.append)
        session = start(mgr)
        assert mgr.load(session.cookie_value, client=ClientInfo(ip="203.0.113.6",
                                                               user_agent=UA))
        (event,) = changes(seen)
        assert event.fields["previous_profile"]["ip"] == "203.0.113.5/32"

    def test_unknown_client_is_not_a_change(self, manager: SessionManager,
                                            events: list[Event]) -> None:
        """A request with no client information neither changes nor replaces the profile."""
        session = start(manager)
        assert manager.load(session.cookie_value, client=None) is not None
        assert manager.load(session.cookie_value, client=ClientInfo()) is not None
        assert manager.load(session.cookie_value, client=HOME) is not None
        assert not changes(events)
