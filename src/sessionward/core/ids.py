"""Session IDs, cookie values and storage keys (pure, no I/O).

- A session ID is 32 bytes from :func:`secrets.token_bytes` (256 bits),
  URL-safe base64 without padding: 43 characters.
- The cookie value is ``<id>.<mac>`` where ``mac`` is a 128-bit truncated
  HMAC of the ID under the cookie purpose key.  Forged or random values are
  rejected in constant time (``hmac.compare_digest``) before any store I/O;
  values of the wrong length or alphabet are rejected before the MAC.
- The storage key is ``hex(HMAC-SHA-256(lookup key, namespace, id))``: the
  only thing a store ever sees.  No store, file name, log line or list
  output holds a raw ID.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from .keys import Key, KeyRing

ID_BYTES = 32
ID_CHARS = 43
MAC_BYTES = 16
MAC_CHARS = 22
COOKIE_CHARS = ID_CHARS + 1 + MAC_CHARS

_COOKIE_RE = re.compile(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}")
_KEY_RE = re.compile(r"[0-9a-f]{64}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_session_id() -> str:
    """A fresh 256-bit session ID from the OS CSPRNG."""
    return _b64(secrets.token_bytes(ID_BYTES))


def successor_id(old_id: str, nonce: bytes, key: Key) -> str:
    """The ID a periodic rotation forwards ``old_id`` to.

    Derived as HMAC(successor key, old_id, nonce) where ``nonce`` is 32
    random bytes kept in the sealed tombstone.  Why derived rather than
    stored: then not even an encrypted copy of any session ID is ever at
    rest; only a request that presents the old ID (within grace) can
    compute its successor.
    """
    return _b64(key.mac(key.successor_key, old_id.encode(), nonce))


def cookie_mac(session_id: str, key: Key) -> str:
    """The 22-character MAC part of a cookie value."""
    return _b64(hmac.digest(key.cookie_key, session_id.encode(), "sha256")[:MAC_BYTES])


def cookie_value(session_id: str, key: Key) -> str:
    """``<id>.<mac>`` for ``Set-Cookie``."""
    return f"{session_id}.{cookie_mac(session_id, key)}"


def parse_cookie_value(value: object, ring: KeyRing) -> tuple[str, Key] | None:
    """Validate a client-supplied cookie value.

    Returns:
        ``(session_id, issuing_key)`` or ``None`` for anything malformed or
        carrying a wrong MAC.  Never raises, never does I/O.

    Security: the shape check (exact length, exact alphabet, canonical
    base64) runs first, so hostile values (traversal, SQL, glob, NUL, CR/LF,
    overlong) never reach anything else; the MAC comparison is constant time
    per key.
    """
    if not isinstance(value, str) or len(value) != COOKIE_CHARS:
        return None
    if not _COOKIE_RE.fullmatch(value):
        return None
    session_id, mac = value[:ID_CHARS], value[ID_CHARS + 1 :]
    if not _canonical(session_id, ID_BYTES) or not _canonical(mac, MAC_BYTES):
        return None
    found: Key | None = None
    for key in ring.keys:
        # Check every key (no early exit) so timing does not reveal which matched.
        if hmac.compare_digest(cookie_mac(session_id, key), mac):
            found = key
    return (session_id, found) if found is not None else None


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Unpadded base64 of 32 bytes leaves 2 unused low bits in the last character, of 16
# bytes 4: a value is canonical iff those bits are zero (else two strings would decode
# to the same bytes).
_CANONICAL_LAST = {
    ID_BYTES: frozenset(c for i, c in enumerate(_ALPHABET) if i % 4 == 0),
    MAC_BYTES: frozenset(c for i, c in enumerate(_ALPHABET) if i % 16 == 0),
}


def _canonical(text: str, size: int) -> bool:
    """``text`` (already of the right length and alphabet) is canonical base64."""
    return text[-1] in _CANONICAL_LAST[size]


def storage_key(session_id: str, key: Key) -> str:
    """The keyed hash under which a session is stored (64 hex chars)."""
    return hmac.digest(
        key.lookup_key, key.namespace.encode() + b"\x00" + session_id.encode(), "sha256"
    ).hex()


def user_key(user: str, key: Key) -> str:
    """The keyed hash of a user id for the per-user index (64 hex chars)."""
    return hmac.new(key.user_key, user.encode(), hashlib.sha256).hexdigest()


def is_storage_key(value: object) -> bool:
    """True when ``value`` has the exact shape of a storage key / handle."""
    return isinstance(value, str) and _KEY_RE.fullmatch(value) is not None
