"""``sessionward check --php-ini FILE [--php-fpm-pool FILE]``: the PHP session audit
(``sessionward.admin.php_ini``) on Debian's stock php.ini and on a hardened one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sessionward.admin import php_ini
from sessionward.admin.php_ini import PHP_CATALOGUE, audit

from cli._harness import Cli, cli_fixture  # noqa: F401

pytestmark = pytest.mark.php

STOCK = Path("/usr/lib/php/8.2/php.ini-production")
DEBIAN_DEFAULTS = {**php_ini.DEFAULTS, "session.save_path": "/var/lib/php/sessions"}


def hardened(tmp_path: Path) -> Path:
    sessions = tmp_path / "sessions"
    sessions.mkdir(mode=0o700)
    path = tmp_path / "php.ini"
    path.write_text(f"""[PHP]
; comment = ignored
[Session]
session.save_handler = files
session.save_path = "2;0600;{sessions}"
session.use_strict_mode = 1
session.use_cookies = 1
session.use_only_cookies = 1
session.name = __Host-PHPSESSID
session.cookie_secure = On
session.cookie_httponly = 1
session.cookie_samesite = "Strict"
session.serialize_handler = php_serialize
session.gc_probability = 0
session.lazy_write = 1
session.sid_length = 48
session.sid_bits_per_character = 6
""")
    return path


def ids(found: list[php_ini.Finding]) -> set[str]:
    return {f.id for f in found}


class TestStock:
    def test_stock_production_ini(self) -> None:
        """Debian's php.ini-production: strict mode off, cookie not Secure/HttpOnly, no
        SameSite, legacy serializer, no __Host- name — each with file:line and the fix."""
        if not STOCK.exists():
            pytest.fail("php-cli's php.ini-production is missing (install php-cli)")
        found = audit(STOCK, defaults=DEBIAN_DEFAULTS)
        assert {"SW-E101", "SW-E104", "SW-E105", "SW-W101", "SW-W105", "SW-W107"} <= ids(found)
        strict = next(f for f in found if f.id == "SW-E101")
        assert strict.message.startswith(f"{STOCK}:") and "session.use_strict_mode = 0" in \
            strict.message
        assert strict.fix == "session.use_strict_mode = 1"
        secure = next(f for f in found if f.id == "SW-E105")
        assert "not set" in secure.message and secure.fix == "session.cookie_secure = 1"

    def test_upstream_default_save_path_is_the_temp_dir(self) -> None:
        """No save_path and PHP's upstream default: the shared temp directory (SW-E107)."""
        found = audit(STOCK, defaults=php_ini.DEFAULTS)
        assert "SW-E107" in ids(found)

    def test_cli_table_json_and_exit_code(self, cli: Cli) -> None:
        """The same --json shape and exit 3 as the other findings."""
        result = cli("check", "--php-ini", str(STOCK), "--json")
        doc = result.json()
        assert result.code == 3 and doc["ok"] is False and doc["errors"] >= 3
        assert all(set(f) == {"id", "severity", "title", "message", "fix"}
                   for f in doc["findings"])
        table = cli("check", "--php-ini", str(STOCK))
        assert "SW-E101" in table.out and "session.use_strict_mode = 1" in table.out


class TestHardened:
    def test_hardened_ini_is_clean(self, tmp_path: Path, cli: Cli) -> None:
        """A hardened php.ini with a 0700 save_path gives no finding and exit 0."""
        path = hardened(tmp_path)
        assert audit(path) == []
        result = cli("check", "--php-ini", str(path), "--json")
        assert result.code == 0 and result.json()["findings"] == []

    def test_pool_overrides_win_and_fix_in_pool_syntax(self, tmp_path: Path) -> None:
        """A pool's php_admin_value beats php.ini; its fix is written as a pool line."""
        pool = tmp_path / "www.conf"
        pool.write_text("[www]\nuser = root\nphp_admin_flag[session.use_strict_mode] = off\n"
                        "php_value[session.cookie_samesite] = None\n")
        found = audit(hardened(tmp_path), pool)
        assert ids(found) == {"SW-E101", "SW-W101"}
        strict = next(f for f in found if f.id == "SW-E101")
        assert strict.message.startswith(f"{pool}:3:")
        assert strict.fix == "php_admin_flag[session.use_strict_mode] = 1"

    @pytest.mark.parametrize(("mode", "expected"), [(0o755, {"SW-E108"}),
                                                    (0o1733, {"SW-W102"}),
                                                    (0o777, {"SW-E108", "SW-W102"})])
    def test_save_path_permissions(self, tmp_path: Path, mode: int, expected: set[str]) -> None:
        """Listable session files are an error (names are IDs); writable ones a warning."""
        path = hardened(tmp_path)
        os.chmod(tmp_path / "sessions", mode)
        assert ids(audit(path)) == expected

    def test_missing_save_path_directory(self, tmp_path: Path) -> None:
        """A save_path that does not exist: session_start() would only warn (SW-E109)."""
        path = hardened(tmp_path)
        (tmp_path / "sessions").rmdir()
        assert ids(audit(path)) == {"SW-E109"}

    def test_weak_ids_and_gc_and_lazy_write(self, tmp_path: Path) -> None:
        """Low entropy, per-request GC and lazy_write off are reported."""
        path = hardened(tmp_path)
        path.write_text(path.read_text() + "session.sid_length = 22\nsession.sid_bits_per_character"
                        " = 4\nsession.gc_probability = 1\nsession.lazy_write = Off\n")
        found = audit(path)
        assert ids(found) == {"SW-E106", "SW-W103", "SW-W104"}
        entropy = next(f for f in found if f.id == "SW-E106")
        assert "88 bits" in entropy.message

    def test_other_save_handler_skips_save_path(self, tmp_path: Path) -> None:
        """The save_path checks apply to the files handler only."""
        path = hardened(tmp_path)
        (tmp_path / "sessions").rmdir()
        path.write_text(path.read_text() + "session.save_handler = redis\n")
        assert audit(path) == []


def test_unreadable_file(tmp_path: Path) -> None:
    """A file that cannot be read is SW-E110, nothing else."""
    assert ids(audit(tmp_path / "missing.ini")) == {"SW-E110"}


def test_catalogue_documented() -> None:
    """docs/cli.md documents every PHP finding ID."""
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    assert [i for i in PHP_CATALOGUE if f"`{i}`" not in docs] == []


def test_compiled_defaults_from_local_php() -> None:
    """The local php's compiled-in values are read (Debian's save_path)."""
    defaults = php_ini.compiled_defaults()
    assert set(defaults) == set(php_ini.DEFAULTS)
    assert defaults["session.use_strict_mode"] == "0"
