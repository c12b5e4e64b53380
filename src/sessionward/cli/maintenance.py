"""``cleanup``, ``stats``, ``unlock``."""

from __future__ import annotations

from typing import Any

import click

from ..admin.context import MAX_PAGE
from . import _render
from ._context import CliContext, pass_cli
from ._render import json_option


@click.command("cleanup")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, MAX_PAGE),
              help="Records per batch (one short store transaction each).")
@json_option
@pass_cli
def cleanup_command(cli: CliContext, batch: int, as_json: bool) -> None:
    """Delete expired records in short batches (safe while the app serves traffic)."""
    backend = cli.backend()
    # Locally one call per batch drives the progress bar; the daemon's admin
    # schema takes only ``batch``, so there one call runs every batch.
    fields: dict[str, int] = {"batch": batch} if cli.is_remote() else {
        "batch": batch, "max_batches": 1}
    removed = batches = 0
    native = False
    with _render.progress() as bar:
        task = bar.add_task("removing expired records", total=None)
        done = False
        while not done:
            step = backend.call("cleanup", **fields)
            removed, batches = removed + step["removed"], batches + step["batches"]
            done, native = bool(step["done"]), bool(step["native_ttl"])
            bar.update(task, completed=removed)
        bar.update(task, total=removed, completed=removed)
    result = {"removed": removed, "batches": batches, "native_ttl": native}
    if as_json:
        _render.emit_json(result)
        return
    note = " (the store also expires records by itself)" if native else ""
    _render.stdout().print(f"removed {removed} expired record(s) in {batches} batch(es){note}")


def _stats_pairs(data: dict[str, Any]) -> list[tuple[str, object]]:
    sessions, store, audit = data["sessions"], data["store"], data["audit"]

    def count(value: object) -> object:
        return "unknown" if value == -1 else value

    return [
        ("namespace", data["namespace"]), ("store", store["kind"]),
        ("active sessions", sessions["active"]),
        ("expired, not cleaned up", sessions["expired"]),
        ("rotated, in grace", sessions["in_grace"]),
        ("rotated, grace over", sessions["tombstones"]),
        ("undecodable / other namespace", sessions["undecodable"]),
        ("store records", count(store["records"])), ("locked (leases)", count(store["locks"])),
        ("throttle/token entries (kv)", count(store["kv_entries"])),
        ("store size (bytes)", count(store["bytes"])),
        ("active key", data["keys"]["active"]),
        ("records per sealing key", _pairs(data["keys"]["sealed_with"])),
        ("audit write failures", audit["failures"]),
    ]


def _pairs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in mapping.items()) or "-"


@click.command("stats")
@json_option
@pass_cli
def stats_command(cli: CliContext, as_json: bool) -> None:
    """Counts: active, expired, in grace, locked, throttled, size, audit failures."""
    data = cli.backend().call("stats")
    if as_json:
        _render.emit_json(data)
    else:
        _render.stdout().print(_render.key_values("sessionward stats", _stats_pairs(data)))


@click.command("unlock")
@click.argument("key", required=False)
@click.option("--user", metavar="USER", help="The user id the throttle counts against.")
@click.option("--ip", metavar="ADDRESS", help="The client address it counts against.")
@click.option("--throttle", default="login", show_default=True, metavar="NAME",
              help="Which throttle (login, invalid, daemon, ...).")
@json_option
@pass_cli
def unlock_command(cli: CliContext, key: str | None, user: str | None, ip: str | None,
                   throttle: str, as_json: bool) -> None:
    """Clear a throttle lockout: KEY is a thr:... store key or a user id."""
    if key is not None and not key.startswith("thr:"):
        if user is not None:
            raise click.UsageError("give the user either as KEY or with --user, not both")
        key, user = None, key
    if key is None and user is None and ip is None:
        raise click.UsageError("give KEY, --user or --ip")
    result = cli.backend().call("unlock", key=key, user=user, ip=ip, throttle=throttle)
    if as_json:
        _render.emit_json(result)
        return
    state = "unlocked" if result["unlocked"] else "nothing to unlock (no failures recorded)"
    _render.stdout().print(f"{throttle}: {state}")


COMMANDS = (cleanup_command, stats_command, unlock_command)
