"""Remember-me: split tokens, rotation on every use, theft detection that revokes
the family and every session of the user."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sessionward import SessionManager, Settings
from sessionward.audit.events import Event
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import ReauthenticationRequired
from sessionward.core.keys import KeyRing
from sessionward.guards.remember import MAX_FAMILIES, RememberMe
from sessionward.lifecycle.session import Session
from sessionward.stores.base import SessionStore


@pytest.fixture(name="remember")
def remember_fixture(manager: SessionManager) -> RememberMe:
    return RememberMe(manager)


def logged_in(manager: SessionManager, user: str) -> Session:
    session = manager.new()
    manager.login(session, user)
    return session


def names(events: list[Event]) -> list[str]:
    return [e.name for e in events]


class TestRotation:
    def test_use_rotates(self, remember: RememberMe) -> None:
        """Each use returns the user and a fresh cookie; the chain keeps working."""
        cookie = remember.issue("alice")
        seen = {cookie}
        for _ in range(5):
            result = remember.use(cookie)
            assert result is not None
            user, cookie = result
            assert user == "alice" and cookie not in seen
            seen.add(cookie)

    def test_validator_never_stored(self, manager: SessionManager, store: SessionStore) -> None:
        """The store sees neither the selector, the validator nor the user id in clear."""
        written: list[tuple[str, bytes]] = []
        original = store.kv_create

        def spy(key: str, value: bytes, *, expires_at: float) -> bool:
            written.append((key, value))
            return original(key, value, expires_at=expires_at)

        store.kv_create = spy  # type: ignore[method-assign]
        cookie = RememberMe(manager).issue("user-zed")
        selector, validator = cookie.split(".")
        assert len(selector) == 22 and len(validator) == 43
        assert {k.split(":")[1] for k, _ in written} == {"f", "u", "s"}
        for key, value in written:
            for needle in (selector, validator, "user-zed"):
                assert needle not in key and needle.encode() not in value

    @pytest.mark.parametrize("bad", [None, 7, "", "x.y", "a" * 22 + "." + "b" * 42,
                                     "a" * 22 + "." + "b" * 43 + "\n", "../" * 22])
    def test_malformed_refused(self, remember: RememberMe, bad: object) -> None:
        """Malformed values are ``None`` and never revoke anything."""
        assert remember.use(bad) is None
        assert remember.family_of(bad) is None and remember.revoke(bad) is False

    def test_wrong_validator_refused_without_revoking(
        self, manager: SessionManager, remember: RememberMe, events: list[Event],
    ) -> None:
        """A forged validator for a real selector fails and does not burn the real token."""
        cookie = remember.issue("bob")
        session = logged_in(manager, "bob")
        selector = cookie.split(".")[0]
        assert remember.use(f"{selector}.{'A' * 43}") is None
        assert "token_reused" not in names(events)
        assert manager.load(session.cookie_value) is not None
        assert remember.use(cookie) is not None

    def test_expires_after_ttl(self, manager: SessionManager, clock: FrozenClock) -> None:
        """A token unused for ``ttl`` is dead; a used one starts a new ``ttl``."""
        remember = RememberMe(manager, ttl=timedelta(days=1))
        fresh, stale = remember.issue("carol"), remember.issue("carol")
        clock.advance(86400 - 1)
        result = remember.use(fresh)
        assert result is not None
        clock.advance(1)
        assert remember.use(stale) is None
        clock.advance(86400 - 2)
        assert remember.use(result[1]) is not None

    def test_key_rotation_keeps_tokens(self, manager: SessionManager, store: SessionStore,
                                       keyring: KeyRing, clock: FrozenClock) -> None:
        """A cookie issued before a key rotation works after it."""
        cookie = RememberMe(manager).issue("dana")
        rotated = KeyRing([KeyRing.generate("test").active, *keyring.keys])
        after = SessionManager(store, rotated, Settings(namespace="test"), clock=clock)
        result = RememberMe(after).use(cookie)
        assert result is not None and result[0] == "dana"
        assert RememberMe(after).use(result[1]) is not None

    @pytest.mark.parametrize("kwargs", [{"ttl": 60}, {"ttl": timedelta(days=401)},
                                        {"reuse_grace": -1}, {"reuse_grace": 61}])
    def test_settings_validated(self, manager: SessionManager, kwargs: dict[str, Any]) -> None:
        """Out-of-range ttl or grace is refused."""
        with pytest.raises(ValueError):
            RememberMe(manager, **kwargs)


class TestTheft:
    def test_reuse_revokes_family_and_sessions(
        self, manager: SessionManager, remember: RememberMe, clock: FrozenClock,
        events: list[Event],
    ) -> None:
        """Presenting a rotated token after the grace kills the family and every session."""
        stolen = remember.issue("erin")
        first = remember.use(stolen)
        assert first is not None
        victim_sessions = [logged_in(manager, "erin") for _ in range(2)]
        other = logged_in(manager, "frank")
        clock.advance(6)
        assert remember.use(stolen) is None
        (alarm,) = [e for e in events if e.name == "token_reused"]
        assert alarm.user == "erin" and alarm.fields["sessions_revoked"] == 2
        assert alarm.level.name == "CRITICAL"
        assert remember.use(first[1]) is None  # the thief's (or victim's) successor is dead
        assert all(manager.load(s.cookie_value) is None for s in victim_sessions)
        assert manager.load(other.cookie_value) is not None

    def test_reuse_of_older_token_in_chain(self, remember: RememberMe,
                                           clock: FrozenClock, events: list[Event]) -> None:
        """Any rotated ancestor, not only the last one, triggers the revocation."""
        cookies = [remember.issue("gus")]
        for _ in range(3):
            result = remember.use(cookies[-1])
            assert result is not None
            cookies.append(result[1])
        clock.advance(60)
        assert remember.use(cookies[0]) is None
        assert "token_reused" in names(events)
        assert remember.use(cookies[-1]) is None

    def test_parallel_use_within_grace_is_not_theft(
        self, manager: SessionManager, remember: RememberMe, clock: FrozenClock,
        events: list[Event],
    ) -> None:
        """A second request with the same cookie within the grace gets None, no alarm."""
        cookie = remember.issue("hana")
        session = logged_in(manager, "hana")
        winner = remember.use(cookie)
        clock.advance(5)
        assert remember.use(cookie) is None
        assert "token_reused" not in names(events)
        assert winner is not None and remember.use(winner[1]) is not None
        assert manager.load(session.cookie_value) is not None

    def test_zero_grace(self, manager: SessionManager, clock: FrozenClock,
                        events: list[Event]) -> None:
        """With no grace, an immediate second use is already theft."""
        remember = RememberMe(manager, reuse_grace=0)
        cookie = remember.issue("ivan")
        assert remember.use(cookie) is not None
        clock.advance(0.001)
        assert remember.use(cookie) is None
        assert "token_reused" in names(events)

    def test_other_families_survive(self, remember: RememberMe, clock: FrozenClock) -> None:
        """Theft on one device revokes that family only; the other device keeps its token."""
        laptop, phone = remember.issue("jo"), remember.issue("jo")
        assert remember.use(laptop) is not None
        clock.advance(60)
        assert remember.use(laptop) is None
        assert remember.use(phone) is not None


class TestRevocation:
    def test_revoke_by_cookie_and_family(self, remember: RememberMe) -> None:
        """Logout on a device revokes that cookie's family; unknown families are False."""
        a, b = remember.issue("kim"), remember.issue("kim")
        family = remember.family_of(b)
        assert family is not None and len(family) == 32
        assert remember.revoke(a) is True and remember.use(a) is None
        assert remember.revoke_family(family) is True and remember.use(b) is None
        assert remember.revoke_family(family) is False
        assert remember.revoke_family("../x") is False

    def test_revoke_user(self, remember: RememberMe) -> None:
        """revoke_user ends every family of that user only."""
        mine = [remember.issue("lee") for _ in range(3)]
        theirs = remember.issue("max")
        assert remember.revoke_user("lee") == 3
        assert all(remember.use(c) is None for c in mine)
        assert remember.use(theirs) is not None
        assert remember.revoke_user("lee") == 0

    def test_family_limit_evicts_oldest(self, remember: RememberMe) -> None:
        """Issuing beyond MAX_FAMILIES revokes the oldest family."""
        cookies = [remember.issue("ned") for _ in range(MAX_FAMILIES + 1)]
        assert remember.use(cookies[0]) is None
        assert remember.use(cookies[1]) is not None
        assert remember.use(cookies[-1]) is not None


class TestResume:
    def test_resume_logs_in_without_fresh_auth(self, manager: SessionManager,
                                               remember: RememberMe) -> None:
        """A remembered login is level 0 and never counts as a recent authentication."""
        cookie = remember.issue("olga")
        session = manager.new()
        new_cookie = remember.resume(session, cookie)
        assert new_cookie is not None and new_cookie != cookie
        assert session.user == "olga" and session.meta.auth_level == 0
        with pytest.raises(ReauthenticationRequired):
            manager.require_recent_auth(session, timedelta(hours=1))
        reloaded = manager.load(session.cookie_value)
        assert reloaded is not None and reloaded.user == "olga"
        assert reloaded.meta.auth_time is None
        assert remember.resume(manager.new(), cookie) is None
