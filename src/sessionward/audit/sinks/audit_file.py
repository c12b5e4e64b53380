"""The JSON Lines audit file, with an optional hash chain.

One :meth:`Event.to_dict() <sessionward.audit.events.Event.to_dict>` per line,
serialised with orjson and written with a single ``os.write`` on a descriptor
opened ``O_APPEND``: the kernel appends each write whole, so any number of
processes can share one audit file without torn or interleaved lines.

Hash chain (``hash_chain=True``): each line carries ``"prev"``, the hex
SHA-256 of the previous line's bytes (without its newline; 64 zeros for the
first line).  Editing, inserting or deleting a line breaks the link of the
line after it; :func:`verify_chain` names the first broken line.  Removing
lines at the *end* cannot be detected from the file alone: ship
:attr:`ChainResult.head` somewhere else (syslog, a webhook) to anchor it.

Security: the file is opened ``O_NOFOLLOW`` and checked with ``fstat`` on the
same descriptor (no check/use race).  A symlink, a non-regular file, a
group/world-writable file or a file owned by another user is refused at
construction with :class:`~sessionward.core.errors.ConfigurationError`, logged once
at CRITICAL on ``sessionward.security``.  New files are created 0o600 (less
if the umask says so), or 0o640 with ``group_read=True`` for a log shipper in
the file's group.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ...core.errors import ConfigurationError
from ..events import Event
from ..redact import sanitize, sanitize_exception
from . import ClosingSink, LevelName, level_threshold, security_log

GENESIS = "0" * 64
"""The ``prev`` of the first line of a chain."""

FILE_MODE = 0o600
"""Mode of a newly created audit file (before the umask)."""
GROUP_READ_MODE = 0o640
"""Mode of a new audit file with ``group_read=True``."""

_TAIL_CHUNK = 4096


def _refuse(path: str, problem: str) -> ConfigurationError:
    """Log ``problem`` once, loudly, and return the error to raise."""
    name = os.path.basename(path)
    message = sanitize(
        f"audit file {name!r} refused: {problem}; point the audit file at a regular file "
        f"owned by this user with mode 0640 or stricter"
    )
    security_log.critical("%s", message)
    return ConfigurationError(message)


def _check(path: str, st: os.stat_result) -> None:
    """Refuse a file the audit trail must not be written to."""
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, "it is not a regular file")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _refuse(path, f"it is group/world-writable (mode {stat.S_IMODE(st.st_mode):04o})")
    if st.st_uid != os.geteuid():
        raise _refuse(path, f"it is owned by uid {st.st_uid}, not by this user")


def _open_checked(path: str, *, readable: bool, mode: int = FILE_MODE) -> int:
    """Open ``path`` for appending and check it on the opened descriptor.

    ``O_NONBLOCK`` keeps a FIFO planted at ``path`` from blocking the open;
    it is cleared again once the file is known to be regular.
    """
    access = os.O_RDWR if readable else os.O_WRONLY
    flags = access | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(path, "it is a symlink") from None
        raise _refuse(path, f"cannot open it ({sanitize_exception(exc)})") from None
    try:
        _check(path, os.fstat(fd))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _encode(record: Mapping[str, Any]) -> bytes:
    """One audit line (without the newline); an odd field is written as sanitised text."""
    return orjson.dumps(record, default=sanitize)


def _digest(line: bytes) -> str:
    """The chain hash of one line (without its newline)."""
    return hashlib.sha256(line).hexdigest()


class AuditFileSink(ClosingSink):
    """Event subscriber that appends JSON Lines to an audit file.

    Attributes:
        failures: events that could not be written (each also logged).
        written: lines written by this sink.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        level: LevelName = "auth",
        hash_chain: bool = False,
        *,
        group_read: bool = False,
    ) -> None:
        """Open (or create) the audit file.

        Args:
            path: the audit file; created 0o600 if missing.
            level: ``"critical"``, ``"auth"`` (default) or ``"all"``.
            hash_chain: add a ``prev`` hash to every line (see the module doc).
                The file is then opened read-write, to read the last line.
            group_read: create a missing file 0o640 instead (an existing
                file keeps its mode).

        Raises:
            ConfigurationError: bad level, or the file is a symlink, not a
                regular file, group/world-writable, owned by another user or
                cannot be opened.
        """
        self.threshold = level_threshold(level)
        self.hash_chain = hash_chain
        self.failures = 0
        self.written = 0
        self._path = os.fspath(path)
        self._lock = threading.Lock()
        self._fd = _open_checked(self._path, readable=hash_chain,
                                 mode=GROUP_READ_MODE if group_read else FILE_MODE)
        self._tail: tuple[int, str] | None = None
        """(file size right after our last append, hash of that line)."""

    def __call__(self, event: Event) -> None:
        """Write ``event`` if its level reaches the threshold; never raises."""
        if event.level < self.threshold:
            return
        try:
            with self._lock:
                if self.hash_chain:
                    self._append_chained(event.to_dict())
                else:
                    self._write(_encode(event.to_dict()) + b"\n")
                self.written += 1
        except (OSError, ValueError, TypeError) as exc:
            self.failures += 1
            security_log.error(
                "audit file write failed for %s event (%d failures so far): %s",
                event.name,
                self.failures,
                sanitize_exception(exc),
            )

    def _write(self, data: bytes) -> None:
        """Append ``data`` with one ``os.write`` (whole line or an error)."""
        if self._fd < 0:
            raise ValueError("audit file sink is closed")
        count = os.write(self._fd, data)
        if count != len(data):
            raise OSError(errno.EIO, f"short write to audit file ({count} of {len(data)} bytes)")

    def _append_chained(self, record: dict[str, Any]) -> None:
        """Read the last line's hash and append, under a POSIX lock on the file.

        Race: without the lock, two processes could both read line N and both
        append a line with ``prev = hash(N)``: a fork in the chain.  ``lockf``
        serialises processes (the in-process ``_lock`` serialises threads,
        which a POSIX lock does not).
        """
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(self._fd).st_size
            prev, partial = self._last_line_hash(size)
            record["prev"] = prev
            body = _encode(record)
            data = (b"\n" if partial else b"") + body + b"\n"
            self._write(data)
            self._tail = (size + len(data), _digest(body))
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def _last_line_hash(self, size: int) -> tuple[str, bool]:
        """Hash of the file's last line, and whether it lacks its newline."""
        if size == 0:
            return GENESIS, False
        if self._tail is not None and self._tail[0] == size:
            return self._tail[1], False
        line, partial = _read_last_line(self._fd, size)
        return _digest(line), partial

    def close(self) -> None:
        """Close the file; later events are counted as failures."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _read_last_line(fd: int, size: int) -> tuple[bytes, bool]:
    """The last line of the file (without newline) and whether it was unterminated."""
    chunk = _TAIL_CHUNK
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        partial = not data.endswith(b"\n")
        body = data if partial else data[:-1]
        cut = body.rfind(b"\n")
        if cut >= 0 or start == 0:
            return body[cut + 1 :], partial
        chunk *= 2


@dataclass(frozen=True, slots=True)
class ChainResult:
    """The outcome of :func:`verify_chain`.

    Attributes:
        ok: every line is intact and linked.
        lines: lines read (up to and including the first broken one).
        first_broken: 1-based number of the first line whose link fails, or
            ``None``.  The tampering is in that line or the one before it.
        reason: why that line is broken (empty when ``ok``).
        head: hash of the last intact line (``GENESIS`` for an empty file);
            store it elsewhere to detect truncation later.
    """

    ok: bool
    lines: int
    first_broken: int | None = None
    reason: str = ""
    head: str = GENESIS


def _broken_reason(raw: bytes, expected: str) -> str:
    """Why line ``raw`` does not continue a chain whose last hash is ``expected``."""
    if not raw.endswith(b"\n"):
        return "unterminated line (truncated write?)"
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(record, dict) or not isinstance(record.get("prev"), str):
        return "no 'prev' hash (not a chained audit line)"
    if record["prev"] != expected:
        if expected == GENESIS:
            return "the first line does not start a chain"
        return "'prev' does not match the hash of the previous line"
    return ""


def verify_chain(path: str | os.PathLike[str]) -> ChainResult:
    """Check the hash chain of an audit file written with ``hash_chain=True``.

    Args:
        path: the audit file.

    Returns:
        A :class:`ChainResult`; ``ok`` is true for an empty file.

    Raises:
        OSError: the file cannot be read.
    """
    expected = GENESIS
    lineno = 0
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            reason = _broken_reason(raw, expected)
            if reason:
                return ChainResult(False, lineno, lineno, reason, expected)
            expected = _digest(raw[:-1])
    return ChainResult(True, lineno, None, "", expected)
