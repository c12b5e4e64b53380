"""Lifecycle contract: every store, through the manager (SECURITY-REQUIREMENTS T-02..T-22)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from sessionward import SessionGoneError, SessionManager, SessionTooLargeError, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import SessionLimitError
from sessionward.core.ids import cookie_value, new_session_id, storage_key
from sessionward.core.keys import KeyRing
from sessionward.stores.base import Capability, SessionStore

from contract._helpers import saved

IDLE = 30 * 60
ABSOLUTE = 12 * 3600


def names(events: list[Any]) -> list[str]:
    return [e.name for e in events]


def record_count(store: SessionStore, now: float) -> int:
    return store.stats(now).records


class TestLazyCreation:
    def test_new_session_writes_nothing(self, manager: SessionManager, store: SessionStore,
                                        clock: FrozenClock) -> None:
        """An anonymous session that stores nothing creates no record and no cookie."""
        session = manager.new()
        _ = "x" in session
        manager.save(session)
        assert session.cookie_value is None
        assert record_count(store, clock()) == 0

    def test_logout_while_anonymous_creates_nothing(self, manager: SessionManager,
                                                    store: SessionStore,
                                                    clock: FrozenClock) -> None:
        """Logging out a never-stored session writes nothing (T-15)."""
        session = manager.new()
        manager.logout(session)
        assert record_count(store, clock()) == 0
        assert session.ended

    def test_round_trip(self, any_manager: SessionManager) -> None:
        """Saved data loads back with its exact types."""
        manager = any_manager
        cookie = saved(manager, cart=[1, 2], flags={"a": True}, blob=b"\x00\xff", pair=(1, 2))
        again = manager.load(cookie)
        assert again is not None
        assert dict(again) == {"cart": [1, 2], "flags": {"a": True}, "blob": b"\x00\xff",
                               "pair": (1, 2)}

    def test_unsupported_type_names_the_key(self, any_manager: SessionManager) -> None:
        """A value outside the allowlist raises TypeError naming the key, storing nothing."""
        manager = any_manager
        session = manager.new()
        session["bad"] = object()
        with pytest.raises(TypeError, match="'bad'"):
            manager.save(session)
        assert session.cookie_value is None


class TestStrictMode:
    def test_forged_wellformed_unknown_id(self, manager: SessionManager, store: SessionStore,
                                          keyring: KeyRing, events: list[Any],
                                          clock: FrozenClock) -> None:
        """A well-formed, correctly MACed but unknown ID is not adopted (T-02)."""
        attacker = new_session_id()
        forged = cookie_value(attacker, keyring.active)
        assert manager.load(forged) is None
        session = manager.new()
        session["x"] = 1
        manager.save(session)
        assert session.cookie_value != forged
        assert store.load(storage_key(attacker, keyring.active)) is None
        assert "invalid_session" in names(events)

    def test_random_mac_rejected_without_store_io(self, manager: SessionManager,
                                                  events: list[Any]) -> None:
        """A random value with a wrong MAC is rejected as malformed."""
        assert manager.load(new_session_id() + "." + "A" * 22) is None
        assert [e.reason for e in events if e.name == "invalid_session"] == ["malformed"]

    @pytest.mark.parametrize("how", ["logout", "revoke", "evicted", "expired"])
    def test_dead_ids_stay_dead(self, manager: SessionManager, store: SessionStore,
                                clock: FrozenClock, how: str) -> None:
        """Logged-out, revoked, evicted and expired IDs each load as None (T-02)."""
        cookie = saved(manager)
        session = manager.load(cookie)
        assert session is not None and session.storage_key is not None
        if how == "logout":
            manager.logout(session)
        elif how == "revoke":
            assert manager.revoke(session.storage_key)
        elif how == "evicted":
            store.delete(session.storage_key)
        else:
            clock.advance(IDLE + 1)
        assert manager.load(cookie) is None
        assert manager.load(cookie) is None


class TestRotationOnAuth:
    def test_login_rotates_and_kills_old_id(self, manager: SessionManager, store: SessionStore,
                                            events: list[Any]) -> None:
        """login() issues a new ID; the old one is dead at once, no grace (T-03)."""
        cookie = saved(manager, cart=[1])
        session = manager.load(cookie)
        assert session is not None
        old_key = session.storage_key
        manager.login(session, "alice")
        assert session.cookie_value != cookie and session.cookie_changed
        assert manager.load(cookie) is None
        assert old_key is not None and store.load(old_key) is None
        again = manager.load(session.cookie_value)
        assert again is not None and again.user == "alice" and again["cart"] == [1]
        assert "login" in names(events)

    def test_login_as_other_user_drops_data(self, any_manager: SessionManager) -> None:
        """Re-login as a different user never carries the first user's data."""
        manager = any_manager
        session = manager.load(saved(manager, secret="alice's"))
        assert session is not None
        manager.login(session, "alice")
        manager.login(session, "bob")
        again = manager.load(session.cookie_value)
        assert again is not None and again.user == "bob" and "secret" not in again

    @pytest.mark.parametrize("action", ["rotate", "elevate", "relogin"])
    def test_privilege_changes_rotate(self, any_manager: SessionManager, action: str) -> None:
        """Step-up, role change and re-login each rotate with no grace (T-03)."""
        manager = any_manager
        session = manager.load(saved(manager))
        assert session is not None
        manager.login(session, "alice")
        before = session.cookie_value
        if action == "rotate":
            manager.rotate(session)
        elif action == "elevate":
            manager.elevate(session, timedelta(minutes=5))
            assert manager.is_elevated(session)
        else:
            manager.login(session, "alice", level=2)
        assert session.cookie_value != before
        assert manager.load(before) is None

    def test_mfa_pending_is_not_full_auth(self, any_manager: SessionManager,
                                          clock: FrozenClock) -> None:
        """A half-open login is never fully authenticated; completing it rotates (T-21)."""
        manager = any_manager
        from sessionward import ReauthenticationRequired

        session = manager.load(saved(manager))
        assert session is not None
        manager.login(session, "alice", pending=True)
        assert session.is_authenticated and not session.is_fully_authenticated
        with pytest.raises(ReauthenticationRequired):
            manager.require_recent_auth(session, timedelta(minutes=5))
        half = session.cookie_value
        manager.login(session, "alice", level=2)
        assert session.is_fully_authenticated and session.cookie_value != half
        manager.require_recent_auth(session, timedelta(minutes=5))
        clock.advance(301)
        with pytest.raises(ReauthenticationRequired):
            manager.require_recent_auth(session, timedelta(minutes=5))


class TestEnd:
    def test_logout_cannot_be_undone_by_inflight_save(self, manager: SessionManager,
                                                      store: SessionStore) -> None:
        """A save by a request that loaded before logout fails; nothing is resurrected (T-04)."""
        cookie = saved(manager)
        inflight = manager.load(cookie)
        other = manager.load(cookie)
        assert inflight is not None and other is not None
        manager.logout(other)
        inflight["late"] = "write"
        with pytest.raises(SessionGoneError):
            manager.save(inflight)
        assert manager.load(cookie) is None
        assert inflight.storage_key is not None and store.load(inflight.storage_key) is None

    def test_ended_session_refuses_save(self, any_manager: SessionManager) -> None:
        manager = any_manager
        session = manager.load(saved(manager))
        assert session is not None
        manager.logout(session)
        with pytest.raises(SessionGoneError):
            manager.save(session)


class TestTimeouts:
    def test_idle_boundary(self, any_manager: SessionManager, clock: FrozenClock) -> None:
        """Valid at idle - 1 s, invalid at idle + 1 s with no activity (T-07)."""
        manager = any_manager
        cookie = saved(manager)
        clock.advance(IDLE - 1)
        assert manager.load(cookie) is not None
        clock.advance(IDLE + 1)
        assert manager.load(cookie) is None

    def test_absolute_timeout_despite_activity(self, any_manager: SessionManager,
                                               clock: FrozenClock) -> None:
        """Activity every 29 min and periodic rotation never extend the 12 h limit (T-08)."""
        manager = any_manager
        cookie = saved(manager)
        elapsed = 0
        while elapsed + 29 * 60 < ABSOLUTE:
            clock.advance(29 * 60)
            elapsed += 29 * 60
            session = manager.load(cookie)
            assert session is not None, f"died early at {elapsed} s"
            session["n"] = elapsed
            manager.save(session)
            cookie = session.cookie_value or cookie
        clock.advance(ABSOLUTE - elapsed + 1)
        assert manager.load(cookie) is None

    def test_store_expiry_never_beyond_absolute(self, manager: SessionManager,
                                                store: SessionStore, clock: FrozenClock) -> None:
        """The store-level expiry is <= the remaining absolute lifetime (T-08)."""
        start = clock()
        session = manager.load(saved(manager))
        assert session is not None and session.storage_key is not None
        stored = store.load(session.storage_key)
        assert stored is not None
        assert stored.expires_at <= start + ABSOLUTE
        assert stored.expires_at <= start + IDLE + 1

    def test_login_resets_absolute(self, any_manager: SessionManager, clock: FrozenClock) -> None:
        """Only re-authentication resets the absolute timeout (and rotates)."""
        manager = any_manager
        session = manager.load(saved(manager))
        assert session is not None
        for _ in range(20):
            clock.advance(20 * 60)
            fresh = manager.load(session.cookie_value)
            assert fresh is not None
            session = fresh
        clock.advance(20 * 60)
        session = manager.load(session.cookie_value)
        assert session is not None
        manager.login(session, "alice")
        clock.advance(ABSOLUTE - 60)
        session = manager.load(session.cookie_value)
        assert session is None  # idle passed meanwhile: no activity for 11 h


class TestReadOnly:
    def test_read_only_request_never_writes(self, manager: SessionManager,
                                            store: SessionStore) -> None:
        """Loading and reading, then saving, leaves version and blob untouched."""
        cookie = saved(manager, a=[1, 2])
        session = manager.load(cookie)
        assert session is not None and session.storage_key is not None
        before = store.load(session.storage_key)
        _ = session["a"], list(session)
        manager.save(session)
        after = store.load(session.storage_key)
        assert before is not None and after is not None
        assert (after.version, after.blob) == (before.version, before.blob)

    def test_touch_is_coalesced(self, manager: SessionManager, store: SessionStore,
                                clock: FrozenClock) -> None:
        """Loads within the touch interval do not touch; later ones touch without rewriting."""
        cookie = saved(manager)
        session = manager.load(cookie)
        assert session is not None and session.storage_key is not None
        first = store.load(session.storage_key)
        clock.advance(5)
        manager.load(cookie)
        assert store.load(session.storage_key) == first
        clock.advance(120)
        manager.load(cookie)
        touched = store.load(session.storage_key)
        assert first is not None and touched is not None
        assert touched.version == first.version and touched.blob == first.blob
        assert touched.touched_at > first.touched_at

    def test_inplace_mutation_is_saved(self, any_manager: SessionManager) -> None:
        """Mutating a list in place counts as a change."""
        manager = any_manager
        cookie = saved(manager, items=[1])
        session = manager.load(cookie)
        assert session is not None
        session["items"].append(2)
        manager.save(session)
        again = manager.load(cookie)
        assert again is not None and again["items"] == [1, 2]


class TestUsers:
    def test_revoke_user_keeps_current(self, any_manager: SessionManager) -> None:
        """revoke_user(U, keep=S1) ends S2, S3; S1 and V's S4 survive (T-12)."""
        manager = any_manager
        sessions = []
        for user in ("u", "u", "u", "v"):
            s = manager.load(saved(manager))
            assert s is not None
            manager.login(s, user)
            sessions.append(s)
        assert len(manager.sessions_of("u")) == 3
        assert manager.revoke_user("u", keep=sessions[0]) == 2
        alive = [manager.load(s.cookie_value) is not None for s in sessions]
        assert alive == [True, False, False, True]

    def test_sessions_of_has_no_ids(self, any_manager: SessionManager) -> None:
        """The inventory carries handles and metadata, never IDs or cookies (T-24)."""
        manager = any_manager
        session = manager.load(saved(manager))
        assert session is not None
        manager.login(session, "alice")
        infos = manager.sessions_of("alice", current=session)
        assert len(infos) == 1 and infos[0].current
        text = repr([i.to_dict() for i in infos])
        assert session.cookie_value is not None
        assert session.cookie_value.split(".")[0][:10] not in text

    def test_limit_evicts_oldest(self, store: SessionStore, keyring: KeyRing,
                                 clock: FrozenClock) -> None:
        """max_sessions_per_user with evict_oldest ends the oldest session."""
        mgr = SessionManager(store, keyring, Settings(namespace="test", max_sessions_per_user=2),
                             clock=clock)
        cookies = []
        for _ in range(3):
            s = mgr.load(saved(mgr))
            assert s is not None
            mgr.login(s, "u")
            cookies.append(s.cookie_value)
            clock.advance(1)
        assert [mgr.load(c) is not None for c in cookies] == [False, True, True]

    def test_limit_rejects(self, store: SessionStore, keyring: KeyRing,
                           clock: FrozenClock) -> None:
        mgr = SessionManager(store, keyring, Settings(namespace="test", max_sessions_per_user=1,
                                                      session_limit_policy="reject"), clock=clock)
        first = mgr.load(saved(mgr))
        assert first is not None
        mgr.login(first, "u")
        second = mgr.load(saved(mgr))
        assert second is not None
        with pytest.raises(SessionLimitError):
            mgr.login(second, "u")


class TestLimits:
    def test_oversized_record_refused(self, any_manager: SessionManager) -> None:
        """A 1 MB session is refused with a clear error; other sessions unaffected (P-S5)."""
        manager = any_manager
        other = saved(manager, keep="me")
        session = manager.new()
        session["big"] = "x" * 1_000_000
        with pytest.raises(SessionTooLargeError, match="over the limit of 65536 bytes"):
            manager.save(session)
        again = manager.load(other)
        assert again is not None and again["keep"] == "me"

    def test_unknown_id_flood_stores_nothing(self, manager: SessionManager, store: SessionStore,
                                             keyring: KeyRing, clock: FrozenClock) -> None:
        """Thousands of unknown IDs leave the record count unchanged (T-15)."""
        saved(manager)
        for _ in range(2000):
            assert manager.load(cookie_value(new_session_id(), keyring.active)) is None
        assert record_count(store, clock()) == 1


class TestIsolation:
    def test_namespaces_do_not_share_sessions(self, store: SessionStore,
                                              clock: FrozenClock) -> None:
        """Two apps on one store with different namespaces/keys reject each other (T-19)."""
        raw = KeyRing.generate("a").active.raw
        app_a = SessionManager(store, KeyRing.from_bytes([raw], "a"), Settings(namespace="a"),
                               clock=clock)
        app_b = SessionManager(store, KeyRing.from_bytes([raw], "b"), Settings(namespace="b"),
                               clock=clock)
        app_c = SessionManager(store, KeyRing.generate("a"), Settings(namespace="a"), clock=clock)
        cookie = saved(app_a)
        assert app_a.load(cookie) is not None
        assert app_b.load(cookie) is None
        assert app_c.load(cookie) is None


class TestPeriodicRotation:
    def test_rotation_with_grace_and_zombie(self, manager: SessionManager, clock: FrozenClock,
                                            events: list[Any]) -> None:
        """After 15 min the ID rotates; the old one forwards during grace, then is a zombie
        whose use revokes the family (T-22)."""
        old = saved(manager, n=1)
        clock.advance(15 * 60)
        session = manager.load(old)
        assert session is not None and session.cookie_changed
        new = session.cookie_value
        assert new is not None and new != old
        forwarded = manager.load(old)
        assert forwarded is not None and forwarded.cookie_value == new and forwarded["n"] == 1
        clock.advance(11)
        assert manager.load(old) is None
        assert "zombie_accessed" in names(events)
        assert manager.load(new) is None  # family revoked by default policy

    def test_grace_closes_when_successor_used(self, manager: SessionManager,
                                              clock: FrozenClock, events: list[Any]) -> None:
        """Old ID works only until the new one is first used (T-22)."""
        old = saved(manager)
        clock.advance(15 * 60)
        session = manager.load(old)
        assert session is not None and session.cookie_value is not None
        clock.advance(1)
        assert manager.load(session.cookie_value) is not None  # successor used
        assert manager.load(old) is None
        assert [e.reason for e in events if e.name == "zombie_accessed"] == ["successor_used"]

    def test_parallel_requests_land_on_one_successor(self, any_manager: SessionManager,
                                                     clock: FrozenClock) -> None:
        """N parallel requests with the old ID at the rotation instant share one successor."""
        manager = any_manager
        old = saved(manager)
        clock.advance(15 * 60)
        results: list[str | None] = []
        lock = threading.Lock()

        def hit() -> None:
            s = manager.load(old)
            with lock:
                results.append(s.cookie_value if s else None)

        threads = [threading.Thread(target=hit) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert None not in results
        assert len(set(results)) == 1 and results[0] != old

    def test_inflight_save_on_old_id_lands_on_successor(self, any_manager: SessionManager,
                                                        clock: FrozenClock) -> None:
        """A save by a request that loaded before the rotation merges into the successor."""
        manager = any_manager
        old = saved(manager, a=1)
        inflight = manager.load(old)
        assert inflight is not None
        clock.advance(15 * 60)
        rotated = manager.load(old)
        assert rotated is not None
        inflight["b"] = 2
        manager.save(inflight)
        assert inflight.cookie_value == rotated.cookie_value
        final = manager.load(rotated.cookie_value)
        assert final is not None and dict(final) == {"a": 1, "b": 2}

    def test_rotation_keeps_auth_time(self, any_manager: SessionManager,
                                      clock: FrozenClock) -> None:
        """Periodic rotation leaves auth_time unchanged (ASVS 3.6.2)."""
        manager = any_manager
        session = manager.load(saved(manager))
        assert session is not None
        manager.login(session, "alice")
        auth_time = session.auth_time
        clock.advance(16 * 60)
        rotated = manager.load(session.cookie_value)
        assert rotated is not None and rotated.cookie_changed
        assert rotated.auth_time == auth_time


class TestCleanup:
    def test_cleanup_purges_expired(self, manager: SessionManager, store: SessionStore,
                                    clock: FrozenClock) -> None:
        """cleanup() removes expired records in batches (native-TTL stores expire by themselves
        and report 0)."""
        for _ in range(25):
            saved(manager)
        clock.advance(IDLE + 1)
        live = saved(manager)
        removed = manager.cleanup(batch=10)
        if Capability.NATIVE_TTL in store.capabilities:
            assert removed == 0
        else:
            assert removed == 25
            assert record_count(store, clock()) == 1
        assert manager.load(live) is not None
