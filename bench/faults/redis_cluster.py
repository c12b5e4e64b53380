"""Fault scenario: a Redis Cluster primary SIGKILLed under load (issue 18, part 1).

3 primaries + 3 replicas (``cluster-node-timeout`` 1000 ms), client processes
running session cycles (:mod:`.redis_load`) against ``redis+cluster://``.  A
primary is SIGKILLed; its replica is promoted; the old primary is restarted
once the promotion is seen (it rejoins as a replica).  Run twice on the same
cluster: with asynchronous replication (the default) and with
``?wait_replicas=1&wait_timeout_ms=100``.

Before the failovers, a slot migration (``CLUSTER SETSLOT … IMPORTING`` /
``MIGRATING``, ``MIGRATE`` of its keys, then ``SETSLOT … NODE``) runs under
store calls in both settings: the scripts must follow ASK and MOVED.
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


def migrate_slot_under_calls(cluster: Any, url: str) -> str:
    """Move one session's slot to another primary while the store works on it;
    "ok" or what went wrong."""
    from sessionward.core.errors import StoreError, StoreUnavailableError
    from sessionward.stores.redis import RedisStore

    # The redirections are the point here, not WAIT's timing under load: a long timeout.
    store = RedisStore.from_url(url.replace("wait_timeout_ms=250", "wait_timeout_ms=1000"),
                                prefix="mig")
    try:
        return _migrate(cluster, store, StoreUnavailableError)
    except StoreError as exc:
        return f"failed: {exc}"
    finally:
        store.close()


def _migrate(cluster: Any, store: Any, unavailable: type[Exception]) -> str:
    """The migration itself (see :func:`migrate_slot_under_calls`)."""
    key = f"m{time.monotonic_ns()}"
    store.create(key, b"v1", expires_at=time.time() + 60, user_key="mu")
    rec = store._conn.rec_key(key)
    source = cluster.primary_of(rec)
    target = next(int(n["port"]) for n in cluster.nodes()
                  if "master" in str(n["flags"]) and "fail" not in str(n["flags"])
                  and int(n["port"]) != source)
    ids = {int(n["port"]): str(n["id"]) for n in cluster.nodes()}
    admin = store._client
    slot = admin.keyslot(rec)
    src, dst = (admin.get_redis_connection(admin.get_node("127.0.0.1", p))
                for p in (source, target))
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
    keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
    src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
    # ASK: the keys are on the importing node.  Single-key scripts follow it;
    # replace (record + lock key) gets TRYAGAIN there while the lock key
    # might still be on the source: a 503 until the slot is finalized.
    touched = store.touch(key, expires_at=time.time() + 60, touched_at=time.time())
    asked = store.load(key)
    try:
        store.replace(key, b"v2", expected_version=1, expires_at=time.time() + 60,
                      user_key="mu")
        split = "replace ok"
    except unavailable:
        split = "replace 503 (TRYAGAIN)"
    for node in (dst, src):
        node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
    for port in ids:
        if port not in (source, target):
            other = admin.get_node("127.0.0.1", port)
            if other is not None and other.server_type == "primary":
                admin.get_redis_connection(other).execute_command(
                    "CLUSTER", "SETSLOT", slot, "NODE", ids[target])
    version = 1 if split.endswith("(TRYAGAIN)") else 2
    store.replace(key, b"v3", expected_version=version, expires_at=time.time() + 60,
                  user_key="mu")  # MOVED: the slot map changes for good
    moved = store.load(key)
    users = [k for k, _ in store.by_user("mu")]
    ok = (touched and asked is not None and moved is not None and moved.blob == b"v3"
          and moved.version == version + 1 and users == [key] and store.delete(key))
    if not ok:
        return f"wrong data (ask={asked}, moved={moved}, users={users})"
    return f"ok (during ASK: load/touch ok, {split}; after MOVED: replace/delete ok)"


def failover_once(cluster: Any, url: str, key_file: str, clients: int,
                  seconds: float) -> tuple[Counts, float]:
    """Clients for ``seconds``; a primary SIGKILLed after a third of it.
    Returns the counts and the seconds from the kill to the promotion."""
    probe = "sw:{probe}:rec"
    victim = cluster.primary_of(probe)

    def fault() -> float:
        killed = time.monotonic()
        cluster.kill9(victim)
        cluster.wait_promoted(victim, probe)
        promoted = time.monotonic() - killed
        cluster.restart(victim)  # it rejoins as the new primary's replica
        return promoted

    return under_fault(url, key_file, clients, seconds, fault, settle=cluster.wait_healthy)


def measure(short: bool) -> list[tuple[str, Counts, float, str]]:
    """Both settings on one cluster: ``(setting, counts, promotion s, migration)``."""
    use_test_harness()
    from sessionward.core.keys import write_key_file
    from svc_redis_ha import FailoverCluster

    clients, seconds = (3, 6.0) if short else (4, 20.0)
    out = []
    with tempfile.TemporaryDirectory(prefix="sw-fo-") as tmp:
        key_file = str(Path(tmp) / "key")
        write_key_file(key_file)
        cluster = FailoverCluster(node_timeout_ms=1000)
        try:
            for setting, query in (("async replication", ""), ("wait_replicas=1", WAIT)):
                url = cluster.url + (f"?{query}" if query else "")
                migration = migrate_slot_under_calls(cluster, url)
                counts, promoted = failover_once(cluster, url, key_file, clients, seconds)
                out.append((setting, counts, promoted, migration))
        finally:
            cluster.stop()
    return out


def run(short: bool) -> list[Row]:
    """The scenario; ``short``: 3 clients × 6 s per setting (``make test``)."""
    clients = 3 if short else 4
    return [c.row(f"Redis Cluster 3+3, primary kill -9, {setting} ({clients} client processes)",
                  f"replica promoted {promoted:.1f} s after the kill; slot migration "
                  f"(ASK/MOVED) under calls: {migration}")
            for setting, c, promoted, migration in measure(short)]


SCENARIOS: list[Scenario] = [Scenario("redis_cluster_failover", run)]


if __name__ == "__main__":
    for row in run("--short" in sys.argv):
        print(row)
