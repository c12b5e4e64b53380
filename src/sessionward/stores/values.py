"""Decoding what a store hands back: every field of the right type and shape, or refused.

A store's bytes, columns and hash fields can be written by anybody who can
write the store (another program, a backup restore, an attacker with store
access).  Every store decodes records and kv entries through these
functions, so a value of the wrong type never reaches the manager as a raw
``TypeError``/``ValueError``: it is a :class:`CorruptEntryError`.

Accepted shapes (anything else is corrupt):

* ``blob`` / kv value: ``bytes`` (``bytearray``/``memoryview`` are copied);
* ``version``: an ``int`` (not ``bool``) from 1 to 2**63-1;
* ``expires_at`` / ``touched_at``: an ``int`` or ``float`` (not ``bool``), finite;
* ``user_key``: ``None``, or a ``str`` of the storage-key shape (``check_key``).

Each check is a few type tests (well under a microsecond); the load path pays it once.
"""

from __future__ import annotations

import math

from ..core.errors import CorruptEntryError
from .base import StoredRecord, check_key

_MAX_VERSION = 2**63 - 1


def corrupt(store: str, what: str) -> CorruptEntryError:
    """The error for a corrupt ``what`` (a field name, never the value) in ``store``."""
    return CorruptEntryError(
        f"{store} store holds a corrupt {what} (wrong type or shape); the entry is refused",
        store=store)


def as_bytes(value: object, store: str, what: str) -> bytes:
    """``value`` if it is bytes-like (copied to ``bytes``).

    Raises:
        CorruptEntryError: anything else (a number, text, ``None``).
    """
    if type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise corrupt(store, what)


def as_version(value: object, store: str, what: str = "version") -> int:
    """A positive 64-bit ``int`` version.

    Raises:
        CorruptEntryError: not an ``int`` (``bool`` included) or out of range.
    """
    if type(value) is not int or not 1 <= value <= _MAX_VERSION:
        raise corrupt(store, what)
    return value


def as_time(value: object, store: str, what: str) -> float:
    """A finite POSIX time.

    Raises:
        CorruptEntryError: not an ``int``/``float`` (``bool`` included), NaN or infinite.
    """
    if type(value) is not float and type(value) is not int:
        raise corrupt(store, what)
    result = float(value)
    if not math.isfinite(result):
        raise corrupt(store, what)
    return result


def as_user_key(value: object, store: str) -> str | None:
    """``None`` (``""`` too: no user), or a user key of the storage-key shape.

    Raises:
        CorruptEntryError: any other type or shape.
    """
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise corrupt(store, "user key")
    try:
        return check_key(value)
    except ValueError:
        raise corrupt(store, "user key") from None


def record_of(blob: object, version: object, expires_at: object, touched_at: object,
              user_key: object, store: str) -> StoredRecord:
    """A :class:`StoredRecord` from raw fields, each checked.

    Raises:
        CorruptEntryError: any field of the wrong type or shape.
    """
    return StoredRecord(as_bytes(blob, store, "record blob"), as_version(version, store),
                        as_time(expires_at, store, "expiry"),
                        as_time(touched_at, store, "touch time"), as_user_key(user_key, store))


def kv_of(value: object, version: object, store: str) -> tuple[bytes, int]:
    """A kv ``(value, version)`` pair, each checked.

    Raises:
        CorruptEntryError: either of the wrong type or shape.
    """
    return as_bytes(value, store, "kv value"), as_version(version, store, "kv version")
