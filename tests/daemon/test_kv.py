"""``tokens`` and ``throttle`` (role ``app``) end to end: two workers, one daemon."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionward import ConfigurationError, ProtocolError, ThrottledError
from sessionward.core.clock import FrozenClock
from sessionward.guards.tokens import TokenGrant
from sessionward.remote import RemoteSessionManager

from svc_daemon import DaemonProcess, make_remote_manager

pytestmark = pytest.mark.daemon


@pytest.fixture(name="clock")
def clock_fixture() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(name="first")
def first_fixture(tmp_path: Path, clock: FrozenClock) -> Iterator[RemoteSessionManager]:
    remote = make_remote_manager(tmp_path, clock)
    yield remote
    remote.close()


@pytest.fixture(name="daemon")
def daemon_fixture(first: RemoteSessionManager) -> DaemonProcess:
    daemon: DaemonProcess = first.daemon  # type: ignore[attr-defined]  # _ClockedRemote
    return daemon


@pytest.fixture(name="second")
def second_fixture(daemon: DaemonProcess) -> Iterator[RemoteSessionManager]:
    """Another worker: its own connection pool, same daemon."""
    remote = RemoteSessionManager(str(daemon.socket), token=daemon.app_token)
    yield remote
    remote.close()


def code_of(exc: pytest.ExceptionInfo[ProtocolError]) -> str:
    return exc.value.code


class TestTokens:
    def test_consumed_exactly_once_across_two_clients(
            self, first: RemoteSessionManager, second: RemoteSessionManager) -> None:
        token = first.tokens.issue("reset", "alice", 600, data={"n": 1})
        grant = second.tokens.consume(token, "reset")
        assert isinstance(grant, TokenGrant)
        assert (grant.purpose, grant.subject, grant.data) == ("reset", "alice", {"n": 1})
        assert first.tokens.consume(token, "reset") is None
        assert second.tokens.consume(token, "reset") is None

    def test_concurrent_consumers_one_winner(
            self, first: RemoteSessionManager, second: RemoteSessionManager) -> None:
        """Eight threads on two clients present one token at once: one grant."""
        token = first.tokens.issue("verify", "bob", 600)
        barrier = threading.Barrier(8)
        results: list[TokenGrant | None] = []
        lock = threading.Lock()

        def consume(remote: RemoteSessionManager) -> None:
            barrier.wait(timeout=60)
            grant = remote.tokens.consume(token, "verify")
            with lock:
                results.append(grant)

        threads = [threading.Thread(target=consume, args=(r,))
                   for r in [first, second] * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(results) == 8
        assert sum(grant is not None for grant in results) == 1

    def test_other_purpose_does_not_consume_and_revoke(
            self, first: RemoteSessionManager, second: RemoteSessionManager) -> None:
        token = first.tokens.issue("reset", "carol", 600)
        assert second.tokens.consume(token, "login-link") is None
        assert second.tokens.revoke(token, "reset") is True
        assert first.tokens.consume(token, "reset") is None
        assert first.tokens.revoke(token, "reset") is False
        assert first.tokens.consume("x" * 500, "reset") is None  # malformed: no request

    def test_expiry_follows_the_daemon_clock(self, first: RemoteSessionManager,
                                             clock: FrozenClock) -> None:
        token = first.tokens.issue("reset", "dave", 60)
        clock.advance(61)
        assert first.tokens.consume(token, "reset") is None

    @pytest.mark.parametrize("fields", [
        {"action": "issue", "purpose": "p", "ttl": 60},
        {"action": "issue", "purpose": "p", "subject": "s"},
        {"action": "issue", "purpose": "p", "subject": "s", "ttl": 0},
        {"action": "consume", "purpose": "p"},
        {"action": "consume", "purpose": "", "secret": "x"},
        {"action": "steal", "purpose": "p", "secret": "x"},
        {"action": "consume", "purpose": "p", "secret": "x", "extra": 1},
    ])
    def test_bad_requests(self, daemon: DaemonProcess, fields: dict[str, Any]) -> None:
        reply = daemon.client().call("tokens", **fields)
        assert reply["ok"] is False and reply["error"]["type"] == "invalid_argument"

    def test_library_validation_maps_to_value_error(self, first: RemoteSessionManager) -> None:
        with pytest.raises(ValueError):
            first.tokens.issue("p", "s", 60, data={"a": "x" * 9000, "b": "x" * 9000})


class TestThrottle:
    def test_lockout_visible_to_a_second_client(
            self, first: RemoteSessionManager, second: RemoteSessionManager) -> None:
        gate_a, gate_b = first.throttle(), second.throttle()
        key = gate_a.key_for(user="mallory", ip="192.0.2.1")
        lockouts = [gate_a.hit(key) for _ in range(5)]
        assert lockouts[:4] == [0.0] * 4 and lockouts[4] == 30.0
        assert gate_b.check(gate_b.key_for(user="mallory", ip="192.0.2.1")) == 30.0
        with pytest.raises(ThrottledError) as info:
            gate_b.require(key)
        assert info.value.retry_after == 30.0
        assert gate_b.check(gate_b.key_for(user="mallory")) == 0.0  # another key
        assert gate_b.reset(key) is True
        assert gate_a.check(key) == 0.0
        gate_a.require(key)

    def test_policy_and_names_are_separate(self, first: RemoteSessionManager,
                                           clock: FrozenClock) -> None:
        strict = first.throttle(attempts=2, initial=10, namespace="signup")
        key = strict.key_for(ip="2001:db8::1")
        assert [strict.hit(key), strict.hit(key)] == [0.0, 10.0]
        assert first.throttle().check(key) == 0.0  # the login throttle counts apart
        clock.advance(11)
        assert strict.check(key) == 0.0

    def test_admin_unlock_clears_an_app_lockout(self, first: RemoteSessionManager,
                                                daemon: DaemonProcess) -> None:
        gate = first.throttle()
        key = gate.key_for(user="erin")
        for _ in range(5):
            gate.hit(key)
        reply = daemon.client(daemon.admin_token).call("unlock", user="erin")
        assert reply["data"] == {"throttle": "login", "unlocked": True}
        assert gate.check(key) == 0.0

    def test_daemon_throttle_is_reserved(self, first: RemoteSessionManager) -> None:
        gate = first.throttle(namespace="daemon")
        with pytest.raises(ProtocolError) as info:
            gate.check(gate.key_for(user="uid:0"))
        assert code_of(info) == "invalid_argument"

    def test_bad_policy_is_a_configuration_error(self, first: RemoteSessionManager) -> None:
        gate = first.throttle(initial=3600, cap=60)
        with pytest.raises(ConfigurationError):
            gate.hit(gate.key_for(user="x"))
        with pytest.raises(ProtocolError):
            first.throttle(attempts=0).check("thr:login:" + "0" * 64)

    @pytest.mark.parametrize("fields", [
        {"action": "hit"},
        {"action": "hit", "key": "thr:other:" + "0" * 64},
        {"action": "hit", "key": "thr:login:" + "0" * 64, "user": "a"},
        {"action": "hit", "key": "thr:login:nothex"},
        {"action": "fail", "user": "a"},
        {"action": "hit", "user": "a", "namespace": "Bad-Name"},
    ])
    def test_bad_requests(self, daemon: DaemonProcess, fields: dict[str, Any]) -> None:
        reply = daemon.client().call("throttle", **fields)
        assert reply["ok"] is False and reply["error"]["type"] == "invalid_argument"

    def test_raw_key_of_this_throttle(self, daemon: DaemonProcess) -> None:
        raw = "thr:login:" + "ab" * 32
        client = daemon.client()
        assert client.call("throttle", action="hit", key=raw)["data"] == {"lockout": 0.0}
        assert client.call("throttle", action="reset", key=raw)["data"] == {"reset": True}
