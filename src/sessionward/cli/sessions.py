"""``list``, ``show``, ``revoke``, ``revoke-user``, ``revoke-all``."""

from __future__ import annotations

import sys
from typing import Any

import click

from . import _render
from ._context import CliContext, pass_cli
from ._render import json_option

_LIST_PAGE = 500


def _collect(cli: CliContext, user: str | None, expired: bool) -> dict[str, Any]:
    backend = cli.backend()
    rows: list[dict[str, Any]] = []
    skipped = 0
    cursor: str | None = None
    while True:
        page = backend.call("list", user=user, expired=expired, limit=_LIST_PAGE, cursor=cursor)
        rows.extend(page["sessions"])
        skipped += int(page.get("skipped") or 0)
        cursor = page.get("cursor")
        if cursor is None:
            break
    if user is None:
        rows.sort(key=lambda r: r.get("last_seen") or 0, reverse=True)
    return {"sessions": rows, "count": len(rows), "skipped": skipped}


@click.command("list")
@click.option("--user", metavar="USER", help="Only this user's sessions (no store scan).")
@click.option("--expired", is_flag=True, help="Include expired sessions not cleaned up yet.")
@json_option
@pass_cli
def list_command(cli: CliContext, user: str | None, expired: bool, as_json: bool) -> None:
    """List sessions: handle, user, times and client; never IDs or data."""
    result = _collect(cli, user, expired)
    if as_json:
        _render.emit_json(result)
        return
    out = _render.stdout()
    title = f"{result['count']} session(s)" + (f" of {_render.clean(user)}" if user else "")
    out.print(_render.session_table(result["sessions"], title))
    if result["skipped"]:
        out.print(f"{result['skipped']} record(s) did not open with these keys "
                  "(another namespace, or damaged)")


_SHOW_FIELDS = (
    ("handle", "handle"), ("user", "user"), ("status", "status"), ("created", "created"),
    ("last seen", "last_seen"), ("expires", "expires_at"), ("authenticated", "auth_time"),
    ("auth level", "auth_level"), ("pending", "pending"), ("elevated until", "elevated_until"),
    ("rotated", "rotated_at"), ("device", "device"), ("ip", "ip"), ("issued by key", "issued_by"),
    ("sealed with key", "sealed_with"), ("version", "version"), ("data bytes", "data_bytes"),
)
_TIMES = {"created", "last_seen", "expires_at", "auth_time", "elevated_until", "rotated_at"}


@click.command("show")
@click.argument("handle")
@click.option("--data", "reveal", is_flag=True,
              help="Also print the session data (audited as data_revealed).")
@json_option
@pass_cli
def show_command(cli: CliContext, handle: str, reveal: bool, as_json: bool) -> None:
    """Show one session's metadata (and its data with --data)."""
    result = cli.backend().call("show", handle=handle, data=reveal)
    if as_json:
        _render.emit_json(result)
        return
    pairs = [(label, _render.when(result.get(key)) if key in _TIMES else result.get(key))
             for label, key in _SHOW_FIELDS]
    out = _render.stdout()
    out.print(_render.key_values("session", [(k, "-" if v is None else v) for k, v in pairs]))
    if reveal:
        out.print("data (revealed, audited):")
        out.print_json(data=result.get("data"), sort_keys=True)


@click.command("revoke")
@click.argument("handle")
@json_option
@pass_cli
def revoke_command(cli: CliContext, handle: str, as_json: bool) -> None:
    """End the session with HANDLE."""
    result = cli.backend().call("revoke", handle=handle)
    if as_json:
        _render.emit_json(result)
    else:
        who = _render.clean(result.get("user") or "an anonymous user")
        _render.stdout().print(f"revoked 1 session of {who}")


def _user(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("give the user id the app signs the user in with "
                                 "(sessionward list shows them)")
    return value


@click.command("revoke-user")
@click.argument("user", callback=_user)
@click.option("--keep", metavar="HANDLE", help="Keep this one session.")
@json_option
@pass_cli
def revoke_user_command(cli: CliContext, user: str, keep: str | None, as_json: bool) -> None:
    """End every session of USER (except --keep)."""
    result = cli.backend().call("revoke-user", user=user, keep=keep)
    if as_json:
        _render.emit_json(result)
    else:
        _render.stdout().print(f"revoked {result['revoked']} session(s) of "
                               f"{_render.clean(user)}")


@click.command("revoke-all")
@click.option("--yes", is_flag=True, help="Do not ask for the namespace.")
@json_option
@pass_cli
def revoke_all_command(cli: CliContext, yes: bool, as_json: bool) -> None:
    """End every session of the namespace (asks you to type it)."""
    namespace = cli.settings().namespace
    if not yes:
        typed = click.prompt(f"This logs out every user of namespace {namespace!r}. "
                             "Type the namespace to confirm", err=True, default="",
                             show_default=False)
        if not sys.stdin.isatty():
            click.echo(err=True)  # the answer was not echoed: end the prompt line
        if typed != namespace:
            raise click.ClickException(f"the namespace did not match; nothing was revoked "
                                       f"(type {namespace} exactly, or pass --yes)")
    result = cli.backend().call("revoke-all")
    if as_json:
        _render.emit_json(result)
    else:
        _render.stdout().print(f"revoked {result['revoked']} session(s) in namespace "
                               f"{result['namespace']}")


COMMANDS = (list_command, show_command, revoke_command, revoke_user_command, revoke_all_command)
