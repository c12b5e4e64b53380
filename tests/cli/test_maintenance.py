"""``cleanup``, ``stats``, ``unlock`` and ``audit verify``."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sessionward.audit.events import Event
from sessionward.audit.sinks.audit_file import AuditFileSink
from sessionward.guards.throttle import Throttle

from cli._harness import Cli, ManagerFactory, login, one_line_error, past

STATS_KEYS = {"namespace", "sessions", "store", "keys", "audit"}


class TestCleanup:
    def test_removes_expired_only(self, cli: Cli, manager: ManagerFactory) -> None:
        """Expired records go in batches; live ones stay; the count is printed."""
        mgr = manager()
        live = login(cli, mgr, "alice")
        old_mgr = manager(clock=past(7200))
        for i in range(7):
            login(cli, old_mgr, f"old{i}")
        doc = cli.ok("cleanup", "--batch", "3", "--json").json()
        assert doc == {"removed": 7, "batches": 3, "native_ttl": False}
        assert mgr.load(live.cookie_value) is not None
        assert cli.ok("list", "--expired", "--json").json()["count"] == 1
        assert "removed 0 expired" in cli.ok("cleanup").out

    def test_rejects_bad_batch(self, cli: Cli) -> None:
        """A batch of 0 is a usage error (exit 2), one line."""
        result = cli("cleanup", "--batch", "0")
        one_line_error(result)
        assert result.code == 2


class TestStats:
    def test_counts(self, cli: Cli, manager: ManagerFactory) -> None:
        """Active, expired, in-grace, kv entries and per-key counts are reported."""
        mgr = manager()
        login(cli, mgr, "alice")
        login(cli, manager(clock=past(7200)), "bob")
        self._rotated_in_grace(cli, manager)
        throttle = Throttle(mgr.store, mgr.keyring)
        throttle.hit(throttle.key_for("carol"))
        doc = cli.ok("stats", "--json").json()
        assert set(doc) == STATS_KEYS
        assert doc["sessions"] == {"active": 2, "expired": 1, "in_grace": 1, "tombstones": 0,
                                   "undecodable": 0}
        assert doc["store"]["kind"] == "sqlite" and doc["store"]["records"] == 4
        assert doc["store"]["kv_entries"] == 1
        assert doc["keys"]["sealed_with"] == {mgr.keyring.active.kid: 4}
        assert doc["audit"]["failures"] == 0
        assert "active sessions" in cli.ok("stats").out

    @staticmethod
    def _rotated_in_grace(cli: Cli, manager: ManagerFactory) -> None:
        """A periodic rotation whose 300 s grace runs from (real now + 200 s)."""
        offset = {"t": -100.0}
        mgr = manager(clock=lambda: time.time() + offset["t"],
                      rotation_interval=timedelta(seconds=60),
                      rotation_grace=timedelta(seconds=300))
        session = login(cli, mgr, "dave")
        offset["t"] = 200.0
        rotated = mgr.load(session.cookie_value)
        assert rotated is not None and rotated.handle != session.handle
        cli.remember(rotated)


class TestUnlock:
    def test_unlock_user(self, cli: Cli, manager: ManagerFactory, tmp_path: Path) -> None:
        """unlock USER clears a real lockout, and says so."""
        mgr = manager()
        throttle = Throttle(mgr.store, mgr.keyring)
        key = throttle.key_for("alice")
        for _ in range(5):
            throttle.hit(key)
        assert throttle.check(key) > 0
        doc = cli.ok("unlock", "alice", "--json").json()
        assert doc == {"throttle": "login", "unlocked": True}
        assert throttle.check(key) == 0
        assert cli.ok("unlock", "alice", "--json").json()["unlocked"] is False

    def test_unlock_raw_key_and_address(self, cli: Cli, manager: ManagerFactory) -> None:
        """A raw thr: key and a --user/--ip pair of another throttle both work."""
        mgr = manager()
        login_gate = Throttle(mgr.store, mgr.keyring)
        raw = login_gate.key_for("bob")
        login_gate.hit(raw)
        cli.ok("unlock", str(raw))
        assert mgr.store.kv_get(str(raw)) is None
        invalid = Throttle(mgr.store, mgr.keyring, namespace="invalid")
        both = invalid.key_for("bob", "203.0.113.9")
        invalid.hit(both)
        cli.ok("unlock", "--user", "bob", "--ip", "203.0.113.9", "--throttle", "invalid")
        assert mgr.store.kv_get(str(both)) is None

    def test_unlock_errors(self, cli: Cli) -> None:
        """Nothing to unlock, or a malformed raw key, is one error line."""
        one_line_error(cli("unlock"))
        one_line_error(cli("unlock", "thr:login:nothex"))
        one_line_error(cli("unlock", "alice", "--throttle", "Bad Name"))


class TestAuditVerify:
    def _write(self, path: Path, count: int) -> None:
        with AuditFileSink(path, level="all", hash_chain=True) as sink:
            for i in range(count):
                sink(Event(name="revoked", ts=1_800_000_000.0 + i, namespace="default"))

    def test_intact_chain(self, cli: Cli, tmp_path: Path) -> None:
        """An untouched chained file verifies."""
        path = tmp_path / "audit.log"
        self._write(path, 3)
        assert cli.ok("audit", "verify", str(path), "--json").json()["ok"] is True
        assert "3 line(s) intact" in cli.ok("audit", "verify", str(path)).out

    def test_broken_chain_names_the_line(self, cli: Cli, tmp_path: Path) -> None:
        """An edited line fails with exit 3 naming the first broken line."""
        path = tmp_path / "audit.log"
        self._write(path, 4)
        lines = path.read_text().splitlines(keepends=True)
        lines[1] = lines[1].replace("revoked", "REVOKED")
        path.write_text("".join(lines))
        result = cli("audit", "verify", str(path))
        one_line_error(result)
        assert result.code == 3 and "line 3" in result.err
        doc = cli("audit", "verify", str(path), "--json").json()
        assert doc["ok"] is False and doc["first_broken"] == 3

    def test_missing_file(self, cli: Cli, tmp_path: Path) -> None:
        """A missing file is one error line."""
        one_line_error(cli("audit", "verify", str(tmp_path / "nope.log")))
