"""Redis high availability for the tests and the fault scenarios (issue 18):
a Cluster with replicas that can lose a primary, and a Sentinel set (1 master,
1 replica, 3 sentinels).  Real processes on free loopback ports, temp dirs,
persistence off; the fixtures tear them down.

Also used by ``bench/faults/redis_*.py`` (which put ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import key_slot

from svc_redis import (
    RedisClusterProcess,
    RedisServer,
    _stop_process,
    _wait_until,
    free_port,
    require_binaries,
)

MASTER_NAME = "swmaster"
"""The name the sentinels monitor."""


class FailoverCluster(RedisClusterProcess):
    """3 primaries + 3 replicas with a short ``cluster-node-timeout``; a primary
    can be SIGKILLed (its replica takes over) and restarted (it rejoins as a replica).
    """

    def __init__(self, node_timeout_ms: int = 1000) -> None:
        super().__init__(masters=3, replicas=1, node_timeout_ms=node_timeout_ms)

    def nodes(self) -> list[dict[str, object]]:
        """``CLUSTER NODES`` as seen by a live node: port, flags, slot ranges."""
        for port, proc in zip(self.ports, self._procs, strict=True):
            if proc.poll() is not None:
                continue
            with contextlib.closing(redis.Redis(port=port, socket_timeout=2)) as c:
                try:
                    raw = c.execute_command("CLUSTER", "NODES")
                except redis.RedisError:
                    continue
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            return [_parse_node(line) for line in text.splitlines() if line.strip()]
        raise RuntimeError("no cluster node answers")

    def primary_of(self, key: str) -> int:
        """The port of the live primary that serves ``key``'s slot."""
        slot = key_slot(key.encode())
        for node in self.nodes():
            flags = str(node["flags"])
            if "master" in flags and "fail" not in flags and any(
                    lo <= slot <= hi for lo, hi in node["slots"]):  # type: ignore[attr-defined]
                return int(node["port"])  # type: ignore[call-overload]
        raise RuntimeError(f"no live primary serves slot {slot}")

    def kill9(self, port: int) -> None:
        """SIGKILL the node on ``port``."""
        proc = self._procs[self.ports.index(port)]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def restart(self, port: int) -> None:
        """Start the node on ``port`` again (same nodes.conf: it rejoins)."""
        i = self.ports.index(port)
        self._procs[i] = self._spawn(port)
        _wait_until(lambda: self._node_ping(port, self._procs[i]), f"node {port} back")

    def wait_promoted(self, dead_port: int, slot_key: str, timeout: float = 30) -> None:
        """Until a primary other than ``dead_port`` serves ``slot_key``."""
        def promoted() -> bool:
            try:
                return self.primary_of(slot_key) != dead_port
            except RuntimeError:
                return False
        _wait_until(promoted, "the replica's promotion", timeout)

    def wait_healthy(self, timeout: float = 30) -> None:
        """Until every node reports ``cluster_state:ok`` and replicas are in sync."""
        _wait_until(self._state_ok, "cluster healthy again", timeout)


def _parse_node(line: str) -> dict[str, object]:
    fields = line.split()
    slots = []
    for item in fields[8:]:
        if item.startswith("["):
            continue  # a slot being migrated
        lo, _, hi = item.partition("-")
        slots.append((int(lo), int(hi or lo)))
    port = fields[1].split("@")[0].rpartition(":")[2]
    return {"id": fields[0], "port": int(port), "flags": fields[2], "slots": slots}


class SentinelSet:
    """One master, one replica and three sentinels (quorum 2) on loopback.

    Args:
        down_after_ms: ``down-after-milliseconds`` (a failover starts after it).
        failover_timeout_ms: ``failover-timeout``.
    """

    def __init__(self, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        require_binaries("redis-server")
        self._tmp = tempfile.TemporaryDirectory(prefix="sw-sentinel-")
        self.dir = Path(self._tmp.name)
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.servers: list[RedisServer] = []
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._sentinels: list[subprocess.Popen[bytes]] = []
        try:
            self.servers.append(RedisServer())
            replica_of = ("--replicaof", "127.0.0.1", str(self.servers[0].port))
            self.servers.append(RedisServer(extra_args=replica_of))
            for port in self.sentinel_ports:
                self._sentinels.append(self._spawn_sentinel(port))
            _wait_until(self._ready, "sentinels that see the replica and each other")
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/swmaster/0``."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def _spawn_sentinel(self, port: int) -> subprocess.Popen[bytes]:
        conf = self.dir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"logfile {self.dir / f'sentinel-{port}.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.servers[0].port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        return subprocess.Popen(["redis-server", str(conf), "--sentinel"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def sentinel(self, port: int) -> redis.Redis[bytes]:
        return redis.Redis(port=port, socket_timeout=2)

    def _ready(self) -> bool:
        for port, proc in zip(self.sentinel_ports, self._sentinels, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"sentinel on port {port} exited ({proc.returncode})")
            with contextlib.closing(self.sentinel(port)) as s:
                try:
                    master = s.sentinel_master(MASTER_NAME)
                except redis.RedisError:
                    return False
            if int(master.get("num-slaves", 0)) < 1 or \
                    int(master.get("num-other-sentinels", 0)) < 2:
                return False
        with contextlib.closing(self.servers[1].client()) as replica:
            return replica.info("replication").get("master_link_status") == "up"

    def master_port(self) -> int:
        """The master's port according to the first sentinel that answers."""
        for port in self.sentinel_ports:
            with contextlib.closing(self.sentinel(port)) as s, \
                    contextlib.suppress(redis.RedisError):
                _, master = s.sentinel_get_master_addr_by_name(MASTER_NAME)
                return int(master)
        raise RuntimeError("no sentinel answers")

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def wait_failover(self, old_port: int, timeout: float = 30) -> None:
        """Until every sentinel names a master other than ``old_port``."""
        def moved() -> bool:
            for port in self.sentinel_ports:
                with contextlib.closing(self.sentinel(port)) as s:
                    try:
                        _, master = s.sentinel_get_master_addr_by_name(MASTER_NAME)
                    except redis.RedisError:
                        return False
                if int(master) == old_port:
                    return False
            return True
        _wait_until(moved, "the sentinels' failover", timeout)

    def close(self) -> None:
        """Stop every process and remove the temp dirs."""
        for proc in self._sentinels:
            _stop_process(proc)
        for server in self.servers:
            server.close()
        self._tmp.cleanup()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSet]:
    """A private Sentinel set for the whole test session (never failed over by tests)."""
    sentinels = SentinelSet()
    try:
        yield sentinels
    finally:
        sentinels.close()
