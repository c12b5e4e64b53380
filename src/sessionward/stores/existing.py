"""Opening a store that must already exist (``open_store(url, create=False)``).

Read-only tools (every admin CLI command) must not turn a typo into a new,
empty store, nor write to whatever file the URL points at.  These checks run
*instead of* a store's creating start-up and write nothing: not a file, not a
directory, not a schema, not a mode.  Each raises
:class:`~sessionward.core.errors.StoreNotFoundError` with the fix.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote

from ..core.errors import StoreNotFoundError

CREATE_HINT = ("check the store URL; stores are created by the app, `sessionward serve`, "
               "`sessionward demo` or `sessionward --create`")


def check_sqlite_store(path: Path, busy_timeout: float) -> None:
    """A sessionward SQLite database must be at ``path``.

    The schema is probed over a separate read-only connection, so a foreign
    SQLite file is neither switched to WAL nor given our tables.

    Raises:
        StoreNotFoundError: no file, not a regular file, or no sessionward schema.
    """
    if not path.is_file() or path.is_symlink():
        what = "is not a regular file" if path.exists() else "does not exist"
        raise StoreNotFoundError(f"SQLite store {path} {what} (nothing was created); "
                                 f"{CREATE_HINT}", store="sqlite")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        probe = sqlite3.connect(uri, uri=True, timeout=busy_timeout)
        try:
            probe.execute("SELECT value FROM sw_meta WHERE name = 'schema'").fetchone()
        finally:
            probe.close()
    except sqlite3.Error as exc:
        raise StoreNotFoundError(f"{path} is not a sessionward SQLite store ({exc}); "
                                 f"{CREATE_HINT}", store="sqlite") from None


def require_directory(path: str, kind: str) -> None:
    """The store directory must exist (checked before the store opens it).

    Raises:
        StoreNotFoundError: nothing at ``path``.
    """
    if not os.path.lexists(path):
        raise StoreNotFoundError(f"file store directory {path} does not exist (nothing was "
                                 f"created); {CREATE_HINT}", store=kind)


def check_layout(root: int, path: str, subdirs: Iterable[str],
                 check_stat: Callable[[os.stat_result, str], None], kind: str) -> None:
    """Every subdirectory of a file store must be there under the open ``root`` fd.

    Raises:
        StoreNotFoundError: one is missing (the directory is not a store).
        ConfigurationError: one is a symlink or insecure (from ``check_stat``).
    """
    for name in subdirs:
        try:
            found = os.stat(name, dir_fd=root, follow_symlinks=False)
        except FileNotFoundError:
            raise StoreNotFoundError(
                f"{path} is not a sessionward file store (no {name}/; nothing was created); "
                f"{CREATE_HINT}", store=kind) from None
        check_stat(found, os.path.join(path, name))
