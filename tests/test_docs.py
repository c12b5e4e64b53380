"""Docs stay true to the code: the defaults table in docs/concepts.md (ASVS 5.0 7.1.1)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sessionward import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _render(value: object) -> str:
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())} s"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_defaults_table_matches_settings() -> None:
    text = (DOCS / "concepts.md").read_text()
    section = text.split("## Defaults", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w+) \| ([^|]+) \|$", section, re.MULTILINE)
    table = {name: value.strip() for name, value in rows if name != "setting"}
    assert len(table) >= 12
    defaults = Settings()
    for name, documented in table.items():
        assert _render(getattr(defaults, name)) == documented, name
