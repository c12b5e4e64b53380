"""Sealed records: the versioned AES-256-GCM envelope and session metadata.

Envelope layout (all integers big-endian)::

    magic "SW" | version 0x01 | key id (4 bytes) | expires_at_ms (8 bytes)
    | nonce (12 random bytes) | AES-256-GCM ciphertext + 16-byte tag

The associated data is ``header | storage key | namespace``, so a record
that is moved to another key, re-dated (expiry edited), truncated,
bit-flipped, sealed under another namespace or under an unknown key fails
to open.  There is no plaintext fallback: :func:`open_envelope` either
returns the authenticated payload or raises :class:`CodecError`.

The expiry in the header is the session's *absolute* expiry, in plaintext
so that a store can expire records without keys, and authenticated so that
nobody can extend it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag

from . import codec
from .errors import CodecError
from .keys import Key, KeyRing

MAGIC = b"SW"
VERSION = 1
_HEADER = struct.Struct(">2sB4sQ")
HEADER_LEN = _HEADER.size
NONCE_LEN = 12
TAG_LEN = 16
MIN_LEN = HEADER_LEN + NONCE_LEN + TAG_LEN


def _aad(header: bytes, storage_key: str, namespace: str) -> bytes:
    return b"%s|%s|%s" % (header, storage_key.encode(), namespace.encode())


def seal(payload: bytes, *, key: Key, storage_key: str, expires_at: float) -> bytes:
    """Encrypt and authenticate ``payload`` bound to ``storage_key``.

    A fresh random 96-bit nonce is drawn for every seal.
    """
    header = _HEADER.pack(MAGIC, VERSION, bytes.fromhex(key.kid), max(0, int(expires_at * 1000)))
    nonce = os.urandom(NONCE_LEN)
    sealed = key.aead.encrypt(nonce, payload, _aad(header, storage_key, key.namespace))
    return header + nonce + sealed


def envelope_key_id(blob: bytes) -> str | None:
    """The key id in an envelope header (no crypto), or ``None`` if malformed."""
    if len(blob) < MIN_LEN or blob[:2] != MAGIC:
        return None
    return blob[3:7].hex()


def envelope_expiry(blob: bytes) -> float | None:
    """The (unauthenticated until opened) absolute expiry of an envelope."""
    if len(blob) < MIN_LEN or blob[:2] != MAGIC:
        return None
    return int.from_bytes(blob[7:15], "big") / 1000.0


def open_envelope(blob: bytes, *, ring: KeyRing, storage_key: str) -> tuple[bytes, float]:
    """Authenticate and decrypt an envelope.

    Returns:
        ``(payload, expires_at)``.

    Raises:
        CodecError: wrong magic/version, unknown key id, or any tampering
            (the AEAD tag check covers header, storage key and namespace).
    """
    if len(blob) < MIN_LEN:
        raise CodecError("sealed record is truncated", reason="truncated")
    magic, version, kid, expires_ms = _HEADER.unpack_from(blob)
    if magic != MAGIC or version != VERSION:
        raise CodecError("sealed record has an unknown format or version", reason="format")
    key = ring.by_id.get(kid.hex())
    if key is None:
        raise CodecError("sealed record was sealed under an unknown key", reason="unknown_key")
    header = blob[:HEADER_LEN]
    nonce = blob[HEADER_LEN : HEADER_LEN + NONCE_LEN]
    try:
        payload = key.aead.decrypt(
            nonce, blob[HEADER_LEN + NONCE_LEN :], _aad(header, storage_key, ring.namespace)
        )
    except InvalidTag:
        raise CodecError("sealed record failed authentication", reason="tampered") from None
    return payload, expires_ms / 1000.0


# ------------------------------------------------------------------ metadata

LIVE = "s"
TOMBSTONE = "t"


@dataclass(slots=True)
class Forward:
    """Where a periodically rotated-away record forwards to (inside the seal).

    Attributes:
        nonce: 32 random bytes; the successor ID is derived from the old ID
            and this nonce (see :func:`sessionward.core.ids.successor_id`).
        key: the successor's storage key.
        kid: the key id that issued the successor ID.
        grace_until: forwarding stops at this time.
        closed: forwarding stopped early (the successor was used).
    """

    nonce: bytes
    key: str
    kid: str
    grace_until: float
    closed: bool = False


@dataclass(slots=True)
class SessionMeta:
    """Metadata sealed with every record (never visible to the store).

    Attributes:
        created: creation time.
        last_seen: the last save (authenticated activity time).
        idle: idle timeout in seconds for this session.
        absolute: absolute expiry time (POSIX seconds).
        kind: ``"s"`` live session or ``"t"`` rotated-away tombstone.
        user: user id when logged in.
        auth_time: time of the last (re-)authentication.
        auth_level: application-defined strength of that authentication.
        pending: authenticated only partially (e.g. MFA pending).
        elevated_until: step-up ("sudo mode") expiry.
        profiles: recorded client profiles (``{"ip": prefix, "ua": agent}``).
        rotated_at: the last rotation (schedules periodic rotation).
        issuer: key id that issued this session's ID (lookups use it).
        predecessor: storage key of a tombstone still forwarding here.
        forward: for a tombstone, where it forwards.
        revalidated_at: last successful revalidation callback.
        extra: forward-compatible slot for integrations (JSON-ready).
    """

    created: float
    last_seen: float
    idle: float
    absolute: float
    kind: str = LIVE
    user: str | None = None
    auth_time: float | None = None
    auth_level: int = 0
    pending: bool = False
    elevated_until: float | None = None
    profiles: list[dict[str, str]] = field(default_factory=list)
    rotated_at: float = 0.0
    issuer: str = ""
    predecessor: str | None = None
    forward: Forward | None = None
    revalidated_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_tree(self) -> dict[str, Any]:
        """Compact JSON form (short names keep records small)."""
        tree: dict[str, Any] = {
            "c": self.created, "ls": self.last_seen, "i": self.idle, "a": self.absolute,
            "k": self.kind, "r": self.rotated_at, "is": self.issuer,
        }
        optional = {
            "u": self.user, "at": self.auth_time, "al": self.auth_level or None,
            "p": self.pending or None, "e": self.elevated_until, "pf": self.profiles or None,
            "pr": self.predecessor, "rv": self.revalidated_at, "x": self.extra or None,
        }
        tree.update({k: v for k, v in optional.items() if v is not None})
        if self.forward is not None:
            f = self.forward
            tree["f"] = {"n": f.nonce.hex(), "k": f.key, "kid": f.kid, "g": f.grace_until,
                         "cl": f.closed}
        return tree

    @classmethod
    def from_tree(cls, tree: Any) -> SessionMeta:
        """Rebuild metadata from :meth:`to_tree` output.

        Raises:
            CodecError: a missing or mistyped field.
        """
        try:
            forward = None
            if "f" in tree:
                f = tree["f"]
                forward = Forward(bytes.fromhex(f["n"]), str(f["k"]), str(f["kid"]),
                                  float(f["g"]), bool(f["cl"]))
            return cls(
                created=float(tree["c"]), last_seen=float(tree["ls"]), idle=float(tree["i"]),
                absolute=float(tree["a"]), kind=str(tree["k"]), user=_opt_str(tree.get("u")),
                auth_time=_opt_float(tree.get("at")), auth_level=int(tree.get("al") or 0),
                pending=bool(tree.get("p")), elevated_until=_opt_float(tree.get("e")),
                profiles=list(tree.get("pf") or []), rotated_at=float(tree["r"]),
                issuer=str(tree["is"]), predecessor=_opt_str(tree.get("pr")), forward=forward,
                revalidated_at=_opt_float(tree.get("rv")), extra=dict(tree.get("x") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CodecError("session metadata is malformed") from exc


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


_META_LEN = struct.Struct(">I")


def pack_payload(meta: SessionMeta, data_json: bytes) -> bytes:
    """The plaintext of a record: ``len(meta) | meta JSON | data JSON``.

    Binary framing (authenticated by the AEAD like everything else) lets the
    data JSON be spliced in and sliced out as bytes: the data is serialized
    once per save and its bytes double as the change-detection baseline.
    """
    meta_json = codec.dumps(meta.to_tree())
    return _META_LEN.pack(len(meta_json)) + meta_json + data_json


def unpack_payload(payload: bytes) -> tuple[SessionMeta, bytes]:
    """Split a record plaintext into metadata and the data JSON bytes.

    Raises:
        CodecError: malformed framing or metadata.
    """
    if len(payload) < _META_LEN.size:
        raise CodecError("session payload is truncated")
    (meta_len,) = _META_LEN.unpack_from(payload)
    end = _META_LEN.size + meta_len
    if end > len(payload):
        raise CodecError("session payload framing is inconsistent")
    meta = SessionMeta.from_tree(codec.loads(payload[_META_LEN.size : end]))
    return meta, payload[end:]
