"""Redis Sentinel failover, short form (issue 18, part 2): the master
SIGKILLed under 3 client processes, the sentinels promote the replica, with
asynchronous replication and with ``wait_replicas=1``.

The long form runs in ``make faults`` through ``bench.faults.redis_sentinel.SCENARIOS``.
"""

from __future__ import annotations

import math

import pytest

from svc_redis_faults import sane, scenario

pytestmark = [pytest.mark.redis, pytest.mark.sentinel, pytest.mark.slow]


def test_master_kill_9_with_and_without_wait() -> None:
    """Clients follow the sentinels to the promoted replica by themselves;
    with wait_replicas=1 no acknowledged write is lost."""
    (plain, c_plain, t_plain), (waited, c_wait, t_wait) = scenario("redis_sentinel").measure(True)
    assert (plain, waited) == ("async replication", "wait_replicas=1")
    for counts, switched in ((c_plain, t_plain), (c_wait, t_wait)):
        sane(counts)
        assert not math.isnan(switched) and switched < 15
        assert counts.failures > 0
        assert 0 < counts.failure_window_s < 20
    assert c_wait.acked_lost == 0, c_wait
    assert c_wait.sessions_lost == 0, c_wait
