"""The sealed envelope: every tampering is rejected, never a plaintext fallback."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionward.core import record
from sessionward.core.errors import CodecError
from sessionward.core.keys import KeyRing

RING = KeyRing.generate("t")
KEY_A = "a" * 64
KEY_B = "b" * 64


def sealed(payload: bytes = b"secret payload", expires_at: float = 2e9) -> bytes:
    return record.seal(payload, key=RING.active, storage_key=KEY_A, expires_at=expires_at)


def test_round_trip() -> None:
    payload, expires = record.open_envelope(sealed(), ring=RING, storage_key=KEY_A)
    assert payload == b"secret payload" and expires == 2e9


def test_ciphertext_hides_payload_and_nonces_differ() -> None:
    a, b = sealed(b"canary-canary"), sealed(b"canary-canary")
    assert b"canary" not in a and a != b


def test_moved_to_other_key_rejected() -> None:
    with pytest.raises(CodecError):
        record.open_envelope(sealed(), ring=RING, storage_key=KEY_B)


def test_other_namespace_rejected() -> None:
    other = KeyRing.from_bytes([RING.active.raw], "other")
    with pytest.raises(CodecError):
        record.open_envelope(sealed(), ring=other, storage_key=KEY_A)


def test_redated_rejected() -> None:
    """Extending the plaintext expiry breaks authentication."""
    blob = bytearray(sealed(expires_at=1e9))
    blob[7:15] = int(3e12).to_bytes(8, "big")
    with pytest.raises(CodecError):
        record.open_envelope(bytes(blob), ring=RING, storage_key=KEY_A)


def test_unknown_key_rejected() -> None:
    with pytest.raises(CodecError, match="unknown key"):
        record.open_envelope(sealed(), ring=KeyRing.generate("t"), storage_key=KEY_A)


@pytest.mark.parametrize("cut", [0, 1, 10, 26, 40, 50])
def test_truncated_rejected(cut: int) -> None:
    with pytest.raises(CodecError):
        record.open_envelope(sealed()[:cut], ring=RING, storage_key=KEY_A)


@given(st.integers(0, 200), st.integers(1, 255))
def test_any_bit_flip_rejected(pos: int, mask: int) -> None:
    blob = bytearray(sealed())
    pos %= len(blob)
    blob[pos] ^= mask
    with pytest.raises(CodecError):
        record.open_envelope(bytes(blob), ring=RING, storage_key=KEY_A)


def test_plaintext_json_never_accepted() -> None:
    with pytest.raises(CodecError):
        record.open_envelope(b'{"m": {}, "d": {"user": "admin"}}' + b" " * 40, ring=RING,
                             storage_key=KEY_A)


def test_rotated_keyring_still_opens_old_records() -> None:
    rotated = KeyRing([KeyRing.generate("t").active, RING.active])
    payload, _ = record.open_envelope(sealed(), ring=rotated, storage_key=KEY_A)
    assert payload == b"secret payload"


def test_meta_round_trip() -> None:
    meta = record.SessionMeta(created=1.0, last_seen=2.0, idle=3.0, absolute=4.0, user="u",
                              profiles=[{"ip": "1.2.3.0/24"}], issuer="abcd1234",
                              forward=record.Forward(b"n" * 32, "c" * 64, "abcd1234", 9.0))
    again, data = record.unpack_payload(record.pack_payload(meta, b'{"a":1}'))
    assert again == meta and data == b'{"a":1}'


@pytest.mark.parametrize("payload", [b"", b"\x00\x00\x00\x09{}", b"\x00\x00\x00\x02[]{}"])
def test_malformed_payload(payload: bytes) -> None:
    with pytest.raises(CodecError):
        record.unpack_payload(payload)
