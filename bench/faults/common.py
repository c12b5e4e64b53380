"""What every fault scenario reports (issue 18).

Minimal version written with the daemon-crash scenario; the fault harness
(``make faults``, the report table) builds on these two dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One line of the fault report.

    Attributes:
        scenario: what was done (e.g. "daemon kill -9 ×3 under 4 clients").
        requests: requests the clients made.
        user_visible_failures: requests that failed to the app (503 /
            ``StoreUnavailableError``).
        failure_window_s: seconds during which requests failed.
        sessions_lost: sessions that stopped loading (a logout).
        acked_writes_lost: writes acknowledged to the app and missing afterwards.
        notes: anything else measured (duplicates, lease waits, integrity).
    """

    scenario: str
    requests: int
    user_visible_failures: int
    failure_window_s: float
    sessions_lost: int
    acked_writes_lost: int
    notes: str = ""


@dataclass(frozen=True)
class Scenario:
    """A named fault scenario; ``run(short)`` runs it (``short``: the bounded
    form for ``make test``) and returns its report rows."""

    name: str
    run: Callable[[bool], list[Row]]


def failure_windows(stamps: list[float], gap: float = 0.5) -> float:
    """Total seconds covered by runs of failures (a gap over ``gap`` s splits them)."""
    total, start, last = 0.0, None, None
    for t in sorted(stamps):
        if start is None or last is None or t - last > gap:
            if start is not None and last is not None:
                total += last - start
            start = t
        last = t
    if start is not None and last is not None:
        total += last - start
    return total
