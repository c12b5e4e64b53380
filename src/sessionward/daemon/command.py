"""The ``serve`` click command: run the daemon (``docs/PROTOCOL.md``, ``docs/security.md``).

``sessionward serve`` (via :mod:`sessionward.cli.serve`, imported lazily by
the CLI group) and ``python -m sessionward.daemon`` run this same command;
it lives here so the daemon starts even without the rest of the CLI.
Unknown flags are errors; ``--flag=value`` and ``--flag value`` both work
(click).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from ..audit.redact import RedactingFilter, sanitize
from ..core.config import Secret, Settings
from ..core.errors import ConfigurationError, SessionWarning
from .config import DaemonConfig, bootstrap, parse_tcp

_ENV_TOKENS = {"app": "SESSIONWARD_APP_TOKEN", "admin": "SESSIONWARD_ADMIN_TOKEN"}


def _default_data_dir() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "sessionward")


def _mode(value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        raise click.BadParameter("must be an octal mode such as 0600 or 0660") from None
    if mode & ~0o660 or not mode & 0o600:
        raise click.BadParameter("only 0600 or 0660 (owner, optionally group) are allowed")
    return mode


def _tokens(flag_tokens: tuple[str, ...]) -> dict[str, Secret]:
    tokens: dict[str, Secret] = {}
    for role, env in _ENV_TOKENS.items():
        if os.environ.get(env):
            tokens[role] = Secret(os.environ[env].strip())
    for item in flag_tokens:
        role, sep, value = item.partition("=")
        if not sep or role not in _ENV_TOKENS:
            raise click.BadParameter("use --token app=TOKEN or --token admin=TOKEN")
        warnings.warn(
            f"--token {role}=... is visible to other users in the process list; prefer "
            f"{_ENV_TOKENS[role]} or a 0600 token file", SessionWarning, stacklevel=1)
        tokens[role] = Secret(value)
    return tokens


def _split_dirs(values: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple(Path(p) for v in values for p in v.split(os.pathsep) if p)


def _settings(config_file: str | None, namespace: str | None) -> Settings:
    from .config import TEST_CLOCK_ENV

    environ = {k: v for k, v in os.environ.items() if k != TEST_CLOCK_ENV}
    overrides = {"namespace": namespace} if namespace else None
    return Settings.load(config_file=config_file, environ=environ, overrides=overrides)


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("sessionward")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), envvar="SESSIONWARD_DATA_DIR",
              default=_default_data_dir, show_default="$XDG_STATE_HOME/sessionward",
              help="Directory for the key, tokens, store, socket and PID file (0700).")
@click.option("--socket", "socket_path", type=click.Path(path_type=Path),
              help="Unix socket path [DATA_DIR/sessionward.sock].")
@click.option("--socket-mode", default="0600", help="Socket permissions: 0600 or 0660.")
@click.option("--tcp", help="Also listen on loopback TCP HOST:PORT (127.0.0.0/8, ::1).")
@click.option("--pid-file", type=click.Path(path_type=Path), help="[DATA_DIR/sessionward.pid]")
@click.option("--key-file", type=click.Path(path_type=Path), help="[DATA_DIR/key]")
@click.option("--store", "store_url", help="Store URL [sqlite:///DATA_DIR/sessions.db].")
@click.option("--allowed-key-dirs", multiple=True,
              help="Directories key and token files may live in [DATA_DIR].")
@click.option("--app-token-file", type=click.Path(path_type=Path))
@click.option("--admin-token-file", type=click.Path(path_type=Path))
@click.option("--token", "flag_tokens", multiple=True, metavar="ROLE=TOKEN",
              help="Role token on the command line (warns: visible in the process list).")
@click.option("--allow-uid", type=int, multiple=True, help="Only these peer uids (repeatable).")
@click.option("--allow-gid", type=int, multiple=True, help="Only these peer gids (repeatable).")
@click.option("--namespace", help="Session namespace (must match the keys' users).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="sessionward.toml with Settings.")
@click.option("--audit-file", type=click.Path(path_type=Path),
              help="JSON Lines audit file (created 0600).")
@click.option("--audit-group-read", is_flag=True,
              help="Create the audit file 0640 (group-readable, e.g. for a log shipper).")
@click.option("--max-connections", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--idle-timeout", type=click.FloatRange(0.1, 3600), default=30.0,
              show_default=True,
              help="Seconds a connection may go without a complete request.")
@click.option("--preauth-timeout", type=click.FloatRange(0.1, 3600), default=5.0,
              show_default=True,
              help="Seconds a new connection may take to send a request with a valid token.")
@click.option("--max-unauthenticated", type=click.IntRange(1, 1000), default=16,
              show_default=True,
              help="Connections not yet authenticated at once (the oldest idle one "
                   "makes room for a new one).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes sharing the listening sockets (caps are per worker).")
@click.option("--unsafe-test-clock-file", type=click.Path(path_type=Path), hidden=True,
              help="TEST ONLY: read the time from this file (needs "
                   "SESSIONWARD_UNSAFE_TEST_CLOCK=1).")
def serve(**opts: Any) -> None:
    """Run the sessionward daemon on a Unix socket (and optionally loopback TCP)."""
    from .runner import run

    _setup_logging()
    try:
        conf = _build_config(opts)
        bootstrap(conf, _say)
        run(conf, _say)
    except ConfigurationError as exc:
        raise click.ClickException(sanitize_config_error(exc)) from None


def sanitize_config_error(exc: ConfigurationError) -> str:
    """Start-up errors name local paths on purpose (the operator needs them);
    only control characters and over-long text are removed."""
    text = str(exc)
    return "".join(ch if ch.isprintable() else " " for ch in text)[:1000] or sanitize(exc)


def _build_config(opts: dict[str, Any]) -> DaemonConfig:
    data_dir = Path(str(opts["data_dir"])).absolute()
    token_files = {role: Path(str(opts[f"{role}_token_file"])).absolute()
                   for role in ("app", "admin") if opts[f"{role}_token_file"]}
    tcp = opts["tcp"]
    key_dirs = _split_dirs(opts["allowed_key_dirs"])
    return DaemonConfig(
        data_dir=data_dir, socket=_abs(opts["socket_path"]),
        socket_mode=_mode(str(opts["socket_mode"])),
        tcp=parse_tcp(str(tcp)) if tcp else None, pid_file=_abs(opts["pid_file"]),
        key_file=_abs(opts["key_file"]), store_url=opts["store_url"],
        allowed_key_dirs=tuple(p.absolute() for p in key_dirs),
        token_files=token_files,
        tokens=_tokens(opts["flag_tokens"]),
        allow_uids=frozenset(opts["allow_uid"]),
        allow_gids=frozenset(opts["allow_gid"]),
        max_connections=int(opts["max_connections"]),
        idle_timeout=float(opts["idle_timeout"]),
        preauth_timeout=float(opts["preauth_timeout"]),
        max_unauthenticated=int(opts["max_unauthenticated"]),
        workers=int(opts["workers"]),
        settings=_settings(opts["config_file"], opts["namespace"]),
        audit_file=_abs(opts["audit_file"]),
        audit_group_read=bool(opts["audit_group_read"]),
        test_clock_file=_abs(opts["unsafe_test_clock_file"]),
    )


def _abs(value: object) -> Path | None:
    return None if value is None else Path(str(value)).absolute()
