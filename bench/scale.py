"""Scale benchmarks (issue 10, part 4) – placeholder until sessionward lands."""

from __future__ import annotations

from typing import Any


def specs(quick: bool) -> list[dict[str, Any]]:
    return []
