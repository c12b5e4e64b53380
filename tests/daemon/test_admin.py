"""The admin role over a real daemon: sessionward.admin.Admin with the peer as operator."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionward import SessionManager
from sessionward.cli._keyfile import add_active_key
from sessionward.lifecycle.session import Session

from svc_daemon import DaemonProcess, RawClient

pytestmark = pytest.mark.daemon


class Env:
    """A daemon with an audit file, an admin client and a library manager on its store."""

    def __init__(self, tmp_path: Path) -> None:
        self.audit = tmp_path / "audit.jsonl"
        self.daemon = DaemonProcess(tmp_path, "--namespace", "default", "--audit-file",
                                    str(self.audit)).start()
        data = self.daemon.data_dir
        self.manager = SessionManager.from_url(f"sqlite:///{data}/sessions.db",
                                               key_file=str(data / "key"))
        self.admin = RawClient(self.daemon.socket, self.daemon.admin_token)

    def call(self, command: str, **fields: Any) -> Any:
        reply = self.admin.call(command, **fields)
        assert reply["ok"] is True, reply
        return reply["data"]

    def error(self, command: str, **fields: Any) -> str:
        reply = self.admin.call(command, **fields)
        assert reply["ok"] is False, reply
        return str(reply["error"]["type"])

    def session(self, user: str | None = "alice") -> Session:
        session = self.manager.new()
        session["n"] = 1
        if user is not None:
            self.manager.login(session, user)
        self.manager.save(session)
        return session

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = self.audit.read_text().splitlines() if self.audit.exists() else []
        return [doc for doc in map(json.loads, lines) if doc["event"] == name]

    def close(self) -> None:
        self.admin.close()
        self.manager.close()
        self.daemon.stop()


@pytest.fixture(name="env")
def env_fixture(tmp_path: Path) -> Iterator[Env]:
    env = Env(tmp_path)
    try:
        yield env
    finally:
        env.close()


class TestAdminRole:
    def test_events_name_the_peer_as_operator(self, env: Env) -> None:
        """An admin revoke is audited with operator uid:<peer uid> (SO_PEERCRED)."""
        session = env.session()
        assert env.call("revoke", handle=session.handle)["revoked"] == 1
        revoked = env.events("revoked")
        assert [e["operator"] for e in revoked] == [f"uid:{os.getuid()}"]

    def test_stats_reports_the_audit_sink(self, env: Env) -> None:
        """stats counts the daemon's audit sink (a real AuditFileSink, 0 failures)."""
        env.session()
        audit = env.call("stats")["audit"]
        assert audit == {"failures": 0, "hub_failures": 0, "sinks": {"AuditFileSink#0": 0}}

    def test_revoke_all(self, env: Env) -> None:
        sessions = [env.session(u) for u in ("alice", "bob", None)]
        doc = env.call("revoke-all")
        assert doc == {"namespace": "default", "revoked": 3, "skipped": 0}
        assert all(env.manager.load(s.cookie_value) is None for s in sessions)
        assert env.events("revoked")[0]["reason"] == "revoke_all"

    def test_key_usage_and_reseal_pages(self, env: Env) -> None:
        """key-usage, then reseal page by page (cursor) under a key the daemon
        reloaded; every session still loads afterwards."""
        old = env.manager.keyring.active.kid
        sessions = [env.session(f"u{i}") for i in range(3)]
        assert env.call("key-usage", kid=old) == {
            "kid": old, "sealed_with": 3, "issued_by": 3, "expired": 0}
        assert env.error("key-usage", kid="nope") == "invalid_argument"
        new, _ring = add_active_key(str(env.daemon.data_dir / "key"), "default")
        assert env.call("reload-keys")["active_key"] == new
        totals: dict[str, int] = {}
        cursor: str | None = None
        for _page in range(10):
            page = env.call("reseal", batch=2, cursor=cursor)
            cursor = page.pop("cursor")
            for name, count in page.items():
                totals[name] = totals.get(name, 0) + count
            if cursor is None:
                break
        assert cursor is None and totals["resealed"] == 3
        assert env.call("key-usage", kid=old)["sealed_with"] == 0
        assert env.call("key-usage", kid=new)["sealed_with"] == 3
        fresh = SessionManager.from_url(f"sqlite:///{env.daemon.data_dir}/sessions.db",
                                        key_file=str(env.daemon.data_dir / "key"))
        try:
            assert all(fresh.load(s.cookie_value) is not None for s in sessions)
        finally:
            fresh.close()
        assert env.events("key_rotated")[-1]["operator"] == f"uid:{os.getuid()}"

    def test_cleanup_with_max_batches(self, env: Env) -> None:
        doc = env.call("cleanup", batch=5, max_batches=1)
        assert doc == {"removed": 0, "batches": 1, "done": True, "native_ttl": False}

    @pytest.mark.parametrize(("command", "fields"), [
        ("cleanup", {"batch": 10_001}), ("cleanup", {"max_batches": 0}),
        ("reseal", {"batch": 0}), ("reseal", {"cursor": 5}), ("key-usage", {}),
        ("key-usage", {"kid": "x" * 17}), ("unlock", {"throttle": "x" * 33}),
        ("unlock", {"user": 1}), ("unlock", {}), ("unlock", {"key": "thr:nope"}),
        ("unlock", {"user": "a", "throttle": "Bad"}), ("revoke-all", {"all": True}),
    ])
    def test_bad_arguments(self, env: Env, command: str, fields: dict[str, Any]) -> None:
        """Schema and Admin refusals are invalid_argument, never internal_error."""
        assert env.error(command, **fields) == "invalid_argument"
