"""Throughput under contention (issue 4, point 6.2).

``n`` client processes (1, 2, 4, 8) run requests for a fixed window, either
all on ONE session or each on its OWN session, through one mode:

* ``optimistic`` – ``load`` → set this worker's own key ``w<i>`` → ``save``
  (disjoint keys: the merge on save must let them all through);
* ``exclusive`` – ``with open(cookie, mode="exclusive")``: ``hits += 1``;
* ``update`` – ``load`` → ``update(s, "hits", +1)`` → ``save``.

Reported: total successful requests per second (sum over workers ÷ the
longest worker's wall time in the window), median of the rounds, and every
exception the library *raised*, by type (``SessionConflictError``,
``LockTimeoutError`` …) – a reported failure the app can retry.  At the end
the sessions are read back and every success must be there: ``hits`` equals
the successful ``exclusive``/``update`` requests, ``w<i>`` equals worker
``i``'s successful optimistic saves; a shortfall is a *silent* loss.

Fairness: the clients are forked once per workload (imports done before the
fork, every connection opened after it) and reused for every worker count,
idle ones blocked on their queue; each window starts at the same monotonic
instant for all workers.  Loops are bounded by the window, by ``max_cycles``
per worker per round and by ``MAX_ERRORS``.  The memory store is
per-process, so it is not part of this.
"""

from __future__ import annotations

import importlib
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.common import Outcome, Stats, make_payload
from bench.sw import shared_keyring
from bench.targets import TARGETS, Env

LAYOUTS = ("one", "own")
"""``one``: every worker on the same session; ``own``: a session per worker."""
MAX_ERRORS = 20_000
PRELOAD = ("redis", "hiredis", "sessionward.lifecycle.manager", "sessionward.stores.sqlite",
           "sessionward.stores.redis", "sessionward.stores.filesystem")
START_MARGIN = 0.05
"""Seconds between sending a window's command and its common start instant
(a client that gets it late starts late, and its wall time counts from the
common instant, so lateness can only lower the figure)."""


@dataclass(frozen=True)
class Plan:
    """What one contention workload runs."""

    store: str
    mode: str
    workers: tuple[int, ...]
    rounds: int
    seconds: float
    max_cycles: int


def specs(quick: bool) -> list[dict[str, Any]]:
    """Quick: update mode, 1 and 4 workers, SQLite + Redis.  Full: the whole matrix."""
    if quick:
        grid = [(t, "update") for t in ("sw_sqlite", "sw_redis")]
        sizing: dict[str, Any] = {"workers": [1, 4], "seconds": 0.1, "rounds": 5,
                                  "max_cycles": 3000}
    else:
        grid = [(t, m) for t in ("sw_sqlite", "sw_fs", "sw_redis")
                for m in ("optimistic", "exclusive", "update")]
        sizing = {"workers": [1, 2, 4, 8], "seconds": 0.5, "rounds": 5, "max_cycles": 20000}
    return [{"group": "contention", "name": f"contention:{t}:{m}", "workload": "contention",
             "target": t, "mode": m, **sizing} for t, m in grid]


# ---------------------------------------------------------------- client side


def _request(manager: Any, mode: str, index: int) -> Callable[[str, int], None]:
    """One request of ``mode``; ``ok`` is this worker's successes so far."""

    def optimistic(cookie: str, ok: int) -> None:
        s = manager.load(cookie)
        if s is None:
            raise RuntimeError("session vanished")
        s[f"w{index}"] = ok + 1
        manager.save(s)

    def exclusive(cookie: str, ok: int) -> None:
        with manager.open(cookie, mode="exclusive") as s:
            if s.is_new:
                raise RuntimeError("session vanished")
            s["hits"] = (s.get("hits") or 0) + 1

    def update(cookie: str, ok: int) -> None:
        s = manager.load(cookie)
        if s is None:
            raise RuntimeError("session vanished")
        manager.update(s, "hits", lambda v: (v or 0) + 1)
        manager.save(s)

    return {"optimistic": optimistic, "exclusive": exclusive, "update": update}[mode]


@dataclass
class Window:
    """One worker's result for one timed window."""

    done: int = 0
    ok_end: int = 0
    elapsed: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    """The first message seen for each exception type (for the report)."""


def _window(request: Callable[[str, int], None], cookie: str, ok: int, start_at: float,
            seconds: float, max_cycles: int) -> Window:
    """Run requests from ``start_at`` for ``seconds`` (at most ``max_cycles``)."""
    w = Window()
    time.sleep(max(0.0, start_at - time.monotonic()))
    deadline = start_at + seconds
    while time.monotonic() < deadline and w.done < max_cycles:
        try:
            request(cookie, ok + w.done)
            w.done += 1
        except Exception as exc:  # counted: a reported failure, never hidden
            kind = type(exc).__name__
            w.errors[kind] = w.errors.get(kind, 0) + 1
            w.messages.setdefault(kind, str(exc)[:200])
            if sum(w.errors.values()) >= MAX_ERRORS:
                break
    w.elapsed = time.monotonic() - start_at
    return w


def _client(spec: dict[str, Any], index: int, inbox: Any, outbox: Any) -> None:
    """Forked client: build its own manager, then serve windows until ``None``."""
    try:
        target: Any = TARGETS[spec["target"]].build(Env(**spec["env"]))
        request = _request(target.manager, spec["mode"], index)
    except Exception as exc:
        outbox.put((index, f"{type(exc).__name__}: {exc}"))
        return
    outbox.put((index, ""))
    ok = 0
    for _ in range(10_000):  # bounded; the parent sends far fewer commands
        command = inbox.get(timeout=300)
        if command is None:
            break
        cookie, start_at, seconds, max_cycles = command
        w = _window(request, cookie, ok, start_at, seconds, max_cycles)
        ok += w.done
        w.ok_end = ok
        outbox.put((index, asdict(w)))
    target.close()
    outbox.put((index, ok))


# ---------------------------------------------------------------- parent side


class Pool:
    """``size`` forked clients, each with its own inbox, one shared outbox."""

    def __init__(self, spec: dict[str, Any], size: int) -> None:
        for module in PRELOAD:  # imports only: no connection or file before the fork
            importlib.import_module(module)
        shared_keyring(Env(**spec["env"]))  # one key file, written before any client reads
        ctx = multiprocessing.get_context("fork")
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(size)]
        self.procs = [ctx.Process(target=_client, args=(spec, i, q, self.outbox), daemon=True)
                      for i, q in enumerate(self.inboxes)]
        for p in self.procs:  # forked before this process opens any connection or file
            p.start()

    def ready(self) -> None:
        problems = [self.outbox.get(timeout=60)[1] for _ in self.procs]
        if any(problems):
            raise RuntimeError(f"client failed to start: {next(p for p in problems if p)}")

    def window(self, cookies: list[str], seconds: float, max_cycles: int) -> list[Window]:
        """One timed window for the first ``len(cookies)`` clients."""
        start_at = time.monotonic() + START_MARGIN
        for q, cookie in zip(self.inboxes, cookies, strict=False):
            q.put((cookie, start_at, seconds, max_cycles))
        got = [self.outbox.get(timeout=seconds + 60) for _ in cookies]
        return [Window(**w) for _, w in sorted(got)]

    def stop(self) -> None:
        """Stop every client (each sends its total successes last) and reap it."""
        for q in self.inboxes:
            q.put(None)
        for _ in self.procs:
            self.outbox.get(timeout=60)
        for p in self.procs:
            p.join(10)


def _run_layout(pool: Pool, plan: Plan, cookies: list[str]) -> dict[str, Any]:
    """Every worker count on one layout: throughput stats and reported failures,
    then the read-back check of this layout's sessions."""
    rows = []
    done_by: dict[int, int] = {}
    last_ok: dict[int, int] = {}
    for n in plan.workers:
        rates: list[float] = []
        errors: dict[str, int] = {}
        messages: dict[str, str] = {}
        for _ in range(plan.rounds):
            ws = pool.window(cookies[:n], plan.seconds, plan.max_cycles)
            rates.append(sum(w.done for w in ws) / max(max(w.elapsed for w in ws), 1e-6))
            for i, w in enumerate(ws):
                done_by[i] = done_by.get(i, 0) + w.done
                last_ok[i] = w.ok_end
                for k, v in w.errors.items():
                    errors[k] = errors.get(k, 0) + v
                messages = w.messages | messages
        rows.append({"workers": n, "stats": asdict(Stats.of(rates)), "errors": errors,
                     "messages": messages, "failed": sum(errors.values())})
    return {"rows": rows, "want": _expected(plan, cookies, done_by, last_ok)}


def _expected(plan: Plan, cookies: list[str], done_by: dict[int, int],
              last_ok: dict[int, int]) -> dict[tuple[str, str], int]:
    """(cookie, key) → the value it must hold after one layout, from what each
    worker was told succeeded: ``w<i>`` holds worker i's last success count
    (optimistic); ``hits`` the successes of every worker on that session."""
    want: dict[tuple[str, str], int] = {}
    for i, done in done_by.items():
        if plan.mode == "optimistic":
            if done:
                want[(cookies[i], f"w{i}")] = last_ok[i]
        else:
            want[(cookies[i], "hits")] = want.get((cookies[i], "hits"), 0) + done
    return want


def _losses(target: Any, want: dict[tuple[str, str], int]) -> dict[str, int]:
    """Stored values against acknowledged successes: a shortfall is a silent loss."""
    lost = extra = 0
    for (cookie, key), value in want.items():
        s = target.manager.load(cookie)
        stored = int((s.data_snapshot() if s else {}).get(key) or 0)
        lost += max(0, value - stored)
        extra += max(0, stored - value)
    return {"silently_lost": lost, "stored_beyond_acknowledged": extra,
            "values_checked": len(want)}


def contention_workload(spec: dict[str, Any]) -> Outcome:
    """Requests/s for each worker count and layout, with failures and silent losses."""
    plan = Plan(TARGETS[spec["target"]].store, spec["mode"], tuple(spec["workers"]),
                int(spec["rounds"]), float(spec["seconds"]), int(spec["max_cycles"]))
    size = max(plan.workers)
    pool = Pool(spec, size)
    target: Any = TARGETS[spec["target"]].build(Env(**spec["env"]))
    pool.ready()
    layouts: dict[str, Any] = {}
    for layout in LAYOUTS:
        shared = layout == "one"
        cookies = ([target.create(make_payload() | {"hits": 0})] * size if shared else
                   [target.create(make_payload() | {"hits": 0}) for _ in range(size)])
        result = _run_layout(pool, plan, cookies)
        layouts[layout] = {"rows": result["rows"], **_losses(target, result["want"])}
    pool.stop()
    target.close()
    medians = [r["stats"]["median"] for lay in layouts.values() for r in lay["rows"]]
    return Outcome(spec["name"], stats=asdict(Stats.of(medians)),
                   extra={"unit": "cycles/s", "store": plan.store, "mode": plan.mode,
                          "layouts": layouts, "seconds_per_window": plan.seconds,
                          "rounds": plan.rounds})
