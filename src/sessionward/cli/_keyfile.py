"""Key file changes for ``rotate-keys`` and ``retire-key``.

A change reads the current file with :func:`sessionward.core.keys.load_keyring`
(``O_NOFOLLOW``, owner and mode checked), builds the new keyring, and
replaces the file atomically: a new ``0o600`` file is written next to it
(``O_EXCL | O_NOFOLLOW``), flushed to disk and renamed over the old one, so a
reader sees either the old or the new keyring, never a partial one.  A
single-key file becomes the JSON keyring form on the first rotation.  An
exclusive ``flock`` on ``<key file>.lock`` serialises concurrent changes.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import ConfigurationError
from ..core.keys import KEY_BYTES, Key, KeyRing, keyring_document, load_keyring


@contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive lock for changing the key file ``path``.

    Raises:
        OSError: the lock file cannot be created.
    """
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_dir(directory: Path) -> None:
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o022:
        raise ConfigurationError(
            f"key directory {directory} is writable by group or others (mode {mode:04o}); "
            f"fix with: chmod 700 {directory}"
        )


def write_keyring(path: str, ring: KeyRing) -> None:
    """Replace the key file at ``path`` with ``ring`` (JSON form), atomically.

    Raises:
        ConfigurationError: the directory is writable by others.
        OSError: the file cannot be written.
    """
    target = Path(path)
    _check_dir(target.parent)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    published = False
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(keyring_document(ring))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        published = True
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if not published:
            tmp.unlink(missing_ok=True)


def add_active_key(path: str, namespace: str) -> tuple[str, KeyRing]:
    """Add a fresh active key to the key file; older keys keep decrypting.

    Returns:
        ``(new key id, new keyring)``.

    Raises:
        ConfigurationError: unusable key file or directory.
        OSError: the file cannot be written.
    """
    with locked(path):
        ring = load_keyring(path, namespace)
        key = Key(secrets.token_bytes(KEY_BYTES), namespace)
        new_ring = KeyRing([key, *ring.keys])
        write_keyring(path, new_ring)
    return key.kid, new_ring


def check_retirable(ring: KeyRing, kid: str) -> None:
    """Refuse to retire an unknown or the active key.

    Raises:
        ConfigurationError: ``kid`` is not in the keyring, or it is active.
    """
    if kid not in ring.by_id:
        known = ", ".join(k.kid for k in ring.keys)
        raise ConfigurationError(f"no key {kid!r} in the key file (keys: {known})")
    if kid == ring.active.kid:
        raise ConfigurationError(
            f"key {kid} is the active key; run `sessionward rotate-keys` first"
        )


def remove_key(path: str, namespace: str, kid: str) -> KeyRing:
    """Remove key ``kid`` from the key file.

    Raises:
        ConfigurationError: see :func:`check_retirable`; unusable key file.
        OSError: the file cannot be written.
    """
    with locked(path):
        ring = load_keyring(path, namespace)
        check_retirable(ring, kid)
        new_ring = KeyRing(k for k in ring.keys if k.kid != kid)
        write_keyring(path, new_ring)
    return new_ring
