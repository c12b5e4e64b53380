"""Signed webhooks: events POSTed as JSON from a bounded queue.

Wire format (a contract for receivers)::

    POST <url>
    Content-Type: application/json
    X-Timestamp: <unix seconds, when this attempt was signed>
    X-Event-Id: <the event's UUIDv4; the same on every retry>
    X-Signature-256: sha256=<hex HMAC-SHA-256(secret, ts + "." + event_id + "." + body)>

    <orjson of event.to_dict()>

Receivers call :func:`~.signature.verify_webhook` and de-duplicate on ``X-Event-Id``
(a retry after a lost response delivers the same event twice).

Delivery: :class:`WebhookSink` puts events on a bounded :class:`queue.Queue`
and returns at once; one daemon thread POSTs them with ``urllib.request``.
A full queue drops the event, counts it in ``dropped`` and logs it on
``sessionward.security``: the only loss outside :meth:`WebhookSink.close`
timing out, which is counted the same way.  5xx, 408, 429 and connection
errors are retried with capped exponential backoff and jitter; other 4xx
and redirects are not (redirects are never followed).

Security: a secret of at least :data:`MIN_SECRET_BYTES` bytes is required,
unless ``unsafe_unsigned=True``; a configured secret is always used.  Plain
``http://`` is accepted for loopback receivers only, unless
``unsafe_plain_http=True``.  Proxy settings from the environment are ignored.
"""

from __future__ import annotations

import http.client
import queue
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from email.message import Message
from enum import Enum
from typing import Any

import orjson

from ...core.errors import ConfigurationError
from ...core.net import is_loopback_host
from ..events import EVENT_LEVELS, Event, Level
from ..redact import sanitize, sanitize_exception
from . import ClosingSink, security_log
from .signature import MIN_SECRET_BYTES, secret_bytes, sign_webhook

RETRY_STATUSES = frozenset({408, 429})
"""4xx answers that are retried like 5xx (timeouts and rate limits)."""

DEFAULT_EVENTS = frozenset(name for name, lvl in EVENT_LEVELS.items() if lvl >= Level.CRITICAL)
"""The events sent when ``events`` is not given: the CRITICAL-level ones."""

_DROP_LOG_EVERY = 100


class _Result(Enum):
    OK = "ok"
    RETRY = "retry"
    FAIL = "fail"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the signed body must not travel elsewhere."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> None:
        return None


def _check_url(url: str, unsafe_plain_http: bool) -> str:
    """Validate the receiver URL (scheme, host, no credentials)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError("webhook url must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "webhook url must not carry credentials: the receiver authenticates the signature"
        )
    if parts.scheme == "http" and not (is_loopback_host(parts.hostname) or unsafe_plain_http):
        raise ConfigurationError(
            "webhook url uses plain http to a non-loopback host: use https "
            "(or unsafe_plain_http=True on a network you trust)"
        )
    return url


def _check_secret(secret: str | bytes | None, unsafe_unsigned: bool) -> bytes | None:
    """The signing key, or ``None`` for an explicitly unsigned sink."""
    key = secret_bytes(secret)
    if len(key) >= MIN_SECRET_BYTES:
        return key
    if not unsafe_unsigned:
        raise ConfigurationError(
            f"webhook secret is {'empty' if not key else 'too short'}: use at least "
            f"{MIN_SECRET_BYTES} random bytes (python -c 'import secrets; "
            f"print(secrets.token_urlsafe(32))'), or unsafe_unsigned=True"
        )
    if key:
        security_log.warning("webhook secret is shorter than %d bytes", MIN_SECRET_BYTES)
        return key
    security_log.warning("webhook sink sends UNSIGNED requests (unsafe_unsigned=True)")
    return None


def _check_events(events: Iterable[str] | None) -> frozenset[str]:
    if events is None:
        return DEFAULT_EVENTS
    chosen = frozenset(events)
    unknown = sorted(chosen - EVENT_LEVELS.keys())
    if unknown:
        raise ConfigurationError(
            f"unknown webhook event names {sanitize(', '.join(unknown))}: see docs/events.md"
        )
    return chosen


def _check_numbers(
    queue_size: int, timeout: float, retries: int, backoff: float, cap: float
) -> None:
    if queue_size < 1 or timeout <= 0 or retries < 0 or backoff < 0 or cap < backoff:
        raise ConfigurationError(
            "webhook settings out of range: need queue_size >= 1, timeout > 0, "
            "max_retries >= 0, 0 <= backoff <= backoff_cap"
        )


_STOP = object()


class WebhookSink(ClosingSink):
    """Event subscriber that POSTs signed events to one URL from a background thread.

    Attributes:
        delivered: events the receiver accepted (2xx).
        retries: extra attempts made (after 5xx, 408, 429 or connection errors).
        failures: events given up on (4xx, redirect, or retries exhausted).
        dropped: events lost because the queue was full or the sink closed.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes | None,
        events: Iterable[str] | None = None,
        queue_size: int = 1000,
        timeout: float = 5,
        max_retries: int = 5,
        backoff: float = 0.5,
        backoff_cap: float = 30,
        *,
        unsafe_unsigned: bool = False,
        unsafe_plain_http: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Validate the settings and start the delivery thread.

        Args:
            url: the receiver (``https://``; ``http://`` only for loopback).
            secret: the HMAC secret shared with the receiver.
            events: event names to send (default: the CRITICAL-level ones).
            queue_size: events waiting for delivery before new ones are dropped.
            timeout: seconds per HTTP attempt.
            max_retries: extra attempts per event after the first.
            backoff: first retry delay in seconds; doubles each retry.
            backoff_cap: longest retry delay in seconds.
            unsafe_unsigned: accept an empty (send unsigned) or short secret.
            unsafe_plain_http: accept ``http://`` to a non-loopback host.
            clock: unix time for ``X-Timestamp``.

        Raises:
            ConfigurationError: bad URL, missing/short secret, unknown event
                names or out-of-range numbers.
        """
        _check_numbers(queue_size, timeout, max_retries, backoff, backoff_cap)
        self.url = _check_url(url, unsafe_plain_http)
        self.events = _check_events(events)
        self._secret = _check_secret(secret, unsafe_unsigned)
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff, self.backoff_cap = backoff, backoff_cap
        self.delivered = self.retries = self.failures = self.dropped = 0
        self._clock = clock
        self._rng = random.SystemRandom()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sessionward-webhook", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Events queued and not yet taken by the delivery thread."""
        return self._queue.qsize()

    def __call__(self, event: Event) -> None:
        """Queue ``event`` if it is one of ``events``; never blocks, never raises."""
        if event.name not in self.events:
            return
        if self._closed:
            self._drop(event.name, "the sink is closed")
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._drop(event.name, "the queue is full (receiver slow or down?)")

    def _drop(self, name: str, why: str) -> None:
        with self._lock:
            self.dropped += 1
            count = self.dropped
        if count == 1 or count % _DROP_LOG_EVERY == 0:
            security_log.error(
                "webhook dropped a %s event: %s (%d dropped so far)", name, why, count
            )

    def _run(self) -> None:
        """The delivery thread: one event at a time until the stop marker."""
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if not isinstance(item, Event):
                continue
            if self._abort.is_set():
                self._drop(item.name, "close() timed out before delivery")
                continue
            try:
                self._deliver(item)
            except Exception as exc:  # noqa: BLE001 - the delivery thread must survive any event
                self._give_up(item, f"unexpected {sanitize_exception(exc)}")

    def _deliver(self, event: Event) -> None:
        body = orjson.dumps(event.to_dict(), default=sanitize)
        why = ""
        for attempt in range(self.max_retries + 1):
            result, why = self._post(event.event_id, body)
            if result is _Result.OK:
                self.delivered += 1
                return
            if result is _Result.FAIL or attempt == self.max_retries:
                break
            self.retries += 1
            if self._abort.wait(self._delay(attempt)):
                why += "; close() timed out during backoff"
                break
        self._give_up(event, why)

    def _give_up(self, event: Event, why: str) -> None:
        self.failures += 1
        security_log.error(
            "webhook delivery of %s event %s failed: %s (%d failures so far)",
            event.name,
            event.event_id,
            why,
            self.failures,
        )

    def _delay(self, attempt: int) -> float:
        """Capped exponential backoff with jitter: a random delay in [d/2, d]."""
        delay = min(self.backoff_cap, self.backoff * (2**attempt))
        return self._rng.uniform(delay / 2, delay)

    def _request(self, event_id: str, body: bytes) -> urllib.request.Request:
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "sessionward-webhook",
            "X-Timestamp": timestamp,
            "X-Event-Id": event_id,
        }
        if self._secret is not None:
            headers["X-Signature-256"] = sign_webhook(self._secret, timestamp, event_id, body)
        # S310: the scheme was checked in _check_url (http/https only).
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310

    def _post(self, event_id: str, body: bytes) -> tuple[_Result, str]:
        """One attempt; the result class and a sanitised description."""
        try:
            with self._opener.open(self._request(event_id, body), timeout=self.timeout) as resp:
                resp.read(65536)
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except (OSError, http.client.HTTPException) as exc:  # URLError, refused, timeout
            return _Result.RETRY, sanitize_exception(exc)
        if 200 <= status < 300:
            return _Result.OK, ""
        if status >= 500 or status in RETRY_STATUSES:
            return _Result.RETRY, f"HTTP {status}"
        return _Result.FAIL, f"HTTP {status} (not retried)"

    def close(self, timeout: float = 10) -> bool:
        """Stop accepting events and deliver what is queued, waiting up to ``timeout``.

        Args:
            timeout: seconds to wait for the queue to drain.

        Returns:
            ``True`` if everything queued was handled (delivered or failed);
            ``False`` if time ran out: the rest is counted in ``dropped``.
        """
        self._closed = True
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive():
            return True
        self._abort.set()
        self._discard_queued()
        return False

    def _discard_queued(self) -> None:
        """After a timed-out close: count what is left as dropped and let the thread end."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Event):
                self._drop(item.name, "close() timed out before delivery")
        self._queue.put_nowait(_STOP)
