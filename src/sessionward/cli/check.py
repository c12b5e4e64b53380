"""``check``: audit the configuration like a deployment check (``docs/cli.md``
lists every finding ID)."""

from __future__ import annotations

from pathlib import Path

import click

from ..admin import checks
from ..admin.checks import Finding
from ..core.errors import ConfigurationError, SessionError
from ..stores import open_store
from . import _render
from ._context import CliContext, pass_cli
from ._render import json_option

EXIT_FINDINGS = 3


def _local(cli: CliContext) -> list[Finding]:
    settings = cli.settings()
    found = checks.key_findings(settings.key_file, settings.namespace)
    found += checks.store_path_findings(settings.store_url)
    try:
        store = open_store(settings.store_url)
    except SessionError as exc:
        return [*found, checks.finding("SW-E001", str(exc))]
    try:
        found += checks.store_findings(store)
    finally:
        store.close()
    return found


def _remote(cli: CliContext) -> list[Finding]:
    token_env = cli.env("ADMIN_TOKEN") is not None
    found = checks.daemon_findings(cli.daemon_url, cli.token_file, token_env)
    if any(f.id in ("SW-E007", "SW-E008") for f in found):
        return found
    try:
        cli.backend().call("ping")
    except (SessionError, OSError) as exc:
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
