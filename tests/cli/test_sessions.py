"""``list``, ``show``, ``revoke``, ``revoke-user``, ``revoke-all`` against SQLite."""

from __future__ import annotations

import json
from pathlib import Path

from cli._harness import Cli, ManagerFactory, login, one_line_error, past

LIST_ROW_KEYS = {"handle", "user", "created", "last_seen", "expires_at", "auth_time", "device",
                 "ip", "elevated", "status"}


class TestList:
    def test_lists_metadata_and_handles(self, cli: Cli, manager: ManagerFactory) -> None:
        """Every session appears with its handle and user; JSON rows have a fixed schema."""
        mgr = manager()
        a, b = login(cli, mgr, "alice"), login(cli, mgr, "bob")
        anonymous = login(cli, mgr, None)
        doc = cli.ok("list", "--json").json()
        assert set(doc) == {"sessions", "count", "skipped"}
        assert doc["count"] == 3 and doc["skipped"] == 0
        assert {r["handle"] for r in doc["sessions"]} == {a.handle, b.handle, anonymous.handle}
        assert all(set(r) == LIST_ROW_KEYS for r in doc["sessions"])
        human = cli.ok("list").out
        assert (a.handle or "") in human and "alice" in human and "bob" in human

    def test_user_filter(self, cli: Cli, manager: ManagerFactory) -> None:
        """--user shows only that user's sessions."""
        mgr = manager()
        a1, a2 = login(cli, mgr, "alice"), login(cli, mgr, "alice")
        login(cli, mgr, "bob")
        doc = cli.ok("list", "--user", "alice", "--json").json()
        assert {r["handle"] for r in doc["sessions"]} == {a1.handle, a2.handle}
        assert {r["user"] for r in doc["sessions"]} == {"alice"}

    def test_expired_only_with_flag(self, cli: Cli, manager: ManagerFactory) -> None:
        """Expired-but-not-cleaned sessions are hidden unless --expired."""
        live = login(cli, manager(), "alice")
        old = login(cli, manager(clock=past(7200)), "alice")
        rows = cli.ok("list", "--json").json()["sessions"]
        assert [r["handle"] for r in rows] == [live.handle]
        rows = cli.ok("list", "--expired", "--json").json()["sessions"]
        status = {r["handle"]: r["status"] for r in rows}
        assert status == {live.handle: "active", old.handle: "expired"}
        rows = cli.ok("list", "--user", "alice", "--expired", "--json").json()["sessions"]
        assert {r["handle"] for r in rows} == {live.handle, old.handle}

    def test_other_namespace_is_skipped(self, cli: Cli, manager: ManagerFactory) -> None:
        """Records of another namespace in the same store are counted, never shown."""
        login(cli, manager(namespace="other"), "mallory")
        mine = login(cli, manager(), "alice")
        doc = cli.ok("list", "--json").json()
        assert [r["handle"] for r in doc["sessions"]] == [mine.handle]
        assert doc["skipped"] == 1

    def test_many_pages(self, cli: Cli, manager: ManagerFactory) -> None:
        """Listing walks every scan page (more records than one page)."""
        mgr = manager()
        handles = {login(cli, mgr, f"user{i}").handle for i in range(520)}
        doc = cli.ok("list", "--json").json()
        assert doc["count"] == 520
        assert {r["handle"] for r in doc["sessions"]} == handles


class TestShow:
    def test_metadata_without_data(self, cli: Cli, manager: ManagerFactory) -> None:
        """show prints metadata, never the data unless --data."""
        session = login(cli, manager(), "alice", secret_note="top-secret-value")
        result = cli.ok("show", session.handle or "", "--json")
        doc = result.json()
        assert doc["handle"] == session.handle and doc["user"] == "alice"
        assert doc["status"] == "active" and "data" not in doc
        assert "top-secret-value" not in result.out
        assert "top-secret-value" not in cli.ok("show", session.handle or "").out

    def test_data_reveal_is_audited(self, cli: Cli, manager: ManagerFactory,
                                    tmp_path: Path) -> None:
        """--data reveals the data and writes a data_revealed event naming the operator."""
        session = login(cli, manager(), "alice", note="visible-now")
        audit = tmp_path / "audit.log"
        result = cli.ok("--audit-file", str(audit), "show", session.handle or "", "--data",
                        "--json")
        assert result.json()["data"] == {"note": "visible-now"}
        events = [json.loads(line) for line in audit.read_text().splitlines()]
        revealed = [e for e in events if e["event"] == "data_revealed"]
        assert len(revealed) == 1
        assert revealed[0]["operator"] and revealed[0]["user"] == "alice"
        assert "visible-now" not in audit.read_text()

    def test_unknown_and_malformed_handles(self, cli: Cli) -> None:
        """Unknown or malformed handles give one error line and a non-zero exit."""
        one_line_error(cli("show", "0" * 64))
        one_line_error(cli("show", "../../etc/passwd"))


class TestRevoke:
    def test_revoke_one(self, cli: Cli, manager: ManagerFactory, tmp_path: Path) -> None:
        """revoke ends exactly that session, emitting revoked with the operator."""
        mgr = manager()
        gone, kept = login(cli, mgr, "alice"), login(cli, mgr, "alice")
        audit = tmp_path / "audit.log"
        doc = cli.ok("--audit-file", str(audit), "revoke", gone.handle or "", "--json").json()
        assert doc == {"handle": gone.handle, "user": "alice", "revoked": 1}
        assert mgr.load(gone.cookie_value) is None
        assert mgr.load(kept.cookie_value) is not None
        event = json.loads(audit.read_text().splitlines()[-1])
        assert event["event"] == "revoked" and event["operator"]
        one_line_error(cli("revoke", gone.handle or ""))

    def test_revoke_user_keeps_one(self, cli: Cli, manager: ManagerFactory) -> None:
        """revoke-user ends every session of the user except --keep."""
        mgr = manager()
        a1, a2, a3 = (login(cli, mgr, "alice") for _ in range(3))
        bob = login(cli, mgr, "bob")
        doc = cli.ok("revoke-user", "alice", "--keep", a2.handle or "", "--json").json()
        assert doc == {"user": "alice", "revoked": 2, "kept": a2.handle}
        assert mgr.load(a1.cookie_value) is None and mgr.load(a3.cookie_value) is None
        assert mgr.load(a2.cookie_value) is not None and mgr.load(bob.cookie_value) is not None

    def test_revoke_all_asks_for_the_namespace(self, cli: Cli, manager: ManagerFactory) -> None:
        """A wrong answer revokes nothing; the namespace revokes all of it, not others."""
        mgr = manager()
        mine = [login(cli, mgr, "alice"), login(cli, mgr, None)]
        other_mgr = manager(namespace="other")
        theirs = login(cli, other_mgr, "zed")
        one_line_error(cli("revoke-all", input="nope\n"), prompted=True)
        assert all(mgr.load(s.cookie_value) is not None for s in mine)
        result = cli.ok("revoke-all", "--json", input="default\n")
        assert result.json() == {"namespace": "default", "revoked": 2, "skipped": 1}
        assert all(mgr.load(s.cookie_value) is None for s in mine)
        assert other_mgr.load(theirs.cookie_value) is not None

    def test_revoke_all_yes(self, cli: Cli, manager: ManagerFactory) -> None:
        """--yes skips the question."""
        mgr = manager()
        session = login(cli, mgr, "alice")
        assert cli.ok("revoke-all", "--yes", "--json").json()["revoked"] == 1
        assert mgr.load(session.cookie_value) is None

    def test_revoke_all_without_input_aborts(self, cli: Cli, manager: ManagerFactory) -> None:
        """No answer at all (closed stdin) revokes nothing."""
        mgr = manager()
        session = login(cli, mgr, "alice")
        one_line_error(cli("revoke-all", input=""), prompted=True)
        assert mgr.load(session.cookie_value) is not None
