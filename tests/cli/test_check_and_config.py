"""``check`` findings, configuration precedence, one-line errors, lazy commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sessionward.admin.checks import CATALOGUE

from cli._harness import EXE, Cli, one_line_error

FINDING_KEYS = {"id", "severity", "title", "message", "fix"}


def _ids(cli: Cli, *args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    result = cli(*args, "check", "--json", env=env)
    doc = result.json()
    assert set(doc) == {"findings", "errors", "warnings", "ok"}
    assert all(set(f) == FINDING_KEYS for f in doc["findings"])
    return result.code, {f["id"] for f in doc["findings"]}


class TestCheck:
    def test_clean_configuration(self, cli: Cli) -> None:
        """The defaults with a private key file and SQLite store: no finding, exit 0."""
        code, ids = _ids(cli)
        assert (code, ids) == (0, set())
        assert "0 error(s), 0 warning(s)" in cli.ok("check").out

    def test_insecure_cookie_is_an_error(self, cli: Cli) -> None:
        """cookie_secure off (unsafe_dev_http) is SW-E004 and exits 3."""
        env = {"SESSIONWARD_COOKIE_SECURE": "false", "SESSIONWARD_UNSAFE_DEV_HTTP": "true",
               "SESSIONWARD_COOKIE_NAME": "session"}
        code, ids = _ids(cli, env=env)
        assert code == 3 and {"SW-E004", "SW-W004"} <= ids

    def test_dev_mode_and_debug_are_warnings(self, cli: Cli) -> None:
        """unsafe_dev_http with a secure cookie and debug output warn (exit 0)."""
        env = {"SESSIONWARD_UNSAFE_DEV_HTTP": "true", "SESSIONWARD_DEBUG": "1"}
        assert _ids(cli, env=env) == (0, {"SW-W001", "SW-W007"})

    def test_policy_warnings(self, cli: Cli) -> None:
        """Weak policies each give their warning."""
        env = {"SESSIONWARD_IDLE_TIMEOUT_SECONDS": "7200",
               "SESSIONWARD_ROTATION_INTERVAL_SECONDS": "off",
               "SESSIONWARD_ZOMBIE_POLICY": "log", "SESSIONWARD_CLIENT_BINDING": "ignore",
               "SESSIONWARD_COOKIE_SAME_SITE": "none", "SESSIONWARD_COOKIE_HTTP_ONLY": "0"}
        code, ids = _ids(cli, env=env)
        assert code == 0
        assert {"SW-W002", "SW-W003", "SW-W008", "SW-W009", "SW-W010", "SW-W011"} <= ids

    def test_key_file_permissions(self, cli: Cli) -> None:
        """A group-readable key file is SW-E002."""
        Path(cli.env["SESSIONWARD_KEY_FILE"]).chmod(0o640)
        code, ids = _ids(cli)
        assert code == 3 and "SW-E002" in ids

    def test_store_permissions(self, cli: Cli, tmp_path: Path) -> None:
        """A world-writable SQLite file is SW-E005; world-readable is SW-W014."""
        cli.ok("list")
        db = tmp_path / "x.db"
        db.chmod(0o644)
        assert _ids(cli) == (0, {"SW-W014"})
        db.chmod(0o666)
        code, ids = _ids(cli)
        assert code == 3 and "SW-E005" in ids

    def test_unreachable_store(self, cli: Cli) -> None:
        """A store that does not answer is SW-E001."""
        code, ids = _ids(cli, "--store", "redis://127.0.0.1:1/0?socket_connect_timeout=1")
        assert code == 3 and "SW-E001" in ids

    def test_invalid_configuration(self, cli: Cli) -> None:
        """A setting that does not validate is SW-E010, not a crash."""
        code, ids = _ids(cli, env={"SESSIONWARD_IDLE_TIMEOUT_SECONDS": "-5"})
        assert (code, ids) == (3, {"SW-E010"})

    def test_daemon_without_token(self, cli: Cli, tmp_path: Path) -> None:
        """A daemon URL without an admin token is SW-E007."""
        code, ids = _ids(cli, "--daemon", f"sessionward://{tmp_path}/d.sock")
        assert code == 3 and "SW-E007" in ids

    def test_every_id_is_documented(self) -> None:
        """docs/cli.md documents every finding ID of the catalogue."""
        docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
        assert [i for i in CATALOGUE if f"`{i}`" not in docs] == []


class TestConfigPrecedence:
    def _namespace(self, cli: Cli, *args: str, env: dict[str, str] | None = None) -> str:
        return str(cli.ok(*args, "stats", "--json", env=env).json()["namespace"])

    def test_file_then_env_then_flag(self, cli: Cli, tmp_path: Path) -> None:
        """defaults < config file < SESSIONWARD_* environment < flags."""
        config = tmp_path / "sessionward.toml"
        config.write_text('[sessionward]\nnamespace = "fromfile"\n')
        assert self._namespace(cli) == "default"
        assert self._namespace(cli, "--config", str(config)) == "fromfile"
        assert self._namespace(cli, env={"SESSIONWARD_CONFIG": str(config)}) == "fromfile"
        env = {"SESSIONWARD_NAMESPACE": "fromenv"}
        assert self._namespace(cli, "--config", str(config), env=env) == "fromenv"
        flags = ("--config", str(config), "--namespace", "fromflag")
        assert self._namespace(cli, *flags, env=env) == "fromflag"

    def test_store_and_key_file_flags(self, cli: Cli, tmp_path: Path) -> None:
        """--store and --key-file beat the environment."""
        other_key = tmp_path / "k2" / "k.key"
        cli.ok("keygen", "--out", str(other_key))
        url = f"sqlite:///{tmp_path}/other.db"
        doc = cli.ok("--create", "--store", url, "--key-file", str(other_key), "stats",
                     "--json").json()
        assert doc["keys"]["active"] != cli.ok("stats", "--json").json()["keys"]["active"]
        assert (tmp_path / "other.db").exists()


BAD_INVOCATIONS = [
    pytest.param(["--store", "bogus://x", "list"], {}, id="unknown-scheme"),
    pytest.param(["list"], {"SESSIONWARD_KEY_FILE": "/nonexistent/k.key"}, id="missing-key"),
    pytest.param(["list"], {"SESSIONWARD_KEY_FILE": ""}, id="no-key-file"),
    pytest.param(["--config", "/nonexistent.toml", "list"], {}, id="missing-config"),
    pytest.param(["list"], {"SESSIONWARD_BOGUS": "1"}, id="unknown-env"),
    pytest.param(["show", "nothex"], {}, id="bad-handle"),
    pytest.param(["frobnicate"], {}, id="unknown-command"),
    pytest.param(["list", "--nope"], {}, id="unknown-option"),
    pytest.param(["--daemon", "sessionward:///nonexistent/d.sock", "list"], {},
                 id="daemon-no-token"),
    pytest.param(["--daemon", "sessionward:///nonexistent/d.sock", "list"],
                 {"SESSIONWARD_ADMIN_TOKEN": "x" * 32}, id="daemon-down"),
    pytest.param(["--daemon", "http://example.com", "list"],
                 {"SESSIONWARD_ADMIN_TOKEN": "x" * 32}, id="daemon-bad-url"),
    pytest.param(["--daemon", "sessionward+tcp://192.0.2.1:7000", "list"],
                 {"SESSIONWARD_ADMIN_TOKEN": "x" * 32}, id="daemon-not-loopback"),
    pytest.param(["revoke-user", ""], {}, id="empty-user"),
]


class TestErrors:
    @pytest.mark.parametrize(("args", "env"), BAD_INVOCATIONS)
    def test_one_line_no_traceback(self, cli: Cli, args: list[str],
                                   env: dict[str, str]) -> None:
        """Every error is one sanitised line on stderr with a non-zero exit."""
        result = cli(*args, env=env)
        one_line_error(result)
        assert result.out == ""

    def test_debug_shows_the_traceback(self, cli: Cli) -> None:
        """--debug adds the traceback (and still ends with the error line)."""
        result = cli("--debug", "--store", "bogus://x", "list")
        assert result.code == 1
        assert "Traceback" in result.err
        assert result.err.strip().splitlines()[-1].startswith("sessionward: error: ")

    def test_redis_password_is_not_echoed(self, cli: Cli) -> None:
        """A failing store URL with a password never shows the password."""
        result = cli("--store", "redis://u:hunter2secret@127.0.0.1:1/0", "list")
        one_line_error(result)
        assert "hunter2secret" not in result.err


class TestLazyCommands:
    def test_help_does_not_import_serve_or_demo(self) -> None:
        """--help lists lazily registered commands without importing them."""
        code = ("import sys; from sessionward.cli import main; rc = main(['--help']); "
                "print(rc, 'sessionward.cli.serve' in sys.modules, "
                "'sessionward.cli.demo' in sys.modules)")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, timeout=60)
        assert proc.stdout.strip().splitlines()[-1] == "0 False False"

    def test_help_runs(self, cli: Cli) -> None:
        """The installed executable answers --help with every admin command."""
        out = cli.ok("--help").out
        for name in ("list", "show", "revoke", "revoke-user", "revoke-all", "cleanup", "stats",
                     "unlock", "keygen", "rotate-keys", "retire-key", "check", "audit"):
            assert f"  {name} " in out
        assert EXE.exists()

    def test_bare_invocation_prints_help(self, cli: Cli) -> None:
        """`sessionward` alone prints the usage (exit 2), never a traceback."""
        result = cli()
        assert result.code == 2 and "Usage: sessionward" in result.out
        assert "Traceback" not in result.err
