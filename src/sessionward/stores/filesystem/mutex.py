"""The file store's per-key mutex: an ``flock`` on a file that is never renamed over.

Mutex files are unlinked when their key goes idle, so taking the lock checks
that the locked inode is still the one the path names (see ``_lock`` for the
race).  Records and leases share one mutex per key, kv entries have their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from ...core.errors import StoreError
from .format import _KIND, _KV, _LOCKS, _RECORDS
from .io import _MUTEX, _RETRIES, _data_path, _shard, _StoreDir

_R_TAG, _K_TAG = "r", "k"  # mutex families: records+leases share one, kv has its own
_NS_TAG = {_RECORDS: _R_TAG, _LOCKS: _R_TAG, _KV: _K_TAG}


class _Mutexes(_StoreDir):
    """Per-key ``flock`` mutexes in ``mutex/<shard>/<key>.<tag>``."""

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
