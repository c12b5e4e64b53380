"""One Redis node SIGKILLed and restarted, short form (issue 18, part 3):
no persistence, AOF everysec, AOF always.

The long form runs in ``make faults`` through ``bench.faults.redis_aof.SCENARIOS``.
"""

from __future__ import annotations

import pytest

from svc_redis_faults import sane, scenario

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_kill_9_and_restart_per_persistence_setting() -> None:
    """AOF always keeps every acknowledged write (docs/stores-redis.md); so does
    everysec for a process crash; without persistence the restart is empty."""
    rows = {name: counts for name, counts, _ in scenario("redis_aof").measure(True)}
    for counts in rows.values():
        sane(counts)
        assert counts.failures > 0
    assert rows["AOF appendfsync always"].acked_lost == 0
    assert rows["AOF appendfsync always"].sessions_lost == 0
    assert rows["AOF appendfsync everysec"].acked_lost == 0  # a process crash, not power loss
    assert rows["no persistence"].sessions_lost > 0  # the baseline: the test can fail
