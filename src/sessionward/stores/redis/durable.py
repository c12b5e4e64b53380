"""Opt-in replica acknowledgement: ``WAIT numreplicas timeout`` after every write.

Redis replicates asynchronously: a primary answers a write before any replica
has it, so a primary that dies right after answering takes the write with it,
and the promoted replica never saw it (an acknowledged write lost at failover).
With ``?wait_replicas=N&wait_timeout_ms=MS`` in the store URL every write is
followed by ``WAIT N MS`` **on the same connection** (``WAIT`` counts the
replicas that acknowledged *this connection's* writes, so on another
connection it would say nothing about ours).

Semantics (docs/stores-redis.md):

- ``WAIT`` answered ``>= N``: the write is on the primary and on N replicas;
  the store reports success.
- ``WAIT`` answered ``< N`` within ``MS``: the write is on the primary but not
  confirmed anywhere else.  The store raises
  :class:`~sessionward.core.errors.StoreUnavailableError` ("may not be
  durable"): never a silent success.  The write is *not* rolled back; it may
  survive (the primary stays up, replicas catch up) or vanish at a failover,
  exactly like any write whose answer was lost.  The app answers 503.
- ``WAIT`` is not a consensus protocol: a failover can still pick a replica
  that did not acknowledge (e.g. several failures at once).  With one replica
  per primary and one failure it closes the loss window.

Reads (``HMGET``, ``SMEMBERS``, the ``kv_get`` script) never wait.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AskError, MovedError, NoScriptError, TryAgainError

from ...core.errors import StoreUnavailableError
from .errors import _REDIS_ERRORS

DEFAULT_WAIT_MS = 100
"""``wait_timeout_ms`` when the URL names only ``wait_replicas``."""

READ_ONLY_SCRIPTS = frozenset({"kv_get", "load"})
"""Scripts that never write: no ``WAIT`` after them."""

_REDIRECTS = 5
"""MOVED/ASK/TRYAGAIN rounds before a Cluster write gives up (redis-py allows 16)."""

Command = Sequence[Any]


@dataclass(frozen=True)
class WaitFor:
    """``WAIT replicas timeout_ms`` after each write.

    Attributes:
        replicas: replicas that must acknowledge (>= 1).
        timeout_ms: how long ``WAIT`` may block (>= 1; 0 would block forever).
    """

    replicas: int
    timeout_ms: int

    def command(self) -> tuple[str, str, str]:
        return ("WAIT", str(self.replicas), str(self.timeout_ms))

    def check(self, acked: Any, kind: str) -> None:
        """Accept ``WAIT``'s reply or refuse to report the write as done.

        Raises:
            StoreUnavailableError: fewer replicas than asked acknowledged in time.
        """
        if int(acked) < self.replicas:
            raise StoreUnavailableError(
                f"{kind} store: the write reached the primary but only {int(acked)} of "
                f"{self.replicas} replica(s) acknowledged it within {self.timeout_ms} ms, so "
                "it may not be durable (a failover could lose it); check the replicas "
                "(INFO replication) or raise wait_timeout_ms", store=kind)


def script_commands(script: Any, keys: Sequence[str],
                    args: Sequence[bytes | str]) -> tuple[Command, Command]:
    """``EVALSHA …`` and its ``EVAL …`` fallback for a redis-py ``Script``."""
    tail = (len(keys), *keys, *args)
    return ("EVALSHA", script.sha, *tail), ("EVAL", script.script, *tail)


def run_waited(client: Any, lane: Any, wait: WaitFor, kind: str, key: str,
               command: Command, fallback: Command | None = None) -> Any:
    """``command`` then ``WAIT`` on one connection; ``command``'s reply.

    ``fallback`` (the ``EVAL`` form) is sent when the script cache lost the
    script (``NOSCRIPT``: nothing ran, so sending again is safe).

    Raises:
        StoreUnavailableError: the replicas did not acknowledge (see the module doc).
        redis.RedisError: backend failure (the caller's guard maps it).
    """
    try:
        replies = _pair(client, lane, key, [command, wait.command()])
    except NoScriptError:
        if fallback is None:
            raise
        replies = _pair(client, lane, key, [fallback, wait.command()])
    wait.check(replies[1], kind)
    return replies[0]


def _pair(client: Any, lane: Any, key: str, commands: list[Command]) -> list[Any]:
    if isinstance(client, RedisCluster):
        return _cluster_pipeline(client, key, commands)
    if lane is not None:
        replies = lane.pipeline(commands)
        if replies is not NotImplemented:
            return list(replies)
    pipe: Any = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(pipe.execute())


def _cluster_pipeline(client: RedisCluster[bytes], key: str,
                      commands: list[Command]) -> list[Any]:
    """``commands`` pipelined to the primary that owns ``key``'s slot.

    redis-py's own Cluster path cannot keep two commands on one connection, so
    the redirections are followed here: MOVED (the slot moved for good, e.g. a
    failover or a finished migration) refreshes the slot map and goes again;
    ASK (a slot being migrated, this key already moved) sends ``ASKING`` plus
    the commands to the importing node; TRYAGAIN waits 50 ms.  None of these
    ran the command, so sending it again applies it once.

    Raises:
        redis.RedisError: backend failure, or still redirected after
            :data:`_REDIRECTS` rounds.
    """
    asking: Any = None
    for _ in range(_REDIRECTS):
        node: Any = asking or client.get_node_from_key(key)
        pipe: Any = client.get_redis_connection(node).pipeline(transaction=False)
        if asking is not None:
            pipe.execute_command("ASKING")
        for command in commands:
            pipe.execute_command(*command)
        try:
            replies = list(pipe.execute())
        except MovedError:
            asking = None
            client.nodes_manager.initialize()
            continue
        except AskError as exc:
            asking = _node(client, exc.host, exc.port)
            continue
        except TryAgainError:
            asking = None
            time.sleep(0.05)
            continue
        except (redis.ConnectionError, redis.TimeoutError):
            # Learn the new slot map now (as redis-py does): after a failover
            # the next write goes to the promoted replica.
            with contextlib.suppress(*_REDIS_ERRORS):
                client.nodes_manager.initialize()
            raise
        return replies[1:] if asking is not None else replies
    # A 503 (as redis-py's own path): e.g. a multi-key script on a slot whose keys
    # are split between two nodes mid-migration answers TRYAGAIN until it ends.
    raise redis.exceptions.ClusterError(f"still redirected after {_REDIRECTS} rounds")


def _node(client: RedisCluster[bytes], host: str, port: int) -> Any:
    node = client.get_node(host=host, port=port)
    if node is None:  # a node the slot map does not know yet
        client.nodes_manager.initialize()
        node = client.get_node(host=host, port=port)
    return node

