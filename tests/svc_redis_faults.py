"""Import helper for the Redis fault scenarios (the repository root is not on sys.path)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def scenario(name: str) -> ModuleType:
    """``bench.faults.<name>``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"bench.faults.{name}")


def sane(counts: object) -> None:
    """Counts that were measured and make sense, whatever the replication mode:
    requests made, no error to the app other than a StoreError (503), nothing
    applied twice, no logged-out or rotated-away session back."""
    assert counts.requests > 100
    assert counts.other_errors == ""
    assert counts.duplicates == 0
    assert counts.resurrected == 0
    assert counts.sessions > 0
