"""The same commands through the daemon's admin role (``--daemon``): same output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward import SessionManager

from cli._harness import Cli, base_env, login, one_line_error
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
