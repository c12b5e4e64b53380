"""Redis HA options (issue 18): ``wait_replicas`` and ``redis+sentinel://`` URLs.

A node without replicas can never confirm a write: every write path (the sync
store's fast lane and generic path, Cluster, the async flavour) must then say
so with ``StoreUnavailableError`` instead of reporting success.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from sessionward.core.errors import ConfigurationError, StoreUnavailableError
from sessionward.stores.aio import async_store_for
from sessionward.stores.redis import RedisStore

pytestmark = [pytest.mark.redis]

WAIT = "wait_replicas=1&wait_timeout_ms=20"


@pytest.mark.parametrize("query", [
    "wait_timeout_ms=100",           # a timeout without replicas
    "wait_replicas=1&wait_timeout_ms=0",  # WAIT 1 0 blocks forever
    "wait_replicas=-1", "wait_replicas=x",
    "wait_replicas=1&wait_timeout_ms=5000",  # longer than socket_timeout
    "sentinel_password=x",            # a Sentinel option on a plain URL
])
def test_bad_wait_or_sentinel_options_are_refused(query: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid redis store URL"):
        RedisStore.from_url(f"redis://127.0.0.1:1/0?{query}")


@pytest.mark.parametrize("url", [
    "redis+sentinel://127.0.0.1:26379",            # no master name
    "redis+sentinel://127.0.0.1:26379/m/x",        # db not a number
    "redis+sentinel://127.0.0.1:26379/m/0/extra",
    "redis+sentinel://127.0.0.1:port/m",
])
def test_bad_sentinel_urls_are_refused_without_echo(url: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        RedisStore.from_url(url.replace("127.0.0.1", "secret-host"))
    assert "secret-host" not in str(err.value)


def _no_replica_refused(store: RedisStore) -> None:
    key = f"k{time.monotonic_ns()}"
    with pytest.raises(StoreUnavailableError, match="may not be durable"):
        store.create(key, b"v", expires_at=time.time() + 60, user_key=None)
    record = store.load(key)  # not rolled back: the primary has it
    assert record is not None and record.blob == b"v"
    with pytest.raises(StoreUnavailableError, match="0 of 1 replica"):
        store.kv_create(f"kv{key}", b"x", expires_at=time.time() + 60)
    assert store.kv_get(f"kv{key}") is not None  # reads never wait


def test_wait_without_replica_is_never_a_silent_success(redis_server) -> None:  # type: ignore[no-untyped-def]
    """Single node: the fast lane (scripts) and the index SADD."""
    with RedisStore.from_url(f"{redis_server.url}?{WAIT}") as store:
        assert store._conn.lane is not None
        _no_replica_refused(store)
        with pytest.raises(StoreUnavailableError):
            store.create(f"u{time.monotonic_ns()}", b"v", expires_at=time.time() + 60,
                         user_key="someone")


def test_wait_on_a_cluster_without_replicas(redis_cluster) -> None:  # type: ignore[no-untyped-def]
    with RedisStore.from_url(f"{redis_cluster.url}?{WAIT}") as store:
        _no_replica_refused(store)


def test_wait_in_the_async_flavour(redis_server) -> None:  # type: ignore[no-untyped-def]
    with RedisStore.from_url(f"{redis_server.url}?{WAIT}") as store:
        flavour = async_store_for(store)

        async def scenario() -> None:
            with pytest.raises(StoreUnavailableError, match="may not be durable"):
                await flavour.create("ak1" + str(time.monotonic_ns()), b"v",
                                     expires_at=time.time() + 60, user_key=None)
            await flavour.aclose()

        asyncio.run(scenario())


@pytest.mark.sentinel
def test_wait_with_a_live_replica_succeeds(redis_sentinel) -> None:  # type: ignore[no-untyped-def]
    """Sentinel set (a replica alive): sync and async writes are confirmed."""
    with RedisStore.from_url(f"{redis_sentinel.url}?wait_replicas=1&wait_timeout_ms=1000",
                             prefix="hw") as store:
        assert store.kind == "redis-sentinel"
        key = f"s{time.monotonic_ns()}"
        store.create(key, b"v", expires_at=time.time() + 60, user_key="u")
        assert [k for k, _ in store.by_user("u")] == [key]
        flavour = async_store_for(store)

        async def scenario() -> None:
            rec = await flavour.replace(key, b"w", expected_version=1,
                                        expires_at=time.time() + 60, user_key="u")
            assert rec.version == 2
            await flavour.aclose()

        asyncio.run(scenario())
        loaded = store.load(key)
        assert loaded is not None and loaded.blob == b"w"
