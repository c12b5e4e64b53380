"""Usage help that names the fix: a global option given after the command.

``sessionward list --store URL`` is the most common slip: click only knows
``--store`` on the group, so the command says "No such option".  We answer
with the corrected command line instead (global options moved before the
command, everything else in its order), which the operator can run as is.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import click


def _global_options(group: click.Group) -> dict[str, bool]:
    """Every global option spelling -> whether it takes a value."""
    found: dict[str, bool] = {}
    for param in group.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = not param.is_flag and not param.count
    return found


def _take(args: Sequence[str], index: int, known: dict[str, bool]) -> list[str]:
    """The option at ``args[index]`` with its value, when it takes one."""
    token = args[index]
    name = token.split("=", 1)[0]
    if known.get(name) and "=" not in token and index + 1 < len(args):
        return [token, args[index + 1]]
    return [token]


def misplaced_global(group: click.Group, args: Sequence[str], option: str) -> str | None:
    """The corrected command line when ``option`` is a global option after the command.

    Returns:
        ``"global options go before the command: sessionward --store URL list"``
        (with the operator's own values), or None when ``option`` is not global.
    """
    known = _global_options(group)
    if option not in known:
        return None
    before: list[str] = []
    index = 0
    while index < len(args) and args[index].startswith("-"):
        taken = _take(args, index, known)
        before += taken
        index += len(taken)
    moved: list[str] = []
    kept: list[str] = []
    while index < len(args):
        name = args[index].split("=", 1)[0]
        taken = _take(args, index, known) if name in known else [args[index]]
        (moved if name in known else kept).extend(taken)
        index += len(taken)
    line = shlex.join(["sessionward", *before, *moved, *kept])
    return f"global options go before the command: {line}"
