"""Sealing and opening whole session records (pure apart from the RNG)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core import record
from ..core.errors import SessionTooLargeError
from ..core.keys import KeyRing
from ..core.record import SessionMeta
from ..stores.base import StoredRecord

HINT_SKEW = 5.0
"""Seconds a store's touch hint may lie in the future (clock skew between
hosts that share a store) before it is ignored."""


@dataclass(slots=True)
class Opened:
    """A stored record after authentication and decryption."""

    key: str
    stored: StoredRecord
    meta: SessionMeta
    data_json: bytes

    @property
    def last_activity(self) -> float:
        """Sealed last-seen time combined with the store's touch hint (for listings;
        the load path uses :meth:`activity_at`)."""
        return max(self.meta.last_seen, self.stored.touched_at)

    def activity_at(self, now: float) -> float:
        """:attr:`last_activity` as the idle timeout may count it at ``now``.

        The touch hint is plaintext: anybody who can write the store can set
        it.  A hint dated more than :data:`HINT_SKEW` seconds after ``now`` is
        ignored (only the sealed last-seen time counts), so one forward-dated
        write cannot keep a session alive; the absolute expiry, sealed, caps
        everything anyway.  What a store writer can still do is what a real
        touch does: set the hint to about ``now``, again within every idle
        window, up to the absolute expiry (docs/security.md).
        """
        if self.stored.touched_at > now + HINT_SKEW:
            return self.meta.last_seen
        return self.last_activity

    def expires_at(self) -> float:
        """When the store may drop it: idle or absolute, whichever is first."""
        return store_expiry(self.meta, self.last_activity)


def store_expiry(meta: SessionMeta, last_activity: float) -> float:
    """``min(absolute, last activity + idle)``: the store-level expiry."""
    return min(meta.absolute, last_activity + meta.idle)


class RecordSealer:
    """Seals metadata + data for one storage key, and opens records.

    Raises (``seal``):
        SessionTooLargeError: the sealed record exceeds ``max_bytes``.
    Raises (``open``):
        CodecError: tampered, truncated, foreign or undecodable record.
    """

    def __init__(self, ring: KeyRing, max_bytes: int) -> None:
        self.ring = ring
        self.max_bytes = max_bytes

    def seal(self, key: str, meta: SessionMeta, data_json: bytes) -> bytes:
        payload = record.pack_payload(meta, data_json)
        blob = record.seal(payload, key=self.ring.active, storage_key=key,
                           expires_at=meta.absolute)
        if len(blob) > self.max_bytes:
            raise SessionTooLargeError(len(blob), self.max_bytes)
        return blob

    def open(self, key: str, stored: StoredRecord) -> Opened:
        payload, absolute = record.open_envelope(stored.blob, ring=self.ring, storage_key=key)
        meta, data_json = record.unpack_payload(payload)
        # The authenticated header expiry is the truth for the absolute timeout.
        meta.absolute = min(meta.absolute, absolute + 0.001)
        return Opened(key, stored, meta, data_json)
