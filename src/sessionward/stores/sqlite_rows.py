"""Decoding the SQLite store's rows (:mod:`.values` does the field checks).

SQLite is dynamically typed: whatever a column's declared type, anybody
with write access to the file can put an INTEGER, REAL, TEXT, BLOB or NULL
in it (``UPDATE sw_sessions SET blob = 5``).  Every row the store reads
goes through here, so a wrong-typed value is a
:class:`~sessionward.core.errors.CorruptEntryError`, never a raw
``TypeError``.  Listing reads (``by_user``, ``scan``) leave a corrupt row out
and log it on ``sessionward.security`` (``store_corrupt_entry``): one bad row
must not make "sign out everywhere" or ``sessionward list`` fail for every
other row.  Such a row cannot be loaded either (``load`` refuses it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..core.errors import CorruptEntryError
from .base import StoredRecord, check_key
from .values import as_time, corrupt, kv_of, record_of

_KIND = "sqlite"
_security_log = logging.getLogger("sessionward.security")


def record_row(row: Sequence[Any]) -> StoredRecord:
    """``(blob, version, expires_at, touched_at, user_key)`` as a checked record.

    Raises:
        CorruptEntryError: a field of the wrong type or shape.
    """
    if len(row) != 5:
        raise corrupt(_KIND, "record row")
    return record_of(row[0], row[1], row[2], row[3], row[4], _KIND)


def keyed_records(rows: Sequence[Sequence[Any]]) -> list[tuple[str, StoredRecord]]:
    """``(key, blob, version, expires_at, touched_at, user_key)`` rows as
    ``(key, record)`` pairs; corrupt rows are left out (and logged)."""
    found: list[tuple[str, StoredRecord]] = []
    for row in rows:
        try:
            if type(row[0]) is not str:
                raise corrupt(_KIND, "record key")
            check_key(row[0])
            found.append((row[0], record_row(row[1:])))
        except (CorruptEntryError, ValueError):
            _security_log.warning(
                "SQLite store found a corrupt session row; it is left out",
                extra={"event": "store_corrupt_entry", "store": _KIND})
    return found


def kv_row(row: Sequence[Any]) -> tuple[bytes, int]:
    """``(value, version, expires_at)`` as a checked kv pair.

    Raises:
        CorruptEntryError: a field of the wrong type or shape (an expiry stored
            as TEXT compares greater than every number in SQLite, so such an
            entry would never expire: refused too).
    """
    if len(row) != 3:
        raise corrupt(_KIND, "kv row")
    as_time(row[2], _KIND, "kv expiry")
    return kv_of(row[0], row[1], _KIND)
