"""The daemon client's transport: one NDJSON connection, a bounded LIFO pool,
daemon URLs, and the wire-error → library-exception mapping (the inverse of
the error table of :mod:`sessionward.protocol.errors`).

A daemon that cannot be reached raises
:class:`~sessionward.core.errors.StoreUnavailableError` (answer 503, never log
anybody out); a pooled connection the daemon closed is retried once.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from ..core.errors import (
    ConfigurationError,
    SessionTooLargeError,
    StoreUnavailableError,
)
from ..core.net import require_loopback
from ..protocol.errors import error_from_wire
from ..protocol.framing import MAX_FRAME, MAX_RESPONSE

POOL_IDLE_SECONDS = 20.0
"""Pooled connections idle longer than this are dropped (daemon closes at 30 s)."""


# -------------------------------------------------------------- transport


class Connection:
    """One blocking connection speaking NDJSON; not thread-safe (the pool
    hands it to one thread at a time)."""

    def __init__(self, address: str | tuple[str, int], timeout: float) -> None:
        family = socket.AF_UNIX if isinstance(address, str) else _tcp_family(address[0])
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(address)
        except OSError as exc:
            self.sock.close()
            raise StoreUnavailableError(f"cannot reach the sessionward daemon: {exc.strerror}",
                                        store="daemon") from None
        self.file = self.sock.makefile("rb")
        self.last_used = time.monotonic()
        self._ids = itertools.count(1)

    def call(self, doc: dict[str, Any]) -> Any:
        """Send one request and return ``data``.

        Raises:
            StoreUnavailableError: the connection broke.
            SessionError / TypeError: the daemon answered with an error.
        """
        request_id = next(self._ids)
        frame = orjson.dumps({**doc, "id": request_id}) + b"\n"
        if len(frame) > MAX_FRAME:
            # The daemon would close the connection on it (payload_too_large);
            # refuse here with the library's own error instead of a broken pipe.
            raise SessionTooLargeError(len(frame), MAX_FRAME)
        try:
            self.sock.sendall(frame)
            line = self.file.readline(MAX_RESPONSE + 1)
        except (OSError, ValueError) as exc:
            raise Broken(str(exc)) from None
        self.last_used = time.monotonic()
        if not line.endswith(b"\n"):
            raise Broken("the daemon closed the connection")
        reply = orjson.loads(line)
        if reply.get("ok") is True and reply.get("id") == request_id:
            return reply.get("data")
        error = reply.get("error") or {}
        kind = error.get("type")
        if kind in ("connection_timeout", "too_many_connections"):
            raise Broken(str(error.get("message")), retry=kind == "connection_timeout")
        if reply.get("id") not in (request_id, None):
            raise Broken("response id mismatch")
        raise error_from_wire(error)

    def close(self) -> None:
        """Close quietly."""
        self.file.close()
        self.sock.close()


class Broken(StoreUnavailableError):
    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(f"sessionward daemon connection failed: {message}", store="daemon")
        self.retry = retry


def _tcp_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Pool:
    """A bounded LIFO pool of connections."""

    def __init__(self, address: str | tuple[str, int], size: int, timeout: float) -> None:
        self.address = address
        self.size = size
        self.timeout = timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def get(self) -> tuple[Connection, bool]:
        """A connection and whether it was reused from the pool."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if time.monotonic() - conn.last_used < POOL_IDLE_SECONDS:
                    return conn, True
                conn.close()
        return Connection(self.address, self.timeout), False

    def put(self, conn: Connection) -> None:
        """Return a healthy connection."""
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def parse_url(url: str) -> str | tuple[str, int]:
    """The socket path or ``(host, port)`` of a daemon URL.

    Raises:
        ConfigurationError: another scheme, or a non-loopback host.
    """
    parts = urlsplit(url)
    if parts.scheme == "sessionward" and parts.path:
        return unquote(parts.path)
    if parts.scheme == "sessionward+tcp" and parts.hostname and parts.port:
        return require_loopback(parts.hostname), parts.port
    raise ConfigurationError(
        "daemon URLs are sessionward:///path/sessionward.sock or "
        "sessionward+tcp://127.0.0.1:PORT"
    )

