"""The daemon's per-connection metadata cache never serves stale metadata."""

from __future__ import annotations

from pathlib import Path

from sessionward import ClientInfo, SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.daemon import handlers
from sessionward.daemon.context import Connection, Context
from sessionward.stores.sqlite import SQLiteStore


def test_save_with_a_newer_version_uses_that_versions_metadata(tmp_path: Path) -> None:
    """Cache holds v1; the client saves with v2 (loaded on another connection after a
    metadata change): the v2 metadata must be kept, not the cached v1."""
    clock = FrozenClock()
    manager = SessionManager(SQLiteStore(tmp_path / "s.db", clock=clock),
                             KeyRing.generate("default"), Settings(), clock=clock)
    ctx = Context(manager, lambda: None, {}, [])
    conn = Connection(peer="uid:0")
    first = {"ip": "203.0.113.7", "user_agent": "Firefox/1"}
    view = handlers.handler_for("app", "create")(ctx, conn, {"data": {"a": 1}, "client": first})
    cookie = view["cookie"]
    loaded = handlers.handler_for("app", "load")(ctx, conn, {"cookie": cookie, "client": first})
    v1 = loaded["session"]["version"]
    # Elsewhere: a request from another network records a second client profile (v2).
    moved = manager.load(cookie, client=ClientInfo(ip="198.51.100.9", user_agent="Firefox/1"))
    assert moved is not None and moved.version == v1 + 1
    handlers.handler_for("app", "save")(ctx, conn, {
        "cookie": cookie, "version": moved.version, "base": {"a": 1}, "data": {"a": 2},
        "client": first})
    final = manager.load(cookie)
    assert final is not None and final["a"] == 2
    assert {p["ip"] for p in final.meta.profiles} == {"203.0.113.0/24", "198.51.100.0/24"}
