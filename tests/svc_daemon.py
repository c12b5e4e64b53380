"""A real sessionward daemon subprocess for tests, and a remote-manager factory.

``DaemonProcess`` runs ``python -m sessionward.daemon`` on a socket in a
temporary directory and waits for its "ready" line.  ``make_remote_manager``
returns a :class:`RemoteSessionManager` on a fresh daemon; with a
``FrozenClock`` the daemon reads its time from a file this module rewrites
before every request (the hidden ``--unsafe-test-clock-file`` option, refused
unless ``SESSIONWARD_UNSAFE_TEST_CLOCK=1``), so the contract suite's
``clock.advance()`` reaches the daemon.

To add the daemon to the contract suite (``tests/conftest.py``)::

    from svc_daemon import make_remote_manager
    ...  # a "daemon" kind whose manager fixture is make_remote_manager(tmp_path, clock)
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sessionward.core.clock import FrozenClock
from sessionward.remote import RemoteSessionManager

READY = "sessionward daemon ready"
START_SECONDS = 60.0


class DaemonProcess:
    """One daemon subprocess (use as a context manager, or start/stop).

    Attributes:
        data_dir: its data directory; ``socket``: its Unix socket path.
        output: the lines it printed on stdout before "ready".
    """

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                 clock_file: Path | None = None, name: str = "d") -> None:
        self.data_dir = tmp_path / name
        self.args = list(args)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
        self.env.update(env or {})
        if clock_file is not None:
            self.env["SESSIONWARD_UNSAFE_TEST_CLOCK"] = "1"
            self.args += ["--unsafe-test-clock-file", str(clock_file)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: list[str] = []

    @property
    def socket(self) -> Path:
        return self.data_dir / "sessionward.sock"

    @property
    def app_token(self) -> str:
        return (self.data_dir / "tokens" / "app.token").read_text().strip()

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "tokens" / "admin.token").read_text().strip()

    @property
    def url(self) -> str:
        return f"sessionward://{self.socket}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sessionward.daemon", "--data-dir", str(self.data_dir),
                *self.args]

    def start(self) -> DaemonProcess:
        """Start and wait for "ready".

        Raises:
            RuntimeError: the daemon exited (its output is in the message).
        """
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.env)
        assert self.proc.stdout is not None
        self.output = []
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            # Read the raw fd (a buffered reader plus select() can sit on
            # lines already buffered and wait forever).
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            self.output += [line.decode() for line in lines]
            if READY in self.output:
                return self
        self.proc.kill()
        _, err = self.proc.communicate()
        raise RuntimeError(f"daemon did not start: {self.output} {err.decode()}")

    def run_to_exit(self) -> tuple[int, str, str]:
        """Run the command expecting it to exit (start-up refusals)."""
        done = subprocess.run(self.command(), capture_output=True, text=True, env=self.env,
                              timeout=60, check=False)
        return done.returncode, done.stdout, done.stderr

    def send(self, sig: int) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal the daemon and wait; returns (exit code, stderr)."""
        if self.proc is None:
            return 0, ""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        code = self.proc.returncode
        self.proc = None
        return code, err.decode()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, token: str | None = None) -> RawClient:
        return RawClient(self.socket, self.app_token if token is None else token)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawClient:
    """A raw NDJSON client (for protocol tests)."""

    def __init__(self, path: Path | str | tuple[str, int], token: str = "") -> None:
        if isinstance(path, tuple):
            self.sock = socket.create_connection(path, timeout=30)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")
        self.token = token

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> dict[str, Any] | None:
        """The next response, or ``None`` at EOF."""
        line = self.file.readline()
        if not line:
            return None
        doc: dict[str, Any] = json.loads(line)
        return doc

    def call(self, command: str, **fields: Any) -> dict[str, Any]:
        doc = {"command": command, "token": self.token, **fields}
        self.send_raw(json.dumps(doc).encode() + b"\n")
        reply = self.recv()
        assert reply is not None, "daemon closed the connection"
        return reply

    def closed(self) -> bool:
        """True when the daemon closed the connection (reads to EOF, bounded)."""
        for _ in range(1000):
            try:
                if not self.file.readline():
                    return True
            except (ConnectionResetError, OSError):
                return True
        return False

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __del__(self) -> None:
        # Tests often call ``daemon.client().call(...)`` inline: close on GC so
        # no ResourceWarning (an error under filterwarnings=error) is raised.
        self.close()


class _ClockedRemote(RemoteSessionManager):
    """A remote manager that pushes its FrozenClock to the daemon before each
    request and stops the daemon on close."""

    daemon: DaemonProcess
    clock_file: Path

    def _call(self, command: str, **kwargs: Any) -> Any:
        self._push_clock()
        return super()._call(command, **kwargs)

    def _lock(self, cookie: str, client: Any) -> Any:
        self._push_clock()
        return super()._lock(cookie, client)

    def _push_clock(self) -> None:
        tmp = self.clock_file.with_name(f".clock.{threading.get_ident()}")
        tmp.write_text(repr(float(self.clock())))
        os.replace(tmp, self.clock_file)

    def close(self) -> None:
        super().close()
        self.daemon.stop()


def make_remote_manager(tmp_path: Path, clock: FrozenClock | None = None,
                        *args: str, namespace: str = "test") -> RemoteSessionManager:
    """A RemoteSessionManager on a fresh daemon (``close()`` stops the daemon).

    With ``clock``, the daemon follows that clock (see the module docstring).
    """
    clock_file = tmp_path / "daemon-clock"
    daemon = DaemonProcess(tmp_path, "--namespace", namespace, *args,
                           clock_file=clock_file if clock is not None else None)
    if clock is not None:
        clock_file.write_text(repr(float(clock())))
    daemon.start()
    cls = _ClockedRemote if clock is not None else RemoteSessionManager
    remote = cls(str(daemon.socket), token=daemon.app_token, admin_token=daemon.admin_token,
                 clock=clock)
    if isinstance(remote, _ClockedRemote):
        remote.daemon, remote.clock_file = daemon, clock_file
    else:
        remote.close = _closing(remote, daemon)  # type: ignore[method-assign]
    return remote


def _closing(remote: RemoteSessionManager, daemon: DaemonProcess) -> Any:
    original = remote.close

    def close() -> None:
        original()
        daemon.stop()

    return close
