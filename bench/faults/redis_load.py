"""The session workload and the accounting shared by the Redis fault scenarios
(``redis_cluster``, ``redis_sentinel``, ``redis_aof``; issue 18).

Each client process runs session cycles on its own sessions through an
embedded :class:`~sessionward.SessionManager`: creates, logins (which rotate
the ID), load → append a unique item → save, logouts.  A request is
*acknowledged* when the call returned; a request that raised a
``StoreError`` is a user-visible failure (a 503) whose outcome is unknown, so
a session whose create, login or logout failed is no longer tracked.

Afterwards :func:`verify` opens every tracked session again and counts:
acknowledged items missing (acknowledged writes lost), items stored twice,
sessions that stopped loading (lost), and logged-out or rotated-away IDs that
load again (resurrected).
"""

from __future__ import annotations

import multiprocessing
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faults.common import Row, failure_windows

ROOT = Path(__file__).resolve().parents[2]


def use_test_harness() -> None:
    """Put ``tests/`` on ``sys.path`` (the process harness lives in svc_redis*.py)."""
    for path in (ROOT / "tests", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


@dataclass
class Counts:
    """What one run measured (see the module docstring)."""

    requests: int = 0
    failures: int = 0
    failure_window_s: float = 0.0
    sessions: int = 0
    sessions_lost: int = 0
    acked_lost: int = 0
    duplicates: int = 0
    resurrected: int = 0
    other_errors: str = ""

    def notes(self) -> str:
        return (f"{self.sessions} sessions; items applied twice: {self.duplicates}; "
                f"resurrected sessions: {self.resurrected}; errors other than "
                f"StoreError: {self.other_errors or 'none'}")

    def row(self, scenario: str, first_note: str) -> Row:
        """This run as a fault-report row; ``first_note`` leads the notes."""
        return Row(scenario, requests=self.requests, user_visible_failures=self.failures,
                   failure_window_s=self.failure_window_s, sessions_lost=self.sessions_lost,
                   acked_writes_lost=self.acked_lost, notes=f"{first_note}; {self.notes()}")


def client_loop(url: str, key_file: str, cid: int, seconds: float) -> dict[str, Any]:
    """One client's cycles for ``seconds``; returns what it saw and what was acked."""
    from sessionward import SessionManager
    from sessionward.core.errors import StoreError

    manager = SessionManager.from_url(url, key_file=key_file)
    rng = random.Random(cid)
    live: list[dict[str, Any]] = []  # {"cookie", "acked", "user"}
    done: list[dict[str, Any]] = []  # tracked to the end (incl. lost-while-running)
    dead: list[str] = []  # logged-out or rotated-away cookies: must never load again
    failures: list[float] = []
    other: dict[str, int] = {}
    requests = lost = k = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        requests += 1
        pick = rng.random()
        current = live[rng.randrange(len(live))] if live else None
        try:
            if current is None or (pick < 0.06 and len(live) < 6):
                session = manager.new()
                session["items"] = []
                manager.save(session)
                live.append({"cookie": session.cookie_value, "acked": [], "user": None})
                continue
            cookie = current["cookie"]
            loaded = manager.load(cookie)
            if loaded is None:
                lost += 1
                live.remove(current)
                current["lost"] = True
                done.append(current)
                continue
            if pick < 0.10 and current["user"] is None:
                live.remove(current)  # outcome unknown until login returns
                user = f"u{cid}-{requests}"
                loaded = manager.login(loaded, user)
                dead.append(cookie)
                current.update(cookie=loaded.cookie_value, user=user)
                live.append(current)
            elif pick < 0.13:
                live.remove(current)
                manager.logout(loaded)
                dead.append(cookie)
            else:
                k += 1
                item = f"{cid}-{k}"
                loaded["items"] = [*loaded.get("items", []), item]
                manager.save(loaded)
                current["cookie"] = loaded.cookie_value or cookie
                current["acked"].append(item)
        except StoreError:
            failures.append(time.monotonic())
            time.sleep(0.01)
        except Exception as exc:  # counted: the scenario's point is what the app sees
            other[type(exc).__name__] = other.get(type(exc).__name__, 0) + 1
    manager.close()
    return {"sessions": live + done, "dead": dead, "failures": failures,
            "requests": requests, "lost": lost, "other": other}


def _client_process(url: str, key_file: str, cid: int, seconds: float, out: Any) -> None:
    out.put(client_loop(url, key_file, cid, seconds))


class Clients:
    """``n`` client processes (spawned) running :func:`client_loop`."""

    def __init__(self, url: str, key_file: str, n: int, seconds: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._out = ctx.Queue()
        self._seconds = seconds
        self._procs = [ctx.Process(target=_client_process,
                                   args=(url, key_file, i, seconds, self._out))
                       for i in range(n)]
        for proc in self._procs:
            proc.start()

    def results(self) -> list[dict[str, Any]]:
        """Every client's result.

        Raises:
            RuntimeError: a client process died without one, or none came in time.
        """
        import queue

        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + self._seconds + 120
        while len(found) < len(self._procs):
            try:
                found.append(self._out.get(timeout=1))
            except queue.Empty:
                crashed = [p.exitcode for p in self._procs if p.exitcode not in (None, 0)]
                if crashed or time.monotonic() > deadline:
                    raise RuntimeError(f"client processes failed (exit codes {crashed})") from None
        for proc in self._procs:
            proc.join(30)
        return found


def verify(url: str, key_file: str, results: list[dict[str, Any]]) -> Counts:
    """Open every tracked session again and count (see the module docstring)."""
    from sessionward import SessionManager

    manager = SessionManager.from_url(url, key_file=key_file)
    counts = Counts()
    try:
        for result in results:
            for session in result["sessions"]:
                counts.sessions += 1
                if session.get("lost"):
                    counts.acked_lost += len(session["acked"])
                    continue
                loaded = _load(manager, session["cookie"])
                items = [] if loaded is None else list(loaded.get("items", []))
                counts.sessions_lost += loaded is None
                counts.acked_lost += len(set(session["acked"]) - set(items))
                counts.duplicates += len(items) - len(set(items))
            counts.resurrected += sum(_load(manager, c) is not None for c in result["dead"])
    finally:
        manager.close()
    stamps = [t for r in results for t in r["failures"]]
    other: dict[str, int] = {}
    for result in results:
        for name, n in result["other"].items():
            other[name] = other.get(name, 0) + n
    counts.requests = sum(r["requests"] for r in results)
    counts.failures = len(stamps)
    counts.failure_window_s = round(failure_windows(stamps), 2)
    counts.sessions_lost += sum(r["lost"] for r in results)
    counts.other_errors = ", ".join(f"{k} ×{v}" for k, v in sorted(other.items()))
    return counts


def under_fault(url: str, key_file: str, clients: int, seconds: float,
                fault: Callable[[], float],
                settle: Callable[[], None] | None = None) -> tuple[Counts, float]:
    """Clients for ``seconds`` with ``fault()`` run a third of the way in.

    ``fault`` injects the failure and returns the seconds until the store
    recovered (its own measure: promotion, switch, restart); ``settle`` runs
    after the clients stopped and before :func:`verify` (e.g. until a cluster
    is healthy again).  Returns the counts and ``fault``'s figure (NaN when it
    did not finish).
    """
    measured: list[float] = []

    def injector() -> None:
        time.sleep(seconds / 3)
        measured.append(fault())

    running = Clients(url, key_file, clients, seconds)
    thread = threading.Thread(target=injector, daemon=True)
    thread.start()
    results = running.results()
    thread.join(60)
    if settle is not None:
        settle()
    return verify(url, key_file, results), (measured[0] if measured else float("nan"))


def _load(manager: Any, cookie: str) -> Any:
    """A load that waits out a store still healing (up to 30 s)."""
    from sessionward.core.errors import StoreError

    deadline = time.monotonic() + 30
    while True:
        try:
            return manager.load(cookie, mode="read")
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
