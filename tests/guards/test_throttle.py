"""Throttle: escalating lockouts in the store, decay, keys, the invalid-session guard,
and failures from several processes all counted."""

from __future__ import annotations

import json
import multiprocessing
import secrets
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionward import SessionManager
from sessionward.audit.events import Event, EventHub
from sessionward.core.client import ClientInfo
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import ConfigurationError, ThrottledError
from sessionward.core.ids import cookie_value, new_session_id
from sessionward.core.keys import KeyRing
from sessionward.guards.flood import attach_invalid_session_guard
from sessionward.guards.throttle import Throttle
from sessionward.stores.base import SessionStore, check_key


@pytest.fixture(name="throttle")
def throttle_fixture(store: SessionStore, keyring: KeyRing, clock: FrozenClock,
                     hub_events: tuple[EventHub, list[Event]]) -> Throttle:
    return Throttle(store, keyring, clock=clock, events=hub_events[0])


def fail(throttle: Throttle, key: Any, times: int) -> list[float]:
    return [throttle.hit(key) for _ in range(times)]


def lock_out(throttle: Throttle, clock: FrozenClock, key: Any) -> float:
    """Wait out any running lockout, then fail until locked; return the lockout."""
    clock.advance(throttle.check(key))
    results = fail(throttle, key, throttle.attempts)
    assert results[:-1] == [0.0] * (throttle.attempts - 1)
    return results[-1]


class TestSettings:
    @pytest.mark.parametrize("kwargs", [
        {"attempts": 0}, {"attempts": 101}, {"attempts": 2.5}, {"attempts": True},
        {"initial": 0.5}, {"initial": 3601}, {"cap": 59}, {"cap": 86401},
        {"multiplier": 1.0}, {"multiplier": 10.5}, {"initial": 120, "cap": 60},
        {"quiet_period": 10}, {"namespace": "Login"}, {"namespace": ""},
        {"namespace": "x" * 33},
    ])
    def test_out_of_range_settings_refused(self, kwargs: dict[str, Any], keyring: KeyRing,
                                           clock: FrozenClock) -> None:
        """Every setting outside its documented range is a ConfigurationError."""
        from sessionward.stores.memory import MemoryStore

        with pytest.raises(ConfigurationError):
            Throttle(MemoryStore(clock=clock), keyring, **kwargs)

    def test_bounds_accepted(self, keyring: KeyRing, clock: FrozenClock) -> None:
        """The documented bounds themselves are valid; timedeltas are accepted."""
        from sessionward.stores.memory import MemoryStore

        store = MemoryStore(clock=clock)
        Throttle(store, keyring, attempts=1, initial=1, cap=60, multiplier=1.1)
        t = Throttle(store, keyring, attempts=100, initial=timedelta(hours=1),
                     cap=timedelta(days=1), multiplier=10, quiet_period=timedelta(days=30))
        assert (t.initial, t.cap, t.quiet_period) == (3600.0, 86400.0, 30 * 86400.0)


class TestLockout:
    def test_five_failures_lock_for_thirty_seconds(
        self, throttle: Throttle, clock: FrozenClock,
        hub_events: tuple[EventHub, list[Event]],
    ) -> None:
        """Failures 1-4 are free; the 5th starts a 30 s lockout and emits `throttled`."""
        key = throttle.key_for(user="alice")
        assert fail(throttle, key, 4) == [0.0] * 4
        assert throttle.check(key) == 0.0
        assert throttle.hit(key) == 30.0
        assert throttle.check(key) == 30.0
        (event,) = [e for e in hub_events[1] if e.name == "throttled"]
        assert event.user == "alice" and event.outcome == "denied"
        assert event.fields["level"] == 1 and event.fields["lockout"] == 30.0
        assert event.fields["throttle_key"] == str(key)
        clock.advance(29.5)
        assert throttle.check(key) == pytest.approx(0.5)
        with pytest.raises(ThrottledError) as err:
            throttle.require(key)
        assert err.value.retry_after == pytest.approx(0.5)
        clock.advance(0.5)
        assert throttle.check(key) == 0.0
        throttle.require(key)

    def test_failures_during_lockout_not_counted(
        self, throttle: Throttle, clock: FrozenClock,
        hub_events: tuple[EventHub, list[Event]],
    ) -> None:
        """Hits while locked return the time left and neither extend nor escalate."""
        key = throttle.key_for(user="bob")
        lock_out(throttle, clock, key)
        clock.advance(10)
        assert fail(throttle, key, 50) == [20.0] * 50
        clock.advance(20)
        assert fail(throttle, key, 4) == [0.0] * 4  # counter restarted after the lockout
        assert len([e for e in hub_events[1] if e.name == "throttled"]) == 1

    def test_escalates_over_three_consecutive_lockouts(
        self, throttle: Throttle, clock: FrozenClock,
        hub_events: tuple[EventHub, list[Event]],
    ) -> None:
        """30 s, then 60 s, then 120 s: the level survives the end of each lockout."""
        key = throttle.key_for(user="carol", ip="198.51.100.7")
        assert [lock_out(throttle, clock, key) for _ in range(3)] == [30.0, 60.0, 120.0]
        levels = [e.fields["level"] for e in hub_events[1] if e.name == "throttled"]
        assert levels == [1, 2, 3]

    def test_escalation_is_capped(self, throttle: Throttle, clock: FrozenClock) -> None:
        """The lockout doubles up to the 3600 s cap and stays there."""
        key = throttle.key_for(user="dave")
        seen = [lock_out(throttle, clock, key) for _ in range(10)]
        assert seen == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0, 3600.0]

    def test_decays_only_after_the_quiet_period(self, throttle: Throttle,
                                                clock: FrozenClock) -> None:
        """A quiet hour after the lockout ends resets the level; less does not."""
        key = throttle.key_for(user="erin")
        assert lock_out(throttle, clock, key) == 30.0
        clock.advance(30 + 3600 - 1)  # lockout over, one second short of a quiet hour
        assert lock_out(throttle, clock, key) == 60.0
        clock.advance(60 + 3600)
        assert lock_out(throttle, clock, key) == 30.0

    def test_partial_failures_forgotten_after_quiet_period(
        self, throttle: Throttle, clock: FrozenClock,
    ) -> None:
        """Four failures, a quiet hour, then four more do not lock."""
        key = throttle.key_for(user="frank")
        fail(throttle, key, 4)
        clock.advance(3600)
        assert fail(throttle, key, 4) == [0.0] * 4
        assert throttle.hit(key) == 30.0

    def test_reset_forgets_everything(self, throttle: Throttle, clock: FrozenClock) -> None:
        """A successful login resets: the next lockout is back at level 1."""
        key = throttle.key_for(user="gina")
        lock_out(throttle, clock, key)
        lock_out(throttle, clock, key)
        assert throttle.reset(key) is True
        assert throttle.check(key) == 0.0
        assert throttle.reset(key) is False
        assert lock_out(throttle, clock, key) == 30.0

    def test_unlock_by_raw_store_key(self, throttle: Throttle, store: SessionStore,
                                     clock: FrozenClock) -> None:
        """The admin CLI unlocks with the kv key from the `throttled` event."""
        key = throttle.key_for(ip="203.0.113.9")
        lock_out(throttle, clock, key)
        raw = str(key)
        assert store.kv_get(raw) is not None
        assert throttle.check(raw) == 30.0
        assert throttle.reset(raw) is True
        assert throttle.check(key) == 0.0

    def test_custom_policy(self, store: SessionStore, keyring: KeyRing,
                           clock: FrozenClock) -> None:
        """attempts, initial, multiplier and cap are honoured."""
        t = Throttle(store, keyring, attempts=2, initial=10, multiplier=3.0, cap=60,
                     clock=clock, namespace="custom")
        key = t.key_for(user="h")
        assert [lock_out(t, clock, key) for _ in range(4)] == [10.0, 30.0, 60.0, 60.0]

    def test_namespaces_are_independent(self, store: SessionStore, keyring: KeyRing,
                                        clock: FrozenClock) -> None:
        """Two throttles over one store never share counts."""
        login = Throttle(store, keyring, clock=clock, namespace="login")
        daemon = Throttle(store, keyring, clock=clock, namespace="daemon")
        lock_out(login, clock, login.key_for(user="i"))
        assert daemon.check(daemon.key_for(user="i")) == 0.0
        assert str(login.key_for(user="i")) != str(daemon.key_for(user="i"))


class TestKeys:
    def test_key_shapes(self, throttle: Throttle) -> None:
        """Keys are keyed hashes that pass check_key and never contain the input."""
        evil = "../../etc/passwd\x00 DROP TABLE; *" * 20
        key = throttle.key_for(user=evil, ip="not an address")
        assert check_key(str(key)) == str(key)
        assert str(key).startswith("thr:login:") and len(str(key)) == len("thr:login:") + 64
        assert "etc" not in str(key)

    def test_user_address_and_both_are_distinct(self, throttle: Throttle) -> None:
        """user, address and (user, address) are three different counters."""
        keys = {str(throttle.key_for(user="u")), str(throttle.key_for(ip="192.0.2.1")),
                str(throttle.key_for(user="u", ip="192.0.2.1"))}
        assert len(keys) == 3
        with pytest.raises(ValueError):
            throttle.key_for()

    def test_address_buckets(self, throttle: Throttle) -> None:
        """IPv4 exact, IPv6 per /64, IPv4-mapped IPv6 counted as IPv4."""
        k = throttle.key_for
        assert str(k(ip="192.0.2.1")) != str(k(ip="192.0.2.2"))
        assert str(k(ip="2001:db8::1")) == str(k(ip="2001:db8::ffff:1"))
        assert str(k(ip="2001:db8::1")) != str(k(ip="2001:db8:0:1::1"))
        assert str(k(ip="::ffff:192.0.2.1")) == str(k(ip="192.0.2.1"))

    def test_keys_differ_per_keyring(self, store: SessionStore, clock: FrozenClock) -> None:
        """Without the key, nobody can compute a user's throttle key."""
        a = Throttle(store, KeyRing.generate("test"), clock=clock)
        b = Throttle(store, KeyRing.generate("test"), clock=clock)
        assert str(a.key_for(user="x")) != str(b.key_for(user="x"))

    def test_key_rotation_keeps_lockouts_and_level(self, store: SessionStore,
                                                   keyring: KeyRing, clock: FrozenClock) -> None:
        """After a key rotation a locked user stays locked and keeps escalating."""
        old = Throttle(store, keyring, clock=clock)
        assert lock_out(old, clock, old.key_for(user="k")) == 30.0
        rotated = KeyRing([KeyRing.generate("test").active, *keyring.keys])
        new = Throttle(store, rotated, clock=clock)
        key = new.key_for(user="k")
        assert str(key) != str(old.key_for(user="k"))
        assert new.check(key) == 30.0
        assert lock_out(new, clock, key) == 60.0
        assert new.reset(key) is True
        assert new.check(key) == 0.0 and old.check(old.key_for(user="k")) == 0.0


class TestInvalidSessionGuard:
    def test_flood_of_unknown_ids_throttles_one_address_only(
        self, manager: SessionManager, keyring: KeyRing, clock: FrozenClock,
        events: list[Event],
    ) -> None:
        """1,000 unknown IDs from one address fire `throttled`; another client is unaffected."""
        throttle = Throttle(manager.store, keyring, attempts=100, clock=clock,
                            events=manager.events, namespace="invalid")
        guard = attach_invalid_session_guard(manager, throttle)
        attacker = ClientInfo(ip="203.0.113.66")
        bystander = ClientInfo(ip="198.51.100.20")
        assert not guard.is_blocked(attacker)
        for _ in range(1000):
            forged = cookie_value(new_session_id(), keyring.active)
            assert manager.load(forged, client=attacker) is None
        throttled = [e for e in events if e.name == "throttled"]
        assert len(throttled) == 1 and throttled[0].client == attacker.ip
        assert guard.is_blocked(attacker) and guard.retry_after(attacker) == 30.0
        assert not guard.is_blocked(bystander)
        assert manager.load("garbage", client=bystander) is None
        assert not guard.is_blocked(bystander)
        session = manager.new(client=bystander)
        session["x"] = 1
        manager.save(session)
        assert manager.load(session.cookie_value, client=bystander) is not None

    def test_guard_registers_and_ignores_clients_without_address(
        self, manager: SessionManager, keyring: KeyRing, clock: FrozenClock,
    ) -> None:
        """The guard is registered as a hook; requests with no address are not counted."""
        throttle = Throttle(manager.store, keyring, attempts=1, clock=clock, namespace="inv")
        guard = attach_invalid_session_guard(manager, throttle)
        assert guard in manager.invalid_hooks
        assert manager.load("junk", client=None) is None
        assert manager.load("junk", client=ClientInfo(ip=None)) is None
        assert not guard.is_blocked(None) and guard.retry_after(ClientInfo()) == 0.0
        assert manager.load("junk", client=ClientInfo(ip="192.0.2.5")) is None
        assert guard.is_blocked(ClientInfo(ip="192.0.2.5"))


# ------------------------------------------------------------- multi-process

PER_CHILD = 24
CHILDREN = 4


def spawnable(fn: Callable[..., None]) -> Callable[..., None]:
    """Let spawned children import ``fn``: they load this file as ``guards.<name>``
    (``tests/`` is on ``sys.path``), not by pytest's module name."""
    plain = "guards." + __name__.rpartition(".")[2]  # tests/ is on sys.path
    sys.modules.setdefault(plain, sys.modules[__name__])
    fn.__module__ = plain
    return fn


def _child_store(kind: str, where: str, prefix: str, clock: FrozenClock) -> SessionStore:
    if kind == "sqlite":
        from sessionward.stores.sqlite import SQLiteStore

        return SQLiteStore(where, clock=clock)
    if kind == "filesystem":
        from sessionward.stores.filesystem import FileStore

        return FileStore(where, clock=clock)
    from sessionward.stores.redis import RedisStore

    return RedisStore.from_url(where, clock=clock, prefix=prefix)


@spawnable
def _hit_child(kind: str, where: str, prefix: str, raw_key_hex: str, start: float,
               gate: Any, results: Any) -> None:
    """Spawned child: build the store from its location, wait at the gate, fail PER_CHILD times."""
    clock = FrozenClock(start)
    store = _child_store(kind, where, prefix, clock)
    ring = KeyRing.from_bytes([bytes.fromhex(raw_key_hex)], "test")
    throttle = Throttle(store, ring, attempts=100, clock=clock)
    key = throttle.key_for(user="target")
    gate.wait(60)  # a Barrier: all children start hitting together
    lockouts = [throttle.hit(key) for _ in range(PER_CHILD)]
    store.close()
    results.put(json.dumps(lockouts))


@pytest.mark.slow
@pytest.mark.parametrize("kind", [
    "sqlite", "filesystem", pytest.param("redis", marks=pytest.mark.redis),
])
def test_failures_from_four_processes_all_counted(kind: str, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """4 spawned processes fail 24 times each at once: the store holds exactly 96."""
    clock = FrozenClock()
    prefix = f"thr{secrets.token_hex(4)}"
    where = {"sqlite": str(tmp_path / "t.db"), "filesystem": str(tmp_path / "fs")}.get(kind, "")
    if kind == "redis":
        where = request.getfixturevalue("redis_server").url
    parent_store = _child_store(kind, where, prefix, clock)  # creates schema / directory
    ring = KeyRing.generate("test")
    ctx = multiprocessing.get_context("spawn")
    gate, results = ctx.Barrier(CHILDREN), ctx.Queue()
    procs = [ctx.Process(target=_hit_child, args=(kind, where, prefix, ring.active.raw.hex(),
                                                  clock.now, gate, results))
             for _ in range(CHILDREN)]
    for proc in procs:
        proc.start()
    answers = [json.loads(results.get(timeout=120)) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert [x for a in answers for x in a] == [0.0] * (CHILDREN * PER_CHILD)
    throttle = Throttle(parent_store, ring, attempts=100, clock=clock)
    key = throttle.key_for(user="target")
    entry = parent_store.kv_get(str(key))
    assert entry is not None
    assert json.loads(entry[0])["f"] == CHILDREN * PER_CHILD
    fail(throttle, key, 100 - CHILDREN * PER_CHILD - 1)
    assert throttle.hit(key) == 30.0  # the 100th failure overall locks
    parent_store.close()
