"""T-17: 200 parallel requests on one session mixing writes, loads at the rotation
instant and a logout — on every store.

Outcomes: the logout is never lost (nothing of the session is live afterwards), at
most one successor ID ever exists, and every record left in the store opens cleanly
(no half-written record).
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sessionward import SessionConflictError, SessionGoneError, SessionManager
from sessionward.core.clock import FrozenClock
from sessionward.core.record import LIVE
from sessionward.stores.base import SessionStore

from contract._helpers import saved


def all_records(store: SessionStore) -> list[str]:
    keys: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        page, cursor = store.scan(cursor, 100)
        keys += [k for k, _ in page]
        if cursor is None:
            return keys
    raise AssertionError("scan did not finish")


def test_mixed_parallel_requests(manager: SessionManager, store: SessionStore,
                                 clock: FrozenClock) -> None:
    old = saved(manager, n=0)
    clock.advance(15 * 60)  # a periodic rotation is due for every request below
    seen: set[str] = set()
    outcomes: list[str] = []
    lock = threading.Lock()
    logout_at = random.Random(17).randrange(50, 150)

    def request(i: int) -> None:
        session = manager.load(old)
        if session is None:
            outcome = "anonymous"
        else:
            with lock:
                seen.add(session.cookie_value or "")
            outcome = _act(manager, session, i, logout_at)
        with lock:
            outcomes.append(outcome)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(request, range(200)))

    assert len(outcomes) == 200 and "logout" in outcomes
    assert len(seen) == 1 and old not in seen, "more than one successor ID"
    assert manager.load(old) is None
    assert manager.load(next(iter(seen))) is None, "the logout was undone"
    for key in all_records(store):
        opened = manager.open_record(key)
        assert opened is not None, "a record that does not open"
        assert opened.meta.kind != LIVE, "a live record survived the logout"


def _act(manager: SessionManager, session: Any, i: int, logout_at: int) -> str:
    try:
        if i == logout_at:
            manager.logout(session)
            return "logout"
        session[f"w{i}"] = i
        manager.save(session)
        return "saved"
    except (SessionGoneError, SessionConflictError) as exc:
        return type(exc).__name__
