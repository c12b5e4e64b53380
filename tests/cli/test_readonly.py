"""Read-only commands never create anything; `check` fixes are exact commands; the demo's
data can be inspected with the line `sessionward demo` prints (issue 19 items 2-4)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx
import pytest

from sessionward.cli.demo import inspect_command
from sessionward.demo import create_app

from cli._harness import Cli, one_line_error
from integrations.harness import serve_asgi

PASSWORD = "correct horse battery"


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


class TestNothingIsCreated:
    @pytest.mark.parametrize("url", ["sqlite:///{tmp}/typo/x.db", "file://{tmp}/typo"])
    @pytest.mark.parametrize("command", [("list",), ("stats",), ("show", "a" * 64),
                                         ("check",)])
    def test_read_only_commands(self, cli: Cli, tmp_path: Path, url: str,
                                command: tuple[str, ...]) -> None:
        """list/show/stats fail with the fix, check reports SW-E011; no file or dir appears."""
        before = _tree(tmp_path)
        result = cli("--store", url.format(tmp=tmp_path), *command)
        if command == ("check",):
            assert result.code == 3 and "SW-E011" in result.out
        else:
            one_line_error(result)
            assert "nothing was created" in result.err and "sessionward --create" in result.err
        assert _tree(tmp_path) == before

    def test_check_without_configuration_writes_nothing(self, cli: Cli, tmp_path: Path
                                                        ) -> None:
        """`sessionward check` in an empty directory with no settings leaves it empty."""
        empty = tmp_path / "empty"
        empty.mkdir()
        env = {k: v for k, v in cli.env.items() if not k.startswith("SESSIONWARD_")}
        result = cli.__class__(empty, env)("check", "--json")
        assert result.code == 3
        assert {f["id"] for f in result.json()["findings"]} == {"SW-E002", "SW-E011"}
        assert _tree(empty) == set()

    def test_create_flag_creates(self, cli: Cli, tmp_path: Path) -> None:
        """--create is the explicit way to make a store from the CLI."""
        cli.ok("--create", "--store", f"sqlite:///{tmp_path}/made/x.db", "stats")
        assert (tmp_path / "made" / "x.db").is_file()


class TestExactFixes:
    def _fixes(self, cli: Cli) -> dict[str, str]:
        return {f["id"]: f["fix"] for f in cli("check", "--json").json()["findings"]}

    def test_key_file_mode(self, cli: Cli) -> None:
        """A 0640 key file: the fix is chmod 600 on that file (not keygen)."""
        key = Path(cli.env["SESSIONWARD_KEY_FILE"])
        key.chmod(0o640)
        assert self._fixes(cli)["SW-E002"] == f"chmod 600 {key}"

    def test_missing_key_file(self, cli: Cli, tmp_path: Path) -> None:
        cli.env["SESSIONWARD_KEY_FILE"] = str(tmp_path / "keys" / "new.key")
        assert self._fixes(cli)["SW-E002"] == f"sessionward keygen --out {tmp_path}/keys/new.key"

    def test_key_directory(self, cli: Cli) -> None:
        key_dir = Path(cli.env["SESSIONWARD_KEY_FILE"]).parent
        key_dir.chmod(0o777)
        assert self._fixes(cli)["SW-E003"] == f"chmod 700 {key_dir}"

    def test_store_file_modes(self, cli: Cli, tmp_path: Path) -> None:
        """The SQLite file and its -wal/-shm companions, in one chmod."""
        cli.ok("list")
        for name in ("x.db", "x.db-wal", "x.db-shm"):
            path = tmp_path / name
            path.touch()
            path.chmod(0o644)
        expected = f"chmod 600 {tmp_path}/x.db {tmp_path}/x.db-wal {tmp_path}/x.db-shm"
        assert self._fixes(cli)["SW-W014"] == expected


def test_demo_data_is_inspectable(cli: Cli, tmp_path: Path) -> None:
    """The printed line lists the demo's sessions; without its namespace, `check` says the
    records do not open (SW-W015) instead of reporting nothing."""
    data = tmp_path / "demo-data"
    with serve_asgi(create_app(data, environ={})) as url, \
            httpx.Client(base_url=url, timeout=30.0) as client:
        page = client.get("/signup")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        r = client.post("/signup", data={"username": "ivy", "password": PASSWORD,
                                         "confirm": PASSWORD, "csrf": token.group(1)})
        assert r.status_code == 303
    line = inspect_command(data)
    args = shlex.split(line)
    assert args[0] == "sessionward" and args[-1] == "list" and "--namespace" in args
    listed = cli.ok(*args[1:-1], "list", "--json").json()
    assert [s["user"] for s in listed["sessions"]] == ["ivy"] and listed["skipped"] == 0
    store_and_key = args[1:args.index("--namespace")]
    wrong = cli(*store_and_key, "check", "--json").json()
    w015 = [f for f in wrong["findings"] if f["id"] == "SW-W015"]
    assert w015 and "none of the 1 record(s) sampled opens" in w015[0]["message"]
    assert "--namespace demo" in w015[0]["fix"]
    right = cli(*args[1:-1], "check", "--json").json()
    assert "SW-W015" not in {f["id"] for f in right["findings"]}
