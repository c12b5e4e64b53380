"""Running a coroutine that never suspends, synchronously.

Code written once as coroutines (the session lifecycle, the Redis store's
record steps) runs under two drivers: ``await`` on an event loop, and
:func:`drive` from synchronous code when everything it awaits is synchronous
underneath (``docs/architecture.md``, lifecycle).  Pure: no I/O, no loop.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def drive(step: Coroutine[Any, Any, T]) -> T:
    """Run ``step`` to completion in one ``send``.

    Raises:
        RuntimeError: the coroutine suspended, i.e. it awaited something that
            is not synchronous underneath (an async store or callback was given
            to synchronous code) — a programming error, never silent.
        Exception: whatever the coroutine raises, unchanged.
    """
    try:
        step.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    step.close()
    raise RuntimeError("a session step waited on something asynchronous under the "
                       "synchronous SessionManager; use AsyncSessionManager for async stores")
