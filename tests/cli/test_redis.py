"""The CLI against a real redis-server (each test on its own database number)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from sessionward import SessionManager
from sessionward.core.record import envelope_key_id

from cli._harness import Cli, ManagerFactory, login
from svc_redis import RedisServer, redis_server  # noqa: F401

pytestmark = pytest.mark.redis

_DATABASES = itertools.cycle(range(1, 16))


@pytest.fixture(name="redis_url")
def redis_url_fixture(redis_server: RedisServer, cli: Cli) -> Iterator[str]:  # noqa: F811
    """A Redis database of its own (the CLI uses the store's default key prefix)."""
    db = next(_DATABASES)
    client = redis_server.client()
    client.execute_command("SELECT", db)
    client.flushdb()
    url = f"redis://127.0.0.1:{redis_server.port}/{db}"
    cli.env["SESSIONWARD_STORE"] = url
    yield url
    client.close()


class TestRedis:
    def test_list_show_revoke(self, cli: Cli, manager: ManagerFactory, redis_url: str) -> None:
        """list/show/revoke/revoke-user work on Redis."""
        mgr = manager(redis_url)
        a1, a2 = login(cli, mgr, "alice"), login(cli, mgr, "alice")
        bob = login(cli, mgr, "bob")
        doc = cli.ok("list", "--json").json()
        assert {r["handle"] for r in doc["sessions"]} == {a1.handle, a2.handle, bob.handle}
        assert cli.ok("show", bob.handle or "", "--json").json()["user"] == "bob"
        cli.ok("revoke", bob.handle or "")
        assert mgr.load(bob.cookie_value) is None
        assert cli.ok("revoke-user", "alice", "--json").json()["revoked"] == 2
        assert mgr.load(a1.cookie_value) is None and mgr.load(a2.cookie_value) is None

    def test_stats_cleanup_check(self, cli: Cli, manager: ManagerFactory,
                                 redis_url: str) -> None:
        """stats counts, cleanup relies on native TTLs, check pings and compares clocks."""
        login(cli, manager(redis_url), "alice")
        stats = cli.ok("stats", "--json").json()
        assert stats["store"]["kind"] == "redis" and stats["sessions"]["active"] == 1
        assert cli.ok("cleanup", "--json").json() == {"removed": 0, "batches": 1,
                                                      "native_ttl": True}
        doc = cli.ok("check", "--json").json()
        assert doc["ok"] is True
        assert not {"SW-E001", "SW-E009", "SW-W006"} & {f["id"] for f in doc["findings"]}

    def test_rotate_keys_on_redis(self, cli: Cli, manager: ManagerFactory,
                                  redis_url: str) -> None:
        """Rotation re-seals Redis records; sessions still load with the new keyring."""
        session = login(cli, manager(redis_url), "alice", n=7)
        new_kid = cli.ok("rotate-keys", "--json").json()["added"]
        fresh: SessionManager = manager(redis_url)
        stored = fresh.store.load(session.handle or "")
        assert stored is not None and envelope_key_id(stored.blob) == new_kid
        loaded = fresh.load(session.cookie_value)
        assert loaded is not None and loaded["n"] == 7

    def test_revoke_all_on_redis(self, cli: Cli, manager: ManagerFactory,
                                 redis_url: str) -> None:
        """revoke-all scans Redis and ends every session of the namespace."""
        mgr = manager(redis_url)
        sessions = [login(cli, mgr, f"u{i}") for i in range(30)]
        assert cli.ok("revoke-all", "--yes", "--json").json()["revoked"] == 30
        assert all(mgr.load(s.cookie_value) is None for s in sessions)
