"""Filesystem hardenings of the daemon: data dir, socket path, PID file, secret files.

Each function closes one local-attacker move (SECURITY-REQUIREMENTS P-D1,
P-D3): a socket reachable by other users, a pre-created or symlinked socket
path, a key or token file swapped for a symlink between check and use, two
daemons on one socket, a stale PID file of a process we cannot see.
Every refusal raises :class:`~sessionward.core.errors.ConfigurationError` with a
message that says how to fix it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import socket
import stat
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import ConfigurationError
from ..core.keys import read_secret_file

MIN_TOKEN_CHARS = 32


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if missing; refuse it if others can use it.

    Raises:
        ConfigurationError: not a directory, a symlink, owned by another
            user, or accessible by group/others.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigurationError(f"{path} is not a directory (a symlink is refused)")
    if st.st_uid != os.geteuid():
        raise ConfigurationError(f"directory {path} is owned by uid {st.st_uid}, not by this user")
    if st.st_mode & 0o077:
        raise ConfigurationError(
            f"directory {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); fix with: chmod 700 {path}"
        )
    return path


def check_socket_parent(directory: Path) -> None:
    """The socket's directory must belong to us (or root) and be writable by
    nobody else, or another user could swap the socket path.

    Raises:
        ConfigurationError: missing, another owner, or group/world writable.
    """
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        raise ConfigurationError(f"socket directory {directory} does not exist") from None
    if st.st_uid not in (os.geteuid(), 0):
        raise ConfigurationError(
            f"socket directory {directory} is owned by uid {st.st_uid}; use a directory "
            "owned by the daemon's user"
        )
    if st.st_mode & 0o022:
        raise ConfigurationError(
            f"socket directory {directory} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); fix with: chmod 700 {directory}"
        )


def clear_socket_path(path: Path) -> None:
    """Make ``path`` free for a new socket, refusing anything but a stale socket.

    Race timeline: the parent directory was checked to be writable only by
    us, so between this check and ``bind`` nobody else can put a file or
    symlink here; ``bind`` itself fails with EADDRINUSE if one appears.

    Raises:
        ConfigurationError: a symlink, a non-socket, or a live daemon's socket.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise ConfigurationError(f"socket path {path} is a symlink; refusing to follow it")
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigurationError(
            f"socket path {path} exists and is not a socket; refusing to replace it"
        )
    if _socket_is_live(path):
        raise ConfigurationError(f"another process is listening on {path}")
    path.unlink()


def _socket_is_live(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def bind_unix_socket(path: Path, mode: int) -> socket.socket:
    """Bind a listening Unix socket at ``path`` with permissions ``mode``.

    The socket is created under umask 0077 (never visible with wider
    permissions), then chmod-ed to ``mode``.

    Raises:
        ConfigurationError: see :func:`check_socket_parent` and
            :func:`clear_socket_path`; or the bind failed.
    """
    check_socket_parent(path.parent)
    clear_socket_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        sock.bind(os.fspath(path))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot bind {path}: {exc.strerror}") from None
    finally:
        os.umask(old)
    os.chmod(path, mode)
    sock.listen(128)
    sock.setblocking(False)
    return sock


# ------------------------------------------------------------- secret files


def canonical_allowed(path: Path, allowed_dirs: Iterable[Path]) -> Path:
    """``path`` with its directory canonicalised, if it lies in an allowed dir.

    The last component is *not* resolved: it is opened with ``O_NOFOLLOW``
    later, so a symlink there is refused rather than followed.

    Raises:
        ConfigurationError: outside every allowed directory.
    """
    real = Path(os.path.realpath(path.parent)) / path.name
    for directory in allowed_dirs:
        if real.is_relative_to(Path(os.path.realpath(directory))):
            return real
    raise ConfigurationError(
        f"{path} is outside --allowed-key-dirs; move it there or add its directory"
    )


def read_token_file(path: Path, allowed_dirs: Iterable[Path]) -> str:
    """Read a role token: allowed dir, O_NOFOLLOW, fstat (0600, ours), >= 32 chars.

    Raises:
        ConfigurationError: any check failed (message says how to fix it).
    """
    real = canonical_allowed(path, allowed_dirs)
    text = read_secret_file(real, what="token file").decode("utf-8", "replace").strip()
    if len(text) < MIN_TOKEN_CHARS or not text.isprintable() or " " in text:
        raise ConfigurationError(
            f"token file {path} must hold one token of at least {MIN_TOKEN_CHARS} characters"
        )
    return text


def write_token_file(path: Path) -> str:
    """Create a new random token file (0600, exclusive create, no symlinks).

    Raises:
        ConfigurationError: it already exists.
    """
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"token file {path} already exists") from None
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(token + "\n")
    return token


# ----------------------------------------------------------------- PID file


class PidFile:
    """A PID file created atomically and ``flock``-ed for the daemon's life.

    Creation: the PID is written to a private temp file, which is locked and
    then ``link``-ed into place (atomic, fails if the name exists), so no
    reader ever sees an empty or half-written PID file.

    Race timeline for a stale file (old daemon gone)::

        t0  B opens the existing file, takes its flock (nobody holds it)
        t1  B checks the path still names that inode (a daemon shutting
            down unlinks before unlocking), reads the old PID
        t2  kill(pid, 0): ESRCH → proven dead → B rewrites the PID, keeps
            the lock; EPERM or success → maybe alive → B refuses.

    Raises (``acquire``):
        ConfigurationError: another daemon holds it, or an old PID cannot be
            proven dead (the message says how to clear it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Create and lock the PID file (see the class docstring)."""
        for _attempt in range(5):
            if self._try_create() or self._try_take_over():
                return
        raise ConfigurationError(f"PID file {self.path} keeps changing; is a daemon starting?")

    def _try_create(self) -> bool:
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.link(tmp, self.path)
        except FileExistsError:
            os.close(fd)
            return False
        finally:
            tmp.unlink()
        self._fd = fd
        return True

    def _try_take_over(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False  # vanished meanwhile: retry the atomic create
        except OSError as exc:
            raise ConfigurationError(f"cannot open PID file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._alive_error("a running daemon holds its lock") from None
        if not self._same_inode(fd):
            os.close(fd)
            return False
        self._claim_stale(fd)
        return True

    def _same_inode(self, fd: int) -> bool:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return False
        fst = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)

    def _claim_stale(self, fd: int) -> None:
        content = os.read(fd, 64).decode("ascii", "replace").strip()
        if not content.isdigit() or not _proven_dead(int(content)):
            os.close(fd)
            raise self._alive_error(
                f"it names process {content or '(empty)'}, which cannot be proven dead"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _alive_error(self, why: str) -> ConfigurationError:
        return ConfigurationError(
            f"PID file {self.path} exists and {why}; if no sessionward daemon is running, "
            f"remove it (rm {self.path}) and start again"
        )

    def release(self) -> None:
        """Remove the PID file (while still holding the lock), then unlock."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            if self._same_inode(self._fd):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None


def _proven_dead(pid: int) -> bool:
    """True only when ``kill(pid, 0)`` says no such process (ESRCH).

    EPERM means a process exists that we may not signal: alive.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    except OSError as exc:
        return exc.errno == errno.ESRCH
    return False
