"""``sessionward keygen``: private key files, no silent overwrite."""

from __future__ import annotations

import stat
from pathlib import Path

from sessionward.core.keys import load_keyring

from cli._harness import Cli, one_line_error


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestKeygen:
    def test_creates_0600_file_in_0700_dir(self, cli: Cli, tmp_path: Path) -> None:
        """The key file is 0600 in a new 0700 directory and loads as a keyring."""
        target = tmp_path / "new" / "k.key"
        result = cli.ok("keygen", "--out", str(target), "--json")
        assert _mode(target) == 0o600
        assert _mode(target.parent) == 0o700
        assert result.json() == {"path": str(target), "kid": load_keyring(target).active.kid}

    def test_refuses_to_overwrite_without_force(self, cli: Cli, tmp_path: Path) -> None:
        """An existing key file is kept, with a one-line error, unless --force."""
        target = tmp_path / "new" / "k.key"
        cli.ok("keygen", "--out", str(target))
        before = target.read_bytes()
        result = cli("keygen", "--out", str(target))
        one_line_error(result)
        assert "--force" in result.err
        assert target.read_bytes() == before
        cli.ok("keygen", "--out", str(target), "--force")
        assert target.read_bytes() != before
        assert _mode(target) == 0o600

    def test_uses_configured_key_file(self, cli: Cli, tmp_path: Path) -> None:
        """Without --out the configured key_file is the target (and is not overwritten)."""
        result = cli("keygen")
        one_line_error(result)
        assert "already exists" in result.err

    def test_refuses_insecure_directory(self, cli: Cli, tmp_path: Path) -> None:
        """A group/world-accessible directory is refused."""
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o755)
        shared.chmod(0o755)
        result = cli("keygen", "--out", str(shared / "k.key"))
        one_line_error(result)
        assert not (shared / "k.key").exists()
