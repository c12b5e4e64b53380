"""The daemon client's transport: one NDJSON connection, a bounded LIFO pool,
daemon URLs, and the wire-error → library-exception mapping (the inverse of
the error table of :mod:`sessionward.protocol.errors`).

A daemon that cannot be reached raises
:class:`~sessionward.core.errors.StoreUnavailableError` (answer 503, never log
anybody out); :meth:`Pool.call` reconnects by itself and resends what is
safe to resend (:data:`~sessionward.protocol.schema.RESENDABLE`).
"""

from __future__ import annotations

import itertools
import select
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
from ..protocol.schema import RESENDABLE

POOL_IDLE_SECONDS = 20.0
"""Pooled connections idle longer than this are dropped (daemon closes at 30 s)."""
ATTEMPTS = 3
"""Tries of one request across reconnects (see :meth:`Pool.call`)."""
BACKOFF = 0.1
"""Seconds before the second try (twice that before the third)."""


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
        except OSError as exc:
            raise Broken(str(exc), sent=False) from None  # the daemon never had it whole
        try:
            line = self.file.readline(MAX_RESPONSE + 1)
        except (OSError, ValueError) as exc:
            raise Broken(str(exc)) from None
        self.last_used = time.monotonic()
        if not line.endswith(b"\n"):
            if len(line) > MAX_RESPONSE:
                raise Broken("the daemon's answer is too large", retry=False)
            raise Broken("the daemon closed the connection before answering")
        reply = _decode_reply(line)
        if reply.get("ok") is True and reply.get("id") == request_id:
            return reply.get("data")
        error = reply.get("error")
        if reply.get("ok") is not False or not isinstance(error, dict) or not error.get("type"):
            if reply.get("id") not in (request_id, None):
                raise Broken("the daemon answered another request (response id mismatch)",
                             retry=False)
            raise Broken("the daemon sent an error without details", retry=False)
        kind = error.get("type")
        if kind in ("connection_timeout", "too_many_connections"):
            # Sent before the daemon read this request (an idle pooled
            # connection, or a refused accept): it was never processed.
            raise Broken(str(error.get("message")), retry=kind == "connection_timeout",
                         sent=False)
        if reply.get("id") not in (request_id, None):
            raise Broken("the daemon answered another request (response id mismatch)",
                         retry=False)
        raise error_from_wire(error)

    def alive(self) -> bool:
        """Whether the daemon still has this (idle) connection open.

        A daemon that restarted, drained or timed the connection out has
        closed it (possibly after a ``connection_timeout`` line): that shows
        as readable data or EOF before anything is sent, so a request never
        goes out on such a connection — a non-resendable one would then have
        to fail (see :meth:`Pool.call`).
        """
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | select.POLLPRI)
        # Anything readable on an idle connection (data, EOF, an error) means
        # the daemon is done with it; nothing readable means it is open.
        return not poller.poll(0)

    def close(self) -> None:
        """Close quietly."""
        self.file.close()
        self.sock.close()


def _decode_reply(line: bytes) -> dict[str, Any]:
    """One response line as a JSON object.

    Raises:
        Broken: not JSON, or not an object (a wrong program behind the URL).
    """
    try:
        reply = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise Broken("the daemon sent a malformed frame (not JSON)", retry=False) from None
    if not isinstance(reply, dict):
        raise Broken("the daemon sent a malformed frame (not a JSON object)", retry=False)
    return reply


class Broken(StoreUnavailableError):
    """The connection failed.

    Attributes:
        retry: another connection may succeed.
        sent: the daemon may have received (and applied) the request.
    """

    def __init__(self, message: str, *, retry: bool = True, sent: bool = True) -> None:
        super().__init__(f"sessionward daemon connection failed: {message}", store="daemon")
        self.retry = retry
        self.sent = sent


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
                if time.monotonic() - conn.last_used < POOL_IDLE_SECONDS and conn.alive():
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

    def call(self, doc: dict[str, Any]) -> Any:
        """Send ``doc`` on a pooled connection and return ``data``.

        Reconnects by itself (a daemon restart, an idle connection the daemon
        closed): a request that certainly did not reach the daemon is sent
        again, and so is a :data:`~sessionward.protocol.schema.RESENDABLE`
        one whose answer was lost; any other lost answer raises, never
        silently drops or doubles a write.  At most :data:`ATTEMPTS` tries,
        :data:`BACKOFF` seconds apart.

        Raises:
            StoreUnavailableError: the daemon is unreachable, or went away
                after a non-resendable request was sent (it may or may not
                have been applied; the message says which command).
            SessionError / TypeError: the daemon answered with an error.
        """
        command = str(doc.get("command"))
        last = "it did not answer"
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF * attempt)
            try:
                conn, _reused = self.get()
            except StoreUnavailableError:
                if attempt + 1 < ATTEMPTS:
                    continue
                raise
            try:
                data = conn.call(doc)
            except Broken as exc:
                conn.close()
                if exc.retry and (not exc.sent or command in RESENDABLE):
                    last = str(exc)
                    continue
                if exc.sent:
                    raise Broken(f"{exc}; the daemon may or may not have applied "
                                 f"{command!r}", retry=False) from None
                raise
            except BaseException:
                self.put(conn)
                raise
            self.put(conn)
            return data
        raise StoreUnavailableError(f"sessionward daemon unavailable: {last} "
                                    f"({ATTEMPTS} attempts)", store="daemon")

    def call_keeping(self, doc: dict[str, Any]) -> tuple[Connection, Any]:
        """Like :meth:`call` on a fresh or pooled connection, but keep it
        (the caller puts it back): for ``lock``, whose lease lives on the
        connection.

        Raises:
            StoreUnavailableError: the daemon is unreachable.
            SessionError / TypeError: the daemon answered with an error.
        """
        conn, _reused = self.get()
        try:
            return conn, conn.call(doc)
        except Broken:
            conn.close()
            raise
        except BaseException:
            self.put(conn)
            raise

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

