"""The same commands through the daemon's admin role (``--daemon``): same output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessionward import SessionManager
from sessionward.guards.throttle import Throttle

from cli._harness import Cli, base_env, login, one_line_error, past
from svc_daemon import DaemonProcess

pytestmark = pytest.mark.daemon


class Env:
    """A daemon plus a library manager and CLI runners for both modes."""

    def __init__(self, tmp_path: Path) -> None:
        self.daemon = DaemonProcess(tmp_path, "--namespace", "default").start()
        data = self.daemon.data_dir
        self.store_url = f"sqlite:///{data}/sessions.db"
        self.local = Cli(tmp_path, {**base_env(tmp_path),
                                    "SESSIONWARD_STORE": self.store_url,
                                    "SESSIONWARD_KEY_FILE": str(data / "key")})
        self.remote = Cli(tmp_path, {**base_env(tmp_path),
                                     "SESSIONWARD_DAEMON": self.daemon.url,
                                     "SESSIONWARD_TOKEN_FILE": str(data / "tokens" /
                                                                   "admin.token")})
        self.manager = SessionManager.from_url(self.store_url, key_file=str(data / "key"))

    def close(self) -> None:
        self.manager.close()
        self.daemon.stop()
        outputs = self.local.outputs + self.remote.outputs
        secrets = self.local.secrets | {self.daemon.admin_token, self.daemon.app_token}
        assert not [s for s in secrets for text in outputs if s in text]


@pytest.fixture(name="env")
def env_fixture(tmp_path: Path) -> Iterator[Env]:
    env = Env(tmp_path)
    try:
        yield env
    finally:
        env.close()


class TestDaemonMode:
    def test_list_and_show_match_local_output(self, env: Env) -> None:
        """list and show print the same thing through the daemon as locally."""
        a = login(env.local, env.manager, "alice")
        login(env.local, env.manager, "bob")
        for args in (["list", "--json"], ["list", "--user", "alice", "--json"],
                     ["show", a.handle or "", "--json"]):
            assert env.remote.ok(*args).json() == env.local.ok(*args).json()

    def test_revoke_and_revoke_user(self, env: Env) -> None:
        """State-changing commands work through the daemon."""
        a1, a2 = login(env.local, env.manager, "alice"), login(env.local, env.manager, "alice")
        b = login(env.local, env.manager, "bob")
        assert env.remote.ok("revoke", b.handle or "", "--json").json()["revoked"] == 1
        assert env.manager.load(b.cookie_value) is None
        doc = env.remote.ok("revoke-user", "alice", "--keep", a1.handle or "", "--json").json()
        assert doc["revoked"] == 1
        assert env.manager.load(a2.cookie_value) is None
        assert env.manager.load(a1.cookie_value) is not None

    def test_stats_and_cleanup(self, env: Env) -> None:
        """stats and cleanup answer through the daemon."""
        login(env.local, env.manager, "alice")
        assert env.remote.ok("stats", "--json").json()["sessions"]["active"] == 1
        assert env.remote.ok("cleanup", "--json").json()["removed"] == 0

    def test_errors_are_one_line(self, env: Env) -> None:
        """A daemon-side refusal and a wrong token are one line each."""
        one_line_error(env.remote("show", "0" * 64))
        bad = env.remote("list", env={"SESSIONWARD_TOKEN_FILE": "",
                                      "SESSIONWARD_ADMIN_TOKEN": "wrong" * 8})
        one_line_error(bad)
        assert "auth" in bad.err

    def test_check_pings_the_daemon(self, env: Env) -> None:
        """check in daemon mode reaches the daemon: no SW-E001."""
        doc = env.remote("check", "--json").json()
        assert "SW-E001" not in {f["id"] for f in doc["findings"]}


def reload_daemon_keys(env: Env) -> str:
    """Make the daemon re-read its key file (as SIGHUP does, but synchronously)."""
    reply = env.daemon.client(env.daemon.admin_token).call("reload-keys")
    assert reply["ok"] is True, reply
    return str(reply["data"]["active_key"])


def fresh_manager(env: Env, clock: Callable[[], float] | None = None) -> SessionManager:
    """A library manager that reads the key file as it is now."""
    return SessionManager.from_url(env.store_url, key_file=str(env.daemon.data_dir / "key"),
                                   clock=clock)


class TestDaemonModeAdmin:
    def test_revoke_all_matches_local(self, env: Env) -> None:
        """revoke-all through the daemon ends every session; same output as locally."""
        first = [login(env.local, env.manager, u) for u in ("alice", "bob")]
        remote = env.remote.ok("revoke-all", "--yes", "--json").json()
        assert all(env.manager.load(s.cookie_value) is None for s in first)
        second = [login(env.local, env.manager, u) for u in ("alice", "bob")]
        local = env.local.ok("revoke-all", "--yes", "--json").json()
        assert all(env.manager.load(s.cookie_value) is None for s in second)
        assert remote == local == {"namespace": "default", "revoked": 2, "skipped": 0}

    def test_unlock_clears_a_real_lockout(self, env: Env) -> None:
        """A lockout counted by Throttle in the daemon's store is cleared by
        ``unlock --daemon``; the same command locally prints the same thing."""
        gate = Throttle(env.manager.store, env.manager.keyring, clock=env.manager.clock)
        alive = login(env.local, env.manager, "alice")
        outputs = []
        for cli in (env.remote, env.local):
            key = gate.key_for(user="mallory")
            lockouts = [gate.hit(key) for _ in range(5)]
            assert lockouts[-1] > 0 and gate.check(key) > 0
            outputs.append(cli.ok("unlock", "mallory", "--json").json())
            assert gate.check(key) == 0
            assert cli.ok("unlock", "mallory", "--json").json()["unlocked"] is False
        assert outputs[0] == outputs[1] == {"throttle": "login", "unlocked": True}
        assert env.manager.load(alive.cookie_value) is not None

    def test_unlock_by_raw_key_and_bad_throttle(self, env: Env) -> None:
        """A thr:... key works through the daemon; a bad throttle name is one line."""
        gate = Throttle(env.manager.store, env.manager.keyring, clock=env.manager.clock,
                        namespace="invalid")
        key = gate.key_for(ip="192.0.2.7")
        for _ in range(5):
            gate.hit(key)
        doc = env.remote.ok("unlock", str(key), "--throttle", "invalid", "--json").json()
        assert doc == {"throttle": "invalid", "unlocked": True} and gate.check(key) == 0
        one_line_error(env.remote("unlock", "mallory", "--throttle", "Bad-Name"))

    def test_reseal_only_matches_local_and_logs_nobody_out(self, env: Env) -> None:
        """rotate-keys --reseal-only through the daemon re-seals under the key the
        daemon reloaded; the same step locally prints the same counts."""
        sessions = [login(env.local, env.manager, u) for u in ("alice", "bob", None)]
        outputs = []
        for cli in (env.remote, env.local):
            added = env.local.ok("rotate-keys", "--no-reseal", "--json").json()["added"]
            assert reload_daemon_keys(env) == added
            outputs.append(cli.ok("rotate-keys", "--reseal-only", "--json").json())
            stats = env.remote.ok("stats", "--json").json()
            assert stats["keys"]["sealed_with"] == {added: 3}
        assert outputs[0] == outputs[1]
        assert outputs[0] == {"added": None, "reseal": {
            "resealed": 3, "current": 0, "expired": 0, "skipped": 0, "conflicts": 0}}
        mgr = fresh_manager(env)
        try:
            assert all(mgr.load(s.cookie_value) is not None for s in sessions)
        finally:
            mgr.close()

    def test_cleanup_matches_local_and_keeps_live_sessions(self, env: Env) -> None:
        """cleanup through the daemon removes only expired records, like locally."""
        old = fresh_manager(env, clock=past(7200))
        try:
            alive = login(env.local, env.manager, "alice")
            outputs = []
            for cli in (env.remote, env.local):
                for user in ("old1", "old2", "old3"):
                    login(env.local, old, user)
                outputs.append(cli.ok("cleanup", "--batch", "2", "--json").json())
        finally:
            old.close()
        assert outputs[0] == outputs[1]
        assert outputs[0]["removed"] == 3 and outputs[0]["batches"] == 2
        assert env.manager.load(alive.cookie_value) is not None
