"""Fault scenario: the Sentinel-monitored master SIGKILLed under load (issue 18, part 2).

1 master, 1 replica, 3 sentinels (quorum 2, ``down-after-milliseconds``
1000); client processes run session cycles (:mod:`.redis_load`) against
``redis+sentinel://``.  The master is SIGKILLed; the sentinels promote the
replica; the old master is restarted once they have (they turn it into the
new master's replica).  Run twice: asynchronous replication, and
``?wait_replicas=1&wait_timeout_ms=250`` (on a fresh set each time: after the
first failover the roles are swapped).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.faults.common import Row, Scenario
from bench.faults.redis_load import Counts, under_fault, use_test_harness

WAIT = "wait_replicas=1&wait_timeout_ms=250"


def failover_once(sentinels: Any, url: str, key_file: str, clients: int,
                  seconds: float) -> tuple[Counts, float]:
    """Clients for ``seconds``; the master SIGKILLed after a third of it.
    Returns the counts and the seconds from the kill to the sentinels' switch."""

    def fault() -> float:
        old = sentinels.master_port()
        server = sentinels.server_on(old)
        killed = time.monotonic()
        server.kill()
        sentinels.wait_failover(old)
        switched = time.monotonic() - killed
        server.start()  # comes back as a master; the sentinels demote it to a replica
        return switched

    return under_fault(url, key_file, clients, seconds, fault)


def measure(short: bool) -> list[tuple[str, Counts, float]]:
    """``(setting, counts, failover s)`` for both settings."""
    use_test_harness()
    from sessionward.core.keys import write_key_file
    from svc_redis_ha import SentinelSet

    clients, seconds = (3, 6.0) if short else (4, 20.0)
    out = []
    with tempfile.TemporaryDirectory(prefix="sw-sfo-") as tmp:
        key_file = str(Path(tmp) / "key")
        write_key_file(key_file)
        for setting, query in (("async replication", ""), ("wait_replicas=1", WAIT)):
            sentinels = SentinelSet(down_after_ms=1000, failover_timeout_ms=3000)
            try:
                url = sentinels.url + (f"?{query}" if query else "")
                counts, switched = failover_once(sentinels, url, key_file, clients, seconds)
                out.append((setting, counts, switched))
            finally:
                sentinels.close()
    return out


def run(short: bool) -> list[Row]:
    """The scenario; ``short``: 3 clients × 6 s per setting (``make test``)."""
    clients = 3 if short else 4
    return [c.row(f"Redis Sentinel 1+1 (3 sentinels), master kill -9, {setting} "
                  f"({clients} client processes)",
                  f"sentinels switched {switched:.1f} s after the kill")
            for setting, c, switched in measure(short)]


SCENARIOS: list[Scenario] = [Scenario("redis_sentinel_failover", run)]


if __name__ == "__main__":
    for row in run("--short" in sys.argv):
        print(row)
