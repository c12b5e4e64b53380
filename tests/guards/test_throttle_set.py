"""ThrottleSet: one attempt counted per (user, address), per account and per address
(issue 15 item 5: no guesses from many addresses at a locked account, no spraying)."""

from __future__ import annotations

import pytest

from sessionward.audit.events import Event, EventHub
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import ConfigurationError, ThrottledError
from sessionward.core.keys import KeyRing
from sessionward.guards.throttle import Throttle
from sessionward.guards.throttle_set import LOGIN_LIMITS, ThrottleSet
from sessionward.stores.memory import MemoryStore


@pytest.fixture(name="mem")
def mem_fixture(clock: FrozenClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture(name="gate")
def gate_fixture(mem: MemoryStore, keyring: KeyRing, clock: FrozenClock,
                 hub_events: tuple[EventHub, list[Event]]) -> ThrottleSet:
    return ThrottleSet(mem, keyring, clock=clock, events=hub_events[0])


def attempt(gate: ThrottleSet, user: str, ip: str) -> bool:
    """One failed sign-in as the demo makes it: refused (False) or counted (True)."""
    keys = gate.keys_for(user=user, ip=ip)
    if gate.check(keys) > 0:
        return False
    gate.hit(keys)
    return True


class TestKeys:
    def test_scopes_present(self, gate: ThrottleSet) -> None:
        """Both parts: pair, user and ip keys; one part: only its scope."""
        assert gate.keys_for(user="alice", ip="192.0.2.1").scopes() == ("pair", "user", "ip")
        assert gate.keys_for(user="alice").scopes() == ("user",)
        assert gate.keys_for(ip="192.0.2.1").scopes() == ("ip",)
        with pytest.raises(ValueError):
            gate.keys_for()

    def test_keys_are_those_of_a_plain_throttle(self, gate: ThrottleSet, mem: MemoryStore,
                                                keyring: KeyRing) -> None:
        """The same derivation as Throttle.key_for, so `sessionward unlock` finds each scope."""
        plain = Throttle(mem, keyring, namespace="login")
        keys = dict(gate.keys_for(user="alice", ip="192.0.2.1").keys)
        assert keys["pair"].keys == plain.key_for("alice", "192.0.2.1").keys
        assert keys["user"].keys == plain.key_for(user="alice").keys
        assert keys["ip"].keys == plain.key_for(ip="192.0.2.1").keys

    @pytest.mark.parametrize("limits", [{}, {"device": 3}, {"pair": 0}, {"ip": 101}])
    def test_bad_limits_refused(self, mem: MemoryStore, keyring: KeyRing,
                                limits: dict[str, int]) -> None:
        """No scope, an unknown scope or a limit out of 1..100 is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            ThrottleSet(mem, keyring, limits=limits)  # type: ignore[arg-type]


class TestAttacks:
    def test_other_addresses_get_no_guesses_at_a_locked_account(self, gate: ThrottleSet
                                                                ) -> None:
        """Once the account has had its 10 failures, 20 more addresses get no guess at all."""
        counted = sum(attempt(gate, "victim", "192.0.2.1") for _ in range(8))
        assert counted == LOGIN_LIMITS["pair"]  # that address's pair locks first
        others = [f"198.51.100.{n}" for n in range(1, 21)]
        counted = sum(attempt(gate, "victim", ip) for ip in others for _ in range(4))
        assert counted == LOGIN_LIMITS["user"] - LOGIN_LIMITS["pair"]
        assert gate.check(gate.keys_for(user="victim", ip="203.0.113.9")) > 0

    def test_one_address_spraying_many_accounts_is_locked(self, gate: ThrottleSet) -> None:
        """4 guesses at each of 6 accounts from one address: refused after 20 in all."""
        results = [attempt(gate, f"user{n}", "192.0.2.7") for n in range(6) for _ in range(4)]
        assert sum(results) == LOGIN_LIMITS["ip"]
        assert results[-4:] == [False] * 4
        assert gate.check(gate.keys_for(user="fresh", ip="192.0.2.7")) > 0
        assert gate.check(gate.keys_for(user="fresh", ip="192.0.2.8")) == 0

    def test_require_raises_with_the_longest_lockout(self, gate: ThrottleSet,
                                                     clock: FrozenClock) -> None:
        """require() raises ThrottledError carrying the lockout left."""
        keys = gate.keys_for(user="bob", ip="192.0.2.3")
        for _ in range(LOGIN_LIMITS["pair"]):
            gate.hit(keys)
        with pytest.raises(ThrottledError) as info:
            gate.require(keys)
        assert info.value.retry_after == pytest.approx(30.0)
        clock.advance(31)
        gate.require(keys)


class TestReset:
    def test_success_forgets_the_pair_only(self, gate: ThrottleSet) -> None:
        """A correct password clears its pair; the account and address counts stay."""
        keys = gate.keys_for(user="carol", ip="192.0.2.4")
        for _ in range(4):
            gate.hit(keys)
        assert gate.reset(keys)
        status = {scope: gate.throttles[scope].check(key) for scope, key in keys}
        assert status == {"pair": 0.0, "user": 0.0, "ip": 0.0}
        for _ in range(4):  # the pair starts over, the account is at 8 of 10
            gate.hit(keys)
        assert gate.status(keys) == {"pair": 0.0, "user": 0.0, "ip": 0.0}
        gate.hit(gate.keys_for(user="carol", ip="192.0.2.5"))
        assert gate.hit(gate.keys_for(user="carol", ip="192.0.2.6")) > 0
        assert gate.status(keys)["user"] > 0

    def test_only_the_scopes_configured_are_counted(self, mem: MemoryStore,
                                                    keyring: KeyRing,
                                                    clock: FrozenClock) -> None:
        """limits={"ip": 3}: an address-only throttle (the demo's sign-up)."""
        gate = ThrottleSet(mem, keyring, limits={"ip": 3}, namespace="signup", clock=clock)
        keys = gate.keys_for(user="dave", ip="192.0.2.9")
        assert keys.scopes() == ("ip",)
        assert [gate.hit(keys) > 0 for _ in range(3)] == [False, False, True]


def test_throttled_event_names_the_throttle(gate: ThrottleSet,
                                            hub_events: tuple[EventHub, list[Event]]) -> None:
    """Each scope that locks emits its own `throttled` event with its store key."""
    keys = gate.keys_for(user="erin", ip="192.0.2.10")
    for _ in range(LOGIN_LIMITS["pair"]):
        gate.hit(keys)
    locked = [e for e in hub_events[1] if e.name == "throttled"]
    assert [e.fields["throttle_key"] for e in locked] == [str(dict(keys.keys)["pair"])]
