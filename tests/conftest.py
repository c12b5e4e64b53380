"""Shared fixtures: the fake clock, store and manager factories.

Every store kind is listed in ``STORE_KINDS``; a new store joins the whole
contract suite by adding one entry to ``_FACTORIES``.  Service-backed kinds
(Redis, Redis Cluster, Redis Sentinel, the daemon) start real processes on loopback; a
missing service is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from sessionward import SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.stores.base import SessionStore
from sessionward.stores.memory import MemoryStore
from sessionward.stores.sqlite import SQLiteStore

hypothesis_settings.register_profile("default", deadline=None, database=None,
                                    suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile("soak", deadline=None, database=None, max_examples=5000,
                                    suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

STORE_KINDS = ["memory", "sqlite", "filesystem", "redis", "cluster", "sentinel"]
"""Every store the contract suite runs against."""

StoreFactory = Callable[[pytest.FixtureRequest, Path, FrozenClock], SessionStore]


def _memory(request: pytest.FixtureRequest, tmp: Path, clock: FrozenClock) -> SessionStore:
    return MemoryStore(clock=clock)


def _sqlite(request: pytest.FixtureRequest, tmp: Path, clock: FrozenClock) -> SessionStore:
    return SQLiteStore(tmp / "sessions.db", clock=clock)


def _filesystem(request: pytest.FixtureRequest, tmp: Path, clock: FrozenClock) -> SessionStore:
    from sessionward.stores.filesystem import FileStore

    return FileStore(tmp / "filestore", clock=clock)


def _redis(request: pytest.FixtureRequest, tmp: Path, clock: FrozenClock) -> SessionStore:
    from svc_redis import make_redis_store

    server = request.getfixturevalue("redis_server")
    return make_redis_store(server.url, clock)


def _cluster(request: pytest.FixtureRequest, tmp: Path, clock: FrozenClock) -> SessionStore:
    from svc_redis import make_redis_store

    cluster = request.getfixturevalue("redis_cluster")
    return make_redis_store(cluster.url, clock)


def _sentinel(request: pytest.FixtureRequest, tmp: Path, clock: FrozenClock) -> SessionStore:
    from svc_redis import make_redis_store

    sentinels = request.getfixturevalue("redis_sentinel")
    return make_redis_store(sentinels.url, clock)


_FACTORIES: dict[str, StoreFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "filesystem": _filesystem,
    "redis": _redis,
    "cluster": _cluster,
    "sentinel": _sentinel,
}

_MARKS = {"redis": [pytest.mark.redis], "cluster": [pytest.mark.redis, pytest.mark.cluster],
          "sentinel": [pytest.mark.redis, pytest.mark.sentinel], "daemon": [pytest.mark.daemon]}

MANAGER_KINDS = [*STORE_KINDS, "daemon"]
"""Every way to reach a manager: each store embedded, and the daemon (all stores' twin)."""


def store_params(kinds: list[str] | None = None) -> list[Any]:
    """``pytest.param`` entries for the given (default: all) store kinds."""
    return [pytest.param(k, marks=_MARKS.get(k, []), id=k) for k in (kinds or STORE_KINDS)]


# The Redis fixtures live with the Redis harness; importing them here makes them available
# to every test.  No fallback: a missing harness must fail, never drop stores silently.
from svc_redis_ha import redis_sentinel  # noqa: E402, F401

from svc_redis import redis_cluster, redis_server  # noqa: E402, F401


@pytest.fixture(name="clock")
def clock_fixture() -> FrozenClock:
    """A manual clock shared by the store and the manager."""
    return FrozenClock()


@pytest.fixture(name="store_kind", params=store_params())
def store_kind_fixture(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(name="store")
def store_fixture(request: pytest.FixtureRequest, store_kind: str, tmp_path: Path,
                  clock: FrozenClock) -> Iterator[SessionStore]:
    """A fresh, isolated store of every kind in ``STORE_KINDS``."""
    store = _FACTORIES[store_kind](request, tmp_path, clock)
    yield store
    store.close()


def make_store(request: pytest.FixtureRequest, kind: str, tmp: Path,
               clock: FrozenClock) -> SessionStore:
    """Build a store of ``kind`` (for tests that need a second one)."""
    return _FACTORIES[kind](request, tmp, clock)


@pytest.fixture(name="keyring")
def keyring_fixture() -> KeyRing:
    return KeyRing.generate("test")


@pytest.fixture(name="settings")
def settings_fixture() -> Settings:
    return Settings(namespace="test")


@pytest.fixture(name="manager")
def manager_fixture(store: SessionStore, keyring: KeyRing, settings: Settings,
                    clock: FrozenClock) -> SessionManager:
    """A manager over every store kind, with the fake clock."""
    return SessionManager(store, keyring, settings, clock=clock)


@pytest.fixture(name="any_manager", params=store_params(MANAGER_KINDS))
def any_manager_fixture(request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock,
                        settings: Settings) -> Iterator[Any]:
    """A manager over every store kind *and* a RemoteSessionManager on a real daemon
    subprocess that follows the fake clock: the manager-level contract runs through both."""
    kind: str = request.param
    if kind == "daemon":
        from svc_daemon import make_remote_manager

        remote = make_remote_manager(tmp_path, clock, namespace=settings.namespace)
        yield remote
        remote.close()
        return
    store = _FACTORIES[kind](request, tmp_path, clock)
    yield SessionManager(store, KeyRing.generate(settings.namespace), settings, clock=clock)
    store.close()


@pytest.fixture(name="hub_events")
def hub_events_fixture() -> tuple[Any, list[Any]]:
    """A fresh EventHub and the list of every event it delivers."""
    from sessionward.audit.events import EventHub

    hub = EventHub()
    seen: list[Any] = []
    hub.subscribe(seen.append)
    return hub, seen


@pytest.fixture(name="events")
def events_fixture(manager: SessionManager) -> list[Any]:
    """Every event the manager emits, in order."""
    seen: list[Any] = []
    manager.events.subscribe(seen.append)
    return seen


def unique(prefix: str = "t") -> str:
    """A unique, store-safe name."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def pytest_report_header(config: pytest.Config) -> str:
    return f"sessionward stores under test: {', '.join(STORE_KINDS)} (CI={os.environ.get('CI')})"
