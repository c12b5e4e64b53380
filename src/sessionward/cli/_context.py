"""What every subcommand needs: the merged settings and a backend.

Precedence (DESIGN §10): defaults < config file < ``SESSIONWARD_*``
environment < command-line flags.  The config file comes from ``--config``
or ``SESSIONWARD_CONFIG``.  CLI-only variables (``SESSIONWARD_DAEMON``,
``SESSIONWARD_TOKEN_FILE``, ``SESSIONWARD_ADMIN_TOKEN``,
``SESSIONWARD_AUDIT_FILE``, ``SESSIONWARD_DEBUG``) are read here and not
passed on to :meth:`Settings.load`.

A *backend* runs admin commands: :class:`LocalBackend` calls
:class:`~sessionward.admin.Admin` in this process; :class:`DaemonBackend`
sends the same command name and fields to the daemon's admin role.  Both
return the same JSON-ready data, which the subcommands render identically.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import click

from ..admin.service import Admin
from ..core.config import Settings
from ..core.errors import ConfigurationError
from ..core.keys import load_keyring, read_secret_file
from ..lifecycle.manager import SessionManager
from ..stores import open_store
from . import _hints
from ._daemon_client import DaemonClient

CLI_ENV = ("DAEMON", "TOKEN_FILE", "ADMIN_TOKEN", "AUDIT_FILE", "AUDIT_CHAIN", "DEBUG", "CONFIG")
"""``SESSIONWARD_*`` variables that configure the CLI itself, not :class:`Settings`."""


@dataclass(frozen=True, slots=True)
class Options:
    """The global flags (``None``: not given on the command line)."""

    config: str | None = None
    store: str | None = None
    key_file: str | None = None
    namespace: str | None = None
    daemon: str | None = None
    token_file: str | None = None
    audit_file: str | None = None
    audit_chain: bool = False
    debug: bool = False
    create: bool = False


class Backend(Protocol):
    """Runs one admin command; ``command`` uses ``-`` (``revoke-user``)."""

    def call(self, command: str, **fields: Any) -> Any: ...

    def close(self) -> None: ...


class LocalBackend:
    """Admin commands in this process, straight against the store."""

    def __init__(self, admin: Admin) -> None:
        self.admin = admin

    def call(self, command: str, **fields: Any) -> Any:
        """Dispatch to ``Admin.<command with _>(**fields)``."""
        method = getattr(self.admin, command.replace("-", "_"))
        return method(**fields)

    def close(self) -> None:
        """Close the manager and its store."""
        self.admin.manager.close()


class DaemonBackend:
    """Admin commands through the daemon (same names, same fields)."""

    def __init__(self, client: DaemonClient) -> None:
        self.client = client

    def call(self, command: str, **fields: Any) -> Any:
        """Send ``command`` with ``fields``; ``None`` fields are left out."""
        return self.client.call(command, **fields)

    def close(self) -> None:
        """Close the connection."""
        self.client.close()


def _check_audit_target(path: str) -> None:
    """Refuse an ``--audit-file`` the sink would refuse, naming the exact fix.

    The sink checks again on the opened descriptor (no TOCTOU gap matters:
    this only words the common mistakes for the operator).

    Raises:
        ConfigurationError: missing directory, symlink, writable by others, not ours.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise ConfigurationError(f"audit file directory {target.parent} does not exist; "
                                 f"create it: mkdir -p -m 700 {target.parent}")
    if target.is_symlink():
        raise ConfigurationError(f"audit file {path} is a symlink (never followed); give the "
                                 f"real file: --audit-file {os.path.realpath(path)}")
    if not target.exists():
        return
    st = target.stat()
    if st.st_uid != os.geteuid():
        raise ConfigurationError(f"audit file {path} belongs to uid {st.st_uid}; fix with: "
                                 f"chown {os.geteuid()} {path}")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise ConfigurationError(f"audit file {path} is writable by others; fix with: "
                                 f"chmod 600 {path}")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class CliContext:
    """Lazily built settings, manager and backend for one CLI invocation.

    Args:
        options: the global flags.
        environ: the environment (``os.environ`` by default).
    """

    def __init__(self, options: Options, environ: Mapping[str, str] | None = None) -> None:
        self.options = options
        self.environ = dict(os.environ if environ is None else environ)
        self._settings: Settings | None = None
        self._backend: Backend | None = None
        self.sinks: list[Any] = []

    def env(self, name: str) -> str | None:
        """``SESSIONWARD_<name>`` or ``None`` when unset or empty."""
        return self.environ.get(f"SESSIONWARD_{name}") or None

    @property
    def debug(self) -> bool:
        """``--debug`` or ``SESSIONWARD_DEBUG``: show tracebacks."""
        return self.options.debug or _truthy(self.env("DEBUG"))

    @property
    def config_file(self) -> str | None:
        """``--config`` or ``SESSIONWARD_CONFIG``."""
        return self.options.config or self.env("CONFIG")

    @property
    def daemon_url(self) -> str | None:
        """``--daemon`` or ``SESSIONWARD_DAEMON``."""
        return self.options.daemon or self.env("DAEMON")

    @property
    def token_file(self) -> str | None:
        """``--token-file`` or ``SESSIONWARD_TOKEN_FILE``."""
        return self.options.token_file or self.env("TOKEN_FILE")

    def settings(self) -> Settings:
        """The merged settings (built once).

        Raises:
            ConfigurationError: unreadable config file, unknown key, bad value.
        """
        if self._settings is None:
            # An empty SESSIONWARD_* variable means unset (as for the CLI's own).
            environ = {k: v for k, v in self.environ.items()
                       if k.removeprefix("SESSIONWARD_") not in CLI_ENV
                       and not (k.startswith("SESSIONWARD_") and not v)}
            overrides = {"store_url": self.options.store, "key_file": self.options.key_file,
                         "namespace": self.options.namespace}
            try:
                self._settings = Settings.load(config_file=self.config_file, environ=environ,
                                               overrides=overrides)
            except ConfigurationError as exc:
                raise _hints.settings_error(exc, environ, self.config_file) from exc
        return self._settings

    def manager(self) -> SessionManager:
        """A manager over the configured store and key file, audit sink attached.

        The store is opened with ``create=False`` unless ``--create`` was
        given: an admin command never makes a store out of a typo.

        Raises:
            ConfigurationError: no key file, bad key file, bad store URL.
            StoreNotFoundError: the SQLite file or store directory does not exist.
            StoreError: the store cannot be opened.
        """
        settings = self.settings()
        if settings.key_file is None:
            raise ConfigurationError(
                "no key file: pass --key-file PATH or set SESSIONWARD_KEY_FILE "
                "(create one with `sessionward keygen --out PATH`)"
            )
        keyring = load_keyring(settings.key_file, settings.namespace)
        store = open_store(settings.store_url, create=self.options.create)
        manager = SessionManager(store, keyring, settings)
        audit_file = self.options.audit_file or self.env("AUDIT_FILE")
        if audit_file:
            from ..audit.sinks.audit_file import AuditFileSink

            chain = self.options.audit_chain or _truthy(self.env("AUDIT_CHAIN"))
            try:
                _check_audit_target(audit_file)
                sink = AuditFileSink(audit_file, level="all", hash_chain=chain)
            except ConfigurationError:
                manager.close()
                raise
            self.sinks.append(sink)
            manager.events.subscribe(sink)
        return manager

    def admin_token(self) -> str:
        """The daemon admin token from ``--token-file`` or ``SESSIONWARD_ADMIN_TOKEN``.

        Raises:
            ConfigurationError: neither given, or an unsafe token file.
        """
        if self.token_file:
            token = read_secret_file(self.token_file, what="token file").decode().strip()
        else:
            token = self.env("ADMIN_TOKEN") or ""
        if not token:
            raise ConfigurationError(
                "daemon mode needs the admin token: pass --token-file PATH "
                "or set SESSIONWARD_ADMIN_TOKEN"
            )
        return token

    def is_remote(self) -> bool:
        """True when commands go through the daemon."""
        return self.daemon_url is not None

    def backend(self) -> Backend:
        """The backend for this invocation (built once).

        Raises:
            ConfigurationError: see :meth:`manager` and :meth:`admin_token`.
            StoreError: the store cannot be opened.
        """
        if self._backend is None:
            url = self.daemon_url
            if url is not None:
                self._backend = DaemonBackend(DaemonClient(url, self.admin_token()))
            else:
                self._backend = LocalBackend(Admin(self.manager(), sinks=self.sinks))
        return self._backend

    def local_only(self, command: str) -> None:
        """Refuse ``command`` in daemon mode.

        Raises:
            ConfigurationError: a daemon URL is configured.
        """
        if self.is_remote():
            raise ConfigurationError(
                f"`{command}` works on the key file and store directly; run it without "
                "--daemon/SESSIONWARD_DAEMON on the host that holds the keys"
            )

    def close(self) -> None:
        """Close the backend and sinks."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        for sink in self.sinks:
            sink.close()
        self.sinks.clear()


pass_cli = click.make_pass_decorator(CliContext)
"""Decorator: pass the invocation's :class:`CliContext` as the first argument."""
