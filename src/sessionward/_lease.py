"""Exclusive-mode lease locks: bounded, jittered acquisition and renewal.

Race timeline this module closes (why a lease *and* fencing)::

    t0  A acquires the lease on K (token a, ttl 30 s)
    t1  A stalls (GC pause, swapped out...) longer than the ttl
    t2  the lease expires; B acquires it (token b) and saves
    t3  A wakes up and saves: the store's replace(..., fence=a) sees that the
        lock is held by b and raises LockLostError — A's stale write is
        refused instead of silently overwriting B's.

The renewal thread extends the lease every ``ttl / 3`` while the session is
open, so a healthy holder never loses it; a failed renewal marks the lease
lost at once (``on_lost`` fires ``lock_lost``).
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable

from .errors import LockTimeoutError, StoreError
from .stores.base import SessionStore

_jitter = random.SystemRandom()


class Lease:
    """A held lease lock with a background renewer.

    Attributes:
        key: the locked storage key.
        token: the random fencing token (never logged).
        lost: set once a renewal failed.
    """

    def __init__(
        self, store: SessionStore, key: str, token: str, ttl: float,
        on_lost: Callable[[Lease], None],
    ) -> None:
        self.store = store
        self.key = key
        self.token = token
        self.ttl = ttl
        self.lost = False
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="sessionward-lease",
                                         daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                ok = self.store.lock_renew(self.key, self.token, self.ttl)
            except StoreError:
                ok = False
            if not ok and not self._stop.is_set():
                self.lost = True
                self._on_lost(self)
                return

    def release(self) -> None:
        """Stop renewing and release the lock (no-op if already lost)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        if not self.lost:
            try:
                self.store.lock_release(self.key, self.token)
            except StoreError:
                pass  # it expires by itself after ttl; nothing else to do


def acquire(
    store: SessionStore, key: str, *, ttl: float, wait: float, fingerprint: str,
    on_lost: Callable[[Lease], None],
) -> Lease:
    """Acquire the lease on ``key``, waiting at most ``wait`` seconds.

    Sleeps are exponential (5 ms doubling to 50 ms) with full jitter, so
    waiters neither busy-spin nor move in lockstep.

    Raises:
        LockTimeoutError: not acquired within ``wait``.
        StoreError: backend failure.
    """
    token = secrets.token_hex(16)
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        if store.lock_acquire(key, token, ttl):
            return Lease(store, key, token, ttl, on_lost)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockTimeoutError(
                f"could not lock session {fingerprint} within {wait:g} s", lock_name=fingerprint
            )
        time.sleep(min(remaining, _jitter.uniform(delay / 2, delay)))
        delay = min(delay * 2, 0.05)
