"""Exclusive-mode lease locks: bounded, jittered acquisition and shared renewal.

Race timeline this module closes (why a lease *and* fencing)::

    t0  A acquires the lease on K (token a, ttl 30 s)
    t1  A stalls (GC pause, swapped out...) longer than the ttl
    t2  the lease expires; B acquires it (token b) and saves
    t3  A wakes up and saves: the store's replace(..., fence=a) sees that the
        lock is held by b and raises LockLostError — A's stale write is
        refused instead of silently overwriting B's.

One background thread per process renews every held lease every ``ttl / 3``,
so a healthy holder never loses it; a failed renewal marks the lease lost at
once (``on_lost`` fires ``lock_lost``).  Why one shared thread and not one per
lease: starting and joining a thread costs ~240 µs here, which made every
``exclusive`` open and every ``update()`` 5-7x the cost of an optimistic save.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from collections.abc import Callable

from ..core.errors import LockTimeoutError, StoreError
from ..stores.base import SessionStore
from .context import Runtime
from .port import Io

_jitter = random.SystemRandom()


class Lease:
    """A held lease lock, renewed by the process's shared renewer.

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
        self.released = False
        self.due = time.monotonic() + ttl / 3
        self._on_lost = on_lost
        _RENEWER.add(self)

    def renew(self) -> None:
        """Extend the lease once (called by the renewer thread)."""
        try:
            ok = self.store.lock_renew(self.key, self.token, self.ttl)
        except StoreError:
            ok = False
        self.due = time.monotonic() + self.ttl / 3
        # A release racing with this renewal is not a loss: released is set first.
        if not ok and not self.released:
            self.lost = True
            _RENEWER.remove(self)
            self._on_lost(self)

    def stop(self) -> bool:
        """Stop renewing; True when the store lock should now be released
        (held, not lost, not released before)."""
        if self.released:
            return False
        self.released = True
        _RENEWER.remove(self)
        return not self.lost

    def release(self) -> None:
        """Stop renewing and release the lock (no-op if already lost)."""
        if self.stop():
            try:
                self.store.lock_release(self.key, self.token)
            except StoreError:
                pass  # it expires by itself after ttl; nothing else to do

    async def release_via(self, io: Io) -> None:
        """:meth:`release` through the lifecycle's :class:`~.port.Io`."""
        if self.stop():
            try:
                await io.store.lock_release(self.key, self.token)
            except StoreError:
                pass  # it expires by itself after ttl; nothing else to do


class LeaseTable:
    """The exclusive-mode leases a manager's sessions hold, by session object.

    Shared by a :class:`~.manager.SessionManager` and the
    :class:`~.amanager.AsyncSessionManager` over it, so either can release a
    session the other opened.
    """

    def __init__(self) -> None:
        self._held: dict[int, Lease] = {}

    def hold(self, session: object, lease: Lease) -> None:
        self._held[id(session)] = lease

    def take(self, session: object) -> Lease | None:
        """Forget and return the lease ``session`` holds, if any."""
        return self._held.pop(id(session), None) if self._held else None

    def release_all(self) -> None:
        """Release every held lease (closing the manager)."""
        for lease in list(self._held.values()):
            lease.release()
        self._held.clear()


class _Renewer:
    """The one background thread that renews every held lease of the process."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._leases: dict[int, Lease] = {}
        self._thread: threading.Thread | None = None

    def add(self, lease: Lease) -> None:
        with self._cv:
            self._leases[id(lease)] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sessionward-leases",
                                                daemon=True)
                self._thread.start()
            self._cv.notify()

    def remove(self, lease: Lease) -> None:
        with self._cv:
            self._leases.pop(id(lease), None)

    def _due(self) -> list[Lease]:
        """Wait until some lease is due; return the due ones (holding no lock)."""
        with self._cv:
            while True:
                now = time.monotonic()
                due = [lease for lease in self._leases.values() if lease.due <= now]
                if due:
                    return due
                soonest = min((lease.due for lease in self._leases.values()), default=now + 60)
                self._cv.wait(timeout=max(0.001, soonest - now))

    def _run(self) -> None:
        while True:
            for lease in self._due():  # store I/O happens outside the condition lock
                if not lease.released:
                    lease.renew()

    def _after_fork(self) -> None:
        """A forked child inherits leases but not the thread; start clean."""
        self._cv = threading.Condition()
        self._leases = {}
        self._thread = None


_RENEWER = _Renewer()
os.register_at_fork(after_in_child=_RENEWER._after_fork)


async def acquire(
    io: Io, store: SessionStore, key: str, *, ttl: float, wait: float, fingerprint: str,
    on_lost: Callable[[Lease], None],
) -> Lease:
    """Acquire the lease on ``key`` through ``io``, waiting at most ``wait`` seconds;
    ``store`` (the sync store) renews it from the shared renewer thread.

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
        if await io.store.lock_acquire(key, token, ttl):
            return Lease(store, key, token, ttl, on_lost)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockTimeoutError(
                f"could not lock session {fingerprint} within {wait:g} s", lock_name=fingerprint
            )
        await io.sleep(min(remaining, _jitter.uniform(delay / 2, delay)))
        delay = min(delay * 2, 0.05)


async def acquire_session_lease(rt: Runtime, io: Io, skey: str) -> Lease:
    """The exclusive-mode lease on session record ``skey``, with the settings'
    ``lock_ttl`` and ``lock_wait``; a failed renewal fires ``lock_lost``.

    Raises:
        LockTimeoutError: not acquired within ``lock_wait``.
        StoreError: backend failure.
    """

    def lost(lease: Lease) -> None:
        rt.emit("lock_lost", key=lease.key, outcome="failure", reason="renewal_failed")

    return await acquire(
        io, rt.store, skey, ttl=rt.settings.lock_ttl.total_seconds(),
        wait=rt.settings.lock_wait.total_seconds(), fingerprint=rt.fingerprint(skey),
        on_lost=lost,
    )
