"""``rotate-keys`` and ``retire-key``: nobody is logged out."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from sessionward.core.keys import load_keyring
from sessionward.core.record import envelope_key_id

from cli._harness import Cli, ManagerFactory, login, one_line_error


def _key_file(cli: Cli) -> Path:
    return Path(cli.env["SESSIONWARD_KEY_FILE"])


class TestRotateKeys:
    def test_rotation_keeps_everyone_logged_in(self, cli: Cli, manager: ManagerFactory) -> None:
        """Sessions made before the rotation still load after it, now sealed with the new key."""
        before = manager()
        old_kid = before.keyring.active.kid
        sessions = [login(cli, before, f"user{i}", n=i) for i in range(5)]
        doc = cli.ok("rotate-keys", "--batch", "2", "--json").json()
        new_kid = doc["added"]
        assert new_kid != old_kid
        assert doc["reseal"] == {"resealed": 5, "current": 0, "expired": 0, "skipped": 0,
                                 "conflicts": 0}
        ring = load_keyring(_key_file(cli))
        assert [k.kid for k in ring.keys] == [new_kid, old_kid]
        after = manager()
        for i, session in enumerate(sessions):
            stored = after.store.load(session.handle or "")
            assert stored is not None and envelope_key_id(stored.blob) == new_kid
            loaded = after.load(session.cookie_value)
            assert loaded is not None and loaded["n"] == i and loaded.user == f"user{i}"

    def test_key_file_becomes_private_json_keyring(self, cli: Cli) -> None:
        """A single-key file turns into the JSON keyring form, still 0600."""
        cli.ok("rotate-keys")
        path = _key_file(cli)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        doc = json.loads(path.read_text())
        assert set(doc) == {"active", "keys"} and len(doc["keys"]) == 2
        assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    def test_reseal_does_not_extend_idle_time(self, cli: Cli, manager: ManagerFactory) -> None:
        """Re-sealing keeps the store's touched_at (idle clock) as it was."""
        mgr = manager()
        session = login(cli, mgr, "alice")
        before = mgr.store.load(session.handle or "")
        cli.ok("rotate-keys")
        after = mgr.store.load(session.handle or "")
        assert before is not None and after is not None
        assert after.touched_at == before.touched_at and after.version == before.version + 1

    def test_no_reseal_then_reseal_only(self, cli: Cli, manager: ManagerFactory) -> None:
        """The two-step rotation adds the key first, then re-seals."""
        mgr = manager()
        session = login(cli, mgr, "alice")
        added = cli.ok("rotate-keys", "--no-reseal", "--json").json()["added"]
        stored = mgr.store.load(session.handle or "")
        assert stored is not None and envelope_key_id(stored.blob) != added
        doc = cli.ok("rotate-keys", "--reseal-only", "--json").json()
        assert doc["added"] is None and doc["reseal"]["resealed"] == 1
        stored = mgr.store.load(session.handle or "")
        assert stored is not None and envelope_key_id(stored.blob) == added
        one_line_error(cli("rotate-keys", "--no-reseal", "--reseal-only"))


class TestRetireKey:
    def test_refuses_key_still_in_use(self, cli: Cli, manager: ManagerFactory) -> None:
        """A key that issued live sessions cannot be retired; the count is given."""
        mgr = manager()
        old_kid = mgr.keyring.active.kid
        login(cli, mgr, "alice")
        login(cli, mgr, "bob")
        cli.ok("rotate-keys")
        result = cli("retire-key", old_kid)
        one_line_error(result)
        assert "2 issued under it" in result.err
        assert old_kid in [k.kid for k in load_keyring(_key_file(cli)).keys]

    def test_refuses_active_and_unknown_keys(self, cli: Cli, manager: ManagerFactory) -> None:
        """The active key and unknown ids are refused."""
        active = manager().keyring.active.kid
        one_line_error(cli("retire-key", active))
        one_line_error(cli("retire-key", "deadbeef"))

    def test_retires_unused_key(self, cli: Cli, manager: ManagerFactory) -> None:
        """A key nothing uses any more is removed; sessions keep working."""
        mgr = manager()
        first = mgr.keyring.active.kid
        session = login(cli, mgr, "alice")
        middle = cli.ok("rotate-keys", "--json").json()["added"]
        newest = cli.ok("rotate-keys", "--json").json()["added"]
        doc = cli.ok("retire-key", middle, "--json").json()
        assert doc == {"retired": middle, "keys": [newest, first]}
        assert manager().load(session.cookie_value) is not None

    def test_daemon_mode_refuses_key_file_changes(self, cli: Cli, tmp_path: Path) -> None:
        """Key file changes are local only: a clear error with --daemon."""
        env = {"SESSIONWARD_ADMIN_TOKEN": "t" * 32}
        url = f"sessionward://{tmp_path}/none.sock"
        one_line_error(cli("--daemon", url, "rotate-keys", env=env))
        one_line_error(cli("--daemon", url, "retire-key", "deadbeef", env=env))
