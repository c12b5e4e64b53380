"""Output: stable JSON for scripts, rich tables for people, one-line errors.

Results go to stdout; progress bars, prompts and errors go to stderr, so
``--json`` output can always be piped.  Nothing rendered here ever holds a
session ID, a cookie value, a key or a token: the admin layer only hands out
metadata and handles.  Error lines are for the operator who typed the
command: they pass through :func:`sessionward.audit.redact.for_operator`,
which keeps the paths and URL schemes they typed (so a fix can be copied
and pasted) and masks passwords inside URLs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from ..audit.redact import for_operator

_WIDE = 200
"""Width used when stdout is not a terminal, so handles are never folded."""


def stdout() -> Console:
    """A console on stdout (wide and colourless when piped)."""
    console = Console(highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console = Console(highlight=False, markup=False, emoji=False, width=_WIDE,
                          no_color=True)
    return console


def stderr() -> Console:
    """A console on stderr for progress bars and prompts."""
    return Console(stderr=True, highlight=False, markup=False, emoji=False)


json_option = click.option("--json", "as_json", is_flag=True, help="Stable JSON for scripts.")
"""The ``--json`` flag every reporting subcommand takes."""


def clean(value: object) -> str:
    """``str(value)`` with control characters shown as ``?``.

    Security: user ids and device labels come from clients; rich markup is
    off on every console and this removes terminal escape sequences.
    """
    text = str(value)
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


def emit_json(data: Any) -> None:
    """Print ``data`` as stable JSON (sorted keys, two-space indent)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def error_line(message: object) -> str:
    """The one line printed for an error (operator text: paths kept, passwords masked)."""
    text = " ".join(for_operator(message).split())  # one line, whatever the message held
    return f"sessionward: error: {text}"


def when(ts: object) -> str:
    """A POSIX time as ``YYYY-MM-DD HH:MM:SSZ`` (``-`` for none)."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def client_of(row: dict[str, Any]) -> str:
    """``"device, ip"`` summary of a session row."""
    parts = [str(row.get(k)) for k in ("device", "ip") if row.get(k)]
    return ", ".join(parts) or "-"


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A simple table; the first column (handles) is never wrapped."""
    out = Table(title=title, title_justify="left")
    for index, name in enumerate(columns):
        out.add_column(name, no_wrap=index == 0, overflow="fold")
    for row in rows:
        out.add_row(*(clean(cell) for cell in row))
    return out


def session_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    """The ``list`` table."""
    return table(title, ("handle", "user", "created", "last seen", "expires", "client", "status"),
                 ((r["handle"], r.get("user") or "-", when(r.get("created")),
                   when(r.get("last_seen")), when(r.get("expires_at")), client_of(r),
                   r.get("status", "")) for r in rows))


def key_values(title: str, pairs: Iterable[tuple[str, object]]) -> Table:
    """A two-column field/value table."""
    return table(title, ("field", "value"), pairs)


def progress() -> Progress:
    """A progress bar on stderr (disabled when stderr is not a terminal)."""
    console = stderr()
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), console=console, disable=not console.is_terminal,
                    transient=False)
