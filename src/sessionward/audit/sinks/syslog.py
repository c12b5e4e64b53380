"""The syslog sink: events as one-line JSON messages to a syslog daemon.

Built on the stdlib :class:`logging.handlers.SysLogHandler` (RFC 3164 framing,
Unix datagram/stream sockets, UDP or TCP).  The message is
``sessionward: <the event's to_dict() as JSON>``; JSON escapes every control
character, so an event can never forge a second syslog line.

Severity (see :func:`severity`): ``err`` for CRITICAL-level events (probable
attacks) and ``config_error``; ``warning`` for denials (outcome ``denied`` or
``throttled``); ``info`` for everything else.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
import sys

import orjson

from ...core.errors import ConfigurationError
from ..events import Event, Level
from ..redact import sanitize, sanitize_exception
from . import ClosingSink, LevelName, level_threshold, security_log

DEFAULT_ADDRESS = "/dev/log"
"""The local syslog socket on Linux."""

_DENIED_OUTCOMES = frozenset({"denied", "throttled"})
_LOGGING_LEVEL = {"err": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


def severity(event: Event) -> str:
    """The syslog severity name for ``event``: ``err``, ``warning`` or ``info``.

    Args:
        event: the event to classify.

    Returns:
        ``"err"`` for security and configuration errors, ``"warning"`` for
        denials, ``"info"`` otherwise.
    """
    if event.level >= Level.CRITICAL or event.name == "config_error":
        return "err"
    if event.outcome in _DENIED_OUTCOMES:
        return "warning"
    return "info"


class _CountingSysLogHandler(logging.handlers.SysLogHandler):
    """A SysLogHandler that reports send failures to its sink instead of stderr."""

    def __init__(
        self,
        sink: SyslogSink,
        address: str | tuple[str, int],
        facility: int,
        socktype: socket.SocketKind | None,
    ) -> None:
        self._sink = sink
        super().__init__(address=address, facility=facility, socktype=socktype)

    def handleError(self, record: logging.LogRecord) -> None:
        self._sink._failed(record)


def _facility(facility: int | str) -> int:
    """Resolve a facility name (``auth``, ``local0``...) or number."""
    if isinstance(facility, int):
        return facility
    names = logging.handlers.SysLogHandler.facility_names
    if facility not in names:
        raise ConfigurationError(
            f"unknown syslog facility {sanitize(repr(facility))}: use one of "
            f"{', '.join(sorted(names))}"
        )
    return names[facility]


class SyslogSink(ClosingSink):
    """Event subscriber that sends events to syslog.

    Attributes:
        failures: events that could not be sent (each also logged).
        sent: events handed to the socket.
    """

    def __init__(
        self,
        address: str | tuple[str, int] = DEFAULT_ADDRESS,
        *,
        facility: int | str = "auth",
        level: LevelName = "auth",
        socktype: socket.SocketKind | None = None,
        ident: str = "sessionward",
    ) -> None:
        """Connect to syslog.

        Args:
            address: a Unix socket path (default ``/dev/log``) or ``(host, port)``.
            facility: a facility name (``auth``, ``authpriv``, ``local0``...) or number.
            level: ``"critical"``, ``"auth"`` (default) or ``"all"``.
            socktype: ``SOCK_DGRAM`` (default for UDP; Unix tries datagram then
                stream) or ``SOCK_STREAM``.
            ident: the program name at the start of every message.

        Raises:
            ConfigurationError: bad level or facility, a Unix socket path that
                does not exist, or a host that cannot be resolved.
        """
        self.threshold = level_threshold(level)
        self.failures = 0
        self.sent = 0
        if isinstance(address, str) and not os.path.exists(address):
            raise ConfigurationError(
                sanitize(f"syslog socket {address} does not exist: is a syslog daemon running?")
            )
        try:
            self._handler = _CountingSysLogHandler(self, address, _facility(facility), socktype)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open the syslog socket: {sanitize_exception(exc)}"
            ) from None
        self._handler.ident = f"{ident}: "

    def __call__(self, event: Event) -> None:
        """Send ``event`` if its level reaches the threshold; never raises."""
        if event.level < self.threshold:
            return
        try:
            message = orjson.dumps(event.to_dict(), default=sanitize).decode()
        except TypeError as exc:
            self._count(event.name, sanitize_exception(exc))
            return
        record = logging.LogRecord(
            "sessionward.audit", _LOGGING_LEVEL[severity(event)], "", 0, "%s", (message,), None
        )
        record.event_name = event.name
        before = self.failures
        self._handler.handle(record)
        if self.failures == before:
            self.sent += 1

    def _failed(self, record: logging.LogRecord) -> None:
        """Called by the handler when sending ``record`` raised."""
        exc = sys.exc_info()[1]  # handleError is called inside the handler's except
        self._count(getattr(record, "event_name", "?"), sanitize_exception(exc) if exc else "")

    def _count(self, name: str, why: str) -> None:
        self.failures += 1
        security_log.error(
            "syslog sink failed for %s event (%d failures so far): %s", name, self.failures, why
        )

    def close(self) -> None:
        """Close the syslog socket."""
        self._handler.close()
