"""Decoding the Redis store's replies: hash fields of the right type and shape, or refused.

Redis hands back bytes for every field, and anybody who can write the
server can put anything there (``HSET P:{K}:rec v abc``, a field deleted,
a string where a hash belongs).  Field checks are those of
:mod:`sessionward.stores.values`; a ``WRONGTYPE`` reply is mapped to
:class:`~sessionward.core.errors.CorruptEntryError` in :mod:`.errors`.

``load`` is strict (a corrupt record raises, and the manager makes it "no
session"); the listing reads (``by_user``, ``scan``) leave a corrupt record
out and log it on ``sessionward.security`` (``store_corrupt_entry``), so one
bad record cannot make "sign out everywhere" fail for the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ...core.errors import CorruptEntryError
from ..base import StoredRecord
from ..values import corrupt, kv_of, record_of

_security_log = logging.getLogger("sessionward.security")


def _number(raw: bytes | None, kind: str, what: str, parse: type[int] | type[float]
            ) -> int | float:
    if raw is None:
        raise corrupt(kind, what)
    try:
        return parse(raw)
    except ValueError:
        raise corrupt(kind, what) from None


def _user(raw: bytes | None, kind: str) -> str | None:
    if not raw:
        return None
    try:
        return raw.decode("ascii")
    except (UnicodeDecodeError, AttributeError):
        raise corrupt(kind, "user key") from None


def parse_record(fields: Sequence[bytes | None], kind: str) -> StoredRecord | None:
    """A record from ``HMGET b v e t u``; None when the hash is gone (no ``b``).

    Raises:
        CorruptEntryError: a field missing or of the wrong shape.
    """
    if len(fields) != 5:
        raise corrupt(kind, "record")
    blob, version, expires, touched, user = fields
    if blob is None and version is None and expires is None and touched is None:
        return None  # gone (or never there): not corruption
    return record_of(blob, _number(version, kind, "version", int),
                     _number(expires, kind, "expiry", float),
                     _number(touched, kind, "touch time", float), _user(user, kind), kind)


def tolerant_record(fields: Sequence[bytes | None], kind: str) -> StoredRecord | None:
    """:func:`parse_record`, but a corrupt record counts as absent (and is logged)."""
    try:
        return parse_record(fields, kind)
    except CorruptEntryError:
        _security_log.warning(
            "%s store found a corrupt session record; it is left out", kind,
            extra={"event": "store_corrupt_entry", "store": kind})
        return None


def parse_kv(value: bytes | None, version: bytes | None, kind: str) -> tuple[bytes, int] | None:
    """A kv ``(value, version)`` from ``HMGET v n``; None when both are absent.

    Raises:
        CorruptEntryError: one of them missing or of the wrong shape.
    """
    if value is None and version is None:
        return None
    return kv_of(value, _number(version, kind, "kv version", int), kind)
