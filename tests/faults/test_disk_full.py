"""A full or failing disk under the SQLite and filesystem stores (issue 18, part 4).

Real faults only: a 2 MiB tmpfs filled to the last block (ENOSPC; skipped,
with the reason, where a tmpfs cannot be mounted) and a lowered
``RLIMIT_FSIZE`` with ``SIGXFSZ`` ignored (EFBIG), the latter in a child
process so the limit never touches pytest.  A write that hits the fault is a
clean ``StoreUnavailableError`` naming the cause (503 at the web layer),
what was stored before stays readable, nothing is torn, and writes work
again once space is back.  The long form (25 rounds) runs in ``make faults``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sessionward import SessionManager, Settings
from sessionward.core.errors import StoreUnavailableError
from sessionward.core.keys import KeyRing
from sessionward.guards.throttle import Throttle
from sessionward.stores import open_store
from svc_ci import unavailable

from integrations.apps import build_starlette
from integrations.conftest import NAME, Jar
from integrations.harness import serve_asgi

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("sqlite", "filesystem")


def scenario() -> ModuleType:
    """``bench.faults.disk_full`` (the repository root is not on sys.path)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("bench.faults.disk_full")


@pytest.fixture(name="small_fs")
def fixture_small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (skipped, with the reason, where none can be mounted)."""
    mod = scenario()
    problem = mod.mount_problem()
    if problem is not None:
        unavailable(f"no small filesystem here: {problem}")
    where = tmp_path / "mnt"
    where.mkdir(mode=0o700)
    with mod.small_fs(where, "2m"):
        yield where


def manager_on(kind: str, root: Path) -> SessionManager:
    url = scenario().store_url(kind, root)
    return SessionManager(open_store(url), KeyRing.generate("default"), Settings())


@pytest.mark.parametrize("kind", KINDS)
def test_sync_manager_on_a_full_disk(kind: str, small_fs: Path) -> None:
    """Session saves, leases and kv (throttle) writes fail cleanly; reads keep
    working; the store writes again once the filler is gone."""
    manager = manager_on(kind, small_fs)
    throttle = Throttle(manager.store, manager.keyring, attempts=100)
    session = manager.new()
    session["items"] = ["before"]
    manager.save(session)
    cookie = session.cookie_value
    filler = scenario().fill(small_fs)
    try:
        loaded = manager.load(cookie)
        assert loaded is not None
        loaded["items"] = [*loaded["items"], "x" * 4000]
        with pytest.raises(StoreUnavailableError, match="is full") as caught:
            manager.save(loaded)
        assert caught.value.store == kind
        assert "free space" in str(caught.value) and str(small_fs) not in str(caught.value)
        with pytest.raises(StoreUnavailableError, match="is full"):
            throttle.hit("thr:login:" + "a" * 64)
        with pytest.raises(StoreUnavailableError, match="is full"):
            manager.load(cookie, mode="exclusive")
        fresh = manager.new()
        fresh["n"] = 1
        with pytest.raises(StoreUnavailableError, match="is full"):
            manager.save(fresh)
        again = manager.load(cookie, mode="read")  # the previous record, intact
        assert again is not None and again["items"] == ["before"]
    finally:
        filler.unlink()
    loaded = manager.load(cookie, mode="exclusive")
    assert loaded is not None
    loaded["items"] = [*loaded["items"], "after"]
    manager.save(loaded)
    manager.release(loaded)
    assert throttle.hit("thr:login:" + "a" * 64) == 0.0
    found = scenario().check_store(kind, small_fs, manager)
    assert found.ok() and found.records == 1
    final = manager.load(cookie, mode="read")
    assert final is not None and final["items"] == ["before", "after"]
    manager.close()


@pytest.mark.parametrize("kind", KINDS)
def test_web_layer_answers_503_and_keeps_the_session(kind: str, small_fs: Path) -> None:
    """Starlette over real HTTP: a write on a full disk is a 503 without
    Set-Cookie; the session is still there (never a logout) and writable later."""
    manager = manager_on(kind, small_fs)
    with serve_asgi(build_starlette(manager)) as url:
        import httpx

        jar = Jar(httpx.Client(base_url=url, timeout=30.0))
        assert jar.post("/set", params={"n": "1"}).status_code == 200
        cookie = jar.cookie
        filler = scenario().fill(small_fs)
        try:
            r = jar.post("/set", params={"n": "2" * 3000})
            assert r.status_code == 503
            assert not [h for h in r.headers.get_list("set-cookie") if h.startswith(NAME)]
            assert jar.get("/whoami").text == "user=anon;n=1"
        finally:
            filler.unlink()
        assert jar.post("/set", params={"n": "3"}).status_code == 200
        assert jar.cookie == cookie and jar.get("/whoami").text == "user=anon;n=3"
        jar.client.close()
    manager.close()


def check_row(row: Any) -> None:
    """The measured outcome of one (store, fault) pair, short form."""
    assert row.requests > 0, row.notes
    assert row.user_visible_failures > 0  # the fault really hit writes
    assert row.sessions_lost == 0
    assert row.acked_writes_lost == 0
    assert "unclean failures: 0;" in row.notes
    assert "reads served during the fault: 12/12;" in row.notes
    requests_after = 2 * 4 * 4
    assert f"after space came back: {requests_after}/{requests_after} requests ok" in row.notes
    assert "torn records: 0 of" in row.notes
    assert "integrity_check: ok" in row.notes or "integrity_check: n/a" in row.notes


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["enospc", "efbig"])
def test_scenario_short_form(kind: str, fault: str) -> None:
    """The Flask-app scenario in a child process: 503s naming the cause, no
    session or acknowledged write lost, everything works again after."""
    mod = scenario()
    problem = mod.mount_problem()
    if fault == "enospc" and problem is not None:
        unavailable(f"no small filesystem here: {problem}")
    row = mod.scenario_row(kind, fault, 3, problem)
    check_row(row)
    expected = {"enospc": "is full", "efbig": {"sqlite": "disk I/O error",
                                                "filesystem": "file-size limit (EFBIG)"}[kind]}
    assert expected[fault] in row.notes


def test_no_mount_left_behind(tmp_path: Path) -> None:
    """small_fs unmounts even when the body fails."""
    mod = scenario()
    if mod.mount_problem() is not None:
        unavailable("no tmpfs here")
    where = tmp_path / "m"
    where.mkdir()
    with pytest.raises(RuntimeError), mod.small_fs(where, "64k"):
        raise RuntimeError("boom")
    assert not os.path.ismount(where)
