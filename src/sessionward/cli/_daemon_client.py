"""A tiny NDJSON client for the daemon's admin role (no dependency on the
daemon package).

Protocol (DESIGN §9): one JSON object per line over a Unix socket (or a
loopback TCP socket).  Request ``{"id": n, "command": "...", "token": "...",
...fields}``; response ``{"id": n, "ok": true, "data": ...}`` or ``{"id": n,
"ok": false, "error": {"type": "<token>", "message": "..."}}``.

Security: the token is sent only inside request frames, never logged or
echoed; error messages from the daemon are sanitised before they are shown.
TCP URLs must name a loopback address (anything else is refused before
connecting).
"""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import unquote, urlsplit

from ..audit.redact import sanitize
from ..core.errors import ConfigurationError, SessionError
from ..core.net import is_loopback_address

MAX_FRAME = 16 * 1024 * 1024
"""Largest response line accepted (admin listings can be long)."""


class DaemonError(SessionError):
    """The daemon answered ``ok: false`` or broke the protocol.

    Attributes:
        code: the protocol error token (``auth_failed``, ``session_not_found``...).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} [{code}]")
        self.code = code


def parse_daemon_url(url: str) -> tuple[int, Any]:
    """``(address family, address)`` of a ``sessionward://`` or ``sessionward+tcp://`` URL.

    Raises:
        ConfigurationError: another scheme, no socket path, or a TCP host that
            is not a loopback address.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sessionward":
        path = unquote(parts.path)
        if parts.netloc or not path.startswith("/"):
            raise ConfigurationError(
                "daemon URL must look like sessionward:///absolute/path/sessionward.sock"
            )
        return socket.AF_UNIX, path
    if scheme == "sessionward+tcp":
        try:
            host, port = parts.hostname or "", parts.port
            loopback = is_loopback_address(host)
        except ValueError:
            loopback, port = False, None
        if not loopback or port is None:
            raise ConfigurationError(
                "sessionward+tcp:// must name a loopback address and port, "
                "e.g. sessionward+tcp://127.0.0.1:7070"
            )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, port)
    raise ConfigurationError(
        "daemon URL must start with sessionward:// (Unix socket) or sessionward+tcp://"
    )


class DaemonClient:
    """One connection to the daemon; requests are sent one at a time.

    Args:
        url: ``sessionward:///path.sock`` or ``sessionward+tcp://127.0.0.1:PORT``.
        token: the admin token.
        timeout: seconds to wait for each answer (admin scans can be slow).

    Raises:
        ConfigurationError: bad URL.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 300.0) -> None:
        self._family, self._address = parse_daemon_url(url)
        self._token = token
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._next_id = 0

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(self._family, socket.SOCK_STREAM)
            sock.settimeout(self._timeout)
            try:
                sock.connect(self._address)
            except OSError as exc:
                sock.close()
                where = (self._address if isinstance(self._address, str)
                         else "{}:{}".format(*self._address))
                raise DaemonError(
                    "unavailable", f"cannot connect to the daemon at {where} "
                    f"({exc.strerror or exc}); start it with `sessionward serve`, or fix "
                    "--daemon / SESSIONWARD_DAEMON"
                ) from None
            self._sock = sock
        return self._sock

    def call(self, command: str, **fields: Any) -> Any:
        """Send one request and return its ``data``.

        Raises:
            DaemonError: the daemon refused (``error.type`` becomes ``code``),
                closed the connection, or sent something that is not a frame.
            OSError: the socket failed mid-request.
        """
        self._next_id += 1
        request = {k: v for k, v in fields.items() if v is not None}
        request.update(id=self._next_id, command=command, token=self._token)
        sock = self._connect()
        sock.sendall(json.dumps(request, separators=(",", ":")).encode() + b"\n")
        return self._unwrap(self._read_frame(), self._next_id)

    def _read_frame(self) -> dict[str, Any]:
        sock = self._connect()
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_FRAME:
                raise DaemonError("payload_too_large", "the daemon's answer is too large")
            chunk = sock.recv(65536)
            if not chunk:
                raise DaemonError("unavailable", "the daemon closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            frame = json.loads(line)
        except ValueError:
            raise DaemonError("invalid_json", "the daemon sent a malformed frame") from None
        if not isinstance(frame, dict):
            raise DaemonError("invalid_json", "the daemon sent a malformed frame")
        return frame

    @staticmethod
    def _unwrap(frame: dict[str, Any], expected_id: int) -> Any:
        if frame.get("id") not in (None, expected_id):
            raise DaemonError("invalid_json", "the daemon answered another request")
        if frame.get("ok") is True:
            return frame.get("data")
        error = frame.get("error")
        if not isinstance(error, dict):
            raise DaemonError("invalid_json", "the daemon sent an error without details")
        code = sanitize(str(error.get("type") or "error"))
        return _raise(code, sanitize(str(error.get("message") or code)))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _raise(code: str, message: str) -> Any:
    raise DaemonError(code, message)
