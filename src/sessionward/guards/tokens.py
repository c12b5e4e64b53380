"""One-time tokens: e-mail links, password resets, CSRF-style nonces.

Invariants:

* a token is 32 bytes from :mod:`secrets` (256 bits), URL-safe base64 (43
  characters); it is handed out once and never stored;
* the store holds only ``ott:<hex>`` where ``hex = Key.mac(K_token,
  "sessionward/ott", purpose, token)``: the purpose is *inside* the keyed
  hash, so a token presented for another purpose addresses a different key,
  finds nothing and is **not consumed** (the legitimate flow still works);
* the value (subject, purpose, data, times) is sealed with AES-256-GCM under
  the same ring key, bound to the store key as associated data;
* :meth:`OneTimeTokens.consume` uses the store's ``kv_take`` (atomic get and
  delete): of N concurrent consumers exactly one gets the grant;
* new tokens use ``keyring.active``; lookups try every key of the ring, so a
  key rotation does not break links already sent.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeGuard

from cryptography.exceptions import InvalidTag

from ..audit.events import Event, EventHub
from ..core.clock import Clock, system_clock
from ..core.errors import CodecError, CorruptEntryError
from ..core.keys import Key, KeyRing
from ..stores.base import SessionStore

TOKEN_BYTES = 32
TOKEN_CHARS = 43
MAX_TTL = 30 * 86400.0
MAX_DATA_BYTES = 16 * 1024
NONCE_LEN = 12
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


# ------------------------------------------------------- shared kv sealing


def kv_hash(key: Key, *parts: bytes) -> str:
    """Hex keyed hash (HMAC-SHA-256 under the ``token`` purpose key) of ``parts``."""
    return key.mac(key.derive("token"), *parts).hex()


def seal_value(key: Key, kv_key: str, doc: dict[str, Any]) -> bytes:
    """Encrypt a small JSON document for the kv entry ``kv_key`` (AES-256-GCM)."""
    nonce = os.urandom(NONCE_LEN)
    payload = json.dumps(doc, separators=(",", ":")).encode()
    return nonce + key.aead.encrypt(nonce, payload, kv_key.encode())


def open_value(key: Key, kv_key: str, blob: bytes) -> dict[str, Any]:
    """Decrypt and parse a value sealed by :func:`seal_value`.

    Raises:
        CodecError: tampered, moved to another key, or not a JSON object.
    """
    try:
        payload = key.aead.decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], kv_key.encode())
        doc = json.loads(payload)
    except (InvalidTag, ValueError) as exc:
        raise CodecError("a sealed kv value failed to open") from exc
    if not isinstance(doc, dict):
        raise CodecError("a sealed kv value is not an object")
    return doc


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def well_formed(token: object) -> TypeGuard[str]:
    """True when ``token`` has the exact shape of an issued token (no I/O)."""
    return isinstance(token, str) and _TOKEN_RE.fullmatch(token) is not None


# ------------------------------------------------------------------ tokens


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a consumed token carried.

    Attributes:
        purpose: the purpose it was issued for.
        subject: whom it was issued to (a user id, an address...).
        data: the JSON-like data given at issue time (``None`` if none).
        issued_at: POSIX seconds.
        expires_at: POSIX seconds.
    """

    purpose: str
    subject: str
    data: Any
    issued_at: float
    expires_at: float


class OneTimeTokens:
    """Issue and consume purpose-bound, single-use tokens.

    Args:
        store: any store (a ``CROSS_PROCESS`` one when several workers consume).
        keyring: keys for the keyed hashes and the sealing.
        clock: wall clock (a ``FrozenClock`` in tests).
        events: hub for ``token_issued`` / ``token_consumed``.
    """

    def __init__(self, store: SessionStore, keyring: KeyRing, *, clock: Clock | None = None,
                 events: EventHub | None = None) -> None:
        self.store = store
        self.keyring = keyring
        self.clock: Clock = clock or system_clock
        self.events = events

    @staticmethod
    def _kv_key(key: Key, purpose: str, token: str) -> str:
        return "ott:" + kv_hash(key, b"sessionward/ott", purpose.encode(), token.encode())

    def issue(self, purpose: str, subject: str, ttl: timedelta | float,
              data: Any = None) -> str:
        """A new token for ``purpose`` and ``subject``, valid for ``ttl``.

        Returns:
            the token (43 URL-safe characters): put it in the link, never log it.

        Raises:
            ValueError: empty or over-long purpose/subject, ``ttl`` outside
                1 s..30 days, or ``data`` larger than 16 KiB.
            TypeError: ``data`` is not JSON-serializable.
            StoreError: backend failure.
        """
        _check_text("purpose", purpose, 64)
        _check_text("subject", subject, 256)
        seconds = _seconds(ttl)
        if not 1 <= seconds <= MAX_TTL:
            raise ValueError("token ttl must be between 1 second and 30 days")
        now = self.clock()
        doc = {"p": purpose, "s": subject, "d": data, "i": now, "e": now + seconds}
        if len(json.dumps(doc)) > MAX_DATA_BYTES:
            raise ValueError("token data is larger than 16 KiB; store it elsewhere")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        key = self.keyring.active
        kv_key = self._kv_key(key, purpose, token)
        if not self.store.kv_create(kv_key, seal_value(key, kv_key, doc), expires_at=now + seconds):
            raise ValueError("token collision (2^-256 event); issue again")
        self._emit("token_issued", subject, purpose, expires=now + seconds)
        return token

    def consume(self, token: object, purpose: str) -> TokenGrant | None:
        """Consume ``token`` for ``purpose`` exactly once.

        Returns:
            the grant, or ``None`` when the token is malformed, unknown,
            expired, already consumed, or issued for another purpose (then
            it is *not* consumed).

        Raises:
            StoreError: backend failure (never ``None`` for an outage; a
                corrupt stored entry is ``None``).
        """
        if not well_formed(token) or not isinstance(purpose, str) or not purpose:
            return None
        for key in self.keyring.keys:
            kv_key = self._kv_key(key, purpose, token)
            # Race: of N callers presenting the token at once, kv_take hands the
            # value to exactly one; the others find nothing (consumed).
            try:
                blob = self.store.kv_take(kv_key)
            except CorruptEntryError:
                # A value of the wrong type or shape: the token is refused (fail
                # closed) and the entry cleared, so it cannot be fixed up later.
                self.store.kv_delete(kv_key)
                return None
            if blob is not None:
                return self._grant(key, kv_key, blob, purpose)
        return None

    def _grant(self, key: Key, kv_key: str, blob: bytes, purpose: str) -> TokenGrant | None:
        try:
            doc = open_value(key, kv_key, blob)
            grant = TokenGrant(str(doc["p"]), str(doc["s"]), doc.get("d"), float(doc["i"]),
                               float(doc["e"]))
        except (CodecError, KeyError, TypeError, ValueError):
            return None
        if grant.purpose != purpose or self.clock() >= grant.expires_at:
            return None
        self._emit("token_consumed", grant.subject, purpose)
        return grant

    def revoke(self, token: object, purpose: str) -> bool:
        """Invalidate an unused token (e.g. the user asked for a new link).

        Raises:
            StoreError: backend failure.
        """
        if not well_formed(token) or not isinstance(purpose, str) or not purpose:
            return False
        found = False
        for key in self.keyring.keys:
            found = self.store.kv_delete(self._kv_key(key, purpose, token)) or found
        return found

    def _emit(self, name: str, subject: str, purpose: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.emit(Event(name=name, ts=self.clock(), namespace=self.keyring.namespace,
                                   user=subject, fields={"purpose": purpose, **fields}))


def _check_text(name: str, value: object, limit: int) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ValueError(f"token {name} must be a non-empty string of at most {limit} chars")
