"""FileStore: the hardened filesystem store (``file:///abs/dir``).

One private directory (mode 0700, owned by us, never a symlink) holds every
record, kv entry and lease as one small file named by its storage key,
sharded 256 ways.  Invariants this module keeps, and which change together:

* a data file is only ever *published* whole: written to a unique temp file,
  then ``os.replace``-d (or ``os.link``-ed, for no-overwrite creates) into
  place, so readers and ``kill -9`` never see a torn record;
* every read-compare-write on one key runs under that key's ``flock`` mutex
  (a separate file, never renamed over), held for microseconds;
* an index marker (expiry bucket, user) is added *before* the data file that
  needs it and removed *after*, so a crash leaves at most a stale marker
  (pruned lazily, under the mutex) and never an unindexed file;
* only ``O_NOFOLLOW`` opens; a symlink where a data file belongs is refused
  and logged on ``sessionward.security``.

The layout and the cost of each operation are in ``docs/stores-filesystem.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import hashlib
import hmac
import logging
import math
import os
import secrets
import stat
import struct
import time
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import ParamSpec, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from .._clock import system_clock
from ..errors import (
    ConfigurationError,
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    StoreError,
    StoreUnavailableError,
)
from .base import Capability, StoredRecord, StoreStats, check_key

__all__ = ["FileStore"]

_security_log = logging.getLogger("sessionward.security")

_KIND = "filesystem"
_MAGIC = b"SWFS"
_FORMAT = 1
# magic, format, entry kind, user-key length, version, expires_at, touched_at, blob length
_HEAD = struct.Struct(">4sBBHQddI")
_CRC = struct.Struct(">I")
_MAX_FILE = 16 * 1024 * 1024
_MAX_TOKEN = 512
BUCKET_SECONDS = 600
"""Width of one expiry bucket; ``purge_expired`` rescans at most one bucket of
not-yet-expired entries per call."""

_RECORDS, _KV, _LOCKS = "records", "kv", "locks"
_ENTRY_KIND = {_RECORDS: 1, _KV: 2, _LOCKS: 3}
_R_TAG, _K_TAG = "r", "k"  # mutex families: records+leases share one, kv has its own
_NS_TAG = {_RECORDS: _R_TAG, _LOCKS: _R_TAG, _KV: _K_TAG}
_SUBDIRS = (_RECORDS, _KV, _LOCKS, "mutex", "expiry", "users", "tmp")
_SHARDS = tuple(f"{i:02x}" for i in range(256))
_RETRIES = 64

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MARKER = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_MUTEX = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _CorruptFileError(StoreError):
    """A data file does not parse (torn by a crash without ``durable``, or garbage)."""


class _SymlinkRefusedError(StoreError):
    """A symlink sits where a data file belongs; it was not followed."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    """One decoded data file: a record, a kv value, or a lease (``blob`` = token)."""

    version: int
    expires_at: float
    touched_at: float
    user_key: str | None
    blob: bytes


# ------------------------------------------------------------------ helpers


def _wrap_os_errors(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Turn a stray ``OSError`` into ``StoreError`` (no path in the message)."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            reason = exc.strerror or "I/O error"
            raise StoreError(f"file store I/O failed: {reason}", store=_KIND) from exc

    return wrapper


def _shard(key: str) -> str:
    """First byte of BLAKE2b(key): spreads hex and ``prefix:`` keys evenly."""
    return hashlib.blake2b(key.encode("ascii"), digest_size=1).hexdigest()


def _bucket(expires_at: float) -> int:
    return math.floor(expires_at / BUCKET_SECONDS)


def _data_path(ns: str, key: str) -> str:
    return f"{ns}/{_shard(key)}/{key}"


def _expiry_path(ns: str, bucket: int, key: str) -> str:
    return f"expiry/{ns}/{bucket}/{key}"


def _user_dir(user_key: str) -> str:
    return f"users/{_shard(user_key)}/{user_key}"


def _is_key(name: str) -> bool:
    try:
        check_key(name)
    except ValueError:
        return False
    return True


def _check_time(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expiry times must be finite POSIX seconds")
    return value


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
    blob = data[_HEAD.size + ulen : len(data) - _CRC.size]
    return _Entry(version, expires, touched, user or None, blob)


def _as_record(entry: _Entry) -> StoredRecord:
    return StoredRecord(
        entry.blob, entry.version, entry.expires_at, entry.touched_at, entry.user_key
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, 65536):
        size += len(chunk)
        if size > _MAX_FILE:
            raise _CorruptFileError("a file store entry is oversized", store=_KIND)
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------- start-up checks


def _check_dir_stat(st: os.stat_result, path: str) -> None:
    """Refuse a store directory others could read, plant files in, or swap.

    Raises:
        ConfigurationError: naming ``path`` and the fix.
    """
    uid = os.geteuid()
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigurationError(f"file store path {path} is not a directory; point it at one")
    if st.st_uid != uid:
        raise ConfigurationError(
            f"file store directory {path} is owned by uid {st.st_uid}, not by this process "
            f"(uid {uid}); fix with: chown {uid} {path} (or run as its owner)"
        )
    if st.st_mode & 0o077:
        raise ConfigurationError(
            f"file store directory {path} has mode {stat.S_IMODE(st.st_mode):04o}, "
            f"accessible to group/other; fix with: chmod 700 {path}"
        )
    if st.st_mode & 0o700 != 0o700:
        raise ConfigurationError(
            f"file store directory {path} is not readable, writable and searchable "
            f"by its owner; fix with: chmod 700 {path}"
        )


def _open_root(path: str) -> int:
    """Create ``path`` (0700) if missing, then open and vet it without following links.

    Raises:
        ConfigurationError: symlink, insecure, foreign, unwritable or missing parent.
    """
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ConfigurationError(
            f"parent directory of the file store {path} does not exist; create {parent} first"
        )
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # mkdir's mode is cut by the umask; set it exactly
    if stat.S_ISLNK(os.lstat(path).st_mode):
        raise ConfigurationError(
            f"file store directory {path} is a symlink; configure the real directory "
            "(symlinks are never followed)"
        )
    try:
        fd = os.open(path, _DIR)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot open file store directory {path} ({exc.strerror}); fix with: chmod 700 {path}"
        ) from exc
    try:
        _check_dir_stat(os.fstat(fd), path)  # checks the opened inode: no TOCTOU window
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"file store directory {path} is not writable (read-only mount?); "
                "mount it read-write or choose another directory"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


# ---------------------------------------------------------------- the store


class FileStore:
    """Hardened file store; ``file:///abs/dir[?durable=true]``.  Thread- and
    process-safe on one host's local filesystem (needs ``flock`` and atomic
    ``rename``; not NFS).

    Security: file names are storage keys validated by ``check_key`` (never
    IDs, never user input); files are 0600 and directories 0700 whatever the
    umask; symlinks are refused, never followed.

    Attributes:
        durable: fsync every published file and its directory (survives power
            loss; costs two fsyncs per write).
        temp_grace_seconds: temp files older than this (real mtime) are
            crash leftovers; ``purge_expired`` removes them.
    """

    kind = _KIND
    capabilities = frozenset({Capability.CROSS_PROCESS, Capability.PERSISTENT, Capability.SCAN})
    temp_grace_seconds: float = 300.0

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = system_clock,
        durable: bool = False,
    ) -> None:
        """Open (creating if needed) the store directory.

        Raises:
            ConfigurationError: the directory or one of its subdirectories is a
                symlink, group/world-accessible, owned by another user, not
                writable, or its parent is missing.
        """
        self.clock = clock
        self.durable = durable
        self._path = os.path.abspath(os.fspath(directory))
        self._root = _open_root(self._path)
        try:
            self._init_subdirs()
        except BaseException:
            os.close(self._root)
            raise

    @classmethod
    def from_url(cls, url: str, *, clock: Callable[[], float] = system_clock) -> FileStore:
        """``file:///absolute/dir`` with the optional query ``durable=true|false``.

        Raises:
            ConfigurationError: not a ``file:`` URL, relative path, host part,
                unknown option, or an insecure directory.
        """
        parts = urlsplit(url)
        usage = "file store URLs look like file:///absolute/dir[?durable=true]"
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.fragment:
            raise ConfigurationError(usage)
        path = unquote(parts.path)
        if not path.startswith("/") or "\x00" in path:
            raise ConfigurationError(usage)
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"durable"}:
            raise ConfigurationError(f"unknown file store URL option; {usage}")
        values = [v.lower() for v in query.get("durable", ["false"])]
        if len(values) != 1 or values[0] not in ("true", "false", "1", "0"):
            raise ConfigurationError(f"durable must be true or false; {usage}")
        return cls(path, clock=clock, durable=values[0] in ("true", "1"))

    def _init_subdirs(self) -> None:
        for name in _SUBDIRS:
            self._mkdirs(name)
            _check_dir_stat(
                os.stat(name, dir_fd=self._root, follow_symlinks=False),
                os.path.join(self._path, name),
            )

    # ------------------------------------------------------- low-level I/O

    def _mkdirs(self, rel: str) -> None:
        """Create each missing component of ``rel`` with mode 0700 exactly."""
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            try:
                os.mkdir(sub, 0o700, dir_fd=self._root)
            except FileExistsError:
                continue
            os.chmod(sub, 0o700, dir_fd=self._root)

    def _exists(self, rel: str) -> bool:
        try:
            os.stat(rel, dir_fd=self._root, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def _unlink(self, rel: str) -> bool:
        try:
            os.unlink(rel, dir_fd=self._root)
        except FileNotFoundError:
            return False
        return True

    def _rmdir_if_empty(self, rel: str) -> None:
        try:
            os.rmdir(rel, dir_fd=self._root)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise

    def _fsync_dir(self, rel: str) -> None:
        fd = os.open(rel, _DIR, dir_fd=self._root)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _iter_dir(self, rel: str) -> Generator[str, None, None]:
        """Names in ``rel`` (none if it is missing), streamed so callers can stop early."""
        try:
            fd = os.open(rel, _DIR, dir_fd=self._root)
        except FileNotFoundError:
            return
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    yield entry.name
        finally:
            os.close(fd)

    def _refuse_symlink(self, ns: str, exc: OSError) -> _SymlinkRefusedError:
        _security_log.warning(
            "file store refused a symlink in place of a %s file (not followed; "
            "possible tampering with the store directory)",
            ns,
            extra={"event": "store_symlink_refused", "store": _KIND},
        )
        error = _SymlinkRefusedError("a symlink was found in the file store", store=_KIND)
        error.__cause__ = exc
        return error

    def _read(self, ns: str, key: str) -> _Entry | None:
        """Decode ``ns``/``key``; ``None`` if absent.  Lock-free: files are
        only ever replaced whole.

        Raises:
            _SymlinkRefusedError: a symlink (or other non-file) is in the way.
            _CorruptFileError: the file does not parse.
        """
        try:
            fd = os.open(_data_path(ns, key), _READ, dir_fd=self._root)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._refuse_symlink(ns, exc) from exc
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device planted here
                raise self._refuse_symlink(ns, OSError(errno.EINVAL, "not a regular file"))
            data = _read_all(fd)
        finally:
            os.close(fd)
        return _decode(ns, data)

    def _read_tolerant(self, ns: str, key: str) -> _Entry | None:
        """:meth:`_read`, but a corrupt file counts as absent (for delete/purge)."""
        try:
            return self._read(ns, key)
        except _CorruptFileError:
            _security_log.warning(
                "file store found a corrupt %s file; it is treated as absent", ns,
                extra={"event": "store_corrupt_file", "store": _KIND},
            )  # fmt: skip
            return None

    def _write_temp(self, data: bytes) -> str:
        """Write ``data`` to a fresh ``tmp/<random>.tmp`` (O_EXCL, 0600); return its name."""
        for _ in range(_RETRIES):
            name = f"tmp/{secrets.token_hex(12)}.tmp"
            try:
                fd = os.open(name, _CREATE, 0o600, dir_fd=self._root)
            except FileExistsError:
                continue
            try:
                os.fchmod(fd, 0o600)  # exact mode whatever the umask
                _write_all(fd, data)
                if self.durable:
                    os.fsync(fd)
            except BaseException:
                os.close(fd)
                self._unlink(name)
                raise
            os.close(fd)
            return name
        raise StoreError("could not create a unique temp file", store=_KIND)

    @contextlib.contextmanager
    def _staged(self, ns: str, entry: _Entry) -> Iterator[str]:
        """Write ``entry`` to a temp file *before* the caller takes the mutex.

        Why: file creation is the slowest step (hundreds of microseconds on a
        busy disk, milliseconds with ``durable``).  Done under the mutex it
        makes a writer in a tight loop hold the key most of the time, so a
        competing writer's lock-free ``load`` nearly always sees a version that
        is about to move and its CAS starves.  Staged first, the mutex covers
        only read-compare-rename.  The temp file is removed on every exit path
        (after a successful rename it is already gone).
        """
        tmp = self._write_temp(_encode(ns, entry))
        try:
            yield tmp
        finally:
            self._unlink(tmp)

    def _publish(self, rel: str, tmp: str, *, exclusive: bool) -> None:
        """Atomically put ``data`` at ``rel``: readers see the old or the new
        file, never a mix, even if this process is killed at any instruction.

        ``exclusive`` uses ``link`` (fails with EEXIST, never overwrites);
        otherwise ``rename`` (replaces).  The temp file lives in ``tmp/`` on the
        same filesystem, so both are atomic and crash leftovers are swept from
        one small directory.

        Raises:
            SessionExistsError: ``exclusive`` and ``rel`` exists.
        """
        try:
            self._install(tmp, rel, exclusive=exclusive)
        finally:
            self._unlink(tmp)  # after rename it is already gone; after link, drop the alias
        if self.durable:
            self._fsync_dir(os.path.dirname(rel))

    def _install(self, tmp: str, rel: str, *, exclusive: bool) -> None:
        root = self._root
        for attempt in (1, 2):
            try:
                if exclusive:
                    os.link(tmp, rel, src_dir_fd=root, dst_dir_fd=root, follow_symlinks=False)
                else:
                    os.replace(tmp, rel, src_dir_fd=root, dst_dir_fd=root)
                return
            except FileExistsError as exc:
                raise SessionExistsError("a record already exists under this key") from exc
            except FileNotFoundError:
                if attempt == 2:
                    raise
                self._mkdirs(os.path.dirname(rel))  # first write into this shard

    def _add_marker(self, rel: str) -> None:
        """Create the empty index file ``rel``.

        Bucket and user directories are removed when they empty, so a
        concurrent ``rmdir`` may win between our ``mkdir`` and ``open``: retry.
        """
        for _ in range(_RETRIES):
            try:
                fd = os.open(rel, _MARKER, 0o600, dir_fd=self._root)
            except FileNotFoundError:
                self._mkdirs(os.path.dirname(rel))
                continue
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
            if self.durable:  # the marker must be on disk before the file it indexes
                self._fsync_dir(os.path.dirname(rel))
            return
        raise StoreError("could not create a file store index entry", store=_KIND)

    # ---------------------------------------------------------------- mutex

    @contextlib.contextmanager
    def _mutex(self, key: str, tag: str) -> Iterator[None]:
        """Hold the per-key ``flock`` mutex (``tag``: records+leases or kv).

        Only ever one mutex per thread at a time, so no lock-order deadlock.
        ``flock`` belongs to the open file description, so it also excludes
        threads of this process that opened the file separately.  A holder
        killed with ``kill -9`` releases it (the kernel closes its fds).

        When nothing guarded by the mutex exists any more, its file is
        unlinked as the very last step, still under the lock (see
        :meth:`_lock` for why that is safe), so mutex files do not pile up.
        """
        rel = f"mutex/{_shard(key)}/{key}.{tag}"
        fd = self._lock(rel)
        try:
            yield
        finally:
            try:
                if self._idle(key, tag):
                    self._unlink(rel)
            finally:
                os.close(fd)  # releases the flock

    def _lock(self, rel: str) -> int:
        """Open ``rel`` and ``flock`` it, making sure the lock is on the *current* file.

        Race this prevents (mutex files are unlinked when their key goes idle)::

            A: open(mutex) -> inode 1
            B: flock(inode 1) ... deletes the key, unlink(mutex), close
            A: flock(inode 1) succeeds -- but the path no longer names inode 1
            C: open(mutex) -> creates inode 2, flock(inode 2) succeeds

        Without a check A and C would both "hold" the mutex.  So after
        ``flock`` we compare the fd's inode with the path's; on a mismatch
        (or a vanished path) we drop it and start over.  Unlinking only
        happens while holding the lock, so a match means we hold the mutex.

        Raises:
            StoreError: the file kept being replaced (bounded retries).
        """
        for _ in range(_RETRIES):
            fd = self._open_mutex(rel)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if self._is_current(fd, rel):
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise StoreError("the per-key mutex file kept being replaced", store=_KIND)

    def _open_mutex(self, rel: str) -> int:
        for _ in range(2):
            try:
                fd = os.open(rel, _MUTEX, 0o600, dir_fd=self._root)
            except FileNotFoundError:
                self._mkdirs(os.path.dirname(rel))
                continue
            os.fchmod(fd, 0o600)
            return fd
        return os.open(rel, _MUTEX, 0o600, dir_fd=self._root)

    def _is_current(self, fd: int, rel: str) -> bool:
        try:
            on_disk = os.stat(rel, dir_fd=self._root, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)

    def _idle(self, key: str, tag: str) -> bool:
        """True when nothing guarded by this mutex exists any more."""
        spaces = (_KV,) if tag == _K_TAG else (_RECORDS, _LOCKS)
        return not any(self._exists(_data_path(ns, key)) for ns in spaces)

    # -------------------------------------------------------- commit/retire

    def _commit(
        self,
        ns: str,
        key: str,
        new: _Entry,
        old: _Entry | None,
        *,
        exclusive: bool = False,
        staged: str | None = None,
    ) -> None:
        """Publish ``new`` and move its index markers; caller holds the mutex.

        Order (each step may be the last before a ``kill -9``): 1. add markers
        for the new state; 2. publish the file atomically; 3. remove markers of
        the old state.  Any crash leaves extra markers, which are pruned
        lazily; never a file missing from its expiry bucket or user index.
        ``staged`` is a temp file already holding ``new`` (see :meth:`_staged`).
        """
        new_bucket = _bucket(_check_time(new.expires_at))
        old_bucket = None if old is None else _bucket(old.expires_at)
        old_user = None if old is None else old.user_key
        if new_bucket != old_bucket:
            self._add_marker(_expiry_path(ns, new_bucket, key))
        if new.user_key is not None and new.user_key != old_user:
            self._add_marker(f"{_user_dir(new.user_key)}/{key}")
        tmp = self._write_temp(_encode(ns, new)) if staged is None else staged
        self._publish(_data_path(ns, key), tmp, exclusive=exclusive)
        if old_bucket is not None and old_bucket != new_bucket:
            self._unlink(_expiry_path(ns, old_bucket, key))
        if old_user is not None and old_user != new.user_key:
            self._unlink(f"{_user_dir(old_user)}/{key}")

    def _retire(self, ns: str, key: str, old: _Entry | None) -> bool:
        """Delete the data file, then its markers; caller holds the mutex."""
        existed = self._unlink(_data_path(ns, key))
        if existed and self.durable:  # a revoked session must not come back after power loss
            self._fsync_dir(os.path.dirname(_data_path(ns, key)))
        if old is not None:
            self._unlink(_expiry_path(ns, _bucket(old.expires_at), key))
            if old.user_key is not None:
                self._unlink(f"{_user_dir(old.user_key)}/{key}")
        return existed

    # -------------------------------------------------------------- records

    @_wrap_os_errors
    def create(
        self, key: str, blob: bytes, *, expires_at: float, user_key: str | None
    ) -> StoredRecord:
        """Insert a new record with version 1 (published with ``link``: never overwrites).

        Raises:
            ValueError: malformed key or user key.
            SessionExistsError: a record (expired or not) exists under ``key``.
            StoreError: I/O failure, a refused symlink or a corrupt file in the way.
        """
        check_key(key)
        if user_key is not None:
            check_key(user_key)
        entry = _Entry(1, expires_at, self.clock(), user_key, bytes(blob))
        with self._staged(_RECORDS, entry) as tmp, self._mutex(key, _R_TAG):
            if self._read(_RECORDS, key) is not None:
                raise SessionExistsError("a record already exists under this key")
            self._commit(_RECORDS, key, entry, None, exclusive=True, staged=tmp)
        return _as_record(entry)

    @_wrap_os_errors
    def load(self, key: str) -> StoredRecord | None:
        """Return the record or ``None``; one lock-free ``open``+``read``, creates nothing.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        entry = self._read(_RECORDS, key)
        return None if entry is None else _as_record(entry)

    @_wrap_os_errors
    def replace(
        self,
        key: str,
        blob: bytes,
        *,
        expected_version: int,
        expires_at: float,
        user_key: str | None,
        fence: str | None = None,
    ) -> StoredRecord:
        """Compare-and-set under the key's mutex (read, compare, rename).

        Raises:
            ValueError: malformed key or user key.
            SessionGoneError: no record under ``key`` (never resurrects).
            LockLostError: ``fence`` given and the lease is not ours any more.
            SessionConflictError: the version moved.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        if user_key is not None:
            check_key(user_key)
        entry = _Entry(expected_version + 1, expires_at, self.clock(), user_key, bytes(blob))
        with self._staged(_RECORDS, entry) as tmp, self._mutex(key, _R_TAG):
            current = self._read(_RECORDS, key)
            if current is None:
                raise SessionGoneError("the session was deleted by a concurrent request")
            if fence is not None and not self._holds(key, fence):
                raise LockLostError("the session lock is no longer held by this request")
            if current.version != expected_version:
                raise SessionConflictError("the session was changed by a concurrent request")
            self._commit(_RECORDS, key, entry, current, staged=tmp)
        return _as_record(entry)

    @_wrap_os_errors
    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        """Update ``expires_at``/``touched_at`` only (same version and blob).

        The file is small, so it is republished whole (temp + rename): an
        in-place write could be seen half-done by a lock-free reader.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            current = self._read(_RECORDS, key)
            if current is None:
                return False
            entry = dataclasses.replace(current, expires_at=expires_at, touched_at=touched_at)
            self._commit(_RECORDS, key, entry, current)
            return True

    @_wrap_os_errors
    def delete(self, key: str) -> bool:
        """Delete the record and its index entries; True if it existed.

        A corrupt record is deleted too (its stale markers are pruned lazily).

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure or a refused symlink.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            current = self._read_tolerant(_RECORDS, key)
            existed = self._retire(_RECORDS, key, current)
            return existed

    @_wrap_os_errors
    def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        """Records indexed under ``user_key``: lists ``users/<shard>/<user_key>/``
        and reads those files only; stale markers are pruned here.

        Raises:
            ValueError: malformed user key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(user_key)
        directory = _user_dir(user_key)
        found: list[tuple[str, StoredRecord]] = []
        for key in sorted(filter(_is_key, self._iter_dir(directory))):
            entry = self._read(_RECORDS, key)
            if entry is not None and entry.user_key == user_key:
                found.append((key, _as_record(entry)))
            else:
                self._prune_user_marker(user_key, key)
        if not found:
            self._rmdir_if_empty(directory)
        return found

    def _prune_user_marker(self, user_key: str, key: str) -> None:
        # Re-check under the mutex: a create() may have added the marker and
        # not yet published the record; it holds the mutex until it has.
        with self._mutex(key, _R_TAG):
            entry = self._read_tolerant(_RECORDS, key)
            if entry is None or entry.user_key != user_key:
                self._unlink(f"{_user_dir(user_key)}/{key}")

    @_wrap_os_errors
    def scan(
        self, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        """One page in ``(shard, key)`` order; the cursor is the last key returned.

        Raises:
            ValueError: malformed cursor.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        if cursor is not None:
            check_key(cursor)
        if limit <= 0:
            return [], None
        start = _shard(cursor) if cursor is not None else _SHARDS[0]
        page: list[tuple[str, StoredRecord]] = []
        for shard in _SHARDS[_SHARDS.index(start) :]:
            names = sorted(filter(_is_key, self._iter_dir(f"{_RECORDS}/{shard}")))
            for key in names:
                if shard == start and cursor is not None and key <= cursor:
                    continue
                entry = self._read(_RECORDS, key)
                if entry is None:
                    continue
                page.append((key, _as_record(entry)))
                if len(page) == limit:
                    return page, key
        return page, None

    # ---------------------------------------------------------------- purge

    @_wrap_os_errors
    def purge_expired(self, now: float, limit: int) -> int:
        """Delete up to ``limit`` expired records, and as many kv entries and
        leases; sweep crash-leftover temp files.  Returns the records deleted.

        Only expiry buckets ``<= bucket(now)`` are listed; each candidate is
        re-checked under its own mutex (held for one entry, never the batch).

        Raises:
            StoreError: I/O failure.
        """
        purged = self._purge_space(_RECORDS, now, limit)
        self._purge_space(_KV, now, limit)
        self._purge_space(_LOCKS, now, limit)
        self._sweep_temp()
        return purged

    def _purge_space(self, ns: str, now: float, limit: int) -> int:
        last = _bucket(now)
        buckets = sorted(
            int(name)
            for name in self._iter_dir(f"expiry/{ns}")
            if name.lstrip("-").isdigit() and int(name) <= last
        )
        count = 0
        for bucket in buckets:
            directory = f"expiry/{ns}/{bucket}"
            with contextlib.closing(self._iter_dir(directory)) as names:  # closes the dir fd early
                for key in names:
                    if count >= limit:
                        return count
                    if _is_key(key):
                        count += self._purge_one(ns, key, bucket, now)
            self._rmdir_if_empty(directory)
        return count

    def _purge_one(self, ns: str, key: str, bucket: int, now: float) -> int:
        """Delete ``key`` if expired, or drop its marker if stale; returns 0 or 1."""
        tag = _NS_TAG[ns]
        with self._mutex(key, tag):
            try:
                entry = self._read(ns, key)
            except _SymlinkRefusedError:
                return 0  # logged; left for an operator to inspect
            except _CorruptFileError:
                self._retire(ns, key, None)  # unusable anyway: fail closed
                self._unlink(_expiry_path(ns, bucket, key))
                return 1
            if entry is None or _bucket(entry.expires_at) != bucket:
                # Stale: the entry is gone, or it moved to another bucket
                # (whose marker was added before it moved).
                self._unlink(_expiry_path(ns, bucket, key))
                return 0
            if entry.expires_at > now:
                return 0
            self._retire(ns, key, entry)
            return 1

    def _sweep_temp(self) -> None:
        # Temp-file age uses the real wall clock: mtimes are real, not self.clock.
        cutoff = time.time() - self.temp_grace_seconds
        for name in self._iter_dir("tmp"):
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(f"tmp/{name}", dir_fd=self._root, follow_symlinks=False)
                if st.st_mtime <= cutoff:
                    self._unlink(f"tmp/{name}")

    def _entries(self, ns: str) -> Iterator[_Entry]:
        for shard in _SHARDS:
            for key in filter(_is_key, self._iter_dir(f"{ns}/{shard}")):
                entry = self._read_tolerant(ns, key)
                if entry is not None:
                    yield entry

    @_wrap_os_errors
    def stats(self, now: float) -> StoreStats:
        """Exact counts; reads every file (O(total): an admin command, not a hot path).

        Raises:
            StoreError: I/O failure or a refused symlink.
        """
        records = expired = size = 0
        for entry in self._entries(_RECORDS):
            records += 1
            expired += entry.expires_at <= now
            size += len(entry.blob)
        return StoreStats(
            records=records,
            expired=expired,
            kv_entries=sum(1 for e in self._entries(_KV) if e.expires_at > now),
            locks=sum(1 for e in self._entries(_LOCKS) if e.expires_at > now),
            bytes=size,
        )

    # ------------------------------------------------------------------- kv

    def _live(self, entry: _Entry | None) -> _Entry | None:
        return entry if entry is not None and entry.expires_at > self.clock() else None

    @_wrap_os_errors
    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        """``(value, version)`` or ``None`` when absent or expired; lock-free read.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        entry = self._live(self._read(_KV, key))
        return None if entry is None else (entry.blob, entry.version)

    @_wrap_os_errors
    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        """Insert with version 1 if absent or expired; False if present.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _K_TAG):
            current = self._read(_KV, key)
            if self._live(current) is not None:
                return False
            entry = _Entry(1, expires_at, self.clock(), None, bytes(value))
            self._commit(_KV, key, entry, current)
            return True

    @_wrap_os_errors
    def kv_cas(self, key: str, value: bytes, *, expected_version: int, expires_at: float) -> bool:
        """Write version ``expected_version + 1`` if the live version matches.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        entry = _Entry(expected_version + 1, expires_at, self.clock(), None, bytes(value))
        with self._staged(_KV, entry) as tmp, self._mutex(key, _K_TAG):
            current = self._live(self._read(_KV, key))
            if current is None or current.version != expected_version:
                return False
            self._commit(_KV, key, entry, current, staged=tmp)
            return True

    @_wrap_os_errors
    def kv_take(self, key: str) -> bytes | None:
        """Read and delete under the kv mutex: of N processes, exactly one wins.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _K_TAG):
            current = self._read(_KV, key)
            if current is None:
                return None
            self._retire(_KV, key, current)  # an expired entry goes too
            live = self._live(current)
            return None if live is None else live.blob

    @_wrap_os_errors
    def kv_delete(self, key: str) -> bool:
        """Delete; True if a live entry existed (an expired one is removed too).

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure or a refused symlink.
        """
        check_key(key)
        with self._mutex(key, _K_TAG):
            current = self._read_tolerant(_KV, key)
            self._retire(_KV, key, current)
            return self._live(current) is not None

    # ---------------------------------------------------------------- locks

    def _holds(self, key: str, token: str) -> bool:
        """Caller holds the key's mutex; constant-time token comparison."""
        lease = self._live(self._read(_LOCKS, key))
        return lease is not None and hmac.compare_digest(lease.blob, token.encode("utf-8"))

    def _set_lease(self, key: str, token: str, ttl: float, old: _Entry | None) -> None:
        encoded = token.encode("utf-8")
        if not 0 < len(encoded) <= _MAX_TOKEN:
            raise ValueError("lock token has an invalid length")
        now = self.clock()
        self._commit(_LOCKS, key, _Entry(0, now + ttl, now, None, encoded), old)

    @_wrap_os_errors
    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        """Take the lease if free, expired or already ours; False if another holds it.

        Raises:
            ValueError: malformed key or token.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            current = self._read(_LOCKS, key)
            live = self._live(current)
            if live is not None and not hmac.compare_digest(live.blob, token.encode("utf-8")):
                return False
            self._set_lease(key, token, ttl, current)
            return True

    @_wrap_os_errors
    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend our lease by ``ttl`` from now; False if it is no longer ours.

        Raises:
            ValueError: malformed key or token.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            if not self._holds(key, token):
                return False
            self._set_lease(key, token, ttl, self._read(_LOCKS, key))
            return True

    @_wrap_os_errors
    def lock_release(self, key: str, token: str) -> bool:
        """Release if ours; never releases another holder's lease.

        Raises:
            ValueError: malformed key.
            StoreError: I/O failure, a refused symlink, or a corrupt file.
        """
        check_key(key)
        with self._mutex(key, _R_TAG):
            if not self._holds(key, token):
                return False
            self._retire(_LOCKS, key, self._read(_LOCKS, key))
            return True

    # ------------------------------------------------------------ lifecycle

    def ping(self) -> None:
        """Check the directory is still open and not deleted.

        Raises:
            StoreUnavailableError: closed, or the directory was removed.
        """
        try:
            alive = self._root >= 0 and os.fstat(self._root).st_nlink > 0
        except OSError as exc:
            raise StoreUnavailableError("file store directory is unusable", store=_KIND) from exc
        if not alive:
            raise StoreUnavailableError(
                "file store is closed or its directory is gone", store=_KIND
            )

    def close(self) -> None:
        """Close the directory handle; later calls raise ``StoreError``."""
        if self._root >= 0:
            os.close(self._root)
            self._root = -1

    def __enter__(self) -> FileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
