"""Clocks.  Time is a parameter everywhere: wall time for expiry, monotonic
time for waits.  ``FrozenClock`` (tests) lives in :mod:`sessionward.testing`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Returns the current wall-clock time as POSIX seconds."""

system_clock: Clock = time.time
"""The default clock."""


class FrozenClock:
    """A manual clock for tests: ``clock()`` returns ``now``; ``advance`` moves it.

    Thread-safe enough for tests (float assignment is atomic in CPython).
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds
