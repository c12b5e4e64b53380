"""Shared pieces: the payload every contender stores, the timing loop, specs.

Fairness rules applied everywhere:

* every contender stores the same logical session: :func:`make_payload`
  (11 keys, ~1 KB of JSON) and changes the same key (``counter``) per cycle;
* every figure is the median of ``rounds`` timed rounds (≥ 5 quick, 7 full),
  with min and max kept, and each round is a batch of the same number of
  cycles after a warm-up;
* loops are bounded both in count (``max_cycles``) and in time
  (``round_seconds`` sizes each round).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

RESULT_PREFIX = "BENCH_RESULT "
SESSION_TTL = 3600
WARMUP_SECONDS = float(os.environ.get("SW_BENCH_WARMUP", "0.25"))
"""Warm-up per workload: caches, connections, CPU frequency, the store's own start-up."""


def make_payload() -> dict[str, Any]:
    """The session every contender stores: 11 keys, ~1 KB as compact JSON."""
    return {
        "user_id": 48151623,
        "username": "alice.example",
        "csrf_token": "9f" * 32,
        "roles": ["member", "editor", "billing-viewer"],
        "locale": "en-GB",
        "timezone": "Europe/London",
        "cart": [
            {"sku": f"SKU-{i:05d}", "qty": i % 3 + 1, "price": 19.99 + i,
             "note": "gift wrap, no receipt"}
            for i in range(8)
        ],
        "prefs": {"theme": "dark", "density": "compact", "beta": True, "page_size": 50},
        "flash": ["Welcome back!", "Your profile was updated.", "3 items left in stock."],
        "last_seen": 1_790_000_000.25,
        "counter": 0,
    }


def payload_size() -> int:
    """Size in bytes of the compact JSON encoding of :func:`make_payload`."""
    return len(json.dumps(make_payload(), separators=(",", ":")).encode())


@dataclass
class Stats:
    """Median / min / max of per-round figures (µs per cycle)."""

    median: float
    low: float
    high: float
    rounds: list[float]

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values), values)


@dataclass
class Outcome:
    """What a worker reports back to :mod:`bench.run`."""

    name: str
    status: str = "ok"  # ok | unavailable | error
    message: str = ""
    stats: dict[str, Any] | None = None
    per_round: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    rss_kb: int = 0

    def emit(self) -> None:
        self.rss_kb = peak_rss_kb()
        print(RESULT_PREFIX + json.dumps(asdict(self)), flush=True)


def peak_rss_kb() -> int:
    """Peak RSS of this process plus the peak of any waited-for child, in KiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(max(own, children))


def time_batch(run: Callable[[int, int], None], n: int, start: int) -> float:
    """Run ``n`` cycles starting at counter ``start``; return µs per cycle."""
    t0 = time.perf_counter_ns()
    run(n, start)
    return (time.perf_counter_ns() - t0) / 1000 / n


def measure(
    run: Callable[[int, int], None],
    rounds: int,
    round_seconds: float,
    max_cycles: int,
) -> tuple[Stats, int]:
    """Warm up, size a round to ~``round_seconds``, then time ``rounds`` rounds.

    ``run(n, start)`` performs ``n`` cycles.  Returns per-round µs/cycle
    statistics and the cycles per round.
    """
    warm, done, t_end = 0.0, 0, time.perf_counter() + WARMUP_SECONDS
    while done < 60 or (time.perf_counter() < t_end and done < 5000):
        warm = time_batch(run, 20, done)
        done += 20
    per_round = int(max(20, min(max_cycles, round_seconds * 1e6 / max(warm, 0.1))))
    counter = 100
    values: list[float] = []
    for _ in range(rounds):
        values.append(time_batch(run, per_round, counter))
        counter += per_round
    return Stats.of(values), per_round


def measure_paired(
    run: Callable[[int, int], None],
    floor: Callable[[int, int], None],
    rounds: int,
    round_seconds: float,
    max_cycles: int,
) -> tuple[Stats, Stats, Stats, int, int]:
    """Like :func:`measure` for a contender and its raw floor, interleaved.

    Rounds alternate contender/floor (order flipped every round) so both see
    the same machine state; the ratio is taken per round pair and its median
    reported – far steadier on a noisy VM than a ratio of separate medians.
    Returns (contender, floor, ratio, contender cycles/round, floor cycles/round).
    """
    sizes = []
    for fn in (run, floor):
        warm, done, t_end = 0.0, 0, time.perf_counter() + WARMUP_SECONDS
        while done < 60 or (time.perf_counter() < t_end and done < 5000):
            warm = time_batch(fn, 20, done)
            done += 20
        sizes.append(int(max(20, min(max_cycles, round_seconds * 1e6 / max(warm, 0.1)))))
    mine: list[float] = []
    base: list[float] = []
    ratios: list[float] = []
    counter = 10_000
    for r in range(rounds):
        order = [(run, sizes[0], mine), (floor, sizes[1], base)]
        for fn, n, sink in order if r % 2 == 0 else reversed(order):
            sink.append(time_batch(fn, n, counter))
            counter += n
        ratios.append(mine[-1] / base[-1])
    return Stats.of(mine), Stats.of(base), Stats.of(ratios), sizes[0], sizes[1]


def _round_size(fn: Callable[[int, int], None], round_seconds: float, max_cycles: int) -> int:
    """Warm ``fn`` up and return the cycles that fill ~``round_seconds`` (bounded)."""
    warm, done, t_end = 0.0, 0, time.perf_counter() + WARMUP_SECONDS
    while done < 60 or (time.perf_counter() < t_end and done < 5000):
        warm = time_batch(fn, 20, done)
        done += 20
    return int(max(20, min(max_cycles, round_seconds * 1e6 / max(warm, 0.1))))


def measure_interleaved(
    runs: dict[str, Callable[[int, int], None]],
    reference: str,
    rounds: int,
    round_seconds: float,
    max_cycles: int,
) -> tuple[dict[str, Stats], dict[str, Stats], dict[str, int]]:
    """:func:`measure_paired` for any number of contenders in one process.

    Every round times each contender once, the order rotated by one place per
    round so none is always first or last; each contender's per-round figure
    is divided by ``reference``'s figure of the *same* round and the median of
    those ratios is reported.  Returns (µs/cycle stats, ratio-to-reference
    stats, cycles per round), each keyed like ``runs``.
    """
    names = list(runs)
    sizes = {n: _round_size(runs[n], round_seconds, max_cycles) for n in names}
    values: dict[str, list[float]] = {n: [] for n in names}
    counter = 10_000
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            values[n].append(time_batch(runs[n], sizes[n], counter))
            counter += sizes[n]
    ref = values[reference]
    stats = {n: Stats.of(v) for n, v in values.items()}
    ratios = {n: Stats.of([a / b for a, b in zip(v, ref, strict=True)])
              for n, v in values.items()}
    return stats, ratios, sizes
