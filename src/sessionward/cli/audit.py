"""``audit verify FILE``: check the hash chain of a JSON Lines audit file."""

from __future__ import annotations

import click

from ..audit.sinks.audit_file import verify_chain
from . import _render
from ._render import json_option

EXIT_FINDINGS = 3


@click.group("audit")
def audit_group() -> None:
    """Audit file tools."""


@audit_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@click.pass_context
def verify_command(ctx: click.Context, file: str, as_json: bool) -> None:
    """Verify FILE's hash chain; exit 3 naming the first broken line."""
    result = verify_chain(file)
    if as_json:
        _render.emit_json({"ok": result.ok, "lines": result.lines,
                           "first_broken": result.first_broken, "reason": result.reason,
                           "head": result.head})
    elif result.ok:
        _render.stdout().print(f"ok: {result.lines} line(s) intact; head {result.head}")
    if not result.ok:
        if not as_json:
            click.echo(_render.error_line(
                f"audit chain broken at line {result.first_broken}: {result.reason}"), err=True)
        ctx.exit(EXIT_FINDINGS)


COMMANDS = (audit_group,)
