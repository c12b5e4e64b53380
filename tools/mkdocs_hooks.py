"""mkdocs hooks for the documentation site (``mkdocs.yml`` ``hooks:``).

``docs/security-policy.md`` shows the repository's ``SECURITY.md`` (one source
of truth): its links point into ``docs/`` from the repository root, so they are
rewritten to be relative to the docs directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_DOCS_LINK = re.compile(r"\]\(docs/")


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Replace the security-policy page with SECURITY.md, links made docs-relative."""
    if page.file.src_uri != "security-policy.md":
        return markdown
    return _DOCS_LINK.sub("](", (ROOT / "SECURITY.md").read_text(encoding="utf-8"))
