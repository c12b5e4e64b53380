"""Opening a store without creating it (``open_store(url, create=False)``), and store
errors that name where the store is (issue 19 items 2 and 3)."""

from __future__ import annotations

import socket
import sqlite3
import stat
from pathlib import Path

import pytest

from sessionward import StoreNotFoundError, StoreUnavailableError, open_store
from sessionward.stores.filesystem import FileStore
from sessionward.stores.sqlite import SQLiteStore


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


class TestSQLite:
    def test_missing_file_is_not_created(self, tmp_path: Path) -> None:
        """create=False: a missing file (or directory) raises and nothing appears."""
        url = f"sqlite:///{tmp_path}/typo/dir/x.db"
        with pytest.raises(StoreNotFoundError, match=r"does not exist \(nothing was created\)"):
            open_store(url, create=False)
        assert _tree(tmp_path) == []

    def test_foreign_database_is_left_alone(self, tmp_path: Path) -> None:
        """Another program's SQLite file is refused, byte for byte unchanged (not WAL'd)."""
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (t TEXT)")
        db.close()
        before = path.read_bytes()
        with pytest.raises(StoreNotFoundError, match="is not a sessionward SQLite store"):
            SQLiteStore(path, create=False)
        assert path.read_bytes() == before
        assert _tree(tmp_path) == ["other.db"]

    def test_existing_store_opens_without_writing_its_mode(self, tmp_path: Path) -> None:
        """An existing store opens; a 0644 file keeps its mode (check reports it, open
        does not silently change it)."""
        SQLiteStore(tmp_path / "s.db").close()
        (tmp_path / "s.db").chmod(0o644)
        store = open_store(f"sqlite:///{tmp_path}/s.db", create=False)
        try:
            assert store.stats(0.0).records == 0
        finally:
            store.close()
        assert stat.S_IMODE((tmp_path / "s.db").stat().st_mode) == 0o644

    def test_default_still_creates(self, tmp_path: Path) -> None:
        """Apps keep the old behaviour: the file (0600) and its directory (0700) are made."""
        open_store(f"sqlite:///{tmp_path}/new/s.db").close()
        assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "new" / "s.db").stat().st_mode) == 0o600


class TestFileStore:
    def test_missing_directory_is_not_created(self, tmp_path: Path) -> None:
        with pytest.raises(StoreNotFoundError, match="does not exist"):
            open_store(f"file://{tmp_path}/sessions", create=False)
        assert _tree(tmp_path) == []

    def test_empty_directory_gets_no_layout(self, tmp_path: Path) -> None:
        """A directory that is not a store is refused and left empty."""
        (tmp_path / "empty").mkdir(mode=0o700)
        with pytest.raises(StoreNotFoundError, match="is not a sessionward file store"):
            FileStore(tmp_path / "empty", create=False)
        assert _tree(tmp_path / "empty") == []

    def test_existing_store_opens(self, tmp_path: Path) -> None:
        FileStore(tmp_path / "fs").close()
        store = open_store(f"file://{tmp_path}/fs", create=False)
        store.close()


def test_memory_and_servers_ignore_create() -> None:
    """create=False changes nothing for memory:// (and server stores)."""
    open_store("memory://", create=False).close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestRedisErrorsNameTheEndpoint:
    def test_refused_names_host_port_and_fix(self) -> None:
        """Connection refused: host:port, the OS reason and the likely fix; no password."""
        port = _closed_port()
        store = open_store(f"redis://app:s3cretpw@127.0.0.1:{port}/0?socket_connect_timeout=1")
        with pytest.raises(StoreUnavailableError) as info:
            store.ping()
        message = str(info.value)
        assert f"redis store at 127.0.0.1:{port} is unreachable (Connection refused)" in message
        assert "start redis-server there" in message and "s3cretpw" not in message

    def test_socket_path(self, tmp_path: Path) -> None:
        store = open_store(f"unix://{tmp_path}/redis.sock")
        with pytest.raises(StoreUnavailableError, match=f"at {tmp_path}/redis.sock is "
                                                        "unreachable .No such file"):
            store.ping()

    def test_cluster_startup_nodes(self) -> None:
        ports = _closed_port(), _closed_port()
        with pytest.raises(StoreUnavailableError,
                           match=f"redis-cluster store at 127.0.0.1:{ports[0]},127.0.0.1:"
                                 f"{ports[1]} is unreachable"):
            open_store(f"redis+cluster://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}")
