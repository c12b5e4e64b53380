"""Backend-specific tests for FileStore: modes, refusals, symlinks, crashes, processes.

The store contract (shared with every backend) is exercised by the contract
suite; this module covers what only a filesystem store can get wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessionward.core.clock import FrozenClock
from sessionward.core.errors import (
    ConfigurationError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    StoreError,
)
from sessionward.stores import filesystem
from sessionward.stores.filesystem import FileStore

KEY = "a" * 64
KEY2 = "b" * 64
USER = "c" * 64
USER2 = "d" * 64
FAR = 4_000_000_000.0


def shard(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=1).hexdigest()


def data_file(root: Path, ns: str, key: str) -> Path:
    return root / ns / shard(key) / key


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mode, size and mtime."""
    out = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        out[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(name="clock")
def _clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(name="root")
def _root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(name="store")
def _store(root: Path, clock: FrozenClock) -> Iterator[FileStore]:
    with FileStore(root, clock=clock) as store:
        yield store


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# ---------------------------------------------------------------- basics


class TestBasics:
    def test_round_trip_and_versions(self, store: FileStore, clock: FrozenClock) -> None:
        """create/replace/touch keep the version rules of the memory store."""
        rec = store.create(KEY, b"one", expires_at=clock.now + 60, user_key=USER)
        assert (rec.version, rec.touched_at) == (1, clock.now)
        clock.advance(5)
        rec = store.replace(
            KEY, b"two", expected_version=1, expires_at=clock.now + 60, user_key=USER
        )
        assert (rec.version, rec.blob, rec.touched_at) == (2, b"two", clock.now)
        assert store.touch(KEY, expires_at=clock.now + 7200, touched_at=clock.now + 1)
        loaded = store.load(KEY)
        assert loaded is not None
        assert (loaded.version, loaded.blob, loaded.expires_at) == (2, b"two", clock.now + 7200)

    def test_create_never_overwrites(self, store: FileStore) -> None:
        """A second create on one key raises SessionExistsError and keeps the first blob."""
        store.create(KEY, b"first", expires_at=FAR, user_key=None)
        with pytest.raises(SessionExistsError):
            store.create(KEY, b"second", expires_at=FAR, user_key=None)
        assert store.load(KEY) is not None and store.load(KEY).blob == b"first"  # type: ignore[union-attr]

    def test_replace_errors(self, store: FileStore) -> None:
        """replace on a missing key is Gone; on a moved version a Conflict."""
        with pytest.raises(SessionGoneError):
            store.replace(KEY, b"x", expected_version=1, expires_at=FAR, user_key=None)
        store.create(KEY, b"x", expires_at=FAR, user_key=None)
        with pytest.raises(SessionConflictError):
            store.replace(KEY, b"y", expected_version=7, expires_at=FAR, user_key=None)

    def test_load_creates_nothing(self, store: FileStore, root: Path) -> None:
        """load/kv_get of unknown keys leave the directory tree untouched."""
        before = snapshot(root)
        assert store.load(KEY) is None
        assert store.kv_get(KEY) is None
        assert snapshot(root) == before

    def test_mutex_files_do_not_pile_up(self, store: FileStore, root: Path) -> None:
        """Mutex files of keys that no longer hold anything are removed."""
        store.create(KEY, b"x", expires_at=FAR, user_key=None)
        store.kv_create("tok:1", b"v", expires_at=FAR)
        store.kv_take("tok:1")
        store.kv_take("tok:2")
        store.lock_release(KEY2, "nobody")
        store.delete(KEY)
        assert [p for p in (root / "mutex").rglob("*") if p.is_file()] == []

    def test_from_url(self, tmp_path: Path) -> None:
        """from_url accepts file:///abs?durable=true and nothing fancier."""
        with FileStore.from_url(f"file://{tmp_path}/s?durable=true") as store:
            assert store.durable
        with FileStore.from_url(f"file://{tmp_path}/s") as store:
            assert not store.durable
        for bad in (
            "file://host/x",
            "sqlite:///x",
            f"file://{tmp_path}/s?durable=maybe",
            f"file://{tmp_path}/s?other=1",
            "file:relative/x",
            f"file://{tmp_path}/s%00x",
        ):
            with pytest.raises(ConfigurationError):
                FileStore.from_url(bad)


# ------------------------------------------------------- modes and refusals


class TestDirectorySecurity:
    def test_modes_under_umask_000(self, tmp_path: Path, clock: FrozenClock) -> None:
        """With umask 000 every directory is 0700 and every file 0600."""
        root = tmp_path / "store"
        with umask(0), FileStore(root, clock=clock, durable=True) as store:
            store.create(KEY, b"x", expires_at=clock.now + 60, user_key=USER)
            store.replace(KEY, b"y", expected_version=1, expires_at=FAR, user_key=USER2)
            store.kv_create("tok:1", b"v", expires_at=FAR)
            store.lock_acquire(KEY2, "t", 30)
        paths = [root, *root.rglob("*")]
        assert len(paths) > 10
        for path in paths:
            mode = stat.S_IMODE(path.lstat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), path

    def test_strict_umask_still_gives_exact_modes(self, tmp_path: Path) -> None:
        """A umask that strips owner bits cannot make the store unusable."""
        root = tmp_path / "store"
        with umask(0o377), FileStore(root) as store:
            store.create(KEY, b"x", expires_at=FAR, user_key=None)
        assert stat.S_IMODE(data_file(root, "records", KEY).stat().st_mode) == 0o600
        assert stat.S_IMODE(root.stat().st_mode) == 0o700

    @pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o707])
    def test_group_or_world_access_refused(self, tmp_path: Path, mode: int) -> None:
        """A directory others can enter is refused with the path and the chmod fix."""
        root = tmp_path / "store"
        root.mkdir()
        root.chmod(mode)
        with pytest.raises(ConfigurationError) as info:
            FileStore(root)
        assert str(root) in str(info.value)
        assert f"chmod 700 {root}" in str(info.value)
        assert list(root.iterdir()) == []  # nothing was created there

    def test_unwritable_refused(self, tmp_path: Path) -> None:
        """A directory its owner cannot write is refused."""
        root = tmp_path / "store"
        root.mkdir(mode=0o500)
        with pytest.raises(ConfigurationError, match="chmod 700"):
            FileStore(root)

    @pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another user")
    def test_foreign_owner_refused(self, tmp_path: Path) -> None:
        """A directory owned by another user is refused, naming the fix."""
        root = tmp_path / "store"
        root.mkdir(mode=0o700)
        os.chown(root, 65534, 65534)
        with pytest.raises(ConfigurationError, match="chown"):
            FileStore(root)

    def test_symlinked_directory_refused(self, tmp_path: Path) -> None:
        """A symlink as the store directory is refused, and its target is untouched."""
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        link = tmp_path / "store"
        link.symlink_to(real)
        with pytest.raises(ConfigurationError, match="symlink"):
            FileStore(link)
        assert list(real.iterdir()) == []

    def test_missing_parent_refused(self, tmp_path: Path) -> None:
        """The store never invents a parent directory (no silent other location)."""
        with pytest.raises(ConfigurationError, match="does not exist"):
            FileStore(tmp_path / "nope" / "store")

    def test_insecure_subdirectory_refused(self, root: Path) -> None:
        """A loosened or symlinked subdirectory is refused at the next start-up."""
        FileStore(root).close()
        (root / "records").chmod(0o755)
        with pytest.raises(ConfigurationError, match="chmod 700"):
            FileStore(root)
        (root / "records").chmod(0o700)
        (root / "kv").rmdir()
        (root / "kv").symlink_to(root / "records")
        with pytest.raises(ConfigurationError):
            FileStore(root)

    def test_file_created_store_dir_is_0700(self, tmp_path: Path) -> None:
        """A freshly created store directory is 0700 even under umask 000."""
        with umask(0), FileStore(tmp_path / "fresh"):
            pass
        assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700


# --------------------------------------------------------------- symlinks


class TestSymlinks:
    @pytest.fixture(name="planted")
    def _planted(self, store: FileStore, root: Path) -> Path:
        """KEY2's record path is a symlink to KEY's (valid!) record file."""
        store.create(KEY, b"victim", expires_at=FAR, user_key=None)
        target = data_file(root, "records", KEY)
        link = data_file(root, "records", KEY2)
        link.parent.mkdir(mode=0o700, exist_ok=True)
        link.symlink_to(target)
        return target

    def test_load_refuses_and_logs(
        self, store: FileStore, planted: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A symlink where a record belongs raises StoreError and warns on sessionward.security."""
        with caplog.at_level(logging.WARNING, logger="sessionward.security"):
            with pytest.raises(StoreError):
                store.load(KEY2)
        assert any(r.name == "sessionward.security" for r in caplog.records)
        assert KEY not in caplog.text and KEY2 not in caplog.text

    def test_writes_never_follow(self, store: FileStore, planted: Path) -> None:
        """replace/touch/create/delete on the symlink never reach its target."""
        before = planted.read_bytes()
        with pytest.raises(StoreError):
            store.replace(KEY2, b"evil", expected_version=1, expires_at=FAR, user_key=None)
        with pytest.raises(StoreError):
            store.touch(KEY2, expires_at=1.0, touched_at=1.0)
        with pytest.raises(StoreError):
            store.create(KEY2, b"evil", expires_at=FAR, user_key=None)
        with pytest.raises(StoreError):
            store.delete(KEY2)
        assert planted.read_bytes() == before
        assert store.load(KEY) is not None

    def test_kv_symlink_refused(self, store: FileStore, root: Path, tmp_path: Path) -> None:
        """kv_take through a symlinked kv file raises and leaves the target alone."""
        outside = tmp_path / "outside"
        outside.write_bytes(b"do not touch")
        link = data_file(root, "kv", "tok:1")
        link.parent.mkdir(mode=0o700, exist_ok=True)
        link.symlink_to(outside)
        with pytest.raises(StoreError):
            store.kv_take("tok:1")
        with pytest.raises(StoreError):
            store.kv_get("tok:1")
        assert outside.read_bytes() == b"do not touch"

    def test_fifo_refused_without_blocking(self, store: FileStore, root: Path) -> None:
        """A FIFO planted as a record is refused (opened non-blocking), not waited on."""
        path = data_file(root, "records", KEY)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        os.mkfifo(path, 0o600)
        with pytest.raises(StoreError):
            store.load(KEY)


# --------------------------------------------------------- hostile keys


HOSTILE = ["../etc", "a/b", "..", "a\\b", "a\x00b", "ABC", "", "x" * 201, "é", "a.b", " "]


class TestHostileKeys:
    @pytest.mark.parametrize("bad", HOSTILE)
    def test_rejected_before_any_io(self, store: FileStore, root: Path, bad: str) -> None:
        """Traversal-shaped keys raise ValueError and touch no file."""
        before = snapshot(root)
        calls: list[Callable[[], object]] = [
            lambda: store.create(bad, b"x", expires_at=FAR, user_key=None),
            lambda: store.create(KEY, b"x", expires_at=FAR, user_key=bad),
            lambda: store.load(bad),
            lambda: store.replace(bad, b"x", expected_version=1, expires_at=FAR, user_key=None),
            lambda: store.touch(bad, expires_at=FAR, touched_at=FAR),
            lambda: store.delete(bad),
            lambda: store.by_user(bad),
            lambda: store.kv_get(bad),
            lambda: store.kv_create(bad, b"x", expires_at=FAR),
            lambda: store.kv_cas(bad, b"x", expected_version=1, expires_at=FAR),
            lambda: store.kv_take(bad),
            lambda: store.kv_delete(bad),
            lambda: store.lock_acquire(bad, "t", 1),
            lambda: store.lock_renew(bad, "t", 1),
            lambda: store.lock_release(bad, "t"),
        ]
        for call in calls:
            with pytest.raises(ValueError):
                call()
        assert snapshot(root) == before


# ------------------------------------------------------------ corruption


class TestCorruption:
    @pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip"])
    def test_damaged_record_is_a_store_error(
        self, store: FileStore, root: Path, clock: FrozenClock, damage: str
    ) -> None:
        """A torn or garbage record raises StoreError; delete and purge remove it."""
        store.create(KEY, b"payload" * 10, expires_at=clock.now + 60, user_key=USER)
        path = data_file(root, "records", KEY)
        data = path.read_bytes()
        damaged = {
            "truncate": data[: len(data) // 2],
            "garbage": os.urandom(len(data)),
            "empty": b"",
            "flip": data[:40] + bytes([data[40] ^ 1]) + data[41:],
        }[damage]
        path.write_bytes(damaged)
        with pytest.raises(StoreError):
            store.load(KEY)
        with pytest.raises(StoreError):
            store.replace(KEY, b"x", expected_version=1, expires_at=FAR, user_key=None)
        clock.advance(61)
        assert store.purge_expired(clock.now, 10) == 1
        assert not path.exists()
        assert store.by_user(USER) == []


# ------------------------------------------------------- indexes and purge


class TestIndexes:
    def test_user_index_follows_replace_and_delete(self, store: FileStore) -> None:
        """by_user tracks user changes made by replace and forgets deleted records."""
        store.create(KEY, b"x", expires_at=FAR, user_key=USER)
        store.create(KEY2, b"x", expires_at=FAR, user_key=USER)
        assert [k for k, _ in store.by_user(USER)] == [KEY, KEY2]
        store.replace(KEY, b"y", expected_version=1, expires_at=FAR, user_key=USER2)
        assert [k for k, _ in store.by_user(USER)] == [KEY2]
        assert [k for k, _ in store.by_user(USER2)] == [KEY]
        store.delete(KEY2)
        assert store.by_user(USER) == []

    def test_stale_markers_pruned_lazily(self, store: FileStore, root: Path) -> None:
        """A record that vanished behind the store's back is pruned from both indexes."""
        store.create(KEY, b"x", expires_at=100.0, user_key=USER)
        data_file(root, "records", KEY).unlink()  # as if removed by a crash or an operator
        assert store.by_user(USER) == []
        assert not (root / "users" / shard(USER) / USER).exists()
        assert store.purge_expired(1_000.0, 10) == 0
        assert list((root / "expiry" / "records").iterdir()) == []

    def test_purge_reads_only_due_buckets(
        self, store: FileStore, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """purge_expired only examines entries in buckets <= now, not the whole store."""
        for i in range(40):
            store.create(f"{i:064x}", b"x", expires_at=clock.now + 86_400, user_key=None)
        for i in range(5):
            store.create(f"e{i:063x}", b"x", expires_at=clock.now + 10, user_key=USER)
        examined: list[str] = []
        real = store._purge_one

        def spy(ns: str, key: str, bucket: int, now: float) -> int:
            examined.append(key)
            return real(ns, key, bucket, now)

        monkeypatch.setattr(store, "_purge_one", spy)
        clock.advance(filesystem.BUCKET_SECONDS * 2)
        assert store.purge_expired(clock.now, 100) == 5
        assert sorted(examined) == [f"e{i:063x}" for i in range(5)]
        assert store.by_user(USER) == []
        assert store.stats(clock.now).records == 40

    def test_purge_limit_and_kv_and_locks(self, store: FileStore, clock: FrozenClock) -> None:
        """purge honours limit and also clears expired kv entries and leases."""
        for i in range(5):
            store.create(f"{i:064x}", b"x", expires_at=clock.now + 1, user_key=None)
        store.kv_create("tok:1", b"v", expires_at=clock.now + 1)
        store.lock_acquire(KEY, "t", 1)
        clock.advance(1)
        assert store.purge_expired(clock.now, 3) == 3
        assert store.purge_expired(clock.now, 3) == 2
        stats = store.stats(clock.now)
        assert (stats.records, stats.kv_entries, stats.locks) == (0, 0, 0)
        assert not data_file(store_root(store), "kv", "tok:1").exists()
        assert not data_file(store_root(store), "locks", KEY).exists()

    def test_touch_moves_expiry_bucket(self, store: FileStore, clock: FrozenClock) -> None:
        """A touched record is not purged at its old expiry, and is at its new one."""
        store.create(KEY, b"x", expires_at=clock.now + 10, user_key=None)
        store.touch(KEY, expires_at=clock.now + 5_000, touched_at=clock.now)
        assert store.purge_expired(clock.now + 11, 10) == 0
        assert store.purge_expired(clock.now + 5_000, 10) == 1

    def test_scan_pages_every_record_once(self, store: FileStore) -> None:
        """scan walks all records in a stable order, page by page."""
        keys = {f"{i:064x}" for i in range(23)}
        for key in keys:
            store.create(key, b"x", expires_at=FAR, user_key=None)
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page, cursor = store.scan(cursor, 5)
            seen.extend(k for k, _ in page)
            if cursor is None:
                break
        assert sorted(seen) == sorted(keys) and len(seen) == len(keys)


def store_root(store: FileStore) -> Path:
    return Path(store._path)


# ----------------------------------------------------------------- mutex


class TestMutex:
    def test_replaced_mutex_file_is_detected(
        self, store: FileStore, root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If the mutex file is replaced between open and flock, the lock is retaken."""
        rel = f"mutex/{shard(KEY)}/{KEY}.r"
        real_open = store._open_mutex
        opened: list[int] = []

        def open_then_swap(path: str) -> int:
            fd = real_open(path)
            opened.append(fd)
            if len(opened) == 1:  # another process unlinks and recreates it now
                (root / path).unlink()
                (root / path).touch(mode=0o600)
            return fd

        monkeypatch.setattr(store, "_open_mutex", open_then_swap)
        fd = store._lock(rel)
        try:
            assert len(opened) == 2
            assert os.fstat(fd).st_ino == (root / rel).stat().st_ino
        finally:
            os.close(fd)

    def test_threads_do_not_lose_updates(self, store: FileStore) -> None:
        """8 threads doing CAS increments in one process lose nothing (flock is per open)."""
        store.create(KEY, b"0", expires_at=FAR, user_key=None)

        def work() -> None:
            for _ in range(25):
                cas_increment(store)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        rec = store.load(KEY)
        assert rec is not None and (rec.blob, rec.version) == (b"200", 201)


def cas_increment(store: FileStore) -> None:
    while True:
        rec = store.load(KEY)
        assert rec is not None
        try:
            store.replace(
                KEY,
                b"%d" % (int(rec.blob) + 1),
                expected_version=rec.version,
                expires_at=FAR,
                user_key=None,
            )
            return
        except SessionConflictError:
            continue


# ------------------------------------------------------------ processes

WORKER = r"""
import json, os, sys, time
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import LockLostError, SessionConflictError
from sessionward.stores.filesystem import FileStore

def gate(path):
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.001)

op, directory, *args = sys.argv[1:]
if op == "cas":
    key, n, door = args
    store = FileStore(directory)
    gate(door)
    for _ in range(int(n)):
        while True:
            rec = store.load(key)
            try:
                store.replace(key, b"%d" % (int(rec.blob) + 1), expected_version=rec.version,
                              expires_at=rec.expires_at, user_key=None)
                break
            except SessionConflictError:
                pass
    print(json.dumps("done"))
elif op == "take":
    prefix, n, door = args
    store = FileStore(directory)
    gate(door)
    print(json.dumps([i for i in range(int(n)) if store.kv_take(prefix + str(i)) is not None]))
elif op == "lock":
    prefix, n, token, now, door = args
    store = FileStore(directory, clock=FrozenClock(float(now)))
    gate(door)
    print(json.dumps([i for i in range(int(n)) if store.lock_acquire(prefix + str(i), token, 30)]))
elif op == "fenced":
    key, token, now = args
    store = FileStore(directory, clock=FrozenClock(float(now)))
    rec = store.load(key)
    try:
        store.replace(key, b"fenced", expected_version=rec.version, expires_at=rec.expires_at,
                      user_key=None, fence=token)
        print(json.dumps("ok"))
    except LockLostError:
        print(json.dumps("lock_lost"))
elif op == "writer":
    key, size, durable = args
    store = FileStore(directory, durable=durable == "1")
    version = store.load(key).version
    print("ready", flush=True)
    while True:
        blob = (b"%010d" % (version + 1)) * (int(size) // 10)
        version = store.replace(key, blob, expected_version=version, expires_at=4e9,
                                user_key=None).version
"""


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args],
        stdout=subprocess.PIPE,
        text=True,
    )


def run_gated(procs: list[subprocess.Popen[str]], door: Path) -> list[object]:
    """Wait until every worker is ready, open the door, collect one JSON answer each."""
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    door.touch()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        results.append(json.loads(out))
    return results


@pytest.mark.slow
class TestProcesses:
    def test_cas_increments_from_4_processes(self, root: Path, tmp_path: Path) -> None:
        """4 processes x 100 CAS increments with retry: count and version exact."""
        with FileStore(root) as store:
            store.create(KEY, b"0", expires_at=FAR, user_key=None)
        door = tmp_path / "door"
        procs = [spawn("cas", str(root), KEY, "100", str(door)) for _ in range(4)]
        run_gated(procs, door)
        with FileStore(root) as store:
            rec = store.load(KEY)
        assert rec is not None and (rec.blob, rec.version) == (b"400", 401)

    def test_kv_take_consumed_once_across_8_processes(self, root: Path, tmp_path: Path) -> None:
        """8 processes race kv_take on each of 300 tokens: exactly one wins each."""
        with FileStore(root) as store:
            for i in range(300):
                assert store.kv_create(f"tok:{i}", b"secret", expires_at=FAR)
        door = tmp_path / "door"
        procs = [spawn("take", str(root), "tok:", "300", str(door)) for _ in range(8)]
        wins = run_gated(procs, door)
        flat = sorted(i for w in wins for i in w)  # type: ignore[attr-defined]
        assert flat == list(range(300))

    def test_lock_acquire_one_winner(self, root: Path, tmp_path: Path) -> None:
        """2 processes race lock_acquire on 40 keys: exactly one holder per key."""
        FileStore(root).close()
        door = tmp_path / "door"
        procs = [spawn("lock", str(root), "lk:", "40", tok, "1000", str(door)) for tok in "xy"]
        wins = run_gated(procs, door)
        flat = sorted(i for w in wins for i in w)  # type: ignore[attr-defined]
        assert flat == list(range(40))

    def test_expired_lease_takeover_fences_old_holder(self, root: Path, tmp_path: Path) -> None:
        """After takeover of an expired lease, the old holder's fenced replace is LockLost."""
        fenced_key = KEY + "0"  # the "lock" worker appends the index to its prefix
        with FileStore(root, clock=FrozenClock(1000.0)) as store:
            store.create(fenced_key, b"0", expires_at=FAR, user_key=None)
        door = tmp_path / "door"
        (won,) = run_gated([spawn("lock", str(root), KEY, "1", "old", "1000", str(door))], door)
        assert won == [0]
        assert worker_answer("fenced", str(root), fenced_key, "old", "1010") == "ok"
        with FileStore(root, clock=FrozenClock(1031.0)) as store:
            assert store.lock_acquire(fenced_key, "new", 30)
        assert worker_answer("fenced", str(root), fenced_key, "old", "1031") == "lock_lost"
        assert worker_answer("fenced", str(root), fenced_key, "new", "1031") == "ok"

    def test_kill_9_never_tears_a_record(self, root: Path) -> None:
        """SIGKILL a looping writer 30 times: the record always parses and is complete."""
        rng = random.Random(1234)
        with FileStore(root) as store:
            store.create(KEY, b"%010d" % 1 * 6553, expires_at=FAR, user_key=None)
        last = 1
        for i in range(30):
            proc = spawn("writer", str(root), KEY, "65536", str(i % 2))
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            threading.Event().wait(rng.uniform(0.0, 0.03))  # random kill point
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            with FileStore(root) as store:
                rec = store.load(KEY)
            assert rec is not None
            assert rec.blob == (b"%010d" % rec.version) * (len(rec.blob) // 10)
            assert rec.version >= last
            last = rec.version
        assert last > 30  # the writers really wrote while being killed
        with FileStore(root) as store:
            store.temp_grace_seconds = 0.0
            store.purge_expired(0.0, 10)
            assert list((root / "tmp").iterdir()) == []
            store.replace(KEY, b"after", expected_version=last, expires_at=FAR, user_key=None)


def worker_answer(*args: str) -> object:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out)
