"""Webhook signatures: the sender's :func:`sign_webhook` and the receiver's
:func:`verify_webhook` (the wire format is in :mod:`.webhook`).

``X-Signature-256: sha256=<hex HMAC-SHA-256(secret, ts + "." + event_id + "." + body)>``,
checked in constant time; a receiver also refuses stale timestamps and
de-duplicates on ``X-Event-Id``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from typing import Any, Protocol

from ...core.errors import ConfigurationError

MIN_SECRET_BYTES = 32
"""Shortest accepted signing secret (256 bits); ``secrets.token_urlsafe(32)`` gives 43 chars."""

_EVENT_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


class _Headers(Protocol):
    """Anything with ``items()``: a dict, ``http.client.HTTPMessage``, a framework's headers."""

    def items(self) -> Iterable[tuple[str, Any]]: ...


def secret_bytes(secret: str | bytes | None) -> bytes:
    return secret.encode() if isinstance(secret, str) else (secret or b"")


def sign_webhook(secret: str | bytes, timestamp: str, event_id: str, body: bytes) -> str:
    """The ``X-Signature-256`` value for one delivery.

    Args:
        secret: the shared secret.
        timestamp: the ``X-Timestamp`` value (decimal unix seconds).
        event_id: the ``X-Event-Id`` value.
        body: the exact request body.

    Returns:
        ``"sha256=<hex HMAC-SHA-256(secret, timestamp.event_id.body)>"``.
    """
    message = f"{timestamp}.{event_id}.".encode() + body
    return "sha256=" + hmac.new(secret_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_webhook(
    headers: _Headers,
    body: bytes,
    secret: str | bytes,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """Check a received webhook (for receivers).

    Header names are matched case-insensitively.  The event id must be a
    UUID-like token (letters, digits, ``-``) so no byte can be shifted between
    it and the body.  The signature is compared in constant time.

    Args:
        headers: the request headers (dict, ``HTTPMessage``...).
        body: the raw request body, exactly as received.
        secret: the shared secret.
        tolerance: maximum age (and clock skew into the future), in seconds.
        now: the current unix time (default: ``time.time()``).

    Returns:
        ``True`` only for a fresh, correctly signed request.

    Raises:
        ConfigurationError: ``secret`` is empty.
    """
    if not secret_bytes(secret):
        raise ConfigurationError("verify_webhook needs the shared secret; it is empty")
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    timestamp = lowered.get("x-timestamp", "")
    event_id = lowered.get("x-event-id", "")
    signature = lowered.get("x-signature-256", "")
    if not (_TIMESTAMP_RE.fullmatch(timestamp) and _EVENT_ID_RE.fullmatch(event_id)):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = sign_webhook(secret, timestamp, event_id, body)
    return hmac.compare_digest(expected.encode(), signature.encode())
