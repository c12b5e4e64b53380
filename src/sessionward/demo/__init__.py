"""The sessionward demo: a small Starlette app on the embedded SQLite store.

``sessionward demo`` (or ``python -m sessionward.demo``) serves it on
http://127.0.0.1:8000.  On first run it creates a private data directory
(mode 0700, default ``./demo-data``) holding the session key (0600), the
anonymous forms' CSRF key ``csrf.key`` (0600, independent of the session
keys), the session store and the demo's users/events database.

Development mode: the demo runs over plain http on loopback, so it uses
``unsafe_dev_http=True`` and the cookie name ``session`` (a ``__Host-``
cookie needs https).  Every page says so in its footer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from ..core.clock import Clock, system_clock
from ..core.config import Settings
from ..core.errors import ConfigurationError
from ..core.keys import KeyRing, load_keyring, write_key_file
from ..guards.throttle_set import ThrottleSet
from ..lifecycle.amanager import AsyncSessionManager
from ..lifecycle.manager import SessionManager
from ..stores.base import SessionStore
from ..stores.sqlite import SQLiteStore
from .app import build_app
from .csrf import AnonymousCsrf
from .db import DemoDB
from .state import SIGNUP_LIMITS, Demo

__all__ = ["DEFAULT_DATA_DIR", "create_app", "demo_settings", "prepare_data_dir"]

DEFAULT_DATA_DIR = Path("demo-data")
DEV_OVERRIDES: dict[str, Any] = {
    "namespace": "demo",
    "cookie_name": "session",
    "cookie_secure": False,
    "unsafe_dev_http": True,
}


def prepare_data_dir(data_dir: Path) -> Path:
    """Create ``data_dir`` (0700) or check that an existing one is private.

    Raises:
        ConfigurationError: the path is a symlink, not a directory, or
            readable/writable by group or others.
    """
    if data_dir.is_symlink():
        raise ConfigurationError(f"refusing demo data directory {data_dir}: it is a symlink; "
                                 f"give the real directory: --data-dir {data_dir.resolve()}")
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigurationError(f"demo data directory {data_dir} is not a directory; give "
                                 "another --data-dir (it is created 0700)")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = data_dir.stat().st_mode
    if mode & 0o077:
        raise ConfigurationError(
            f"demo data directory {data_dir} is accessible by other users; "
            f"run: chmod 700 {data_dir}"
        )
    return data_dir.resolve()


def demo_settings(data_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings: ``SESSIONWARD_*`` environment, then the demo's dev-mode overrides.

    Raises:
        ConfigurationError: an invalid ``SESSIONWARD_*`` variable.
    """
    overrides = {**DEV_OVERRIDES, "key_file": str(data_dir / "session.key"),
                 "store_url": f"sqlite:///{data_dir / 'sessions.db'}"}
    return Settings.load(environ=os.environ if environ is None else environ,
                         overrides=overrides)


def _key_file(path: Path, namespace: str) -> KeyRing:
    """Load the key file at ``path``, writing a new one (0600) on first run.

    Raises:
        ConfigurationError: the file is unsafe or unreadable.
    """
    if not path.exists():
        write_key_file(path)
    return load_keyring(path, namespace)


def create_app(data_dir: Path | str = DEFAULT_DATA_DIR, *,
               environ: Mapping[str, str] | None = None, store: SessionStore | None = None,
               clock: Clock | None = None) -> Starlette:
    """Build the demo app over ``data_dir`` (created and keyed on first run).

    Args:
        data_dir: the private data directory (keys, SQLite files).
        environ: ``SESSIONWARD_*`` settings (``os.environ`` by default).
        store: the session store; by default ``sessions.db`` in ``data_dir``
            (tests pass another, e.g. an unreachable Redis for the 503 page).
        clock: the wall clock of the manager, throttles and CSRF tokens
            (a ``FrozenClock`` in tests).

    Raises:
        ConfigurationError: unsafe data directory or invalid settings.
    """
    root = prepare_data_dir(Path(data_dir))
    settings = demo_settings(root, environ)
    keyring = _key_file(root / "session.key", settings.namespace)
    csrf = AnonymousCsrf(_key_file(root / "csrf.key", settings.namespace).active,
                         secure=settings.cookie_secure)
    real_clock = clock or system_clock
    store = store if store is not None else SQLiteStore(root / "sessions.db", clock=real_clock)
    manager = SessionManager(store, keyring, settings, clock=real_clock)
    db = DemoDB(root / "demo.db")
    manager.events.subscribe(db.on_event)
    login = ThrottleSet(store, keyring, namespace="login", events=manager.events,
                        clock=real_clock)
    signup = ThrottleSet(store, keyring, limits=SIGNUP_LIMITS, namespace="signup",
                         events=manager.events, clock=real_clock)
    return build_app(Demo(AsyncSessionManager(manager), db, login, signup, csrf))
