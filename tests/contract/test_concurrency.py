"""Concurrency contract (issue 4): real OS processes, every cross-process store.

The memory store is per-process by design; it runs the same scenarios with
threads in ``test_threads_*``.  Stores here use the real clock, since lease
TTLs and process start-up are real time.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionward import LockLostError, SessionGoneError, SessionManager, Settings
from sessionward.core.keys import KeyRing
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore

from conftest import store_params

WORKER = str(Path(__file__).parent.parent / "workers" / "session_worker.py")
CROSS = store_params(["sqlite", "filesystem", "redis", "cluster"])
pytestmark = pytest.mark.slow


class Shared:
    """A store spec that child processes can rebuild, plus the parent's manager."""

    def __init__(self, spec: dict[str, Any], store: SessionStore) -> None:
        self.spec = spec
        self.ring = KeyRing.generate("conc")
        self.key_b64 = base64.b64encode(self.ring.active.raw).decode()
        self.manager = SessionManager(store, self.ring, Settings(namespace="conc"))

    def job(self, action: str, cookie: str, **extra: Any) -> str:
        return json.dumps({"store": self.spec, "key": self.key_b64, "namespace": "conc",
                           "action": action, "cookie": cookie, **extra})

    def run_all(self, jobs: list[str], timeout: float = 240) -> list[dict[str, Any]]:
        procs = [subprocess.Popen([sys.executable, WORKER, j], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for j in jobs]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results

    def new_session(self, **data: Any) -> str:
        session = self.manager.new()
        session.update(data or {"items": []})
        self.manager.save(session)
        assert session.cookie_value is not None
        return session.cookie_value


@pytest.fixture(name="shared", params=CROSS)
def shared_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shared]:
    kind: str = request.param
    store: SessionStore
    if kind == "sqlite":
        from sessionward.stores.sqlite import SQLiteStore

        spec: dict[str, Any] = {"kind": "sqlite", "path": str(tmp_path / "c.db")}
        store = SQLiteStore(spec["path"])
    elif kind == "filesystem":
        from sessionward.stores.filesystem import FileStore

        spec = {"kind": "filesystem", "path": str(tmp_path / "fs")}
        store = FileStore(spec["path"])
    else:
        from svc_redis import make_redis_store

        server = request.getfixturevalue("redis_server" if kind == "redis" else "redis_cluster")
        store = make_redis_store(server.url, time.time)
        spec = {"kind": kind, "url": server.url, "prefix": store.prefix}  # type: ignore[attr-defined]
    yield Shared(spec, store)
    store.close()


def items(shared: Shared, cookie: str) -> list[str]:
    session = shared.manager.load(cookie)
    assert session is not None
    return list(session.get("items", []))


def expected(tags: list[str], n: int) -> set[str]:
    return {f"{t}-{i}" for t in tags for i in range(n)}


class TestZeroLostUpdates:
    def test_exclusive_mode_4x250(self, shared: Shared) -> None:
        """4 processes x 250 appends under exclusive leases: 1000 of 1000 survive."""
        cookie = shared.new_session()
        tags = ["p0", "p1", "p2", "p3"]
        shared.run_all([shared.job("exclusive_append", cookie, tag=t, n=250) for t in tags])
        got = items(shared, cookie)
        assert len(got) == 1000 and set(got) == expected(tags, 250)

    def test_update_4x250(self, shared: Shared) -> None:
        """4 processes x 250 appends through update(): 1000 of 1000 survive."""
        cookie = shared.new_session()
        tags = ["q0", "q1", "q2", "q3"]
        shared.run_all([shared.job("update_append", cookie, tag=t, n=250) for t in tags])
        got = items(shared, cookie)
        assert len(got) == 1000 and set(got) == expected(tags, 250)

    def test_disjoint_keys_default_mode(self, shared: Shared) -> None:
        """2 processes writing disjoint keys 500 times each (optimistic): nothing lost."""
        cookie = shared.new_session(start=True)
        shared.run_all([shared.job("disjoint", cookie, tag=t, n=500) for t in ("a", "b")])
        session = shared.manager.load(cookie)
        assert session is not None
        assert session["a"] == 500 and session["b"] == 500
        assert all(session[f"{t}:{i}"] == i for t in ("a", "b") for i in range(500))


class TestEndsAreFinal:
    def test_logout_racing_with_writes_is_never_undone(self, shared: Shared) -> None:
        """A writer racing a logout gets SessionGoneError or None; the session stays dead."""
        cookie = shared.new_session()
        proc = subprocess.Popen(
            [sys.executable, WORKER, shared.job("write_until_gone", cookie, tag="w", n=5000)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(200):  # wait until the writer is writing
            session = shared.manager.load(cookie)
            if session is not None and "w:3" in session:
                break
            time.sleep(0.02)
        session = shared.manager.load(cookie)
        assert session is not None
        shared.manager.logout(session)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        result = json.loads(out.strip().splitlines()[-1])
        assert result.get("ended") in ("gone_error", "load_none")
        assert result["writes"] < 5000
        assert shared.manager.load(cookie) is None

    def test_killed_lock_holder_frees_lock_after_ttl(self, shared: Shared) -> None:
        """A SIGKILLed holder's lease expires after its TTL and the next holder proceeds;
        a holder whose lease expired cannot save."""
        cookie = shared.new_session()
        job = shared.job("hold_lock", cookie, timings={"lock_ttl": 1.5})
        proc = subprocess.Popen([sys.executable, WORKER, job], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"locked": True}
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        waiter = SessionManager(shared.manager.store, shared.ring,
                                Settings(namespace="conc", lock_wait=timedelta(seconds=10)))
        with waiter.open(cookie, mode="exclusive") as session:
            session["after"] = True
        again = shared.manager.load(cookie)
        assert again is not None and again["after"] is True


class TestRotationUnderConcurrency:
    def test_parallel_processes_share_one_successor(self, shared: Shared) -> None:
        """N processes presenting the old ID at the rotation instant land on one successor."""
        cookie = shared.new_session()
        start_at = time.time() + 2.5  # let the processes start, then go together
        jobs = [shared.job("load_cookie", cookie, tag=f"r{i}", start_at=start_at,
                           timings={"rotation_interval": 1.0}) for i in range(6)]
        results = shared.run_all(jobs)
        cookies = {r["cookie"] for r in results}
        assert None not in cookies
        assert len(cookies) == 1 and cookie not in cookies


class TestThreadsOnMemory:
    """The memory store is per-process: the same guarantees with threads."""

    def test_threads_update_and_exclusive(self) -> None:
        manager = SessionManager(MemoryStore(), KeyRing.generate("m"), Settings(namespace="m"))
        session = manager.new()
        session["items"] = []
        manager.save(session)
        cookie = session.cookie_value

        def by_update(tag: str) -> None:
            s = manager.load(cookie)
            assert s is not None
            for i in range(100):
                manager.update(s, "items", lambda v, i=i: [*(v or []), f"{tag}-{i}"])

        def by_lock(tag: str) -> None:
            for i in range(100):
                with manager.open(cookie, mode="exclusive") as s:
                    s["items"] = [*s.get("items", []), f"{tag}-{i}"]

        threads = [threading.Thread(target=by_update, args=(f"u{t}",)) for t in range(2)]
        threads += [threading.Thread(target=by_lock, args=(f"x{t}",)) for t in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = manager.load(cookie)
        assert final is not None
        assert len(final["items"]) == 400 and len(set(final["items"])) == 400

    def test_lease_expiry_fences_stale_holder(self) -> None:
        """A holder whose lease expired (and was taken over) gets LockLostError on save."""
        from sessionward.core.clock import FrozenClock

        clock = FrozenClock()
        store = MemoryStore(clock=clock)
        ring = KeyRing.generate("m")
        manager = SessionManager(store, ring, Settings(namespace="m"), clock=clock)
        session = manager.new()
        session["a"] = 1
        manager.save(session)
        stale = manager.load(session.cookie_value, mode="exclusive")
        assert stale is not None
        clock.advance(31)  # past the 30 s lease; the renewer thread has not run yet
        taker = manager.load(session.cookie_value, mode="exclusive")
        assert taker is not None
        stale["a"] = 2
        with pytest.raises(LockLostError):
            manager.save(stale)
        taker["a"] = 3
        manager.save(taker)
        manager.release(taker)
        manager.release(stale)
        final = manager.load(session.cookie_value)
        assert final is not None and final["a"] == 3

    def test_optimistic_same_key_conflict_raises(self) -> None:
        """Two requests changing the same key: the second save raises, never loses silently."""
        from sessionward import SessionConflictError

        manager = SessionManager(MemoryStore(), KeyRing.generate("m"), Settings(namespace="m"))
        session = manager.new()
        session["k"] = 0
        manager.save(session)
        a = manager.load(session.cookie_value)
        b = manager.load(session.cookie_value)
        assert a is not None and b is not None
        a["k"], b["k"] = 1, 2
        manager.save(a)
        with pytest.raises(SessionConflictError) as info:
            manager.save(b)
        assert info.value.keys == frozenset({"k"})
        c = manager.load(session.cookie_value)
        assert c is not None and c["k"] == 1

    def test_read_mode_refuses_save(self) -> None:
        from sessionward import SessionReadOnlyError

        manager = SessionManager(MemoryStore(), KeyRing.generate("m"), Settings(namespace="m"))
        session = manager.new()
        session["k"] = 0
        manager.save(session)
        snap = manager.load(session.cookie_value, mode="read")
        assert snap is not None
        snap["k"] = 5
        with pytest.raises(SessionReadOnlyError):
            manager.save(snap)

    def test_goneerror_after_concurrent_logout(self) -> None:
        manager = SessionManager(MemoryStore(), KeyRing.generate("m"), Settings(namespace="m"))
        session = manager.new()
        session["k"] = 0
        manager.save(session)
        a = manager.load(session.cookie_value)
        assert a is not None
        manager.logout(session)
        with pytest.raises(SessionGoneError):
            manager.update(a, "k", lambda v: (v or 0) + 1)
