"""Public test helpers: a manual clock and ready-made managers.

Third-party store authors can run sessionward's contract suite against
their own store: see ``docs/stores.md``.
"""

from __future__ import annotations

from .core.clock import FrozenClock
from .core.config import Settings
from .core.keys import KeyRing
from .lifecycle.manager import SessionManager
from .stores.base import SessionStore
from .stores.memory import MemoryStore

__all__ = ["FrozenClock", "MemoryStore", "memory_manager"]


def memory_manager(
    *, clock: FrozenClock | None = None, store: SessionStore | None = None, **settings: object
) -> SessionManager:
    """A manager over a fresh memory store with a fresh key (tests, demos)."""
    clk = clock or FrozenClock()
    ring = KeyRing.generate(str(settings.get("namespace", "default")))
    conf = Settings(**settings)  # type: ignore[arg-type]
    return SessionManager(store or MemoryStore(clock=clk), ring, conf, clock=clk)
