"""Fault scenario: one Redis node SIGKILLed and restarted (issue 18, part 3).

Client processes run session cycles (:mod:`.redis_load`) against
``redis://``; the server is SIGKILLed, restarted 0.5 s later on the same
port and data directory, and the clients carry on.  Three settings: no
persistence (the baseline: a restart starts empty), AOF with ``appendfsync
everysec`` and with ``appendfsync always``.

SIGKILL is a *process* crash: what Redis wrote to the AOF before it answered
is in the kernel's page cache and survives.  A power loss or kernel crash
(which a test cannot cause) can also lose what was written but not yet
fsynced: up to about a second (two, when a slow fsync delays the write) with
``everysec``, nothing with ``always`` on a disk that honours fsync.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.faults.common import Row, Scenario
from bench.faults.redis_load import Counts, under_fault, use_test_harness

SETTINGS: list[tuple[str, tuple[str, ...]]] = [
    ("no persistence", ()),
    ("AOF appendfsync everysec", ("--appendonly", "yes", "--appendfsync", "everysec")),
    ("AOF appendfsync always", ("--appendonly", "yes", "--appendfsync", "always")),
]


def crash_once(args: tuple[str, ...], key_file: str, clients: int,
               seconds: float) -> tuple[Counts, float]:
    """Clients for ``seconds``; the server SIGKILLed after a third of it and
    restarted; returns the counts and the seconds until it answered again."""
    use_test_harness()
    from svc_redis import RedisServer

    server = RedisServer(extra_args=args)

    def fault() -> float:
        killed = time.monotonic()
        server.kill()
        time.sleep(0.5)
        server.start()  # loads the AOF, if any, before it answers PING
        return time.monotonic() - killed

    try:
        return under_fault(server.url, key_file, clients, seconds, fault)
    finally:
        server.close()


def measure(short: bool) -> list[tuple[str, Counts, float]]:
    """``(setting, counts, restart s)`` per persistence setting."""
    from sessionward.core.keys import write_key_file

    clients, seconds = (3, 4.0) if short else (4, 15.0)
    with tempfile.TemporaryDirectory(prefix="sw-aof-") as tmp:
        key_file = str(Path(tmp) / "key")
        write_key_file(key_file)
        return [(name, *crash_once(args, key_file, clients, seconds))
                for name, args in SETTINGS]


def run(short: bool) -> list[Row]:
    """The scenario; ``short``: 3 clients × 4 s per setting (``make test``)."""
    clients = 3 if short else 4
    return [c.row(f"one Redis node kill -9 + restart, {setting} ({clients} client processes)",
                  f"answering again {back:.1f} s after the kill")
            for setting, c, back in measure(short)]


SCENARIOS: list[Scenario] = [Scenario("redis_aof_crash", run)]


if __name__ == "__main__":
    for row in run("--short" in sys.argv):
        print(row)
