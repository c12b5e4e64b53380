"""Signed requests: HMAC-SHA-256 over timestamp, nonce, method, target and body.

Wire format (three headers)::

    X-Timestamp:      1800000000                       (POSIX seconds, integer)
    X-Nonce:          16..64 chars of [A-Za-z0-9_-]     (random per request)
    X-Signature-256:  sha256=<hex HMAC-SHA-256(secret, ts "." nonce "." METHOD "." target
                                                       "." hex(SHA-256(body)))>

``target`` is the request target as sent: path plus ``?query`` when there
is one.  The nonce is *inside* the MAC, so a captured request cannot be
replayed with a fresh nonce; the verifier remembers each accepted nonce in
the store (``kv_create`` of ``sig:<hex>`` until the timestamp leaves the
window), so a replay inside the window is refused.

Checks run in this order: headers well-formed, MAC (constant time), then
timestamp within ±``tolerance``, then the nonce; a nonce is recorded only
for an authentic, fresh request, so forged traffic cannot fill the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote

from ..core.clock import Clock, system_clock
from ..core.errors import BadSignatureError as BadSignatureError
from ..core.errors import MissingSignatureError as MissingSignatureError
from ..core.errors import ReplayedRequestError as ReplayedRequestError
from ..core.errors import SignatureError as SignatureError
from ..core.errors import StaleRequestError as StaleRequestError
from ..stores.base import SessionStore

SIGNATURE_HEADER = "X-Signature-256"
TIMESTAMP_HEADER = "X-Timestamp"
NONCE_HEADER = "X-Nonce"
MAX_BODY = 1024 * 1024
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIG_RE = re.compile(r"sha256=([0-9a-f]{64})")
_TS_RE = re.compile(r"[0-9]{1,12}")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

Secret = bytes | str


def _raw(secret: Secret) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(raw) < 16:
        raise ValueError("a request-signing secret must be at least 16 bytes")
    return raw


def signature(method: str, target: str, body: bytes, secret: Secret, timestamp: str,
              nonce: str) -> str:
    """The ``sha256=<hex>`` header value for these request parts."""
    message = ".".join([timestamp, nonce, method.upper(), target,
                        hashlib.sha256(body).hexdigest()]).encode()
    return "sha256=" + hmac.new(_raw(secret), message, hashlib.sha256).hexdigest()


def sign(method: str, path: str, body: bytes, secret: Secret, *, now: float | None = None,
         nonce: str | None = None) -> dict[str, str]:
    """Headers that authenticate one request.

    Args:
        method: HTTP method (case-insensitive).
        path: the request target as it will be sent (path and ``?query``).
        body: the exact body bytes (``b""`` for none).
        secret: the shared secret (at least 16 bytes).
        now: POSIX seconds (default: the system clock).
        nonce: 16..64 chars of ``[A-Za-z0-9_-]`` (default: 128 random bits).

    Raises:
        ValueError: short secret or malformed nonce.
    """
    nonce = nonce if nonce is not None else secrets.token_urlsafe(16)
    if not _NONCE_RE.fullmatch(nonce):
        raise ValueError("nonce must be 16-64 characters of [A-Za-z0-9_-]")
    timestamp = str(int(time.time() if now is None else now))
    return {
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(method, path, body, secret, timestamp, nonce),
    }


class RequestVerifier:
    """Verify signed requests and refuse replays.

    Args:
        store: replay cache (a ``CROSS_PROCESS`` store when several workers verify).
        secret: the shared secret, or several (rotation: any one may match).
        tolerance: accepted clock skew in seconds, both ways (1..3600).
        clock: wall clock (a ``FrozenClock`` in tests).

    Raises:
        ValueError: a short secret or a tolerance out of range.
    """

    def __init__(self, store: SessionStore, secret: Secret | Sequence[Secret], *,
                 tolerance: float = 300, clock: Clock | None = None) -> None:
        candidates = [secret] if isinstance(secret, (bytes, str)) else list(secret)
        if not candidates:
            raise ValueError("RequestVerifier needs at least one secret")
        self._secrets = [_raw(s) for s in candidates]
        if not 1 <= tolerance <= 3600:
            raise ValueError("tolerance must be between 1 and 3600 seconds")
        self.tolerance = float(tolerance)
        self.store = store
        self.clock: Clock = clock or system_clock
        self._cache_id = hashlib.sha256(b"sessionward/signing\x00" + self._secrets[0]).digest()

    def verify(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Accept the request or raise why not.

        Raises:
            MissingSignatureError: a header is absent or malformed.
            BadSignatureError: the MAC does not match (checked in constant time).
            StaleRequestError: the timestamp is outside ±``tolerance``.
            ReplayedRequestError: the nonce was already accepted.
            StoreError: the replay cache is unavailable.
        """
        timestamp, nonce, mac = _read_headers(headers)
        matched = False
        for secret in self._secrets:  # no early exit: timing does not tell which matched
            expected = signature(method, path, body, secret, timestamp, nonce)
            matched = hmac.compare_digest(expected, mac) or matched
        if not matched:
            raise BadSignatureError("the request signature does not match")
        now = self.clock()
        if abs(now - int(timestamp)) > self.tolerance:
            raise StaleRequestError("the request timestamp is outside the accepted window")
        self._remember_nonce(nonce, int(timestamp))

    def _remember_nonce(self, nonce: str, timestamp: int) -> None:
        # Race: two workers verifying the same captured request at once both
        # reach kv_create; the store creates the entry for exactly one of them.
        key = "sig:" + hashlib.sha256(self._cache_id + nonce.encode()).hexdigest()
        if not self.store.kv_create(key, b"1", expires_at=timestamp + self.tolerance + 1):
            raise ReplayedRequestError("this request was already received")


def _read_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get(TIMESTAMP_HEADER.lower(), "").strip()
    nonce = lower.get(NONCE_HEADER.lower(), "").strip()
    mac = lower.get(SIGNATURE_HEADER.lower(), "").strip()
    if not (_TS_RE.fullmatch(timestamp) and _NONCE_RE.fullmatch(nonce) and _SIG_RE.fullmatch(mac)):
        raise MissingSignatureError(
            f"{TIMESTAMP_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER} are required"
        )
    return timestamp, nonce, mac


def _guarded(path: str, prefixes: Iterable[str]) -> bool:
    for prefix in prefixes:
        base = prefix.rstrip("/")
        if path == prefix or path == base or path.startswith(base + "/"):
            return True
    return False


def _error_body(error: SignatureError | None, message: str, code: str) -> bytes:
    if error is not None:
        code, message = error.code, str(error)
    return json.dumps({"error": code, "message": message}).encode()


# -------------------------------------------------------------------- WSGI

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SignedRequestsWSGI:
    """WSGI middleware: requests under ``routes`` must be signed (else 401 JSON).

    The body is read fully (at most ``max_body`` bytes, else 413) and handed
    to the app again through a fresh ``wsgi.input``.  The target is
    ``RAW_URI``/``REQUEST_URI`` when the server provides it, else the quoted
    ``SCRIPT_NAME + PATH_INFO`` plus ``?QUERY_STRING``.
    """

    def __init__(self, app: WSGIApp, verifier: RequestVerifier, routes: Sequence[str],
                 *, max_body: int = MAX_BODY) -> None:
        self.app, self.verifier, self.routes, self.max_body = app, verifier, tuple(routes), max_body

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if not _guarded(path, self.routes):
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= self.max_body:
            return _wsgi_reply(start_response, "413 Content Too Large",
                               _error_body(None, "body too large", "body_too_large"))
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-"): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        try:
            self.verifier.verify(environ.get("REQUEST_METHOD", "GET"), _wsgi_target(environ),
                                 body, headers)
        except SignatureError as exc:
            return _wsgi_reply(start_response, "401 Unauthorized", _error_body(exc, "", ""))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _wsgi_target(environ: Mapping[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    # PEP 3333: PATH_INFO holds the raw bytes decoded as latin-1.
    raw_path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1")
    path = quote(raw_path, safe=_PATH_SAFE)
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def _wsgi_reply(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
    return [body]


# -------------------------------------------------------------------- ASGI

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class SignedRequestsASGI:
    """ASGI middleware: HTTP requests under ``routes`` must be signed (else 401 JSON).

    The body is received fully (at most ``max_body`` bytes, else 413) and
    replayed to the app as one ``http.request`` message; later ``receive``
    calls go to the server (``http.disconnect``).  The target is
    ``raw_path`` (or the quoted ``path``) plus ``?query_string``.  The store
    call runs in a worker thread so the event loop never blocks.
    """

    def __init__(self, app: ASGIApp, verifier: RequestVerifier, routes: Sequence[str],
                 *, max_body: int = MAX_BODY) -> None:
        self.app, self.verifier, self.routes, self.max_body = app, verifier, tuple(routes), max_body

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive,
                       send: Send) -> None:
        if scope.get("type") != "http" or not _guarded(scope.get("path", ""), self.routes):
            await self.app(scope, receive, send)
            return
        body = await _receive_body(receive, self.max_body)
        if body is None:
            await _asgi_reply(send, 413, _error_body(None, "body too large", "body_too_large"))
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            await asyncio.to_thread(self.verifier.verify, scope.get("method", "GET"),
                                    _asgi_target(scope), body, headers)
        except SignatureError as exc:
            await _asgi_reply(send, 401, _error_body(exc, "", ""))
            return
        await self.app(scope, _replay(body, receive), send)


async def _receive_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            return b"".join(chunks)  # client went away: verify what arrived
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _asgi_target(scope: Mapping[str, Any]) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope.get("path", ""), safe=_PATH_SAFE)
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


async def _asgi_reply(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
