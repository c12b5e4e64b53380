"""One-time tokens: hashed at rest, purpose-bound, expiring, consumed exactly once
(also by 8 processes racing)."""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionward.audit.events import Event, EventHub
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.guards.tokens import OneTimeTokens, TokenGrant
from sessionward.stores.base import SessionStore


@pytest.fixture(name="tokens")
def tokens_fixture(store: SessionStore, keyring: KeyRing, clock: FrozenClock,
                   hub_events: tuple[EventHub, list[Event]]) -> OneTimeTokens:
    return OneTimeTokens(store, keyring, clock=clock, events=hub_events[0])


class TestIssueConsume:
    def test_round_trip_once(self, tokens: OneTimeTokens, clock: FrozenClock,
                             hub_events: tuple[EventHub, list[Event]]) -> None:
        """A token yields its grant once, then nothing; both steps emit events."""
        token = tokens.issue("password_reset", "alice", timedelta(minutes=15), {"n": [1, 2]})
        assert isinstance(token, str) and len(token) == 43
        grant = tokens.consume(token, "password_reset")
        assert grant == TokenGrant("password_reset", "alice", {"n": [1, 2]}, clock.now,
                                   clock.now + 900)
        assert tokens.consume(token, "password_reset") is None
        names = [(e.name, e.user, e.fields["purpose"]) for e in hub_events[1]]
        assert names == [("token_issued", "alice", "password_reset"),
                         ("token_consumed", "alice", "password_reset")]
        assert all(token not in json.dumps(e.to_dict()) for e in hub_events[1])

    def test_grant_without_data_is_not_none(self, tokens: OneTimeTokens) -> None:
        """A token issued without data still yields a grant (not ``None``)."""
        token = tokens.issue("verify_email", "bob@example.org", 60)
        grant = tokens.consume(token, "verify_email")
        assert grant is not None and grant.data is None and grant.subject == "bob@example.org"

    def test_wrong_purpose_neither_grants_nor_consumes(self, tokens: OneTimeTokens) -> None:
        """A token presented for another purpose is refused and stays usable."""
        token = tokens.issue("verify_email", "carol", 60)
        assert tokens.consume(token, "password_reset") is None
        assert tokens.consume(token, "verify_email") is not None

    def test_expiry_at_the_boundary(self, tokens: OneTimeTokens, clock: FrozenClock) -> None:
        """Valid one tick before ``ttl``; dead at ``ttl``."""
        early, late = (tokens.issue("p", "d", 100) for _ in range(2))
        clock.advance(99.999)
        assert tokens.consume(early, "p") is not None
        clock.advance(0.001)
        assert tokens.consume(late, "p") is None

    def test_tokens_are_unique_and_random(self, tokens: OneTimeTokens) -> None:
        """200 tokens for the same subject are all distinct."""
        assert len({tokens.issue("p", "s", 60) for _ in range(200)}) == 200

    @pytest.mark.parametrize("bad", [
        None, 42, b"x" * 43, "", "a" * 42, "a" * 44, "a" * 42 + "=", "../" * 14 + "a",
        "a" * 42 + "\n", "*" * 43,
    ])
    def test_malformed_tokens_refused_without_io(self, tokens: OneTimeTokens,
                                                 bad: object) -> None:
        """Values of the wrong type, length or alphabet are ``None`` before any store call."""
        assert tokens.consume(bad, "p") is None
        assert tokens.revoke(bad, "p") is False

    def test_forged_token_of_right_shape_refused(self, tokens: OneTimeTokens) -> None:
        """A guessed token of the right shape finds nothing."""
        tokens.issue("p", "s", 60)
        assert tokens.consume("A" * 43, "p") is None

    def test_revoke(self, tokens: OneTimeTokens) -> None:
        """A revoked token can no longer be consumed."""
        token = tokens.issue("p", "s", 60)
        assert tokens.revoke(token, "other") is False
        assert tokens.revoke(token, "p") is True
        assert tokens.consume(token, "p") is None

    @pytest.mark.parametrize(("args", "error"), [
        (("", "s", 60), ValueError), (("p", "", 60), ValueError),
        (("p" * 65, "s", 60), ValueError), (("p", "s", 0.5), ValueError),
        (("p", "s", timedelta(days=31)), ValueError),
        (("p", "s", 60, {"blob": "x" * 20000}), ValueError),
        (("p", "s", 60, {"obj": object()}), TypeError),
    ])
    def test_issue_validates(self, tokens: OneTimeTokens, args: tuple[Any, ...],
                             error: type[Exception]) -> None:
        """Bad purpose, subject, ttl or data are refused at issue time."""
        with pytest.raises(error):
            tokens.issue(*args)


class TestAtRest:
    def test_store_holds_only_keyed_hash_and_ciphertext(
        self, store: SessionStore, keyring: KeyRing, clock: FrozenClock,
    ) -> None:
        """Neither the token, the subject nor the data appear in the store."""
        spy = _KvSpy(store)
        tokens = OneTimeTokens(spy, keyring, clock=clock)
        token = tokens.issue("reset", "subject-zed", 60, {"secret": "data-zed"})
        ((kv_key, value),) = spy.created
        assert kv_key.startswith("ott:") and len(kv_key) == 4 + 64
        for needle in (token, "subject-zed", "data-zed", "reset"):
            assert needle not in kv_key and needle.encode() not in value
        assert store.kv_get(kv_key) is not None

    def test_key_rotation_keeps_issued_tokens(self, store: SessionStore, keyring: KeyRing,
                                              clock: FrozenClock) -> None:
        """A token issued before a key rotation is still consumable after it."""
        token = OneTimeTokens(store, keyring, clock=clock).issue("p", "s", 60, 7)
        rotated = KeyRing([KeyRing.generate("test").active, *keyring.keys])
        grant = OneTimeTokens(store, rotated, clock=clock).consume(token, "p")
        assert grant is not None and grant.data == 7

    def test_other_keyring_cannot_consume(self, store: SessionStore, keyring: KeyRing,
                                          clock: FrozenClock) -> None:
        """Without the issuing key the token addresses nothing."""
        token = OneTimeTokens(store, keyring, clock=clock).issue("p", "s", 60)
        assert OneTimeTokens(store, KeyRing.generate("test"), clock=clock).consume(token, "p") \
            is None
        assert OneTimeTokens(store, keyring, clock=clock).consume(token, "p") is not None


class _KvSpy:
    """Delegates to a store and records kv_create calls."""

    def __init__(self, inner: SessionStore) -> None:
        self._inner = inner
        self.created: list[tuple[str, bytes]] = []

    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        self.created.append((key, value))
        return self._inner.kv_create(key, value, expires_at=expires_at)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# ------------------------------------------------------------- multi-process

RACERS = 8
ROUNDS = 20


def spawnable(fn: Callable[..., None]) -> Callable[..., None]:
    """Let spawned children import ``fn``: they load this file as ``guards.<name>``
    (``tests/`` is on ``sys.path``), not by pytest's module name."""
    plain = "guards." + __name__.rpartition(".")[2]  # tests/ is on sys.path
    sys.modules.setdefault(plain, sys.modules[__name__])
    fn.__module__ = plain
    return fn


def _open(kind: str, where: str, clock: FrozenClock) -> SessionStore:
    if kind == "sqlite":
        from sessionward.stores.sqlite import SQLiteStore

        return SQLiteStore(where, clock=clock)
    from sessionward.stores.filesystem import FileStore

    return FileStore(where, clock=clock)


@spawnable
def _consume_child(kind: str, where: str, raw_key_hex: str, start: float,
                   tokens_list: list[str], gate: Any, results: Any) -> None:
    """Spawned child: wait for all racers, then try to consume every token once."""
    clock = FrozenClock(start)
    store = _open(kind, where, clock)
    ring = KeyRing.from_bytes([bytes.fromhex(raw_key_hex)], "test")
    tokens = OneTimeTokens(store, ring, clock=clock)
    gate.wait(60)
    won = [i for i, token in enumerate(tokens_list)
           if (grant := tokens.consume(token, "race")) is not None and grant.data == i]
    store.close()
    results.put(json.dumps(won))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "filesystem"])
def test_eight_processes_race_one_token(kind: str, tmp_path: Path) -> None:
    """8 spawned processes race to consume each of 20 tokens: exactly one wins each."""
    clock = FrozenClock()
    where = str(tmp_path / ("t.db" if kind == "sqlite" else "fs"))
    store = _open(kind, where, clock)
    ring = KeyRing.generate("test")
    tokens = OneTimeTokens(store, ring, clock=clock)
    issued = [tokens.issue("race", "s", 600, i) for i in range(ROUNDS)]
    ctx = multiprocessing.get_context("spawn")
    gate, results = ctx.Barrier(RACERS), ctx.Queue()
    procs = [ctx.Process(target=_consume_child,
                         args=(kind, where, ring.active.raw.hex(), clock.now, issued, gate,
                               results))
             for _ in range(RACERS)]
    for proc in procs:
        proc.start()
    wins = [json.loads(results.get(timeout=120)) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert sorted(i for won in wins for i in won) == list(range(ROUNDS))
    assert all(tokens.consume(t, "race") is None for t in issued)
    store.close()
