"""Cost of one request in each open mode (issue 4, point 6.1).

Per store, four request shapes on the same ~1 KB / 11-key session, all
through the public :class:`~sessionward.lifecycle.manager.SessionManager` API:

* ``read`` – ``load(cookie, mode="read")`` and read a key (nothing is saved;
  a read-mode session cannot be);
* ``optimistic`` – ``load`` → change ``counter`` → ``save`` (the default);
* ``exclusive`` – ``with open(cookie, mode="exclusive")``: take the lease,
  load, change ``counter``, save, release;
* ``update`` – ``load`` → ``update(s, "hits", +1)`` → ``save`` (the final save
  is the end of the request and writes nothing more).

Fairness: the four run in ONE process against ONE session, interleaved round
by round (order rotated every round, see
:func:`bench.common.measure_interleaved`), so each ratio to ``optimistic``
compares rounds that saw the same machine state.  No concurrency here – this
is the price of the mode itself; contention is :mod:`bench.contention`.
Afterwards the session is read back: ``counter`` must hold the last value
written, ``hits`` must equal the number of ``update`` cycles run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench.common import Outcome, make_payload, measure_interleaved
from bench.targets import TARGETS, Env

MODES = ("read", "optimistic", "exclusive", "update")
STORES = ("sw_memory", "sw_sqlite", "sw_fs", "sw_redis")
REFERENCE = "optimistic"

Run = Callable[[int, int], None]


def specs(quick: bool) -> list[dict[str, Any]]:
    """One workload per store.  A round times all four modes, so each mode's
    share of it is kept short (0.05 s quick, 0.3 s full); the round count
    stays the profile's (5 quick, 7 full)."""
    return [{"group": "modes", "name": f"modes:{t}", "workload": "modes", "target": t,
             "round_seconds": 0.05 if quick else 0.3}
            for t in STORES]


def _runs(manager: Any, cookie: str, tally: dict[str, int]) -> dict[str, Run]:
    """The four request shapes as ``run(n, start)`` loops over ``cookie``."""

    def load(mode: str) -> Any:
        s = manager.load(cookie, mode=mode)
        if s is None:
            raise RuntimeError("session vanished")
        return s

    def read(n: int, start: int) -> None:
        for _ in range(n):
            _ = load("read")["counter"]

    def optimistic(n: int, start: int) -> None:
        for i in range(start, start + n):
            s = load("optimistic")
            s["counter"] = i
            manager.save(s)
        tally["counter"] = start + n - 1

    def exclusive(n: int, start: int) -> None:
        for i in range(start, start + n):
            with manager.open(cookie, mode="exclusive") as s:
                s["counter"] = i
        tally["counter"] = start + n - 1

    def update(n: int, start: int) -> None:
        for _ in range(n):
            s = load("optimistic")
            manager.update(s, "hits", lambda v: (v or 0) + 1)
            manager.save(s)
        tally["hits"] += n

    return {"read": read, "optimistic": optimistic, "exclusive": exclusive, "update": update}


def _check(manager: Any, cookie: str, tally: dict[str, int]) -> None:
    """Every write must be there: the last ``counter`` and every ``hits`` increment."""
    data = manager.load(cookie).data_snapshot()
    for key, expected in tally.items():
        if data.get(key, 0) != expected:
            raise RuntimeError(f"{key}: stored {data.get(key)!r}, expected {expected}")


def modes_workload(spec: dict[str, Any]) -> Outcome:
    """µs per request in each mode on one store, and each ÷ the optimistic cycle."""
    env = Env(**spec["env"])
    target: Any = TARGETS[spec["target"]].build(env)
    cookie = target.create(make_payload() | {"hits": 0})
    tally = {"counter": 0, "hits": 0}
    runs = _runs(target.manager, cookie, tally)
    stats, ratios, sizes = measure_interleaved(runs, REFERENCE, spec["rounds"],
                                               spec["round_seconds"], spec["max_cycles"])
    _check(target.manager, cookie, tally)
    target.close()
    return Outcome(spec["name"], stats=asdict(stats[REFERENCE]), per_round=sizes[REFERENCE],
                   extra={"store": TARGETS[spec["target"]].store,
                          "modes": {m: asdict(stats[m]) for m in MODES},
                          "ratio_to_optimistic": {m: asdict(ratios[m]) for m in MODES},
                          "cycles_per_round": sizes, "updates_checked": tally["hits"]})
