"""Where a request runs: on the event loop while the store answers fast, else in the pool.

Running a handler inline on the loop saves the thread hand-off (about
0.4–1.1 ms of CPU per cycle on this 2-core machine, issue 16), but a handler
that waits on its store would stall every other connection.  Three rules
keep the loop free *by construction*:

1. Commands that wait by design — ``lock`` (a bounded lease wait), lease
   release, admin scans, per-user listings — always run in the pool
   (:data:`sessionward.daemon.handlers.POOLED`).
2. On the loop, the first store write of a handler may not wait for a
   lock: :class:`GatedStore` gives the loop thread's SQLite connection a
   busy timeout of :data:`LOOP_BUSY_TIMEOUT`.  If that write finds the file
   locked, nothing has been written yet, so the handler is abandoned
   (:class:`Contended`) and run again from the start in the pool, where the
   store's normal busy timeout applies.  Once a handler has written, its
   later writes wait as they always did (abandoning it then could apply
   half of it twice).
3. :class:`InlineGate` times every handler.  One slower than
   :data:`SLOW_SECONDS` (a store on a slow disk or a slow network) moves
   every request to the pool until :data:`RECOVERY_RUNS` handlers in a row
   ran fast there — the loop never probes a slow store itself.

Race timeline for rule 2 (why the retry cannot apply a save twice)::

    t0  loop: save K (CAS version 4)        other process holds the write lock
    t1  loop: UPDATE ... -> SQLITE_BUSY after 2 ms; no row changed
        -> Contended; the loop serves other connections
    t2  pool: the same save from the start: restore (version 4), CAS waits
        for the lock (busy timeout 5 s), applies once -> version 5
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import StoreTimeoutError

SLOW_SECONDS = 0.01
"""A handler slower than this (on the loop or in the pool) means a slow store."""
RECOVERY_RUNS = 20
"""Fast handlers in a row, in the pool, before requests run on the loop again."""
LOOP_BUSY_TIMEOUT = 0.002
"""SQLite busy timeout of the loop thread's first write (seconds)."""
READS = frozenset({"load", "by_user", "scan", "stats", "kv_get", "ping"})
"""Store methods that change nothing (a handler abandoned after them is harmless)."""


class Contended(Exception):
    """The loop's first write found the store locked; run the handler in the pool."""


class InlineGate:
    """Decides per request whether the loop may run it (rule 3 above).

    Args:
        monotonic: the clock (injectable for tests).
    """

    def __init__(self, monotonic: Callable[[], float] = time.perf_counter) -> None:
        self.monotonic = monotonic
        self.offloaded = False
        self._fast_runs = 0
        self.slow_events = 0

    def inline_ok(self) -> bool:
        """True while the store has been answering fast."""
        return not self.offloaded

    def observe(self, seconds: float) -> None:
        """Record how long one handler ran (wherever it ran)."""
        if seconds > SLOW_SECONDS:
            if not self.offloaded:
                self.slow_events += 1
            self.offloaded, self._fast_runs = True, 0
        elif self.offloaded:
            self._fast_runs += 1
            if self._fast_runs >= RECOVERY_RUNS:
                self.offloaded = False


class GatedStore:
    """A store proxy that makes the loop thread's first write fail fast (rule 2).

    Every attribute is the inner store's; methods are wrapped once and
    cached.  Only calls made on the loop thread while a handler runs inline
    (between :meth:`begin` and :meth:`end`) are affected.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._set_timeout = getattr(inner, "set_thread_busy_timeout", None)
        self._normal_timeout = float(getattr(inner, "busy_timeout", 5.0))
        self._loop_thread: int | None = None
        self._inline = False
        self._wrote = False
        self._short = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr
        wrapped = self._wrap(name, attr)
        setattr(self, name, wrapped)  # later look-ups skip __getattr__
        return wrapped

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        write = name not in READS

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self._inline or threading.get_ident() != self._loop_thread:
                return method(*args, **kwargs)
            if not write:
                return method(*args, **kwargs)
            return self._loop_write(method, args, kwargs)

        return call

    def _loop_write(self, method: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        first = not self._wrote
        self._use_short(first)
        try:
            result = method(*args, **kwargs)
        except StoreTimeoutError:
            if first and self._set_timeout is not None:
                raise Contended from None
            raise
        self._wrote = True
        return result

    def _use_short(self, short: bool) -> None:
        if self._set_timeout is None or short == self._short:
            return
        self._set_timeout(LOOP_BUSY_TIMEOUT if short else self._normal_timeout)
        self._short = short

    def begin(self) -> None:
        """A handler starts inline on this (the loop) thread."""
        self._loop_thread = threading.get_ident()
        self._inline, self._wrote = True, False

    def end(self) -> None:
        """The inline handler is done."""
        self._inline = False
