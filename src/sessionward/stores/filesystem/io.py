"""Safe I/O in the file store's directory: every path is relative to its fd.

Only ``O_NOFOLLOW`` opens (a symlink where a data file belongs is refused and
logged on ``sessionward.security``); files are 0600 and directories 0700
whatever the umask; a data file is only ever published whole (temp file, then
``rename``/``link``), with ``fsync`` when the store is ``durable``.  The
directory itself is vetted once, at start-up (``_open_root``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import secrets
import stat
from collections.abc import Callable, Generator, Iterator
from typing import ParamSpec, TypeVar

from ...core.errors import ConfigurationError, SessionExistsError, StoreError
from ..disk import os_disk_error
from .format import _KIND, _MAX_FILE, _CorruptFileError, _decode, _encode, _Entry

_security_log = logging.getLogger("sessionward.security")

_SHARDS = tuple(f"{i:02x}" for i in range(256))
_RETRIES = 64

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MARKER = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_MUTEX = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _SymlinkRefusedError(StoreError):
    """A symlink sits where a data file belongs; it was not followed."""


def _wrap_os_errors(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Turn a stray ``OSError`` into ``StoreError`` (no path in the message); a
    full, failing or read-only disk into the actionable ``StoreUnavailableError``
    of :func:`~sessionward.stores.disk.os_disk_error` (a 503, and nothing was
    published: only the temp file was being written)."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        except OSError as exc:
            disk = os_disk_error(exc, _KIND)
            if disk is not None:
                raise disk from exc
            reason = exc.strerror or "I/O error"
            raise StoreError(f"file store I/O failed: {reason}", store=_KIND) from exc

    return wrapper


def _shard(key: str) -> str:
    """First byte of BLAKE2b(key): spreads hex and ``prefix:`` keys evenly."""
    return hashlib.blake2b(key.encode("ascii"), digest_size=1).hexdigest()


def _data_path(ns: str, key: str) -> str:
    return f"{ns}/{_shard(key)}/{key}"


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


class _StoreDir:
    """The open store directory (``_root``, an fd): dirfd-relative, no-follow file I/O.

    A base of :class:`~sessionward.stores.filesystem.FileStore`, which sets
    ``_root``, ``durable`` and ``clock``.
    """

    _root: int
    durable: bool
    clock: Callable[[], float]

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
