"""Daemon configuration and first-run bootstrap.

``sessionward serve --data-dir DIR`` with nothing else works: DIR is created
0700 and, when missing, a key (``DIR/key``), an ``app`` and an ``admin``
token (``DIR/tokens/*.token``, 0600), the SQLite store (``DIR/sessions.db``)
and the socket ``DIR/sessionward.sock``.  Nothing that exists is ever
overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..core.clock import Clock, system_clock
from ..core.config import Secret, Settings
from ..core.errors import ConfigurationError
from ..core.keys import KeyRing, load_keyring, write_key_file
from ..core.net import require_loopback
from . import fsutil

ROLES = ("app", "admin")
TEST_CLOCK_ENV = "SESSIONWARD_UNSAFE_TEST_CLOCK"


@dataclass(frozen=True, kw_only=True)
class DaemonConfig:
    """Every daemon option (CLI flags map 1:1; see ``sessionward serve --help``)."""

    data_dir: Path
    socket: Path | None = None
    socket_mode: int = 0o600
    tcp: tuple[str, int] | None = None
    pid_file: Path | None = None
    key_file: Path | None = None
    store_url: str | None = None
    allowed_key_dirs: tuple[Path, ...] = ()
    token_files: Mapping[str, Path] = field(default_factory=dict)
    tokens: Mapping[str, Secret] = field(default_factory=dict)
    allow_uids: frozenset[int] = frozenset()
    allow_gids: frozenset[int] = frozenset()
    max_connections: int = 50
    idle_timeout: float = 30.0
    preauth_timeout: float = 5.0
    max_unauthenticated: int = 16
    workers: int = 1
    settings: Settings = field(default_factory=Settings)
    audit_file: Path | None = None
    audit_group_read: bool = False
    test_clock_file: Path | None = None

    @property
    def preauth_deadline(self) -> float:
        """Seconds a connection may stay unauthenticated (never past the idle timeout)."""
        return min(self.preauth_timeout, self.idle_timeout)

    @property
    def unauthenticated_cap(self) -> int:
        """Concurrent unauthenticated connections (never past ``max_connections``)."""
        return max(1, min(self.max_unauthenticated, self.max_connections))

    @property
    def socket_path(self) -> Path:
        return self.socket or self.data_dir / "sessionward.sock"

    @property
    def pid_path(self) -> Path:
        return self.pid_file or self.data_dir / "sessionward.pid"

    @property
    def key_path(self) -> Path:
        return self.key_file or self.data_dir / "key"

    @property
    def store(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'sessions.db'}"

    @property
    def key_dirs(self) -> tuple[Path, ...]:
        return self.allowed_key_dirs or (self.data_dir,)

    def token_path(self, role: str) -> Path:
        return self.token_files.get(role) or self.data_dir / "tokens" / f"{role}.token"


def parse_tcp(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) on loopback only.

    Raises:
        ConfigurationError: not loopback, or malformed.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigurationError(f"--tcp must be HOST:PORT, got {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return require_loopback(host), int(port)


# ------------------------------------------------------------------ bootstrap


def bootstrap(config: DaemonConfig, say: Callable[[str], None]) -> None:
    """Create what is missing under the data dir and say where everything is.

    Raises:
        ConfigurationError: an insecure data dir or file.
    """
    fsutil.ensure_private_dir(config.data_dir)
    if not config.key_path.exists() and config.key_file is None:
        write_key_file(config.key_path)
        say(f"created key file      {config.key_path}")
    for role in ROLES:
        path = config.token_path(role)
        if role in config.tokens or path.exists() or role in config.token_files:
            continue
        fsutil.ensure_private_dir(path.parent)
        fsutil.write_token_file(path)
        say(f"created {role} token     {path}")
    say(f"key file              {config.key_path}")
    for role in ROLES:
        where = "(from the environment or --token)" if role in config.tokens else str(
            config.token_path(role))
        say(f"{role} token{' ' * (13 - len(role))}{where}")
    say(f"store                 {_display_url(config.store)}")
    say(f"socket                {config.socket_path}")
    say(f"pid file              {config.pid_path}")


def _display_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return url if "@" not in rest else f"{scheme}{sep}[credentials hidden]"


def load_keys(config: DaemonConfig) -> KeyRing:
    """The keyring from the key file (allowed dirs, O_NOFOLLOW + fstat).

    Raises:
        ConfigurationError: see :func:`fsutil.canonical_allowed` and
            :func:`sessionward.core.keys.load_keyring`.
    """
    real = fsutil.canonical_allowed(config.key_path, config.key_dirs)
    return load_keyring(real, config.settings.namespace)


def load_tokens(config: DaemonConfig) -> dict[str, Secret]:
    """Both role tokens (explicit value first, else the token file).

    Raises:
        ConfigurationError: a missing or unsafe token file, or equal tokens.
    """
    tokens: dict[str, Secret] = {}
    for role in ROLES:
        if role in config.tokens:
            tokens[role] = config.tokens[role]
        else:
            tokens[role] = Secret(fsutil.read_token_file(config.token_path(role),
                                                         config.key_dirs))
        if len(tokens[role].reveal()) < fsutil.MIN_TOKEN_CHARS:
            raise ConfigurationError(
                f"the {role} token must be at least {fsutil.MIN_TOKEN_CHARS} characters")
    if tokens["app"] == tokens["admin"]:
        raise ConfigurationError("the app and admin tokens must differ")
    return tokens


def make_clock(config: DaemonConfig, environ: Mapping[str, str] | None = None) -> Clock:
    """The wall clock, or (tests only) a clock read from a file.

    Raises:
        ConfigurationError: a test clock without ``SESSIONWARD_UNSAFE_TEST_CLOCK=1``.
    """
    if config.test_clock_file is None:
        return system_clock
    env = os.environ if environ is None else environ
    if env.get(TEST_CLOCK_ENV) != "1":
        raise ConfigurationError(
            f"--unsafe-test-clock-file is for the test suite only; it needs {TEST_CLOCK_ENV}=1"
        )
    return FileClock(config.test_clock_file)


class FileClock:
    """Test-only clock: the time is the float in a file the tests rewrite.

    Lets a test's ``FrozenClock`` drive a daemon subprocess.  Never enabled
    without ``SESSIONWARD_UNSAFE_TEST_CLOCK=1`` (see :func:`make_clock`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> float:
        """The time in the file.

        Raises:
            ConfigurationError: unreadable (a broken test setup).
        """
        try:
            return float(self.path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"test clock file unreadable: {exc}") from None
