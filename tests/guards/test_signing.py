"""Signed requests: the MAC covers timestamp, nonce, method, target and body; stale
timestamps and replayed nonces are refused; WSGI and ASGI middleware."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from sessionward.core.clock import FrozenClock
from sessionward.guards.signing import (
    BadSignatureError,
    MissingSignatureError,
    ReplayedRequestError,
    RequestVerifier,
    SignedRequestsASGI,
    SignedRequestsWSGI,
    StaleRequestError,
    sign,
)
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore

SECRET = b"s" * 32
BODY = b'{"amount": 10}'


@pytest.fixture(name="verifier")
def verifier_fixture(store: SessionStore, clock: FrozenClock) -> RequestVerifier:
    return RequestVerifier(store, SECRET, clock=clock)


def signed(clock: FrozenClock, method: str = "POST", path: str = "/hook",
           body: bytes = BODY, **kwargs: Any) -> dict[str, str]:
    return sign(method, path, body, SECRET, now=clock.now, **kwargs)


class TestSign:
    def test_headers_match_an_independent_computation(self) -> None:
        """The signature is HMAC-SHA-256 over ts.nonce.METHOD.path.sha256hex(body)."""
        headers = sign("post", "/a/b?x=1", b"hi", SECRET, now=1_800_000_000.9,
                       nonce="n" * 16)
        message = b"1800000000." + b"n" * 16 + b".POST./a/b?x=1." + \
            hashlib.sha256(b"hi").hexdigest().encode()
        expected = hmac.new(SECRET, message, hashlib.sha256).hexdigest()
        assert headers == {"X-Timestamp": "1800000000", "X-Nonce": "n" * 16,
                           "X-Signature-256": f"sha256={expected}"}

    def test_fresh_nonce_each_time(self) -> None:
        """Without an explicit nonce every signature differs."""
        nonces = {sign("GET", "/", b"", SECRET)["X-Nonce"] for _ in range(50)}
        assert len(nonces) == 50

    @pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space" * 3, "dots.." * 4])
    def test_bad_nonce_refused(self, nonce: str) -> None:
        """Nonces outside 16..64 chars of [A-Za-z0-9_-] are refused."""
        with pytest.raises(ValueError):
            sign("GET", "/", b"", SECRET, nonce=nonce)

    def test_short_secret_refused(self, store: SessionStore) -> None:
        """Secrets under 16 bytes are refused by signer and verifier."""
        with pytest.raises(ValueError):
            sign("GET", "/", b"", b"short")
        with pytest.raises(ValueError):
            RequestVerifier(store, "short")
        with pytest.raises(ValueError):
            RequestVerifier(store, [])
        with pytest.raises(ValueError):
            RequestVerifier(store, SECRET, tolerance=0)


class TestVerify:
    def test_valid_request_accepted(self, verifier: RequestVerifier, clock: FrozenClock) -> None:
        """A correctly signed request passes; header names are case-insensitive."""
        headers = {k.lower(): v for k, v in signed(clock).items()}
        verifier.verify("POST", "/hook", BODY, headers)

    @pytest.mark.parametrize(("method", "path", "body"), [
        ("PUT", "/hook", BODY), ("POST", "/hook2", BODY), ("POST", "/hook?x=1", BODY),
        ("POST", "/hook", BODY + b" "), ("POST", "/hook", b""),
    ])
    def test_altered_request_refused(self, verifier: RequestVerifier, clock: FrozenClock,
                                     method: str, path: str, body: bytes) -> None:
        """Changing the method, target or body breaks the MAC."""
        with pytest.raises(BadSignatureError):
            verifier.verify(method, path, body, signed(clock))

    def test_fresh_nonce_on_captured_request_fails(self, verifier: RequestVerifier,
                                                   clock: FrozenClock) -> None:
        """The nonce is inside the MAC: swapping it for a fresh one is detected."""
        captured = signed(clock)
        verifier.verify("POST", "/hook", BODY, captured)
        forged = dict(captured, **{"X-Nonce": "f" * 22})
        with pytest.raises(BadSignatureError):
            verifier.verify("POST", "/hook", BODY, forged)

    def test_moved_timestamp_fails(self, verifier: RequestVerifier, clock: FrozenClock) -> None:
        """The timestamp is inside the MAC too."""
        forged = dict(signed(clock), **{"X-Timestamp": str(int(clock.now) + 1)})
        with pytest.raises(BadSignatureError):
            verifier.verify("POST", "/hook", BODY, forged)

    def test_replay_inside_window_refused(self, verifier: RequestVerifier,
                                          clock: FrozenClock) -> None:
        """The same request twice within the window: the second is a replay."""
        headers = signed(clock)
        verifier.verify("POST", "/hook", BODY, headers)
        clock.advance(299)
        with pytest.raises(ReplayedRequestError):
            verifier.verify("POST", "/hook", BODY, headers)

    def test_replay_after_window_is_stale(self, verifier: RequestVerifier,
                                          clock: FrozenClock) -> None:
        """Once the replay cache forgot the nonce, the timestamp is out of the window."""
        headers = signed(clock)
        verifier.verify("POST", "/hook", BODY, headers)
        clock.advance(302)
        with pytest.raises(StaleRequestError):
            verifier.verify("POST", "/hook", BODY, headers)

    @pytest.mark.parametrize(("skew", "ok"), [(-300, True), (300, True), (-301, False),
                                              (301, False), (-86400, False)])
    def test_timestamp_window(self, verifier: RequestVerifier, clock: FrozenClock,
                              skew: int, ok: bool) -> None:
        """Timestamps within ±300 s pass; outside are stale (both directions)."""
        headers = sign("GET", "/", b"", SECRET, now=clock.now + skew)
        if ok:
            verifier.verify("GET", "/", b"", headers)
        else:
            with pytest.raises(StaleRequestError):
                verifier.verify("GET", "/", b"", headers)

    def test_forged_request_does_not_burn_the_nonce(self, verifier: RequestVerifier,
                                                    clock: FrozenClock) -> None:
        """Only authentic requests enter the replay cache."""
        real = signed(clock, nonce="k" * 20)
        forged = dict(real, **{"X-Signature-256": "sha256=" + "0" * 64})
        with pytest.raises(BadSignatureError):
            verifier.verify("POST", "/hook", BODY, forged)
        verifier.verify("POST", "/hook", BODY, real)

    @pytest.mark.parametrize("drop", ["X-Timestamp", "X-Nonce", "X-Signature-256"])
    def test_missing_header(self, verifier: RequestVerifier, clock: FrozenClock,
                            drop: str) -> None:
        """Each header is required."""
        headers = signed(clock)
        del headers[drop]
        with pytest.raises(MissingSignatureError):
            verifier.verify("POST", "/hook", BODY, headers)

    @pytest.mark.parametrize(("name", "value"), [
        ("X-Timestamp", "-5"), ("X-Timestamp", "1e9"), ("X-Nonce", "a.b" * 8),
        ("X-Signature-256", "sha1=" + "0" * 40), ("X-Signature-256", "sha256=" + "G" * 64),
    ])
    def test_malformed_header(self, verifier: RequestVerifier, clock: FrozenClock,
                              name: str, value: str) -> None:
        """Malformed header values are refused before any MAC work."""
        headers = dict(signed(clock), **{name: value})
        with pytest.raises(MissingSignatureError):
            verifier.verify("POST", "/hook", BODY, headers)

    def test_secret_rotation(self, store: SessionStore, clock: FrozenClock) -> None:
        """A verifier with (new, old) secrets accepts either; others are refused."""
        verifier = RequestVerifier(store, [b"n" * 32, SECRET], clock=clock)
        verifier.verify("POST", "/hook", BODY, signed(clock))
        other = sign("POST", "/hook", BODY, b"o" * 32, now=clock.now)
        with pytest.raises(BadSignatureError):
            verifier.verify("POST", "/hook", BODY, other)

    def test_errors_carry_codes(self) -> None:
        """Each error subclass has a stable machine code."""
        codes = {c.code for c in (BadSignatureError, StaleRequestError, ReplayedRequestError,
                                  MissingSignatureError)}
        assert codes == {"bad_signature", "stale_timestamp", "replayed_nonce",
                         "missing_signature"}


# --------------------------------------------------------------------- WSGI


def echo_wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [b"echo:" + body]


def wsgi_call(app: Any, method: str, path: str, body: bytes, headers: dict[str, str],
              query: str = "", **extra: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), **extra,
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: list[str] = []
    out = b"".join(app(environ, lambda s, h: status.append(s)))
    return status[0], out


class TestWSGI:
    @pytest.fixture(name="app")
    def app_fixture(self, clock: FrozenClock) -> SignedRequestsWSGI:
        verifier = RequestVerifier(MemoryStore(clock=clock), SECRET, clock=clock)
        return SignedRequestsWSGI(echo_wsgi, verifier, routes=["/hooks/"])

    def test_signed_request_reaches_app_with_body(self, app: SignedRequestsWSGI,
                                                  clock: FrozenClock) -> None:
        """The verified body is replayed to the app in full."""
        headers = signed(clock, path="/hooks/pay?x=1")
        status, out = wsgi_call(app, "POST", "/hooks/pay", BODY, headers, query="x=1")
        assert (status, out) == ("200 OK", b"echo:" + BODY)

    def test_raw_uri_preferred(self, app: SignedRequestsWSGI, clock: FrozenClock) -> None:
        """With RAW_URI (gunicorn) the exact target as sent is verified."""
        headers = signed(clock, path="/hooks/caf%C3%A9")
        status, _ = wsgi_call(app, "POST", "/hooks/café".encode().decode("latin-1"), BODY,
                              headers, RAW_URI="/hooks/caf%C3%A9")
        assert status == "200 OK"
        headers = signed(clock, path="/hooks/caf%C3%A9")
        status, _ = wsgi_call(app, "POST", "/hooks/café".encode().decode("latin-1"), BODY,
                              headers)
        assert status == "200 OK"  # fallback: PATH_INFO re-quoted from its raw bytes

    @pytest.mark.parametrize("headers", [{}, {"X-Nonce": "n" * 16}])
    def test_unsigned_request_gets_401_json(self, app: SignedRequestsWSGI,
                                            headers: dict[str, str]) -> None:
        """Unsigned requests to a guarded route are refused with a JSON error."""
        status, out = wsgi_call(app, "POST", "/hooks/pay", BODY, headers)
        assert status == "401 Unauthorized"
        assert json.loads(out)["error"] == "missing_signature"

    def test_replay_gets_401(self, app: SignedRequestsWSGI, clock: FrozenClock) -> None:
        """The second delivery of a captured request is refused."""
        headers = signed(clock, path="/hooks/pay")
        assert wsgi_call(app, "POST", "/hooks/pay", BODY, headers)[0] == "200 OK"
        status, out = wsgi_call(app, "POST", "/hooks/pay", BODY, headers)
        assert status == "401 Unauthorized" and json.loads(out)["error"] == "replayed_nonce"

    @pytest.mark.parametrize("path", ["/", "/hooksx", "/other/hooks/"])
    def test_other_routes_pass_through(self, app: SignedRequestsWSGI, path: str) -> None:
        """Only the chosen prefixes (segment-wise) require a signature."""
        assert wsgi_call(app, "POST", path, BODY, {}) == ("200 OK", b"echo:" + BODY)

    def test_body_limit(self, clock: FrozenClock) -> None:
        """Bodies over max_body are refused with 413 before verification."""
        verifier = RequestVerifier(MemoryStore(clock=clock), SECRET, clock=clock)
        app = SignedRequestsWSGI(echo_wsgi, verifier, routes=["/hooks"], max_body=8)
        status, _ = wsgi_call(app, "POST", "/hooks", BODY, signed(clock, path="/hooks"))
        assert status == "413 Content Too Large"


# --------------------------------------------------------------------- ASGI


async def echo_asgi(scope: Any, receive: Any, send: Any) -> None:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"echo:" + b"".join(chunks)})


def asgi_post(app: Any, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(run())


class TestASGI:
    @pytest.fixture(name="app")
    def app_fixture(self, clock: FrozenClock) -> SignedRequestsASGI:
        verifier = RequestVerifier(MemoryStore(clock=clock), SECRET, clock=clock)
        return SignedRequestsASGI(echo_asgi, verifier, routes=["/hooks"])

    def test_signed_request_reaches_app_with_body(self, app: SignedRequestsASGI,
                                                  clock: FrozenClock) -> None:
        """The verified body is replayed to the app."""
        response = asgi_post(app, "/hooks/pay?x=1", BODY, signed(clock, path="/hooks/pay?x=1"))
        assert response.status_code == 200 and response.content == b"echo:" + BODY

    def test_unsigned_and_tampered_refused(self, app: SignedRequestsASGI,
                                           clock: FrozenClock) -> None:
        """401 with a JSON error for missing or wrong signatures."""
        response = asgi_post(app, "/hooks/pay", BODY, {})
        assert response.status_code == 401
        assert response.json()["error"] == "missing_signature"
        response = asgi_post(app, "/hooks/pay", BODY + b"!", signed(clock, path="/hooks/pay"))
        assert response.status_code == 401 and response.json()["error"] == "bad_signature"

    def test_replay_refused(self, app: SignedRequestsASGI, clock: FrozenClock) -> None:
        """A captured request replayed inside the window is refused."""
        headers = signed(clock, path="/hooks/pay")
        assert asgi_post(app, "/hooks/pay", BODY, headers).status_code == 200
        response = asgi_post(app, "/hooks/pay", BODY, headers)
        assert response.status_code == 401 and response.json()["error"] == "replayed_nonce"

    def test_other_routes_and_limit(self, clock: FrozenClock) -> None:
        """Unguarded routes pass untouched; oversize bodies get 413."""
        verifier = RequestVerifier(MemoryStore(clock=clock), SECRET, clock=clock)
        app = SignedRequestsASGI(echo_asgi, verifier, routes=["/hooks"], max_body=4)
        assert asgi_post(app, "/public", BODY, {}).content == b"echo:" + BODY
        assert asgi_post(app, "/hooks", BODY, signed(clock, path="/hooks")).status_code == 413
