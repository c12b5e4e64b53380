"""``check``: audit the configuration like a deployment check (``docs/cli.md``
lists every finding ID)."""

from __future__ import annotations

from pathlib import Path

import click

from ..admin import checks
from ..admin.checks import Finding
from ..core.config import Settings
from ..core.errors import ConfigurationError, SessionError, StoreError
from ..core.keys import load_keyring
from ..lifecycle.manager import SessionManager
from ..stores import open_store
from ..stores.base import SessionStore
from . import _render
from ._context import CliContext, pass_cli
from ._render import json_option

EXIT_FINDINGS = 3


def _local(cli: CliContext) -> list[Finding]:
    """Key file, store files, the store itself, and whether its records open.

    The store is opened with ``create=False`` (unless ``--create``): a check
    never leaves a new ``sessionward.db`` behind.
    """
    settings = cli.settings()
    found = checks.key_findings(settings.key_file, settings.namespace)
    found += checks.store_path_findings(settings.store_url)
    try:
        store = open_store(settings.store_url, create=cli.options.create)
    except SessionError as exc:
        return [*found, checks.unreachable_finding(exc)]
    try:
        found += checks.store_findings(store)
        if not any(f.id in ("SW-E001", "SW-E002") for f in found):
            found += _namespace(store, settings)
    finally:
        store.close()
    return found


def _namespace(store: SessionStore, settings: Settings) -> list[Finding]:
    """SW-W015: a sample of the records opened with the configured keys."""
    if settings.key_file is None:
        return []
    keyring = load_keyring(settings.key_file, settings.namespace)
    try:
        return checks.namespace_findings(SessionManager(store, keyring, settings))
    except StoreError as exc:
        return [checks.unreachable_finding(exc)]


def _remote(cli: CliContext) -> list[Finding]:
    token_env = cli.env("ADMIN_TOKEN") is not None
    found = checks.daemon_findings(cli.daemon_url, cli.token_file, token_env)
    if any(f.id in ("SW-E007", "SW-E008") for f in found):
        return found
    try:
        cli.backend().call("ping")
    except SessionError as exc:
        found.append(checks.unreachable_finding(exc, "daemon: "))
    except OSError as exc:
        found.append(checks.finding("SW-E001", f"daemon: {exc}"))
    return found


def run(cli: CliContext) -> list[Finding]:
    """Every check that applies to this invocation (local or daemon mode)."""
    try:
        settings = cli.settings()
    except ConfigurationError as exc:
        return [checks.finding("SW-E010", str(exc))]
    found = checks.settings_findings(settings) + checks.debug_findings(cli.debug)
    found += _remote(cli) if cli.is_remote() else _local(cli)
    return sorted(found, key=lambda f: f.id)


def _render_human(found: list[Finding]) -> None:
    out = _render.stdout()
    if found:
        out.print(_render.table("sessionward check", ("id", "severity", "finding", "fix"),
                                ((f.id, f.severity, f"{f.title}: {f.message}", f.fix)
                                 for f in found)))
    errors = sum(f.severity == "error" for f in found)
    out.print(f"{errors} error(s), {len(found) - errors} warning(s)")


def _php(php_ini: Path | None, fpm_pool: Path | None) -> list[Finding]:
    from ..admin import php_ini as audit

    return audit.audit(php_ini, fpm_pool, defaults=audit.compiled_defaults())


@click.command("check")
@click.option("--php-ini", type=click.Path(path_type=Path, dir_okay=False),
              help="Audit this php.ini's session settings instead (SW-E1xx/SW-W1xx).")
@click.option("--php-fpm-pool", type=click.Path(path_type=Path, dir_okay=False),
              help="Audit this PHP-FPM pool file too (its php_value/php_admin_value win).")
@json_option
@pass_cli
@click.pass_context
def check_command(ctx: click.Context, cli: CliContext, php_ini: Path | None,
                  php_fpm_pool: Path | None, as_json: bool) -> None:
    """Audit the configuration (or a PHP deployment); exit 3 when any error (SW-E...) is found."""
    php = php_ini is not None or php_fpm_pool is not None
    found = _php(php_ini, php_fpm_pool) if php else run(cli)
    errors = sum(f.severity == "error" for f in found)
    if as_json:
        _render.emit_json({"findings": [f.to_dict() for f in found], "errors": errors,
                           "warnings": len(found) - errors, "ok": errors == 0})
    else:
        _render_human(found)
    if errors:
        ctx.exit(EXIT_FINDINGS)


COMMANDS = (check_command,)
