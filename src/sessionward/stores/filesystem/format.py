"""The file store's data-file format: one record, kv value or lease per file.

A file is a fixed big-endian header (``_HEAD``), the user key, the blob, and a
CRC-32 of all of that.  Anything that does not parse exactly is corruption
(``_CorruptFileError``), never a raw exception.  ``_HEAD``, ``_FORMAT`` and
``_ENTRY_KIND`` change together.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import zlib

from ...core.errors import CorruptEntryError
from ..base import StoredRecord, check_key

_KIND = "filesystem"
_MAGIC = b"SWFS"
_FORMAT = 1
# magic, format, entry kind, user-key length, version, expires_at, touched_at, blob length
_HEAD = struct.Struct(">4sBBHQddI")
_CRC = struct.Struct(">I")
_MAX_FILE = 16 * 1024 * 1024

_RECORDS, _KV, _LOCKS = "records", "kv", "locks"
_ENTRY_KIND = {_RECORDS: 1, _KV: 2, _LOCKS: 3}


class _CorruptFileError(CorruptEntryError):
    """A data file does not parse (torn by a crash without ``durable``, or garbage:
    the CRC is no authentication, so also a well-formed file with a NaN or
    infinite time, or a record/kv version of 0)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    """One decoded data file: a record, a kv value, or a lease (``blob`` = token)."""

    version: int
    expires_at: float
    touched_at: float
    user_key: str | None
    blob: bytes


def _is_key(name: str) -> bool:
    try:
        check_key(name)
    except ValueError:
        return False
    return True


def _encode(ns: str, entry: _Entry) -> bytes:
    user = (entry.user_key or "").encode("ascii")
    head = _HEAD.pack(
        _MAGIC, _FORMAT, _ENTRY_KIND[ns], len(user), entry.version,
        entry.expires_at, entry.touched_at, len(entry.blob),
    )  # fmt: skip
    body = head + user + entry.blob
    return body + _CRC.pack(zlib.crc32(body))


def _decode(ns: str, data: bytes) -> _Entry:
    """Parse a data file; anything unexpected is corruption, never a raw exception.

    Raises:
        _CorruptFileError: bad magic/kind/length/checksum or user key.
    """
    corrupt = _CorruptFileError("a file store entry is corrupt", store=_KIND)
    if len(data) < _HEAD.size + _CRC.size:
        raise corrupt
    magic, fmt, kind, ulen, version, expires, touched, blen = _HEAD.unpack_from(data)
    if (magic, fmt, kind) != (_MAGIC, _FORMAT, _ENTRY_KIND[ns]):
        raise corrupt
    if len(data) != _HEAD.size + ulen + blen + _CRC.size:
        raise corrupt
    if _CRC.unpack_from(data, len(data) - _CRC.size)[0] != zlib.crc32(data[: -_CRC.size]):
        raise corrupt
    user = data[_HEAD.size : _HEAD.size + ulen].decode("ascii", "replace")
    if ulen and not _is_key(user):
        raise corrupt
    if not (math.isfinite(expires) and math.isfinite(touched)):
        raise corrupt  # _bucket() of NaN/inf would raise ValueError/OverflowError
    if ns != _LOCKS and not 1 <= version < 2**63:
        raise corrupt
    blob = data[_HEAD.size + ulen : len(data) - _CRC.size]
    return _Entry(version, expires, touched, user or None, blob)


def _as_record(entry: _Entry) -> StoredRecord:
    return StoredRecord(
        entry.blob, entry.version, entry.expires_at, entry.touched_at, entry.user_key
    )
