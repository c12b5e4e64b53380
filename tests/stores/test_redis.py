"""RedisStore against a real redis-server and a real 3-master Redis Cluster.

The contract suite covers the shared semantics; these tests pin what only
Redis has: key layout, native TTLs set in the same step as the write, the
cluster-safe user index, AUTH/ACL, Unix sockets, outages and recovery.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from sessionward.core.clock import FrozenClock
from sessionward.core.errors import (
    ConfigurationError,
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from sessionward.stores.base import Capability, SessionStore
from sessionward.stores.redis import RedisStore

from svc_redis import (  # noqa: F401
    RedisClusterProcess,
    RedisServer,
    free_port,
    make_redis_store,
    redis_cluster,
    redis_server,
)

pytestmark = pytest.mark.redis

K1 = "a1" * 32
K2 = "b2" * 32
USER = "u" + "c3" * 20
OTHER_USER = "u" + "d4" * 20


def hexkey(i: int) -> str:
    """A storage-key-shaped name (64 hex characters)."""
    return f"{i:064x}"


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def backend(request: pytest.FixtureRequest) -> RedisServer | RedisClusterProcess:
    """The single node or the cluster (same test, both deployments)."""
    name = "redis_server" if request.param == "redis" else "redis_cluster"
    service: RedisServer | RedisClusterProcess = request.getfixturevalue(name)
    return service


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def store(backend: RedisServer | RedisClusterProcess, clock: FrozenClock) -> Iterator[RedisStore]:
    with make_redis_store(backend.url, clock) as opened:
        yield opened


@pytest.fixture
def raw(backend: RedisServer | RedisClusterProcess) -> Iterator[Any]:
    """A plain redis-py client on the same deployment, for white-box checks."""
    client = backend.client()
    try:
        yield client
    finally:
        client.close()


def keys_of(raw: Any, store: RedisStore) -> list[str]:
    """Every Redis key under the store's prefix (SCAN, every node on a cluster)."""
    return sorted(k.decode() for k in raw.scan_iter(match=f"{store.prefix}:*", count=1000))


def rec_name(store: RedisStore, key: str) -> str:
    return f"{store.prefix}:{{{key}}}:rec"


# ------------------------------------------------------------------- protocol


def test_protocol_kind_and_capabilities(store: RedisStore, backend: object) -> None:
    assert isinstance(store, SessionStore)
    expected = "redis-cluster" if isinstance(backend, RedisClusterProcess) else "redis"
    assert store.kind == expected
    assert store.capabilities == {
        Capability.NATIVE_TTL,
        Capability.CROSS_PROCESS,
        Capability.PERSISTENT,
        Capability.SCAN,
    }
    store.ping()


def test_create_load_never_overwrites(store: RedisStore, clock: FrozenClock) -> None:
    assert store.load(K1) is None
    created = store.create(K1, b"blob", expires_at=clock() + 60, user_key=USER)
    assert (created.version, created.touched_at, created.user_key) == (1, clock(), USER)
    assert store.load(K1) == created
    with pytest.raises(SessionExistsError):
        store.create(K1, b"other", expires_at=clock() + 60, user_key=None)
    clock.advance(120)  # expired by the store clock: still there, still not overwritten
    assert store.load(K1) == created
    with pytest.raises(SessionExistsError):
        store.create(K1, b"other", expires_at=clock() + 60, user_key=None)


def test_load_creates_nothing(store: RedisStore, raw: Any) -> None:
    assert store.load(K1) is None
    assert store.kv_get(K1) is None
    assert store.by_user(USER) == []
    assert keys_of(raw, store) == []


def test_replace_compare_and_set(store: RedisStore, clock: FrozenClock) -> None:
    store.create(K1, b"v1", expires_at=clock() + 60, user_key=None)
    clock.advance(5)
    new = store.replace(K1, b"v2", expected_version=1, expires_at=clock() + 90, user_key=None)
    assert (new.blob, new.version, new.touched_at, new.expires_at) == (
        b"v2", 2, clock(), clock() + 90,
    )  # fmt: skip
    assert store.load(K1) == new
    with pytest.raises(SessionConflictError) as conflict:
        store.replace(K1, b"v3", expected_version=1, expires_at=clock() + 90, user_key=None)
    assert not isinstance(conflict.value, SessionGoneError | SessionExistsError)
    assert store.load(K1) == new


def test_replace_never_resurrects(store: RedisStore, clock: FrozenClock, raw: Any) -> None:
    store.create(K1, b"v1", expires_at=clock() + 60, user_key=None)
    assert store.delete(K1) is True
    with pytest.raises(SessionGoneError):
        store.replace(K1, b"v2", expected_version=1, expires_at=clock() + 60, user_key=None)
    assert store.load(K1) is None
    assert keys_of(raw, store) == []


def test_replace_fenced_by_lock(store: RedisStore, clock: FrozenClock) -> None:
    store.create(K1, b"v1", expires_at=clock() + 60, user_key=None)
    with pytest.raises(LockLostError):  # no lock at all
        store.replace(K1, b"x", expected_version=1, expires_at=clock() + 60, user_key=None,
                      fence="tok-a")  # fmt: skip
    assert store.lock_acquire(K1, "tok-a", 10)
    with pytest.raises(LockLostError):  # someone else's token
        store.replace(K1, b"x", expected_version=1, expires_at=clock() + 60, user_key=None,
                      fence="tok-b")  # fmt: skip
    done = store.replace(K1, b"ok", expected_version=1, expires_at=clock() + 60, user_key=None,
                         fence="tok-a")  # fmt: skip
    assert done.version == 2
    clock.advance(11)  # lease over by the store clock, though Redis's own TTL has not fired
    with pytest.raises(LockLostError):
        store.replace(K1, b"late", expected_version=2, expires_at=clock() + 60, user_key=None,
                      fence="tok-a")  # fmt: skip
    assert store.load(K1) == done


def test_touch_changes_only_times(store: RedisStore, clock: FrozenClock, raw: Any) -> None:
    created = store.create(K1, b"v1", expires_at=clock() + 60, user_key=USER)
    clock.advance(30)
    assert store.touch(K1, expires_at=clock() + 600, touched_at=clock()) is True
    after = store.load(K1)
    assert after is not None
    assert (after.blob, after.version, after.user_key) == (created.blob, 1, USER)
    assert (after.expires_at, after.touched_at) == (clock() + 600, clock())
    assert 60_000 < raw.pttl(rec_name(store, K1)) <= 600_000  # native TTL moved too
    store.delete(K1)
    assert store.touch(K1, expires_at=clock() + 600, touched_at=clock()) is False
    assert store.load(K1) is None  # touch never recreates


def test_delete_removes_record_and_index(store: RedisStore, clock: FrozenClock) -> None:
    store.create(K1, b"v1", expires_at=clock() + 60, user_key=USER)
    assert store.delete(K1) is True
    assert store.delete(K1) is False
    assert store.load(K1) is None
    assert store.by_user(USER) == []


# ------------------------------------------------------------------ user index


def test_by_user_follows_user_changes(store: RedisStore, clock: FrozenClock, raw: Any) -> None:
    store.create(K1, b"a", expires_at=clock() + 60, user_key=USER)
    store.create(K2, b"b", expires_at=clock() + 60, user_key=None)
    assert [k for k, _ in store.by_user(USER)] == [K1]
    store.replace(K2, b"b2", expected_version=1, expires_at=clock() + 60, user_key=USER)
    assert [k for k, _ in store.by_user(USER)] == sorted([K1, K2])
    store.replace(K1, b"a2", expected_version=1, expires_at=clock() + 60, user_key=OTHER_USER)
    assert [k for k, _ in store.by_user(USER)] == [K2]
    assert [(k, r.blob) for k, r in store.by_user(OTHER_USER)] == [(K1, b"a2")]
    store.replace(K2, b"b3", expected_version=2, expires_at=clock() + 60, user_key=None)
    assert store.by_user(USER) == []
    assert not raw.exists(f"{store.prefix}:{{{USER}}}:user")  # emptied set is gone


def test_by_user_prunes_stale_entries(store: RedisStore, clock: FrozenClock, raw: Any) -> None:
    store.create(K1, b"a", expires_at=clock() + 60, user_key=USER)
    store.create(K2, b"b", expires_at=clock() + 60, user_key=USER)
    index = f"{store.prefix}:{{{USER}}}:user"
    raw.delete(rec_name(store, K1))  # as if Redis's TTL had dropped it
    raw.sadd(index, hexkey(7))  # an entry whose record never existed
    assert [k for k, _ in store.by_user(USER)] == [K2]
    assert sorted(m.decode() for m in raw.smembers(index)) == [K2]


# ------------------------------------------------------------------------ scan


def test_scan_pages_cover_every_record_once(store: RedisStore, clock: FrozenClock) -> None:
    expected = [hexkey(i) for i in range(23)]
    for key in expected:
        store.create(key, key.encode(), expires_at=clock() + 60, user_key=None)
    store.kv_create(hexkey(99), b"kv", expires_at=clock() + 60)  # not a record
    store.lock_acquire(hexkey(98), "t", 60)  # not a record either
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(50):  # bounded: 23 records in pages of 4 need far fewer calls
        page, cursor = store.scan(cursor, 4)
        assert len(page) <= 4
        assert all(record.blob == key.encode() for key, record in page)
        seen.extend(key for key, _ in page)
        if cursor is None:
            break
    assert cursor is None
    assert sorted(seen) == expected


def test_scan_rejects_bad_arguments(store: RedisStore) -> None:
    with pytest.raises(ValueError):
        store.scan("not-a-cursor", 10)
    with pytest.raises(ValueError):
        store.scan(None, 0)


def test_purge_and_stats(store: RedisStore, clock: FrozenClock) -> None:
    store.create(K1, b"a", expires_at=clock() + 60, user_key=None)
    store.kv_create(K1, b"k", expires_at=clock() + 60)
    store.lock_acquire(K2, "t", 60)
    assert store.purge_expired(clock() + 3600, 100) == 0  # NATIVE_TTL: Redis expires
    stats = store.stats(clock())
    assert (stats.records, stats.kv_entries, stats.locks) == (1, 1, 1)
    assert store.load(K1) is not None


# -------------------------------------------------------------------------- kv


def test_kv_lifecycle_under_store_clock(store: RedisStore, clock: FrozenClock) -> None:
    assert store.kv_create(K1, b"one", expires_at=clock() + 10) is True
    assert store.kv_create(K1, b"dup", expires_at=clock() + 10) is False
    assert store.kv_get(K1) == (b"one", 1)
    assert store.kv_cas(K1, b"two", expected_version=2, expires_at=clock() + 10) is False
    assert store.kv_cas(K1, b"two", expected_version=1, expires_at=clock() + 10) is True
    assert store.kv_get(K1) == (b"two", 2)
    clock.advance(10)  # expired at exactly expires_at, before Redis's real TTL fires
    assert store.kv_get(K1) is None
    assert store.kv_cas(K1, b"x", expected_version=2, expires_at=clock() + 10) is False
    assert store.kv_take(K1) is None
    assert store.kv_delete(K1) is False
    assert store.kv_create(K1, b"fresh", expires_at=clock() + 10) is True
    assert store.kv_get(K1) == (b"fresh", 1)
    assert store.kv_take(K1) == b"fresh"
    assert store.kv_take(K1) is None
    assert store.kv_cas(K2, b"x", expected_version=1, expires_at=clock() + 10) is False
    store.kv_create(K2, b"y", expires_at=clock() + 10)
    assert store.kv_delete(K2) is True
    assert store.kv_delete(K2) is False


def test_kv_and_records_are_separate(store: RedisStore, clock: FrozenClock) -> None:
    store.create(K1, b"record", expires_at=clock() + 60, user_key=None)
    assert store.kv_get(K1) is None
    store.kv_create(K1, b"kv", expires_at=clock() + 60)
    record = store.load(K1)
    assert record is not None and record.blob == b"record"


# ----------------------------------------------------------------------- locks


def test_lock_lease(store: RedisStore, clock: FrozenClock) -> None:
    assert store.lock_acquire(K1, "tok-a", 5) is True
    assert store.lock_acquire(K1, "tok-b", 5) is False
    assert store.lock_acquire(K1, "tok-a", 5) is True  # re-entrant for the same token
    assert store.lock_renew(K1, "tok-b", 5) is False
    assert store.lock_release(K1, "tok-b") is False  # never releases another's lock
    clock.advance(4)
    assert store.lock_renew(K1, "tok-a", 5) is True
    clock.advance(4)  # 8 s after acquire, 4 s after renew: still ours
    assert store.lock_acquire(K1, "tok-b", 5) is False
    assert store.lock_release(K1, "tok-a") is True
    assert store.lock_release(K1, "tok-a") is False
    assert store.lock_acquire(K1, "tok-b", 5) is True
    clock.advance(5)  # expired by the store clock: free for others, not ours to renew
    assert store.lock_renew(K1, "tok-b", 5) is False
    assert store.lock_release(K1, "tok-b") is False
    assert store.lock_acquire(K1, "tok-c", 5) is True


# ------------------------------------------------------------- TTL and layout


def test_native_ttl_set_with_every_write(store: RedisStore, clock: FrozenClock, raw: Any) -> None:
    store.create(K1, b"a", expires_at=clock() + 60, user_key=None)
    assert 0 < raw.pttl(rec_name(store, K1)) <= 60_000
    store.replace(K1, b"b", expected_version=1, expires_at=clock() + 300, user_key=None)
    assert 60_000 < raw.pttl(rec_name(store, K1)) <= 300_000
    store.kv_create(K2, b"v", expires_at=clock() + 30)
    assert 0 < raw.pttl(f"{store.prefix}:{{{K2}}}:kv") <= 30_000
    store.kv_cas(K2, b"w", expected_version=1, expires_at=clock() + 120)
    assert 30_000 < raw.pttl(f"{store.prefix}:{{{K2}}}:kv") <= 120_000
    store.lock_acquire(K1, "tok", 7)
    assert 0 < raw.pttl(f"{store.prefix}:{{{K1}}}:lock") <= 7_000
    store.lock_renew(K1, "tok", 20)
    assert 7_000 < raw.pttl(f"{store.prefix}:{{{K1}}}:lock") <= 20_000
    # Every key the store wrote carries a TTL, except the user index (pruned lazily).
    store.create(K2, b"c", expires_at=clock() + 60, user_key=USER)
    for name in keys_of(raw, store):
        if not name.endswith(":user"):
            assert raw.pttl(name) > 0, name


def test_key_names_hold_prefix_and_hashes_only(
    store: RedisStore, clock: FrozenClock, raw: Any
) -> None:
    store.create(K1, b"a", expires_at=clock() + 60, user_key=USER)
    store.kv_create(K2, b"k", expires_at=clock() + 60)
    store.lock_acquire(K1, "secret-token", 60)
    names = keys_of(raw, store)
    shape = re.compile(rf"{re.escape(store.prefix)}:\{{([0-9a-z]+)\}}:(rec|lock|kv|user)")
    assert len(names) == 4
    for name in names:
        match = shape.fullmatch(name)
        assert match is not None, name
        assert match.group(1) in {K1, K2, USER}
        expected_type = b"set" if match.group(2) == "user" else b"hash"
        assert raw.type(name) == expected_type
    # Nothing but the given keys appears in names: no token, no blob.
    assert not any("secret-token" in name for name in names)


def test_two_prefixes_are_isolated(backend: Any, clock: FrozenClock) -> None:
    with make_redis_store(backend.url, clock) as one, make_redis_store(backend.url, clock) as two:
        one.create(K1, b"one", expires_at=clock() + 60, user_key=USER)
        one.kv_create(K1, b"kv", expires_at=clock() + 60)
        one.lock_acquire(K1, "tok", 60)
        assert two.load(K1) is None
        assert two.kv_get(K1) is None
        assert two.by_user(USER) == []
        assert two.scan(None, 100) == ([], None)
        assert two.lock_acquire(K1, "other", 60) is True
        two.create(K1, b"two", expires_at=clock() + 60, user_key=None)
        record = one.load(K1)
        assert record is not None and record.blob == b"one"


# ----------------------------------------------------------------- concurrency


def race(workers: int, job: Callable[[int], object]) -> list[object]:
    """Run ``job(i)`` in ``workers`` threads released together; collect results or errors."""
    barrier = threading.Barrier(workers)
    results: list[object] = [None] * workers

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = job(i)
        except Exception as exc:  # collected and asserted on by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_kv_take_exactly_one_winner(store: RedisStore, clock: FrozenClock) -> None:
    for round_ in range(5):
        key = hexkey(round_)
        store.kv_create(key, b"token", expires_at=clock() + 60)

        def take(_i: int, k: str = key) -> object:
            return store.kv_take(k)

        results = race(8, take)
        assert results.count(b"token") == 1
        assert results.count(None) == 7


def test_concurrent_cas_exactly_one_winner(store: RedisStore, clock: FrozenClock) -> None:
    store.create(K1, b"v1", expires_at=clock() + 60, user_key=None)

    def write(i: int) -> object:
        return store.replace(
            K1, f"w{i}".encode(), expected_version=1, expires_at=clock() + 60, user_key=None
        )

    results = race(8, write)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(type(r) is SessionConflictError for r in results if isinstance(r, Exception))
    assert store.load(K1) == winners[0]


def test_concurrent_kv_cas_exactly_one_winner(store: RedisStore, clock: FrozenClock) -> None:
    store.kv_create(K1, b"0", expires_at=clock() + 60)
    results = race(
        8, lambda i: store.kv_cas(K1, str(i).encode(), expected_version=1, expires_at=clock() + 60)
    )
    assert results.count(True) == 1
    assert store.kv_get(K1) is not None


def test_concurrent_lock_acquire_one_holder(store: RedisStore) -> None:
    results = race(8, lambda i: store.lock_acquire(K1, f"tok-{i}", 30))
    assert results.count(True) == 1


# --------------------------------------------------------------- connections


def test_keys_validated_before_any_io(clock: FrozenClock) -> None:
    # Nothing listens on this port: a ValueError proves no connection was tried.
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", clock=clock)
    with store:
        for bad in ["", "A" * 64, "../etc", "k" * 201, "key with space", "{tag}"]:
            with pytest.raises(ValueError):
                store.load(bad)
            with pytest.raises(ValueError):
                store.kv_take(bad)
        with pytest.raises(ValueError):
            store.create(K1, b"x", expires_at=clock() + 1, user_key="Bad User")


@pytest.mark.parametrize("query", ["?db=0", "", "?db=3"])
def test_unix_socket_url(redis_server: RedisServer, clock: FrozenClock, query: str) -> None:  # noqa: F811
    url = f"unix://{redis_server.socket_path}{query}"
    with make_redis_store(url, clock) as store:
        store.create(K1, b"via-socket", expires_at=clock() + 60, user_key=None)
        record = store.load(K1)
        assert record is not None and record.blob == b"via-socket"
        assert store.kind == "redis"
        db = int(query.partition("=")[2] or 0)
        with redis.Redis(unix_socket_path=str(redis_server.socket_path), db=db) as raw:
            assert raw.exists(rec_name(store, K1)) == 1


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    server = RedisServer(password="default-Pa55", acl_user=("app", "s3cret-Pa55word"))
    try:
        yield server
    finally:
        server.close()


def test_acl_user_and_password(acl_server: RedisServer, clock: FrozenClock) -> None:
    url = f"redis://app:s3cret-Pa55word@127.0.0.1:{acl_server.port}/0"
    with make_redis_store(url, clock) as store:
        store.create(K1, b"authed", expires_at=clock() + 60, user_key=None)
        assert store.load(K1) is not None
    default_url = f"redis://:default-Pa55@127.0.0.1:{acl_server.port}/0"
    with make_redis_store(default_url, clock) as store:
        store.ping()


@pytest.mark.parametrize(
    "userinfo", ["app:wrong-Pa55word", "nobody:s3cret-Pa55word", ":wrong-Pa55word", ""]
)
def test_bad_credentials_clean_error(
    acl_server: RedisServer, clock: FrozenClock, userinfo: str
) -> None:
    at = "@" if userinfo else ""
    url = f"redis://{userinfo}{at}127.0.0.1:{acl_server.port}/0"
    with make_redis_store(url, clock) as store:
        with pytest.raises(StoreError) as caught:
            store.load(K1)
    message = f"{caught.value} {caught.value!r}"
    assert caught.value.store == "redis"
    assert "Pa55" not in message
    assert f"at 127.0.0.1:{acl_server.port} refused the credentials" in message  # where, no URL
    assert "fix the user name and password" in message
    assert isinstance(caught.value, StoreUnavailableError)


def test_outage_raises_then_recovers(clock: FrozenClock) -> None:
    server = RedisServer()
    try:
        with make_redis_store(server.url, clock) as store:
            store.create(K1, b"before", expires_at=clock() + 60, user_key=USER)
            server.stop()
            calls: list[Callable[[], object]] = [
                store.ping,
                lambda: store.load(K1),
                lambda: store.create(K2, b"x", expires_at=clock() + 60, user_key=None),
                lambda: store.replace(K1, b"x", expected_version=1, expires_at=clock() + 60,
                                      user_key=None),
                lambda: store.touch(K1, expires_at=clock() + 60, touched_at=clock()),
                lambda: store.delete(K1),
                lambda: store.by_user(USER),
                lambda: store.scan(None, 10),
                lambda: store.stats(clock()),
                lambda: store.kv_get(K1),
                lambda: store.kv_create(K1, b"x", expires_at=clock() + 60),
                lambda: store.kv_take(K1),
                lambda: store.lock_acquire(K1, "tok", 5),
                lambda: store.lock_release(K1, "tok"),
            ]  # fmt: skip
            for call in calls:
                with pytest.raises(StoreUnavailableError) as caught:
                    call()
                assert caught.value.store == "redis"
                assert isinstance(caught.value.__cause__, redis.RedisError)
            server.start()  # same port; persistence is off, so the data is gone
            store.ping()
            assert store.load(K1) is None
            store.create(K2, b"after", expires_at=clock() + 60, user_key=None)
            record = store.load(K2)
            assert record is not None and record.blob == b"after"
            assert store.kv_create(K1, b"t", expires_at=clock() + 60) is True
            assert store.kv_take(K1) == b"t"
    finally:
        server.close()


# ----------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2pw@127.0.0.1:6379/0",
        "redis://user:hunter2pw@127.0.0.1:6379/0?bogus=1",
        "redis://user:hunter2pw@127.0.0.1:6379/zero",
        "redis://user:hunter2pw@127.0.0.1:notaport/0",
        "redis://user:hunter2pw@127.0.0.1:6379/0?ssl_ca_certs=/x.pem",  # TLS option without TLS
        "redis://user:hunter2pw@127.0.0.1:6379/0?socket_timeout=soon",
        "redis+cluster://user:hunter2pw@127.0.0.1:7000?db=2",
        "redis+cluster://user:hunter2pw@127.0.0.1",
        "unix://user:hunter2pw@",
        "redis://user:hunter2pw@127.0.0.1:6379/0?socket_timeout=0",
        "redis://user:hunter2pw@127.0.0.1:6379/0?max_connections=0",
        "redis://user:hunter2pw@127.0.0.1:6379/0?db=1&db=2",
    ],
)
def test_bad_urls_fail_fast_without_echo(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisStore.from_url(url)
    assert "hunter2pw" not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)


def test_bad_prefix_refused(redis_server: RedisServer) -> None:  # noqa: F811
    with pytest.raises(ConfigurationError):
        RedisStore.from_url(redis_server.url, prefix="has space")


def test_rediss_builds_tls_pool(tmp_path: Any, clock: FrozenClock) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used before a connection is made\n")
    with RedisStore.from_url(f"rediss://127.0.0.1:1/0?ssl_ca_certs={ca}", clock=clock) as store:
        pool = store._client.connection_pool
        assert pool.connection_class is redis.SSLConnection
        assert pool.connection_kwargs["ssl_ca_certs"] == str(ca)


def test_cluster_url_with_several_nodes(redis_cluster: RedisClusterProcess) -> None:  # noqa: F811
    nodes = ",".join(f"127.0.0.1:{port}" for port in redis_cluster.ports)
    clock = FrozenClock()
    with make_redis_store(f"redis+cluster://{nodes}", clock) as store:
        assert store.kind == "redis-cluster"
        store.create(K1, b"c", expires_at=clock() + 60, user_key=USER)
        assert [k for k, _ in store.by_user(USER)] == [K1]


def test_cluster_unreachable_is_store_error() -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        RedisStore.from_url(f"redis+cluster://127.0.0.1:{free_port()}")
    assert caught.value.store == "redis-cluster"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[RedisServer]:
    server = RedisServer(tls=True)
    try:
        yield server
    finally:
        server.close()


def test_rediss_with_ca_and_client_certificate(tls_server: RedisServer, clock: FrozenClock) -> None:
    files = tls_server.tls_files
    url = (
        f"rediss://127.0.0.1:{tls_server.tls_port}/0?ssl_ca_certs={files['ca']}"
        f"&ssl_certfile={files['client']}&ssl_keyfile={files['client_key']}"
    )
    with make_redis_store(url, clock) as store:
        store.create(K1, b"over-tls", expires_at=clock() + 60, user_key=None)
        record = store.load(K1)
        assert record is not None and record.blob == b"over-tls"


@pytest.mark.parametrize("query", ["ssl_ca_certs={ca}", "", "ssl_ca_certs={client}"])
def test_rediss_refuses_unverified_or_anonymous(
    tls_server: RedisServer, clock: FrozenClock, query: str
) -> None:
    # No client cert (server requires one), no CA (server cert unverifiable),
    # or the wrong CA: all fail closed with a clean StoreError.
    files = tls_server.tls_files
    query = query.format(ca=files["ca"], client=files["client"])
    url = f"rediss://127.0.0.1:{tls_server.tls_port}/0" + (f"?{query}" if query else "")
    with make_redis_store(url, clock) as store:
        with pytest.raises(StoreUnavailableError):
            store.load(K1)


class _PruneBeforeWrite:
    """Wraps a store's script runner: a concurrent ``by_user`` (which prunes)
    runs right before each record write."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.prune_user = ""
        self._run = store._conn.run
        store._conn.run = self.run  # type: ignore[method-assign]

    def run(self, script: str, keys: list[str], args: Any) -> Any:
        # "replace" with indexed=1 is the write after the pre-add.
        writing = script == "create" or (script == "replace" and args[-1] == "1")
        if writing and self.prune_user:
            user, self.prune_user = self.prune_user, ""
            self.store.by_user(user)
        return self._run(script, keys, args)


@pytest.mark.parametrize("operation", ["create", "replace"])
def test_index_survives_prune_between_index_and_write(
    backend: Any, clock: FrozenClock, operation: str
) -> None:
    # The index entry is added before the write; a by_user in that window sees
    # no matching record and prunes it.  The add after the write must repair it.
    plain = make_redis_store(backend.url, clock)
    store = RedisStore(plain._client, clock=clock, prefix=plain.prefix)
    spy = _PruneBeforeWrite(store)
    try:
        if operation == "replace":
            store.create(K1, b"anon", expires_at=clock() + 60, user_key=None)
        spy.prune_user = USER
        if operation == "create":
            store.create(K1, b"a", expires_at=clock() + 60, user_key=USER)
        else:
            store.replace(K1, b"a", expected_version=1, expires_at=clock() + 60, user_key=USER)
        assert spy.prune_user == ""  # the interleaving really happened
        assert [k for k, _ in store.by_user(USER)] == [K1]
    finally:
        plain.close()


def test_hung_server_gives_timeout_then_recovers(clock: FrozenClock) -> None:
    server = RedisServer()
    try:
        url = f"{server.url}?socket_timeout=0.5&socket_connect_timeout=0.5"
        with make_redis_store(url, clock) as store:
            store.kv_create(K1, b"v", expires_at=clock() + 60)
            server.pause()
            try:
                with pytest.raises(StoreTimeoutError) as caught:
                    store.kv_get(K1)
                assert caught.value.store == "redis"
                assert isinstance(caught.value.__cause__, redis.TimeoutError)
            finally:
                server.resume()
            assert store.kv_get(K1) == (b"v", 1)
    finally:
        server.close()
