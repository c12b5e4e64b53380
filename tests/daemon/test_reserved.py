"""``reserve`` / ``create`` with a reservation / ``reset``: daemon-issued IDs for PHP's
``create_sid`` that store nothing until data exists (``daemon/reserved.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from svc_daemon import DaemonProcess, RawClient

pytestmark = pytest.mark.daemon


@pytest.fixture(name="clock_file")
def clock_file_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "clock"
    path.write_text("1000000.0")
    return path


@pytest.fixture(name="daemon")
def daemon_fixture(tmp_path: Path, clock_file: Path) -> Iterator[DaemonProcess]:
    with DaemonProcess(tmp_path, "--namespace", "php", clock_file=clock_file) as d:
        yield d


@pytest.fixture(name="conn")
def conn_fixture(daemon: DaemonProcess) -> Iterator[RawClient]:
    client = daemon.client()
    yield client
    client.close()


def data(reply: dict[str, Any]) -> Any:
    assert reply["ok"] is True, reply
    return reply["data"]


def error(reply: dict[str, Any]) -> str:
    assert reply["ok"] is False, reply
    return str(reply["error"]["type"])


class TestReserve:
    def test_reserved_id_is_unknown_until_created(self, conn: RawClient) -> None:
        """A reserved ID has a valid cookie but no record: load and lock find nothing."""
        got = data(conn.call("reserve"))
        assert len(got["cookie"]) == 66 and len(got["reservation"]) >= 32
        assert got["reservation"] not in got["cookie"]
        assert data(conn.call("load", cookie=got["cookie"]))["session"] is None
        assert data(conn.call("lock", cookie=got["cookie"]))["session"] is None

    def test_create_under_reservation_stores_that_id(self, conn: RawClient) -> None:
        """``create`` with the reservation stores the first record under the reserved ID."""
        got = data(conn.call("reserve"))
        view = data(conn.call("create", data={"cart": [1]}, reservation=got["reservation"]))
        assert view["cookie"] == got["cookie"]
        loaded = data(conn.call("load", cookie=got["cookie"]))["session"]
        assert loaded["data"] == {"cart": [1]}

    def test_reservation_is_single_use(self, conn: RawClient) -> None:
        """A spent reservation cannot create again, so a logged-out ID cannot come back."""
        got = data(conn.call("reserve"))
        view = data(conn.call("create", data={"a": 1}, reservation=got["reservation"]))
        assert data(conn.call("logout", cookie=view["cookie"], version=view["version"],
                              base=view["data"], data=view["data"]))["ended"] is True
        again = conn.call("create", data={"a": 2}, reservation=got["reservation"])
        assert error(again) == "session_not_found"
        assert data(conn.call("load", cookie=got["cookie"]))["session"] is None

    def test_empty_create_stores_nothing_and_spends(self, conn: RawClient) -> None:
        """Lazy creation: an empty create under a reservation stores no record."""
        got = data(conn.call("reserve"))
        view = data(conn.call("create", data={}, reservation=got["reservation"]))
        assert view["cookie"] is None
        assert data(conn.call("load", cookie=got["cookie"]))["session"] is None
        assert error(conn.call("create", data={"a": 1},
                               reservation=got["reservation"])) == "session_not_found"

    def test_reservation_bound_to_its_connection(self, daemon: DaemonProcess,
                                                 conn: RawClient) -> None:
        """Another connection presenting the secret cannot create under the ID."""
        got = data(conn.call("reserve"))
        other = daemon.client()
        try:
            assert error(other.call("create", data={"x": 1},
                                    reservation=got["reservation"])) == "session_not_found"
        finally:
            other.close()
        assert data(conn.call("load", cookie=got["cookie"]))["session"] is None

    def test_chosen_secret_refused(self, conn: RawClient) -> None:
        """A made-up reservation secret creates nothing."""
        assert error(conn.call("create", data={"x": 1}, reservation="A" * 43)) == \
            "session_not_found"

    def test_reservation_dies_with_connection(self, daemon: DaemonProcess) -> None:
        """Reservations live in connection memory only: a new connection cannot use them."""
        first = daemon.client()
        got = data(first.call("reserve"))
        first.close()
        second = daemon.client()
        try:
            assert error(second.call("create", data={"x": 1},
                                     reservation=got["reservation"])) == "session_not_found"
        finally:
            second.close()

    def test_reservation_expires(self, conn: RawClient, clock_file: Path) -> None:
        """A reservation older than the idle timeout is refused."""
        got = data(conn.call("reserve"))
        clock_file.write_text(repr(1000000.0 + got["expires_in"] + 1))
        assert error(conn.call("create", data={"x": 1},
                               reservation=got["reservation"])) == "session_not_found"

    def test_at_most_16_per_connection(self, conn: RawClient) -> None:
        """Beyond 16 reservations the oldest is dropped (bounded memory)."""
        first = data(conn.call("reserve"))
        for _ in range(16):
            data(conn.call("reserve"))
        assert error(conn.call("create", data={"x": 1},
                               reservation=first["reservation"])) == "session_not_found"

    def test_schema(self, conn: RawClient) -> None:
        """``reserve`` takes no fields; ``reservation`` must be a non-empty string."""
        assert error(conn.call("reserve", cookie="x")) == "invalid_argument"
        assert error(conn.call("create", data={}, reservation="")) == "invalid_argument"
        assert error(conn.call("create", data={}, reservation=5)) == "invalid_argument"

    def test_admin_role_cannot_reserve(self, daemon: DaemonProcess) -> None:
        """``reserve`` and ``reset`` are app commands only."""
        admin = daemon.client(daemon.admin_token)
        try:
            assert error(admin.call("reserve")) == "forbidden_command"
            assert error(admin.call("reset")) == "forbidden_command"
        finally:
            admin.close()


class TestReset:
    def test_reset_releases_leases_and_reservations(self, daemon: DaemonProcess,
                                                    conn: RawClient) -> None:
        """``reset`` frees what a dead request left on a persistent connection."""
        view = data(conn.call("create", data={"n": 1}))
        locked = data(conn.call("lock", cookie=view["cookie"]))["session"]
        assert locked["lease"]
        got = data(conn.call("reserve"))
        assert data(conn.call("reset")) == {"released": 1, "dropped": 1}
        assert error(conn.call("save", lease=locked["lease"], data={"n": 2})) == "lock_lost"
        assert error(conn.call("create", data={"x": 1},
                               reservation=got["reservation"])) == "session_not_found"
        other = daemon.client()
        try:
            relocked = data(other.call("lock", cookie=view["cookie"]))["session"]
            assert relocked["lease"]  # not held any more: no wait for the lease TTL
        finally:
            other.close()

    def test_reset_on_clean_connection(self, conn: RawClient) -> None:
        """``reset`` with nothing held reports zeros."""
        assert data(conn.call("reset")) == {"released": 0, "dropped": 0}
