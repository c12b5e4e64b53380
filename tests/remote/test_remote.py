"""RemoteSessionManager end to end against a real daemon: the manager's behaviour over the wire."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sessionward import (
    ClientInfo,
    ConfigurationError,
    LockTimeoutError,
    ProtocolError,
    ReauthenticationRequired,
    SessionConflictError,
    SessionGoneError,
    SessionReadOnlyError,
    StoreUnavailableError,
)
from sessionward.core.clock import FrozenClock
from sessionward.lifecycle.session import Session
from sessionward.remote import AsyncRemoteSessionManager, RemoteSession, RemoteSessionManager

from svc_daemon import DaemonProcess, make_remote_manager

pytestmark = pytest.mark.daemon


@pytest.fixture(name="clock")
def clock_fixture() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(name="remote")
def remote_fixture(tmp_path: Path, clock: FrozenClock) -> Iterator[RemoteSessionManager]:
    remote = make_remote_manager(tmp_path, clock)
    yield remote
    remote.close()


def stored(remote: RemoteSessionManager, **data: object) -> Session:
    session = remote.new()
    session.update(data or {"k": "v"})
    remote.save(session)
    assert session.cookie_value is not None
    return session


class TestBasics:
    def test_lazy_new(self, remote: RemoteSessionManager) -> None:
        """A new session with no data sends nothing and has no cookie."""
        session = remote.new()
        remote.save(session)
        assert session.is_new and session.cookie_value is None

    def test_round_trip_types(self, remote: RemoteSessionManager) -> None:
        """Tagged codec types survive the wire exactly."""
        session = stored(remote, cart=[1, 2], blob=b"\x00\xff", pair=(1, 2), s={1, 2})
        again = remote.load(session.cookie_value)
        assert isinstance(again, RemoteSession) and isinstance(again, Session)
        assert dict(again) == {"cart": [1, 2], "blob": b"\x00\xff", "pair": (1, 2), "s": {1, 2}}
        assert again.fingerprint and again.handle and not again.cookie_changed

    def test_unsupported_type_names_the_key(self, remote: RemoteSessionManager) -> None:
        session = remote.new()
        session["bad"] = object()
        with pytest.raises(TypeError, match="'bad'"):
            remote.save(session)

    @pytest.mark.parametrize("cookie", ["", "x", "a" * 5000, None, 5, "../../etc/passwd"])
    def test_hostile_cookies(self, remote: RemoteSessionManager, cookie: object) -> None:
        assert remote.load(cookie) is None

    def test_read_mode(self, remote: RemoteSessionManager) -> None:
        session = stored(remote)
        snap = remote.load(session.cookie_value, mode="read")
        assert snap is not None
        snap["x"] = 1
        with pytest.raises(SessionReadOnlyError):
            remote.save(snap)

    def test_open_context_manager(self, remote: RemoteSessionManager) -> None:
        with remote.open(None) as session:
            session["n"] = 1
        assert session.cookie_value is not None
        again = remote.load(session.cookie_value)
        assert again is not None and again["n"] == 1

    def test_idle_expiry_follows_test_clock(self, remote: RemoteSessionManager,
                                            clock: FrozenClock) -> None:
        session = stored(remote)
        clock.advance(29 * 60)
        assert remote.load(session.cookie_value) is not None
        clock.advance(30 * 60 + 1)
        assert remote.load(session.cookie_value) is None


class TestMerge:
    def test_disjoint_keys_merge(self, remote: RemoteSessionManager) -> None:
        """Two requests changing different keys: nothing lost (never last-write-wins)."""
        cookie = stored(remote, a=1).cookie_value
        one, two = remote.load(cookie), remote.load(cookie)
        assert one is not None and two is not None
        one["x"] = 1
        two["y"] = 2
        remote.save(one)
        remote.save(two)
        final = remote.load(cookie)
        assert final is not None and dict(final) == {"a": 1, "x": 1, "y": 2}
        assert dict(two) == {"a": 1, "x": 1, "y": 2}

    def test_merge_across_two_connections(self, remote: RemoteSessionManager) -> None:
        """A save on another connection between this connection's load and save is merged
        (the daemon's per-connection metadata cache must miss on the moved version), and a
        logout on the other connection still wins over a later save here."""
        daemon = remote.daemon  # type: ignore[attr-defined]
        other = RemoteSessionManager(str(daemon.socket), token=daemon.app_token)
        try:
            cookie = stored(remote, a=1).cookie_value
            mine = remote.load(cookie)
            theirs = other.load(cookie)
            assert mine is not None and theirs is not None
            theirs["y"] = 2
            other.save(theirs)
            mine["x"] = 1
            remote.save(mine)
            final = other.load(cookie)
            assert final is not None and dict(final) == {"a": 1, "x": 1, "y": 2}
            again = remote.load(cookie)
            assert again is not None
            other.logout(final)
            again["z"] = 3
            with pytest.raises(SessionGoneError):
                remote.save(again)
        finally:
            other.close()

    def test_same_key_conflict(self, remote: RemoteSessionManager) -> None:
        cookie = stored(remote, a=1).cookie_value
        one, two = remote.load(cookie), remote.load(cookie)
        assert one is not None and two is not None
        one["a"] = 2
        two["a"] = 3
        remote.save(one)
        with pytest.raises(SessionConflictError) as info:
            remote.save(two)
        assert info.value.keys == {"a"}
        final = remote.load(cookie)
        assert final is not None and final["a"] == 2

    def test_update_is_atomic_across_threads(self, remote: RemoteSessionManager) -> None:
        """4 threads x 25 increments through update(): none lost."""
        cookie = stored(remote, n=0).cookie_value

        def work() -> None:
            for _ in range(25):
                session = remote.load(cookie)
                assert session is not None
                remote.update(session, "n", lambda v: (v or 0) + 1)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = remote.load(cookie)
        assert final is not None and final["n"] == 100

    def test_update_keeps_other_pending_changes(self, remote: RemoteSessionManager) -> None:
        cookie = stored(remote, n=1).cookie_value
        session = remote.load(cookie)
        assert session is not None
        session["pending"] = "yes"
        assert session.update("n", lambda v: v + 1) == 2
        assert dict(session) == {"n": 2, "pending": "yes"}
        remote.save(session)
        final = remote.load(cookie)
        assert final is not None and dict(final) == {"n": 2, "pending": "yes"}

    def test_exclusive_mode(self, tmp_path: Path, clock: FrozenClock) -> None:
        """Exclusive: the lease blocks a second locker (lock_timeout) until released."""
        conf = tmp_path / "sw.toml"
        conf.write_text("[sessionward]\nlock_wait_seconds = 0.3\n")
        remote = make_remote_manager(tmp_path, clock, "--config", str(conf))
        try:
            cookie = stored(remote, n=0).cookie_value
            held = remote.load(cookie, mode="exclusive")
            assert held is not None and held.lock_token is not None
            with pytest.raises(LockTimeoutError):
                remote.load(cookie, mode="exclusive")
            held["n"] = 1
            remote.save(held)
            remote.release(held)
            again = remote.load(cookie, mode="exclusive")
            assert again is not None and again["n"] == 1
            remote.release(again)
        finally:
            remote.close()


class TestAuthLifecycle:
    def test_login_rotates_and_kills_old_id(self, remote: RemoteSessionManager) -> None:
        session = stored(remote, cart=[1])
        old = session.cookie_value
        remote.login(session, "alice")
        assert session.user == "alice" and session.cookie_changed
        assert session.cookie_value != old and session["cart"] == [1]
        assert remote.load(old) is None
        again = remote.load(session.cookie_value)
        assert again is not None and again.user == "alice" and again.is_fully_authenticated

    def test_login_of_new_session(self, remote: RemoteSessionManager) -> None:
        session = remote.new(client=ClientInfo(ip="203.0.113.9", user_agent="Firefox/1 Linux"))
        remote.login(session, "bob", level=2)
        assert session.cookie_value and session.auth_level == 2
        infos = remote.sessions_of("bob", current=session)
        assert len(infos) == 1 and infos[0].current and infos[0].ip == "203.0.113.0/24"

    def test_logout_cannot_be_undone_by_inflight_save(self, remote: RemoteSessionManager) -> None:
        session = stored(remote, a=1)
        inflight = remote.load(session.cookie_value)
        assert inflight is not None
        remote.logout(session)
        assert session.ended and remote.load(session.cookie_value) is None
        inflight["a"] = 2
        with pytest.raises(SessionGoneError):
            remote.save(inflight)
        assert inflight.ended and remote.load(session.cookie_value) is None

    def test_revoke_user_keeps_current(self, remote: RemoteSessionManager) -> None:
        sessions = [remote.login(stored(remote), "carol") for _ in range(3)]
        assert len(remote.sessions_of("carol")) == 3
        assert remote.revoke_user("carol", keep=sessions[0]) == 2
        assert remote.load(sessions[0].cookie_value) is not None
        assert remote.load(sessions[1].cookie_value) is None

    def test_admin_revoke_by_handle(self, remote: RemoteSessionManager) -> None:
        session = remote.login(stored(remote), "dave")
        handle = remote.sessions_of("dave")[0].handle
        assert remote.revoke(handle)
        assert remote.load(session.cookie_value) is None

    def test_admin_cleanup_counts_removed(self, remote: RemoteSessionManager,
                                          clock: FrozenClock) -> None:
        """cleanup returns the number of purged records (Admin's ``removed``)."""
        for _ in range(3):
            stored(remote)
        clock.advance(remote.settings.absolute_timeout.total_seconds() + 60)
        alive = stored(remote)
        seen: list[int] = []
        assert remote.cleanup(batch=2, max_batches=1, progress=seen.append) == 2
        assert remote.cleanup(batch=2) == 1 and seen == [2]
        assert remote.load(alive.cookie_value) is not None

    def test_elevate_and_recent_auth(self, remote: RemoteSessionManager,
                                     clock: FrozenClock) -> None:
        session = stored(remote)
        with pytest.raises(ReauthenticationRequired):
            remote.elevate(session)
        remote.login(session, "erin")
        clock.advance(600)
        with pytest.raises(ReauthenticationRequired):
            remote.require_recent_auth(session, timedelta(minutes=5))
        remote.elevate(session)
        assert remote.is_elevated(session)
        remote.require_recent_auth(session, timedelta(minutes=5))

    def test_destroy(self, remote: RemoteSessionManager) -> None:
        session = stored(remote)
        remote.destroy(session)
        assert session.ended and remote.load(session.cookie_value) is None

    def test_async_facade(self, remote: RemoteSessionManager) -> None:
        async def flow() -> None:
            amgr = AsyncRemoteSessionManager(remote)
            async with amgr.open(None) as session:
                session["a"] = 1
            loaded = await amgr.load(session.cookie_value)
            assert loaded is not None and loaded["a"] == 1
            await amgr.login(loaded, "fay")
            assert len(await amgr.sessions_of("fay")) == 1

        asyncio.run(flow())


class TestConnection:
    def test_from_url_with_token_file(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path) as d:
            token_file = d.data_dir / "tokens" / "app.token"
            remote = RemoteSessionManager.from_url(d.url, token_file=token_file)
            try:
                assert remote.ping()
                assert remote.describe()["role"] == "app"
                with pytest.raises(ProtocolError) as info:
                    remote.revoke("0" * 64)
                assert info.value.code == "forbidden_command"
            finally:
                remote.close()

    def test_tcp_url(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path, "--tcp", "127.0.0.1:0") as d:
            port = next(x for x in d.output if x.startswith("tcp")).rsplit(":", 1)[1]
            remote = RemoteSessionManager.from_url(f"sessionward+tcp://127.0.0.1:{port}",
                                                   token=d.app_token)
            try:
                session = stored(remote)
                assert remote.load(session.cookie_value) is not None
            finally:
                remote.close()

    def test_bad_token(self, tmp_path: Path) -> None:
        with DaemonProcess(tmp_path) as d:
            remote = RemoteSessionManager.from_url(d.url, token="x" * 40)
            try:
                with pytest.raises(ProtocolError) as info:
                    remote.ping()
                assert info.value.code == "auth_failed"
            finally:
                remote.close()

    def test_unreachable_daemon_is_store_unavailable(self, tmp_path: Path) -> None:
        remote = RemoteSessionManager(str(tmp_path / "none.sock"), token="t" * 40)
        with pytest.raises(StoreUnavailableError):
            remote.load("a" * 66)
        remote.close()

    def test_token_file_must_be_private(self, tmp_path: Path) -> None:
        tok = tmp_path / "tok"
        tok.write_text("t" * 40)
        tok.chmod(0o644)
        with pytest.raises(ConfigurationError):
            RemoteSessionManager.from_url(f"sessionward://{tmp_path}/x.sock", token_file=tok)
        assert os.environ.get("SESSIONWARD_APP_TOKEN") is None
        with pytest.raises(ConfigurationError):
            RemoteSessionManager.from_url(f"sessionward://{tmp_path}/x.sock")

    def test_daemon_restart_reconnects(self, tmp_path: Path) -> None:
        """A pooled connection to a restarted daemon is replaced transparently."""
        d = DaemonProcess(tmp_path).start()
        remote = RemoteSessionManager.from_url(d.url, token=d.app_token)
        try:
            session = stored(remote)
            d.stop()
            d.start()
            assert remote.load(session.cookie_value) is not None
        finally:
            remote.close()
            d.stop()
