"""The exact commands that fix a deployment finding (``sessionward check``).

Each function looks at the file as it is now and returns one shell line the
operator can paste: ``chmod 600 /etc/app/session.key``, ``chown 1000
/etc/app/session.key``, ``sessionward keygen --out /etc/app/session.key``.
Paths are shell-quoted.  Nothing here changes a file.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def chmod(mode: int, *paths: Path) -> str:
    """``chmod 600 PATH...``."""
    return f"chmod {mode:o} {' '.join(_q(p) for p in paths)}"


def store_chmod(path: Path) -> str:
    """Private modes for a store: the SQLite file with its ``-wal``/``-shm``, or a directory."""
    if path.is_dir():
        return chmod(0o700, path)
    companions = [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]
    return chmod(0o600, path, *(p for p in companions if p.exists()))


def secret_file(path: Path, *, keygen: bool = False) -> str:
    """The fix for a key or token file that does not open safely.

    Args:
        path: the configured file.
        keygen: it is a session key file (``sessionward keygen`` makes one).
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return (f"sessionward keygen --out {_q(path)}" if keygen
                else f"create it: (umask 077; head -c 32 /dev/urandom | base64 > {_q(path)})")
    except OSError:
        return f"make {_q(path.parent)} searchable by this user"
    if stat.S_ISLNK(st.st_mode):
        return f"point the setting at the real file: {_q(os.path.realpath(path))}"
    if st.st_uid != os.geteuid():
        return f"chown {os.geteuid()} {_q(path)}"
    if stat.S_IMODE(st.st_mode) & 0o077:
        return chmod(0o600, path)
    if keygen:
        return (f"restore it from a backup, or sessionward keygen --force --out {_q(path)} "
                "(signs everybody out)")
    return f"rewrite {_q(path)} with the daemon's admin token (one line, 0600)"
