"""Disk failures of the local stores (SQLite, filesystem) as clean, actionable errors.

A write that finds the disk full (``ENOSPC``, ``SQLITE_FULL``), over a quota
(``EDQUOT``), over the process's file-size limit (``EFBIG``, ``ulimit -f``),
read-only (``EROFS``, ``SQLITE_READONLY``) or failing (``EIO``,
``SQLITE_IOERR_*``) becomes a :class:`~sessionward.core.errors.StoreUnavailableError`
whose message says which and what to do: the web layer answers 503 (never a
logout, never a traceback to the client), the daemon passes it on as
``store_unavailable``, and operators read the fix in the log.

Guarantee (what the stores keep, and ``tests/faults/test_disk_full.py``
checks): such a write changed nothing.  SQLite rolls the statement (or its
transaction) back and ignores a WAL frame without its commit; the filesystem
store only ever writes a temp file before publishing with ``rename``/``link``,
so a failed write leaves the previous record in place.  Nothing is cached as
broken: the next write after space came back succeeds.

No path is named (messages pass the operator redaction, and the store URL is
in the configuration): the message names the store kind.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3

from ..core.errors import StoreError, StoreTimeoutError, StoreUnavailableError

_AFTER = ("; what was stored before stays readable, and writes work again "
          "once this is fixed (nothing was half-written)")

_OS_ERRORS: dict[int, str] = {
    errno.ENOSPC: "the disk holding the {store} is full (ENOSPC): free space on that "
                  "filesystem (or give it more)",
    errno.EDQUOT: "the disk quota on the filesystem holding the {store} is exhausted "
                  "(EDQUOT): raise the quota of the user running sessionward or free space",
    errno.EFBIG: "a file of the {store} reached the file-size limit (EFBIG): raise the "
                 "process's limit (`ulimit -f`, RLIMIT_FSIZE, LimitFSIZE= in systemd)",
    errno.EROFS: "the filesystem holding the {store} is read-only (EROFS): remount it "
                 "read-write (a disk error may have made the kernel remount it read-only: "
                 "check dmesg)",
    errno.EIO: "the disk holding the {store} reported an I/O error (EIO): check the disk "
               "and the kernel log (dmesg)",
}
DISK_ERRNOS = frozenset(_OS_ERRORS)
"""The ``errno`` values treated as a disk failure (the rest stay ``StoreError``)."""

_LABEL = {"sqlite": "SQLite store", "filesystem": "file store"}

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL = 8, 10, 13


def os_disk_error(exc: OSError, store: str) -> StoreUnavailableError | None:
    """The clean error for an ``OSError`` from a disk failure, else ``None``.

    ``store`` is the store kind (``"filesystem"``, ``"sqlite"``).
    """
    template = _OS_ERRORS.get(exc.errno or 0)
    if template is None:
        return None
    label = _LABEL.get(store, f"{store} store")
    return StoreUnavailableError(template.format(store=label) + _AFTER, store=store)


def sqlite_disk_error(exc: sqlite3.Error) -> StoreUnavailableError | None:
    """The clean error for a SQLite disk failure (full, I/O error, read-only), else ``None``.

    SQLite reports ``ENOSPC`` and a short write as ``SQLITE_FULL``, and
    ``EFBIG``/``EIO`` as ``SQLITE_IOERR_WRITE`` (or another ``SQLITE_IOERR_*``):
    it does not pass the ``errno`` on, so the I/O-error message lists the causes.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", None) or "SQLITE_ERROR"
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL or "database or disk is full" in str(exc):
        text = ("the disk holding the SQLite store is full (SQLITE_FULL): free space on that "
                "filesystem (or give it more)")
    elif primary == _SQLITE_IOERR or "disk I/O error" in str(exc):
        text = (f"a disk I/O error in the SQLite store ({name}): the disk holding it is "
                "full, over the process's file-size limit (`ulimit -f`), read-only or "
                "failing; check `df` and the kernel log (dmesg)")
    elif primary == _SQLITE_READONLY:
        text = (f"the SQLite store is read-only ({name}): make the database file, its "
                "directory and filesystem writable for the user running sessionward")
    else:
        return None
    return StoreUnavailableError(text + _AFTER, store="sqlite")


def sqlite_error(exc: sqlite3.Error) -> StoreError:
    """Map a sqlite3 error to the store error hierarchy (caller raises ``from exc``)."""
    disk = sqlite_disk_error(exc)
    if disk is not None:
        return disk
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreError("SQLite constraint violated", store="sqlite")
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in str(exc) or "busy" in str(exc):
            return StoreTimeoutError("SQLite store is busy", store="sqlite")
        return StoreUnavailableError(f"SQLite error: {exc}", store="sqlite")
    return StoreError(f"SQLite error: {exc}", store="sqlite")


def sqlite_read_error(exc: sqlite3.Error) -> StoreError:
    """A failed read: a disk failure's clean error, else ``StoreUnavailableError``."""
    return sqlite_disk_error(exc) or StoreUnavailableError(f"SQLite error: {exc}",
                                                           store="sqlite")


def end_open_transaction(db: sqlite3.Connection) -> None:
    """Roll back a transaction a failed statement left open.

    Why: after ``SQLITE_FULL`` or ``SQLITE_IOERR`` SQLite may roll back only
    the statement, or the whole transaction (then a plain ``ROLLBACK`` fails
    with "no transaction is active"), and a failed ``COMMIT`` leaves it open
    -- the connection's next ``BEGIN`` would then fail for good, so the
    store would not "work again once space is back".  A rollback that itself
    fails changed nothing worth reporting over the original error.
    """
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
