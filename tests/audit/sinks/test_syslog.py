"""Tests for the syslog sink against real loopback syslog receivers."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator

import orjson
import pytest

from sessionward.audit.events import Event
from sessionward.audit.sinks.syslog import SyslogSink, severity
from sessionward.core.errors import ConfigurationError

TS = 1_700_000_000.5
FRAME = re.compile(rb"^<(\d+)>sessionward: (\{.*\})\x00$", re.DOTALL)
ERR, WARNING, INFO = 3, 4, 6
AUTH = logging.handlers.SysLogHandler.LOG_AUTH


def ev(name: str = "login", **kw: object) -> Event:
    fields: dict[str, object] = {"namespace": "t", "fingerprint": "abc123", "user": "alice"}
    fields.update(kw)
    return Event(name=name, ts=TS, **fields)  # type: ignore[arg-type]


def parse(datagram: bytes) -> tuple[int, int, dict[str, object]]:
    """(facility, severity, event dict) of one RFC 3164 datagram."""
    match = FRAME.match(datagram)
    assert match, datagram
    pri = int(match.group(1))
    return pri >> 3, pri & 7, orjson.loads(match.group(2))


@pytest.fixture(name="udp_receiver")
def fixture_udp_receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


@pytest.fixture(name="unix_dir")
def fixture_unix_dir() -> Iterator[str]:
    # Short path: AF_UNIX addresses are limited to ~108 bytes.
    path = tempfile.mkdtemp(prefix="sw-syslog-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(name="unix_receiver")
def fixture_unix_receiver(unix_dir: str) -> Iterator[tuple[socket.socket, str]]:
    path = os.path.join(unix_dir, "log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()


class TestSeverity:
    """The severity mapping."""

    @pytest.mark.parametrize(
        ("event", "expected"),
        [
            (ev("zombie_accessed"), "err"),
            (ev("token_reused", outcome="denied"), "err"),
            (ev("config_error"), "err"),
            (ev("throttled", outcome="throttled"), "err"),
            (ev("login", outcome="denied", reason="bad_password"), "warning"),
            (ev("invalid_session", outcome="throttled"), "warning"),
            (ev("login"), "info"),
            (ev("created"), "info"),
            (ev("logout", outcome="failure"), "info"),
        ],
    )
    def test_mapping(self, event: Event, expected: str) -> None:
        """CRITICAL and config errors are err, denials warning, the rest info."""
        assert severity(event) == expected


class TestUdp:
    """Against a UDP receiver on 127.0.0.1."""

    def test_messages_and_severities(self, udp_receiver: socket.socket) -> None:
        """Each event arrives as one datagram with the right PRI and the event JSON."""
        port = udp_receiver.getsockname()[1]
        events = [ev("login"), ev("login", outcome="denied"), ev("zombie_accessed")]
        with SyslogSink(("127.0.0.1", port)) as sink:
            for event in events:
                sink(event)
        got = [parse(udp_receiver.recv(65536)) for _ in events]
        assert [(f, s) for f, s, _ in got] == [(AUTH, INFO), (AUTH, WARNING), (AUTH, ERR)]
        assert [body for _, _, body in got] == [e.to_dict() for e in events]
        assert sink.sent == 3 and sink.failures == 0

    def test_level_filter_and_facility(self, udp_receiver: socket.socket) -> None:
        """Events below the level are not sent; the facility is configurable."""
        port = udp_receiver.getsockname()[1]
        with SyslogSink(("127.0.0.1", port), level="critical", facility="local3") as sink:
            sink(ev("login"))
            sink(ev("decode_failed"))
        # Loopback UDP keeps order: had "login" been sent, it would come first.
        facility, sev, body = parse(udp_receiver.recv(65536))
        local3 = logging.handlers.SysLogHandler.LOG_LOCAL3
        assert (facility, sev, body["event"]) == (local3, ERR, "decode_failed")
        assert sink.sent == 1

    def test_no_line_injection(self, udp_receiver: socket.socket) -> None:
        """Newlines in event fields stay escaped inside the JSON."""
        port = udp_receiver.getsockname()[1]
        with SyslogSink(("127.0.0.1", port)) as sink:
            sink(ev("login", user="alice\n<11>sessionward: forged", reason="x\r\ny"))
        datagram = udp_receiver.recv(65536)
        assert b"\n" not in datagram and b"\r" not in datagram
        assert parse(datagram)[2]["user"] == "alice\n<11>sessionward: forged"


class TestUnix:
    """Against a Unix datagram receiver."""

    def test_delivery(self, unix_receiver: tuple[socket.socket, str]) -> None:
        """Events reach a Unix datagram socket (the /dev/log shape)."""
        sock, path = unix_receiver
        with SyslogSink(path, level="all") as sink:
            sink(ev("created"))
        facility, sev, body = parse(sock.recv(65536))
        assert (facility, sev, body["event"], body["session"]) == (AUTH, INFO, "created", "abc123")

    def test_failure_counted_and_logged(
        self, unix_receiver: tuple[socket.socket, str], caplog: pytest.LogCaptureFixture
    ) -> None:
        """When the receiver goes away, failures are counted and reported, not raised."""
        sock, path = unix_receiver
        sink = SyslogSink(path)
        sink(ev("login"))
        assert parse(sock.recv(65536))[2]["event"] == "login"
        sock.close()
        os.unlink(path)
        caplog.set_level(logging.DEBUG, logger="sessionward.security")
        sink(ev("logout"))
        sink.close()
        assert (sink.sent, sink.failures) == (1, 1)
        [record] = [r for r in caplog.records if r.name == "sessionward.security"]
        assert record.levelno == logging.ERROR and "logout" in record.getMessage()
        assert path not in record.getMessage()


class TestConfiguration:
    """Fail fast on bad settings."""

    def test_missing_socket(self, unix_dir: str) -> None:
        """A Unix socket path that does not exist is refused, without the path."""
        with pytest.raises(ConfigurationError, match="does not exist") as info:
            SyslogSink(os.path.join(unix_dir, "nope"))
        assert unix_dir not in str(info.value)

    def test_unknown_facility(self, udp_receiver: socket.socket) -> None:
        """A facility typo is refused with the valid names."""
        with pytest.raises(ConfigurationError, match="authpriv"):
            SyslogSink(("127.0.0.1", udp_receiver.getsockname()[1]), facility="auht")

    def test_unknown_level(self, udp_receiver: socket.socket) -> None:
        """A level typo is refused."""
        with pytest.raises(ConfigurationError):
            SyslogSink(("127.0.0.1", udp_receiver.getsockname()[1]), level="warn")  # type: ignore[arg-type]
