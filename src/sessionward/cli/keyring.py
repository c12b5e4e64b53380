"""``keygen``, ``rotate-keys``, ``retire-key``.

Safe rotation with several app processes (``docs/cli.md``): ``rotate-keys
--no-reseal`` adds the new active key; reload every process that holds the
keys (apps, daemon: SIGHUP); then ``rotate-keys --reseal-only`` re-seals the
old records; ``retire-key`` an old key once nothing uses it.  Plain
``rotate-keys`` does both steps at once, for a single process that reloads
its keys before it next needs the new ones (or a stopped app).
"""

from __future__ import annotations

from typing import Any

import click

from ..admin.context import MAX_PAGE, AdminError
from ..core.errors import ConfigurationError
from ..core.keys import load_keyring, write_key_file
from . import _keyfile, _render
from ._context import CliContext, LocalBackend, pass_cli
from ._render import json_option


@click.command("keygen")
@click.option("--out", metavar="PATH", help="Where to write it (default: the configured key file).")
@click.option("--force", is_flag=True, help="Overwrite an existing key file (sessions are lost).")
@json_option
@pass_cli
def keygen_command(cli: CliContext, out: str | None, force: bool, as_json: bool) -> None:
    """Create a new key file (mode 0600, directory 0700)."""
    path = out or cli.settings().key_file
    if path is None:
        raise click.UsageError("give --out PATH (or configure key_file)")
    kid = write_key_file(path, force=force)
    if as_json:
        _render.emit_json({"path": str(path), "kid": kid})
    else:
        _render.stdout().print(f"wrote key {kid} to {_render.clean(path)} (mode 0600)")


def _key_file(cli: CliContext) -> str:
    path = cli.settings().key_file
    if path is None:
        raise ConfigurationError("no key file: pass --key-file PATH or set SESSIONWARD_KEY_FILE")
    return path


def _note(cli: CliContext, action: str, kid: str) -> None:
    backend = cli.backend()
    if isinstance(backend, LocalBackend):
        backend.admin.note_key_change(action, kid)


def _reseal_all(cli: CliContext, batch: int) -> dict[str, int]:
    backend = cli.backend()
    totals: dict[str, int] = {}
    cursor: str | None = None
    with _render.progress() as bar:
        task = bar.add_task("re-sealing records", total=None)
        while True:
            page = backend.call("reseal", batch=batch, cursor=cursor)
            cursor = page.pop("cursor")
            for name, count in page.items():
                totals[name] = totals.get(name, 0) + int(count)
            bar.update(task, completed=sum(totals.values()))
            if cursor is None:
                return totals


@click.command("rotate-keys")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, MAX_PAGE),
              help="Records per re-seal batch.")
@click.option("--no-reseal", is_flag=True, help="Only add the new active key.")
@click.option("--reseal-only", is_flag=True,
              help="Only re-seal old records under the current active key (works with --daemon).")
@json_option
@pass_cli
def rotate_keys_command(cli: CliContext, batch: int, no_reseal: bool, reseal_only: bool,
                        as_json: bool) -> None:
    """Add a new active key and re-seal records under it; nobody is logged out."""
    if no_reseal and reseal_only:
        raise click.UsageError("--no-reseal and --reseal-only exclude each other; give one")
    result: dict[str, Any] = {"added": None}
    if not reseal_only:
        cli.local_only("rotate-keys")
        kid, _ = _keyfile.add_active_key(_key_file(cli), cli.settings().namespace)
        result["added"] = kid
        _note(cli, "rotate", kid)
    if not no_reseal:
        result["reseal"] = _reseal_all(cli, batch)
    if as_json:
        _render.emit_json(result)
        return
    out = _render.stdout()
    if result["added"]:
        out.print(f"new active key {result['added']}; older keys still decrypt")
    if "reseal" in result:
        r = result["reseal"]
        out.print(f"re-sealed {r.get('resealed', 0)} record(s); {r.get('current', 0)} already "
                  f"current, {r.get('expired', 0)} expired, {r.get('skipped', 0)} skipped, "
                  f"{r.get('conflicts', 0)} still changing (run again)")


@click.command("retire-key")
@click.argument("kid")
@json_option
@pass_cli
def retire_key_command(cli: CliContext, kid: str, as_json: bool) -> None:
    """Remove key KID from the key file once no record uses it."""
    cli.local_only("retire-key")
    path = _key_file(cli)
    namespace = cli.settings().namespace
    _keyfile.check_retirable(load_keyring(path, namespace), kid)
    backend = cli.backend()
    usage = backend.call("key-usage", kid=kid)
    in_use = int(usage["sealed_with"]) + int(usage["issued_by"])
    if in_use:
        hint = " (expired ones go with `sessionward cleanup`)" if usage["expired"] else ""
        raise AdminError(
            "conflict",
            f"key {kid} is still used: {usage['sealed_with']} record(s) sealed with it, "
            f"{usage['issued_by']} issued under it, {usage['expired']} of them expired{hint}; "
            "run `sessionward rotate-keys --reseal-only` and wait for older sessions to "
            "rotate or expire",
        )
    ring = _keyfile.remove_key(path, namespace, kid)
    _note(cli, "retire", kid)
    result = {"retired": kid, "keys": [k.kid for k in ring.keys]}
    if as_json:
        _render.emit_json(result)
    else:
        _render.stdout().print(f"retired key {kid}; keys left: {', '.join(result['keys'])}")


COMMANDS = (keygen_command, rotate_keys_command, retire_key_command)
