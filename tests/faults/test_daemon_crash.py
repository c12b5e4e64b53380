"""The daemon-crash fault scenario, short form (issue 18, part 5): ``kill -9`` of
``sessionward serve`` twice under two clients, restarted by a supervisor loop.

The long form (4 client processes, 6 crashes) runs in ``make faults`` /
``make soak`` through ``bench.faults.daemon_crash.SCENARIOS``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.daemon, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def scenario_module() -> ModuleType:
    """``bench.faults.daemon_crash`` (the repository root is not on sys.path)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.faults.daemon_crash")


def test_kill_9_loses_nothing_acknowledged() -> None:
    """Clients reconnect by themselves; no acknowledged write is lost or applied
    twice; no session is lost; a lease held at a crash is taken after its TTL;
    nothing is torn (integrity_check ok, every record opens)."""
    (row,) = scenario_module().run(True)
    assert row.requests > 100
    assert row.acked_writes_lost == 0
    assert row.sessions_lost == 0
    assert "items applied twice: 0;" in row.notes
    assert "integrity_check: ok" in row.notes
    assert "a lease held at a crash was taken" in row.notes
    assert "tracebacks in the last daemon's log: 0" in row.notes
