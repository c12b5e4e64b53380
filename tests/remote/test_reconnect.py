"""The client reconnects by itself and resends only what is safe to resend
(protocol.schema.RESENDABLE): a lost answer is never turned into a silent
drop or a double write."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward import StoreUnavailableError
from sessionward.remote import RemoteSessionManager

from svc_daemon import DaemonProcess

pytestmark = pytest.mark.daemon


class LosingServer:
    """A Unix-socket peer that reads one request per connection and, for the
    first ``lose`` connections, closes without answering (a daemon dying
    after it received the request); later ones answer ``answer``."""

    def __init__(self, path: Path, lose: int, answer: object = None) -> None:
        self.path, self.lose, self.answer = path, lose, answer
        self.seen: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with conn:
                line = conn.makefile("rb").readline()
                if not line:
                    continue
                doc = json.loads(line)
                self.seen.append(doc["command"])
                if len(self.seen) > self.lose:
                    conn.sendall(json.dumps({"ok": True, "id": doc["id"],
                                             "data": self.answer}).encode() + b"\n")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(name="sock_path")
def sock_path_fixture(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "fake.sock"


def test_a_lost_answer_to_create_is_a_clear_error(sock_path: Path) -> None:
    """``create`` is not resendable: the app gets StoreUnavailableError saying it
    may or may not have been applied, and it was sent exactly once."""
    server = LosingServer(sock_path, lose=1)
    remote = RemoteSessionManager(str(sock_path), token="t" * 40)
    try:
        session = remote.new()
        session["a"] = 1
        with pytest.raises(StoreUnavailableError, match="may or may not have applied 'create'"):
            remote.save(session)
        assert server.seen == ["create"]
    finally:
        remote.close()
        server.close()


def test_a_lost_answer_to_load_is_resent(sock_path: Path) -> None:
    """``load`` is resendable: sent again on a new connection, answered."""
    server = LosingServer(sock_path, lose=1, answer={"session": None})
    remote = RemoteSessionManager(str(sock_path), token="t" * 40)
    try:
        assert remote.load("a" * 66) is None
        assert server.seen == ["load", "load"]
    finally:
        remote.close()
        server.close()


def test_restart_then_create_uses_a_fresh_connection(tmp_path: Path) -> None:
    """After a graceful restart the pooled connection is seen closed before
    anything is sent, so even a non-resendable ``create`` goes through."""
    d = DaemonProcess(tmp_path).start()
    remote = RemoteSessionManager.from_url(d.url, token=d.app_token)
    try:
        first = remote.new()
        first["a"] = 1
        remote.save(first)
        d.stop()
        d.start()
        second = remote.new()
        second["b"] = 2
        remote.save(second)
        assert second.cookie_value is not None
        assert remote.load(second.cookie_value) is not None
    finally:
        remote.close()
        d.stop()
