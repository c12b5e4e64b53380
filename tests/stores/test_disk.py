"""Disk failures as clean errors (sessionward.stores.disk; issue 18, part 4).

The full-disk and file-size-limit runs are in tests/faults/test_disk_full.py;
here: the errno and SQLite-code mapping, a SQLITE_FULL inside a transaction
(``max_page_count``: real, no mount needed) that must not leave the
connection stuck, and a read-only remount (EROFS / SQLITE_READONLY).
"""

from __future__ import annotations

import errno
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward.core.errors import StoreError, StoreUnavailableError
from sessionward.stores.disk import (
    DISK_ERRNOS,
    end_open_transaction,
    os_disk_error,
    sqlite_disk_error,
    sqlite_error,
)
from sessionward.stores.filesystem import FileStore
from sessionward.stores.sqlite import SQLiteStore
from svc_ci import unavailable

K1, K2 = "a" * 64, "b" * 64
FAR = 4e9


@pytest.mark.parametrize(("code", "words"), [
    (errno.ENOSPC, "is full (ENOSPC)"), (errno.EDQUOT, "quota"),
    (errno.EFBIG, "file-size limit (EFBIG)"), (errno.EROFS, "read-only (EROFS)"),
    (errno.EIO, "I/O error (EIO)"),
])
def test_os_errors_name_the_cause_and_the_fix(code: int, words: str) -> None:
    exc = os_disk_error(OSError(code, "x", "/secret/path"), "filesystem")
    assert isinstance(exc, StoreUnavailableError) and exc.store == "filesystem"
    assert words in str(exc) and "file store" in str(exc)
    assert "work again" in str(exc) and "/secret" not in str(exc)


def test_other_os_errors_are_not_disk_errors() -> None:
    assert os_disk_error(OSError(errno.EACCES, "denied"), "filesystem") is None
    assert errno.EACCES not in DISK_ERRNOS


def test_sqlite_codes() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    assert "is full (SQLITE_FULL)" in str(sqlite_disk_error(full))
    ioerr = sqlite3.OperationalError("disk I/O error")
    assert "ulimit -f" in str(sqlite_disk_error(ioerr))
    assert sqlite_disk_error(sqlite3.OperationalError("no such table: x")) is None
    assert type(sqlite_error(sqlite3.OperationalError("database is locked"))).__name__ == \
        "StoreTimeoutError"
    assert type(sqlite_error(sqlite3.IntegrityError("UNIQUE"))) is StoreError


def test_end_open_transaction() -> None:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("BEGIN")
    end_open_transaction(db)
    assert not db.in_transaction
    end_open_transaction(db)  # nothing open: no error


def test_sqlite_full_in_a_transaction_leaves_the_store_usable(tmp_path: Path) -> None:
    """SQLITE_FULL (max_page_count reached) in replace and in a purge transaction:
    a clean error, the old record intact, and the same connection writes again."""
    store = SQLiteStore(tmp_path / "s.db")
    store.create(K1, b"old", expires_at=FAR, user_key=None)
    store.kv_create(K2, b"v", expires_at=1.0)
    db = store._connect()  # this thread's connection: the one that must recover
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreUnavailableError, match="SQLITE_FULL"):
        store.replace(K1, b"x" * 100_000, expected_version=1, expires_at=FAR, user_key=None)
    with pytest.raises(StoreUnavailableError, match="SQLITE_FULL"):
        store.create(K2, b"y" * 100_000, expires_at=FAR, user_key=None)
    assert not db.in_transaction
    rec = store.load(K1)
    assert rec is not None and (rec.blob, rec.version) == (b"old", 1)
    db.execute("PRAGMA max_page_count = 1073741823")
    store.replace(K1, b"x" * 100_000, expected_version=1, expires_at=FAR, user_key=None)
    assert store.purge_expired(10.0, 10) == 0  # a BEGIN IMMEDIATE transaction: not stuck
    assert store.kv_get(K2) is None
    assert sqlite3.connect(tmp_path / "s.db").execute("PRAGMA integrity_check").fetchone() == \
        ("ok",)
    store.close()


@pytest.fixture(name="remountable")
def fixture_remountable(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs that the test can remount read-only."""
    where = tmp_path / "mnt"
    where.mkdir(mode=0o700)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs",
                       str(where)], capture_output=True).returncode != 0:
        unavailable("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=True)


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True,
                   capture_output=True)


def test_read_only_filesystem(remountable: Path) -> None:
    """EROFS: a clean error naming it; reads work; writes again after remount rw.

    (Only the file store: a tmpfs with SQLite's files open for writing refuses
    ``remount,ro`` -- SQLite's read-only case is mapped from SQLITE_READONLY.)
    """
    fs = FileStore(remountable / "fs")
    fs.create(K1, b"old", expires_at=FAR, user_key=None)
    remount(remountable, "ro")
    try:
        with pytest.raises(StoreUnavailableError, match=r"read-only \(EROFS\)"):
            fs.replace(K1, b"new", expected_version=1, expires_at=FAR, user_key=None)
        with pytest.raises(StoreUnavailableError, match=r"read-only \(EROFS\)"):
            fs.kv_create(K2, b"v", expires_at=FAR)
        rec = fs.load(K1)
        assert rec is not None and rec.blob == b"old"
    finally:
        remount(remountable, "rw")
    assert fs.replace(K1, b"new", expected_version=1, expires_at=FAR, user_key=None).version == 2
    fs.close()
