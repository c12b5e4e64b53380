"""Security regressions through every store (T-05, T-06, T-14, tampering)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sessionward import SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.core.record import seal
from sessionward.stores.base import SessionStore

from contract._helpers import saved

# A protocol-0 pickle stream whose __reduce__ would run os.system (written by hand: the
# repository never imports pickle).  {canary} is replaced by a path.
PICKLE_BOMB = "cos\nsystem\n(S'touch {canary}'\ntR."


class Spy:
    """Wraps a store and records every method call (T-06)."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if callable(attr):
            def call(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                return attr(*args, **kwargs)
            return call
        return attr


HOSTILE = ["../../../etc/passwd", "..%2f..%2f", "'; DROP TABLE sw_sessions; --", "*", "sw:*",
           "\x00", "a\r\nFLUSHALL\r\n", "x" * 10_240, "", " ", "ключ", "A" * 43 + "." + "B" * 22,
           "A" * 43 + "." + "B" * 21 + "=", '"quoted"', "id;Domain=evil"]


def test_hostile_ids_never_reach_the_store(store: SessionStore, keyring: KeyRing,
                                           clock: FrozenClock) -> None:
    """Traversal, SQL, glob, NUL, CR/LF, overlong and empty values: no store I/O (T-06)."""
    spy = Spy(store)
    manager = SessionManager(spy, keyring, Settings(namespace="test"), clock=clock)  # type: ignore[arg-type]
    for value in HOSTILE:
        assert manager.load(value) is None
    assert spy.calls == []


def test_planted_pickle_never_executes(manager: SessionManager, store: SessionStore,
                                       keyring: KeyRing, tmp_path: Path,
                                       events: list[Any]) -> None:
    """A pickle payload planted raw or inside a valid seal: no canary, no session,
    decode_failed (T-05)."""
    canary = tmp_path / "canary"
    bomb = PICKLE_BOMB.format(canary=canary).encode()
    for wrap in (False, True):
        cookie = saved(manager)
        session = manager.load(cookie)
        assert session is not None and session.storage_key is not None
        key = session.storage_key
        current = store.load(key)
        assert current is not None
        blob = seal(bomb, key=keyring.active, storage_key=key, expires_at=2e9) if wrap else bomb
        store.replace(key, blob, expected_version=current.version,
                      expires_at=current.expires_at, user_key=None)
        assert manager.load(cookie) is None
        fresh = manager.new()
        fresh["x"] = 1
        manager.save(fresh)
        assert fresh.cookie_value != cookie
    assert not canary.exists()
    assert [e.name for e in events].count("decode_failed") == 2


def test_swapped_records_rejected(manager: SessionManager, store: SessionStore,
                                  events: list[Any]) -> None:
    """A record copied under another session's key does not open there."""
    a, b = saved(manager, who="a"), saved(manager, who="b")
    sa, sb = manager.load(a), manager.load(b)
    assert sa is not None and sb is not None
    ra, rb = store.load(sa.storage_key or ""), store.load(sb.storage_key or "")
    assert ra is not None and rb is not None
    store.replace(sb.storage_key or "", ra.blob, expected_version=rb.version,
                  expires_at=rb.expires_at, user_key=None)
    assert manager.load(b) is None
    assert "decode_failed" in [e.name for e in events]


def raw_dump(store: SessionStore, tmp_path: Path) -> bytes:
    """Everything the store holds at rest, as bytes (file names and contents too)."""
    kind = store.kind
    if kind == "memory":
        return repr(vars(store)).encode()
    if kind in ("sqlite", "filesystem"):
        out = b""
        for root, dirs, files in os.walk(tmp_path):
            for name in dirs + files:
                out += name.encode() + b"\n"
            for name in files:
                out += Path(root, name).read_bytes()
        return out
    client = store._client  # type: ignore[attr-defined]
    out = b""
    for key in client.scan_iter(match=f"{store.prefix}:*"):  # type: ignore[attr-defined]
        out += key if isinstance(key, bytes) else key.encode()
        kind_of = client.type(key)
        kind_of = kind_of.decode() if isinstance(kind_of, bytes) else kind_of
        if kind_of == "hash":
            for k, v in client.hgetall(key).items():
                out += k + v
        elif kind_of == "set":
            out += b"".join(client.smembers(key))
        elif kind_of == "string":
            out += client.get(key) or b""
    return out


def test_no_raw_ids_at_rest(manager: SessionManager, store: SessionStore,
                            tmp_path: Path, clock: FrozenClock) -> None:
    """No issued ID, nor any 10-char piece of one, appears in the store (T-14)."""
    cookies = []
    for n in range(3):
        session = manager.load(saved(manager, n=n, canary="PLAINTEXT-CANARY"))
        assert session is not None
        manager.login(session, f"PLAINUSER-{n}")
        cookies.append(session.cookie_value or "")
    clock.advance(16 * 60)
    rotated = manager.load(cookies[0])  # periodic rotation leaves a tombstone
    assert rotated is not None and rotated.cookie_changed
    cookies.append(rotated.cookie_value or "")
    dump = raw_dump(store, tmp_path)
    assert len(dump) > 200
    assert b"PLAINTEXT-CANARY" not in dump and b"PLAINUSER" not in dump
    for cookie in cookies:
        session_id = cookie.split(".")[0]
        for i in range(len(session_id) - 9):
            assert session_id[i:i + 10].encode() not in dump, "ID fragment at rest"


@pytest.mark.parametrize("flip", [30, -1, -20])
def test_bit_flips_through_the_store(manager: SessionManager, store: SessionStore,
                                     flip: int) -> None:
    cookie = saved(manager)
    session = manager.load(cookie)
    assert session is not None and session.storage_key is not None
    current = store.load(session.storage_key)
    assert current is not None
    blob = bytearray(current.blob)
    blob[flip] ^= 0x01
    store.replace(session.storage_key, bytes(blob), expected_version=current.version,
                  expires_at=current.expires_at, user_key=None)
    assert manager.load(cookie) is None
