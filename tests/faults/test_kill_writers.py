"""``kill -9`` of store writers at random points, short form (issue 18, part 4).

50 trials per store (SQLite, filesystem), two SessionManager writers each,
forked by a thread-free driver and SIGKILLed at random points.  The long
form (1,000 trials per store) runs in ``make faults`` / ``make soak``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def scenario() -> ModuleType:
    """``bench.faults.kill_writers`` (the repository root is not on sys.path)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.faults.kill_writers")


@pytest.mark.parametrize("kind", ["sqlite", "filesystem"])
def test_kill_9_tears_nothing_and_loses_nothing_acknowledged(kind: str) -> None:
    """After every kill: integrity_check ok, every record opens, every live
    session holds every acknowledged item, every acknowledged throttle hit
    is counted, and the store still takes writes."""
    out = scenario().run_driver(kind, 50, seed=1818)
    assert out["trials"] == 50
    assert out["acked"] > 100  # the writers really wrote while being killed
    assert out["errors"] == []
    assert out["bad_integrity"] == 0
    assert out["torn"] == 0
    assert out["lost_sessions"] == 0
    assert out["lost_items"] == 0
    assert out["lost_hits"] == 0
    assert out["not_writable"] == 0
    assert out["live_at_end"] > 0
