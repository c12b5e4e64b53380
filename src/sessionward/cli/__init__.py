"""``sessionward``: the admin command line (``docs/cli.md``).

Each subcommand lives in a small module of this package and stays thin:
parse → settings → :class:`~sessionward.admin.Admin` (directly or through the
daemon) → render.  ``serve`` and ``demo`` belong to other packages and are
registered lazily: their modules are imported only when invoked, so
``sessionward --help`` stays fast and works even when they are missing.

Errors: :func:`main` turns every :class:`~sessionward.core.errors.SessionError`,
``OSError`` and click usage error into one sanitised line on stderr and a
non-zero exit code; ``--debug`` (or ``SESSIONWARD_DEBUG=1``) adds the
traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Sequence

import click

from ..core.errors import SessionError
from . import _hints, _render, _usage
from ._context import CliContext, Options

EXIT_ERROR = 1
"""A command failed (bad configuration, store down, not found, refused)."""
EXIT_USAGE = 2
"""The command line itself is wrong."""
EXIT_FINDINGS = 3
"""``check`` found an error, or ``audit verify`` found a broken chain."""

_LAZY = {
    "serve": ("sessionward.cli.serve", "Run the sessionward daemon."),
    "demo": ("sessionward.cli.demo", "Run the demo web application."),
}
"""Subcommands owned by other packages: module and a static help line."""
_EXTRAS = {"demo": "demo"}
"""The pip extra a lazy subcommand needs (none: it ships with the core)."""


class _LazyGroup(click.Group):
    """A group that lists ``serve``/``demo`` without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(name for name, (module, _) in _LAZY.items() if _exists(module))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in _LAZY:
            return command
        module_name = _LAZY[cmd_name][0]
        if ctx.resilient_parsing or not _exists(module_name):
            return None
        return _load_lazy(cmd_name, module_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in _LAZY and name not in self.commands:
                rows.append((name, _LAZY[name][1]))
                continue
            command = self.commands[name]
            if not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _exists(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except ImportError:
        return False


def _load_lazy(name: str, module_name: str) -> click.Command:
    """Import a lazy subcommand: ``command``, or an attribute named like it.

    Raises:
        click.ClickException: the module is broken or exposes no command.
    """
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRAS.get(name)
        fix = (f"pip install 'sessionward[{extra}]'" if extra
               else "reinstall sessionward (pip install --force-reinstall sessionward)")
        raise click.ClickException(
            f"the {name} command is unavailable ({exc}); run: {fix}"
        ) from None
    command = getattr(module, "command", None) or getattr(module, name, None)
    if not isinstance(command, click.Command):
        raise click.ClickException(f"{module_name} defines no click command `{name}`")
    return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", metavar="FILE", help="TOML config file (SESSIONWARD_CONFIG).")
@click.option("--store", metavar="URL", help="Store URL (SESSIONWARD_STORE).")
@click.option("--key-file", metavar="PATH", help="Key file (SESSIONWARD_KEY_FILE).")
@click.option("--namespace", metavar="NAME", help="Namespace (SESSIONWARD_NAMESPACE).")
@click.option("--daemon", metavar="URL",
              help="Run through the daemon: sessionward:///path.sock (SESSIONWARD_DAEMON).")
@click.option("--token-file", metavar="PATH",
              help="Daemon admin token file (or SESSIONWARD_ADMIN_TOKEN).")
@click.option("--audit-file", metavar="PATH",
              help="Also write this command's events to a JSON Lines audit file.")
@click.option("--audit-chain", is_flag=True, help="Hash-chain the --audit-file lines.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors (SESSIONWARD_DEBUG).")
@click.option("--create", is_flag=True,
              help="Create a missing SQLite file or file-store directory (never by default).")
@click.version_option(package_name="sessionward")
@click.pass_context
def cli(ctx: click.Context, /, config: str | None, store: str | None, key_file: str | None,
        namespace: str | None, daemon: str | None, token_file: str | None,
        audit_file: str | None, audit_chain: bool, debug: bool, create: bool) -> None:
    """Administer sessionward sessions, keys and configuration."""
    context = CliContext(Options(
        config=config, store=store, key_file=key_file, namespace=namespace, daemon=daemon,
        token_file=token_file, audit_file=audit_file, audit_chain=audit_chain, debug=debug,
        create=create,
    ))
    ctx.obj = context
    ctx.call_on_close(context.close)


def _register() -> None:
    from . import audit, check, keyring, maintenance, sessions

    for module in (sessions, maintenance, keyring, check, audit):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def _debug_requested(args: Sequence[str]) -> bool:
    flag = os.environ.get("SESSIONWARD_DEBUG", "").strip().lower()
    return "--debug" in args or flag in ("1", "true", "yes", "on")


def _fail(exc: BaseException, debug: bool, code: int = EXIT_ERROR,
          message: str | None = None) -> int:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(_render.error_line(exc if message is None else message) + "\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessionward`` executable.

    Returns:
        The exit code: 0, :data:`EXIT_ERROR`, :data:`EXIT_USAGE` or
        :data:`EXIT_FINDINGS`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    if not debug:
        # Every failure is reported as the one error line below; the library's
        # log records (printed by logging's last-resort handler) would repeat it.
        logging.getLogger("sessionward").addHandler(logging.NullHandler())
    try:
        result = cli.main(args, prog_name="sessionward", standalone_mode=False)
    except click.exceptions.Abort:
        sys.stderr.write("\n" + _render.error_line("aborted; nothing was changed") + "\n")
        return EXIT_ERROR
    except click.UsageError as exc:
        if exc.ctx is not None and type(exc).__name__ == "NoArgsIsHelpError":
            click.echo(exc.ctx.get_help())  # bare `sessionward` / `sessionward audit`
            return EXIT_USAGE
        if isinstance(exc, click.NoSuchOption):
            hint = _usage.misplaced_global(cli, args, exc.option_name)
            if hint is not None:
                return _fail(exc, debug, EXIT_USAGE, hint)
        where = exc.ctx.command_path if exc.ctx is not None else "sessionward"
        return _fail(exc, debug, EXIT_USAGE, f"{exc.format_message()} (see `{where} --help`)")
    except click.ClickException as exc:
        return _fail(exc, debug, exc.exit_code or EXIT_ERROR, exc.format_message())
    except OSError as exc:  # the one top-level handler (with SessionError below)
        return _fail(exc, debug, message=_hints.os_error(exc))
    except SessionError as exc:
        return _fail(exc, debug, message=_hints.with_fix(exc))
    except KeyboardInterrupt:
        sys.stderr.write(_render.error_line("interrupted") + "\n")
        return 130
    return result if isinstance(result, int) else 0
