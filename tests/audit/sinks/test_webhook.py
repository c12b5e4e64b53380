"""Tests for the webhook sink against a real HTTP receiver on loopback."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
import pytest

from sessionward.audit.events import EVENT_LEVELS, Event, Level
from sessionward.audit.sinks.signature import sign_webhook, verify_webhook
from sessionward.audit.sinks.webhook import DEFAULT_EVENTS, WebhookSink
from sessionward.core.errors import ConfigurationError

SECRET = "s" * 16 + "-webhook-secret-for-tests-0123456789"
TS = 1_700_000_000.25
WAIT = 30.0
"""Upper bound for every wait in this file (never an assertion on duration)."""


def ev(name: str = "zombie_accessed", **kw: object) -> Event:
    fields: dict[str, object] = {"namespace": "t", "fingerprint": "abc123", "user": "alice"}
    fields.update(kw)
    return Event(name=name, ts=TS, **fields)  # type: ignore[arg-type]


def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` until true; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.005)


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified: bool


@dataclass
class Receiver:
    """A loopback HTTP receiver that verifies every request with verify_webhook."""

    secret: str = SECRET
    script: list[int] = field(default_factory=list)
    """Statuses to answer, in order; 200 once exhausted."""
    release: threading.Event | None = None
    """If set, each request waits for it (bounded) before answering."""
    entered: threading.Event = field(default_factory=threading.Event)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify_webhook(self.headers, body, receiver.secret)
                with receiver.lock:
                    receiver.deliveries.append(Delivery(dict(self.headers), body, ok))
                    status = receiver.script.pop(0) if receiver.script else 200
                receiver.entered.set()
                if receiver.release is not None:
                    receiver.release.wait(WAIT)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def serve(self, sock: socket.socket | None = None) -> None:
        """Start serving, on a fresh port or on an already bound socket."""
        if sock is None:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        else:
            self.server = http.server.ThreadingHTTPServer(
                sock.getsockname(), self.handler(), bind_and_activate=False
            )
            self.server.socket.close()
            self.server.socket = sock
            self.server.server_activate()
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            if self.release is not None:
                self.release.set()
            self.server.shutdown()
            self.server.server_close()

    def events(self) -> list[str]:
        return [orjson.loads(d.body)["event"] for d in self.deliveries]


@pytest.fixture(name="receiver")
def fixture_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.serve()
    yield receiver
    receiver.stop()


@pytest.fixture(name="make_sink")
def fixture_make_sink() -> Iterator[Callable[..., WebhookSink]]:
    sinks: list[WebhookSink] = []

    def make(url: str, **kw: object) -> WebhookSink:
        kw.setdefault("backoff", 0.01)
        kw.setdefault("backoff_cap", 0.05)
        kw.setdefault("timeout", WAIT)
        sink = WebhookSink(url, kw.pop("secret", SECRET), **kw)  # type: ignore[arg-type]
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(timeout=WAIT)


class TestDelivery:
    """Receiver up, down, slow, failing."""

    def test_receiver_up(self, receiver: Receiver, make_sink: Callable[..., WebhookSink]) -> None:
        """A signed JSON body with the documented headers reaches the receiver."""
        sink = make_sink(receiver.url)
        event = ev("zombie_accessed", client="203.0.113.9")
        sink(event)
        assert sink.close(timeout=WAIT) is True
        [delivery] = receiver.deliveries
        assert delivery.verified
        assert orjson.loads(delivery.body) == event.to_dict()
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        assert headers["x-event-id"] == event.event_id
        assert headers["content-type"] == "application/json"
        assert headers["x-signature-256"] == sign_webhook(
            SECRET, headers["x-timestamp"], event.event_id, delivery.body
        )
        assert (sink.delivered, sink.retries, sink.failures, sink.dropped) == (1, 0, 0, 0)

    def test_default_events_are_critical_only(
        self, receiver: Receiver, make_sink: Callable[..., WebhookSink]
    ) -> None:
        """Without `events`, only CRITICAL-level events are sent."""
        assert {n for n, lvl in EVENT_LEVELS.items() if lvl == Level.CRITICAL} == DEFAULT_EVENTS
        sink = make_sink(receiver.url)
        for name in ("login", "created", "token_reused", "logout", "decode_failed"):
            sink(ev(name))
        sink.close(timeout=WAIT)
        assert receiver.events() == ["token_reused", "decode_failed"]

    def test_chosen_events(self, receiver: Receiver, make_sink: Callable[..., WebhookSink]) -> None:
        """An explicit `events` list replaces the default."""
        sink = make_sink(receiver.url, events=["login"])
        sink(ev("zombie_accessed"))
        sink(ev("login"))
        sink.close(timeout=WAIT)
        assert receiver.events() == ["login"]

    def test_receiver_down_then_up(self, make_sink: Callable[..., WebhookSink]) -> None:
        """Connection refused is retried; once the receiver listens, the event arrives."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        host, port = sock.getsockname()
        receiver = Receiver()
        try:
            sink = make_sink(f"http://{host}:{port}/hook", max_retries=10_000)
            sink(ev())
            wait_until(lambda: sink.retries >= 2)
            assert sink.delivered == 0
            receiver.serve(sock)
            assert sink.close(timeout=WAIT) is True
        finally:
            receiver.stop()
        assert receiver.events() == ["zombie_accessed"]
        assert all(d.verified for d in receiver.deliveries)
        assert (sink.delivered, sink.failures, sink.dropped) == (1, 0, 0)

    def test_slow_receiver_never_blocks_emit(self, make_sink: Callable[..., WebhookSink]) -> None:
        """While the receiver is stuck, emitting still returns: queued, then dropped when full."""
        receiver = Receiver(release=threading.Event())
        receiver.serve()
        try:
            sink = make_sink(receiver.url, queue_size=1)
            sink(ev("token_reused"))
            assert receiver.entered.wait(WAIT)  # the delivery thread is now blocked in the POST
            sink(ev("decode_failed"))
            assert (sink.pending, sink.dropped) == (1, 0)  # accepted by the queue
            sink(ev("auth_failed"))
            assert (sink.pending, sink.dropped) == (1, 1)  # queue full: counted, not blocked
            receiver.release.set()  # type: ignore[union-attr]
            assert sink.close(timeout=WAIT) is True
        finally:
            receiver.stop()
        assert receiver.events() == ["token_reused", "decode_failed"]
        assert sink.delivered == 2

    def test_500_twice_then_200(self, make_sink: Callable[..., WebhookSink]) -> None:
        """5xx answers are retried; the event is delivered once, retries counted."""
        receiver = Receiver(script=[500, 503])
        receiver.serve()
        try:
            sink = make_sink(receiver.url)
            event = ev()
            sink(event)
            assert sink.close(timeout=WAIT) is True
        finally:
            receiver.stop()
        assert (sink.delivered, sink.retries, sink.failures) == (1, 2, 0)
        assert len(receiver.deliveries) == 3 and all(d.verified for d in receiver.deliveries)
        assert {d.headers["X-Event-Id"] for d in receiver.deliveries} == {event.event_id}

    def test_400_not_retried(
        self, make_sink: Callable[..., WebhookSink], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A 4xx answer is a failure at once, counted and logged."""
        caplog.set_level(logging.DEBUG, logger="sessionward.security")
        receiver = Receiver(script=[400, 200])
        receiver.serve()
        try:
            sink = make_sink(receiver.url)
            sink(ev())
            assert sink.close(timeout=WAIT) is True
        finally:
            receiver.stop()
        assert len(receiver.deliveries) == 1
        assert (sink.delivered, sink.retries, sink.failures) == (0, 0, 1)
        messages = [r.getMessage() for r in caplog.records if r.name == "sessionward.security"]
        assert any("HTTP 400" in m for m in messages)

    @pytest.mark.parametrize("status", [429, 408])
    def test_rate_limit_and_timeout_answers_retried(
        self, make_sink: Callable[..., WebhookSink], status: int
    ) -> None:
        """429 and 408 are retried like 5xx."""
        receiver = Receiver(script=[status])
        receiver.serve()
        try:
            sink = make_sink(receiver.url)
            sink(ev())
            sink.close(timeout=WAIT)
        finally:
            receiver.stop()
        assert (sink.delivered, sink.retries, len(receiver.deliveries)) == (1, 1, 2)

    def test_redirect_not_followed(self, make_sink: Callable[..., WebhookSink]) -> None:
        """A 3xx is a failure: the signed body never goes to another URL."""
        receiver = Receiver(script=[307])
        receiver.serve()
        try:
            sink = make_sink(receiver.url)
            sink(ev())
            sink.close(timeout=WAIT)
        finally:
            receiver.stop()
        assert (sink.delivered, sink.failures, len(receiver.deliveries)) == (0, 1, 1)

    def test_retries_exhausted(self, make_sink: Callable[..., WebhookSink]) -> None:
        """After max_retries extra attempts the event is a counted failure."""
        receiver = Receiver(script=[500, 500, 500, 500])
        receiver.serve()
        try:
            sink = make_sink(receiver.url, max_retries=2)
            sink(ev())
            sink.close(timeout=WAIT)
        finally:
            receiver.stop()
        assert (sink.delivered, sink.retries, sink.failures, len(receiver.deliveries)) == (
            0,
            2,
            1,
            3,
        )

    def test_close_timeout_counts_undelivered(self, make_sink: Callable[..., WebhookSink]) -> None:
        """If close() runs out of time, what is left is counted as dropped."""
        receiver = Receiver(release=threading.Event())
        receiver.serve()
        try:
            sink = make_sink(receiver.url)
            sink(ev("token_reused"))
            assert receiver.entered.wait(WAIT)
            sink(ev("decode_failed"))
            sink(ev("auth_failed"))
            assert sink.close(timeout=0) is False
            assert sink.dropped == 2
            sink(ev("zombie_accessed"))  # after close: dropped, not queued
            assert sink.dropped == 3
        finally:
            receiver.stop()

    def test_unsigned_only_when_allowed_and_no_secret(
        self, receiver: Receiver, make_sink: Callable[..., WebhookSink]
    ) -> None:
        """unsafe_unsigned without a secret sends no signature; with one it still signs."""
        unsigned = make_sink(receiver.url, secret=None, unsafe_unsigned=True)
        signed = make_sink(receiver.url, unsafe_unsigned=True)
        unsigned(ev())
        unsigned.close(timeout=WAIT)
        signed(ev())
        signed.close(timeout=WAIT)
        first, second = receiver.deliveries
        assert "X-Signature-256" not in first.headers and not first.verified
        assert second.verified


class TestConfiguration:
    """Refusals at construction."""

    @pytest.mark.parametrize("secret", [None, "", b"", "short", "x" * 31])
    def test_missing_or_short_secret(self, secret: str | bytes | None) -> None:
        """An empty or short secret is refused unless unsafe_unsigned=True."""
        with pytest.raises(ConfigurationError, match="secret"):
            WebhookSink("https://hooks.example/x", secret)

    @pytest.mark.parametrize(
        ("url", "match"),
        [
            ("ftp://hooks.example/x", "https"),
            ("file:///etc/passwd", "https"),
            ("https:///nohost", "https"),
            ("http://hooks.example/x", "plain http"),
            ("https://user:pw@hooks.example/x", "credentials"),
        ],
    )
    def test_bad_urls(self, url: str, match: str) -> None:
        """Only https (or loopback http) without credentials is accepted."""
        with pytest.raises(ConfigurationError, match=match) as info:
            WebhookSink(url, SECRET)
        assert "pw" not in str(info.value)

    def test_plain_http_escape_hatch(self) -> None:
        """unsafe_plain_http allows http to another host."""
        WebhookSink("http://hooks.example/x", SECRET, unsafe_plain_http=True).close()

    def test_unknown_event_name(self) -> None:
        """A typo in an event name is refused."""
        with pytest.raises(ConfigurationError, match="zombie_acessed"):
            WebhookSink("https://hooks.example/x", SECRET, events=["zombie_acessed"])

    @pytest.mark.parametrize(
        "kw",
        [{"queue_size": 0}, {"timeout": 0}, {"max_retries": -1}, {"backoff": 5, "backoff_cap": 1}],
    )
    def test_numbers_out_of_range(self, kw: dict[str, float]) -> None:
        """Nonsensical limits are refused."""
        with pytest.raises(ConfigurationError, match="out of range"):
            WebhookSink("https://hooks.example/x", SECRET, **kw)  # type: ignore[arg-type]


class TestVerify:
    """verify_webhook for receivers."""

    NOW = 1_700_000_000
    BODY = b'{"event":"zombie_accessed"}'
    EID = "6f1c7a3e-8d2b-4c55-9a0e-1b2c3d4e5f60"

    def headers(self, **over: str) -> dict[str, str]:
        ts = over.pop("ts", str(self.NOW))
        base = {
            "X-Timestamp": ts,
            "X-Event-Id": self.EID,
            "X-Signature-256": sign_webhook(SECRET, ts, self.EID, self.BODY),
        }
        base.update(over)
        return base

    def test_valid(self) -> None:
        """A fresh, correctly signed request verifies."""
        assert verify_webhook(self.headers(), self.BODY, SECRET, now=self.NOW)

    def test_header_names_case_insensitive(self) -> None:
        """Lower- or mixed-case header names work."""
        lowered = {k.lower(): v for k, v in self.headers().items()}
        assert verify_webhook(lowered, self.BODY, SECRET, now=self.NOW)
        upper = {k.upper(): v for k, v in self.headers().items()}
        assert verify_webhook(upper, self.BODY, SECRET, now=self.NOW)

    def test_bytes_secret(self) -> None:
        """A bytes secret equals its UTF-8 str."""
        assert verify_webhook(self.headers(), self.BODY, SECRET.encode(), now=self.NOW)

    @pytest.mark.parametrize(
        "change",
        [
            {"body": b'{"event":"login"}'},
            {"secret": SECRET + "x"},
            {"X-Event-Id": "6f1c7a3e-8d2b-4c55-9a0e-1b2c3d4e5f61"},
            {"X-Signature-256": "sha256=" + "0" * 64},
            {"X-Signature-256": "sha1=abc"},
            {"X-Signature-256": "sha256=ünïcode"},
            {"X-Timestamp": "1700000001"},
            {"X-Timestamp": "-5"},
            {"X-Timestamp": "1e9"},
            {"X-Event-Id": "a.b"},
        ],
    )
    def test_rejects_tampering(self, change: dict[str, object]) -> None:
        """Any change to body, secret, id, timestamp or signature fails."""
        body = change.pop("body", self.BODY)
        secret = change.pop("secret", SECRET)
        headers = self.headers()
        headers.update({k: str(v) for k, v in change.items()})
        assert not verify_webhook(headers, body, secret, now=self.NOW)  # type: ignore[arg-type]

    @pytest.mark.parametrize("missing", ["X-Timestamp", "X-Event-Id", "X-Signature-256"])
    def test_rejects_missing_header(self, missing: str) -> None:
        """Every one of the three headers is required."""
        headers = self.headers()
        del headers[missing]
        assert not verify_webhook(headers, self.BODY, SECRET, now=self.NOW)

    def test_stale_and_future_timestamps(self) -> None:
        """Timestamps outside the tolerance (either side) are refused."""
        old = self.headers(ts=str(self.NOW - 301))
        assert not verify_webhook(old, self.BODY, SECRET, now=self.NOW)
        assert verify_webhook(old, self.BODY, SECRET, now=self.NOW, tolerance=400)
        future = self.headers(ts=str(self.NOW + 301))
        assert not verify_webhook(future, self.BODY, SECRET, now=self.NOW)

    def test_empty_secret_is_a_configuration_error(self) -> None:
        """Verifying with an empty secret is a bug, not a failed check."""
        with pytest.raises(ConfigurationError):
            verify_webhook(self.headers(), self.BODY, "", now=self.NOW)
