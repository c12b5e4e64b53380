"""Griffe extension for the docs site: Sphinx roles in docstrings become links.

The docstrings use Sphinx cross-reference roles (``:class:`~sessionward.Settings```,
``:meth:`SessionManager.save```), which Markdown would show as raw text.  Each
role becomes an *optional* autorefs link: a link where the target is documented
on the site, plain code where it is not (so ``mkdocs build --strict`` never
fails on a name the API reference does not render).  ``~`` shows the last
component only, as in Sphinx.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|mod|attr|exc|obj|const):`([^`]+)`")
"""A Sphinx role: ``target``, ``~target``, ``target()`` or ``title <target>``."""


def _absolute(target: str, obj: Any) -> str:
    """``target`` as a full dotted path: as given, or relative to the object's module."""
    if target.startswith("sessionward"):
        return target
    module = obj if getattr(obj, "is_module", False) else obj.module
    return f"{module.path}.{target}"


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring to an optional autorefs link."""

    def on_instance(self, *, obj: Any, **_: Any) -> None:
        docstring = getattr(obj, "docstring", None)
        if docstring is None or ":" not in docstring.value:
            return

        def link(match: re.Match[str]) -> str:
            inner = match.group(1)
            title, _, target = inner.rpartition("<") if inner.endswith(">") else ("", "", inner)
            target = target.rstrip(">").strip().lstrip(".")
            short = target.startswith("~")
            target = target.lstrip("~").removesuffix("()")
            shown = title.strip() or (target.rsplit(".", 1)[-1] if short else target)
            if inner.rstrip(">").endswith("()") and not title:
                shown += "()"
            return (f'<autoref identifier="{_absolute(target, obj)}" optional>'
                    f"<code>{shown}</code></autoref>")

        docstring.value = _ROLE.sub(link, docstring.value)
