"""Redis Cluster failover, short form (issue 18, part 1): 3 primaries + 3
replicas, a primary SIGKILLed under 3 client processes, with asynchronous
replication and with ``wait_replicas=1``; a slot migration under store calls.

The long form runs in ``make faults`` through ``bench.faults.redis_cluster.SCENARIOS``.
"""

from __future__ import annotations

import math

import pytest

from svc_redis_faults import sane, scenario

pytestmark = [pytest.mark.redis, pytest.mark.cluster, pytest.mark.slow]


def test_primary_kill_9_with_and_without_wait() -> None:
    """The replica takes over; failures are 503s during the switch only; with
    wait_replicas=1 (a replica alive) no acknowledged write is lost; the
    scripts follow ASK and MOVED in both settings."""
    (plain, c_plain, t_plain, m_plain), (waited, c_wait, t_wait, m_wait) = \
        scenario("redis_cluster").measure(True)
    assert (plain, waited) == ("async replication", "wait_replicas=1")
    for counts, promoted, migration in ((c_plain, t_plain, m_plain), (c_wait, t_wait, m_wait)):
        sane(counts)
        assert not math.isnan(promoted) and promoted < 15
        assert counts.failures > 0  # the kill was seen by the clients
        assert 0 < counts.failure_window_s < 20
        assert migration.startswith("ok"), migration
    assert c_wait.acked_lost == 0  # the documented promise of wait_replicas
    assert c_wait.sessions_lost == 0, c_wait
