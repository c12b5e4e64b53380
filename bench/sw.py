"""sessionward adapters: the embedded manager on each store, and the daemon hook.

Fairness: every sessionward row seals records (AES-GCM) with a real key –
sessionward has no unencrypted mode – and uses the same store settings as
the raw floor and the peers (same Redis URL, SQLite file on the same disk,
a private directory for files).  All processes of one workload share the
key through a key file in the workload's private directory, as processes of
one app would.

Modes (``mode`` option, used by the lost-updates workload):

* ``plain`` – ``load`` / change / ``save`` (optimistic: a conflicting
  concurrent save raises ``SessionConflictError``, reported, never silent);
* ``exclusive`` – ``load(mode="exclusive")`` … ``save`` + ``release``;
* ``update`` – ``load`` then ``manager.update(s, key, fn)`` (atomic RMW).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.targets import Env, Target, Unavailable, shared_secret


def _import(module: str, name: str) -> Any:
    """``module.name`` or :class:`Unavailable` with a clear "not available yet"."""
    try:
        mod = __import__(module, fromlist=[name])
        return getattr(mod, name)
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"{module}.{name}: not available yet ({exc})") from exc


def shared_keyring(env: Env) -> Any:
    """One key for all processes of a workload (written once, mode 0600)."""
    key_ring = _import("sessionward.core.keys", "KeyRing")
    return key_ring.from_bytes([shared_secret(env, "sessionward.key")])


class CountingStore:
    """Proxy counting the store calls a request makes (read-only workload only;
    the timed cycle uses the bare store so the proxy costs nothing there)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return counted


class SessionwardTarget(Target):
    kind = "sessionward"

    def __init__(self, manager: Any, store: str, mode: str = "plain",
                 counter: CountingStore | None = None,
                 cleanup: Callable[[], None] | None = None) -> None:
        self.manager = manager
        self.store = store
        self.mode = mode
        self.counter = counter
        self._cleanup = cleanup

    def create(self, data: dict[str, Any]) -> str:
        s = self.manager.new()
        s.update(data)
        self.manager.save(s)
        return str(s.cookie_value)

    def _load(self, handle: str, **kw: Any) -> Any:
        s = self.manager.load(handle, **kw)
        if s is None:
            raise RuntimeError("session vanished")
        return s

    def cycle(self, handle: str, value: int) -> str:
        s = self._load(handle)
        s["counter"] = value
        self.manager.save(s)
        return str(s.cookie_value or handle)

    def readonly_cycle(self, handle: str) -> None:
        s = self._load(handle)
        _ = s["username"]
        self.manager.save(s)

    def store_calls(self) -> dict[str, int]:
        return dict(self.counter.calls) if self.counter else {}

    def append(self, handle: str, item: Any) -> dict[str, Any]:
        if self.mode == "update":
            s = self._load(handle)
            self.manager.update(s, "items", lambda v: [*(v or []), item])
            return {}
        if self.mode == "exclusive":
            s = self._load(handle, mode="exclusive")
            try:
                s["items"] = [*s.get("items", []), item]
                self.manager.save(s)
            finally:
                self.manager.release(s)
            return {}
        s = self._load(handle)
        s["items"] = [*s.get("items", []), item]
        self.manager.save(s)
        return {}

    def read(self, handle: str) -> dict[str, Any]:
        return dict(self._load(handle).data_snapshot())

    def close(self) -> None:
        self.manager.close()
        if self._cleanup:
            self._cleanup()


def _manager(env: Env, store: Any, label: str, mode: str, count: bool) -> SessionwardTarget:
    manager_cls = _import("sessionward.lifecycle.manager", "SessionManager")
    counter = CountingStore(store) if count else None
    manager = manager_cls(counter or store, shared_keyring(env))
    return SessionwardTarget(manager, label, mode, counter)


def sw_memory(env: Env, mode: str = "plain", count: bool = False) -> SessionwardTarget:
    store = _import("sessionward.stores.memory", "MemoryStore")()
    return _manager(env, store, "memory", mode, count)


def sw_sqlite(env: Env, mode: str = "plain", count: bool = False) -> SessionwardTarget:
    store = _import("sessionward.stores.sqlite", "SQLiteStore")(f"{env.workdir}/sw.db")
    return _manager(env, store, "sqlite", mode, count)


def sw_filesystem(env: Env, mode: str = "plain", count: bool = False,
                  durable: bool = False) -> SessionwardTarget:
    file_store = _import("sessionward.stores.filesystem", "FileStore")
    store = file_store(f"{env.workdir}/sw-files", durable=durable)
    return _manager(env, store, "filesystem-fsync" if durable else "filesystem", mode, count)


def sw_filesystem_durable(env: Env, mode: str = "plain", count: bool = False
                          ) -> SessionwardTarget:
    return sw_filesystem(env, mode, count, durable=True)


def sw_redis(env: Env, mode: str = "plain", count: bool = False) -> SessionwardTarget:
    store = _import("sessionward.stores.redis", "RedisStore").from_url(env.redis_url)
    return _manager(env, store, "redis", mode, count)


# ---------------------------------------------------------------- daemon hook


def _start_daemon(env: Env, workers: int = 1) -> Path:
    """Start ``sessionward serve --data-dir DIR [--workers N]`` once per workload directory.

    First run bootstraps DIR (key, app/admin tokens, ``sessions.db``,
    ``sessionward.sock``).  The process that starts the daemon (the workload's
    parent) stops it at exit; client processes find it already running.
    """
    data_dir = Path(env.workdir) / "daemon"
    marker = Path(env.workdir) / "daemon.started"
    if marker.exists():
        return data_dir
    exe = shutil.which("sessionward", path=str(Path(sys.executable).parent)) or "sessionward"
    log = open(Path(env.workdir) / "daemon.log", "wb")
    extra = ["--workers", str(workers)] if workers > 1 else []
    proc = subprocess.Popen([exe, "serve", "--data-dir", str(data_dir), *extra],
                            stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    atexit.register(stop)
    deadline = time.monotonic() + 20
    while b"ready" not in (Path(env.workdir) / "daemon.log").read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise Unavailable("daemon: `sessionward serve` did not open its socket: "
                              + (Path(env.workdir) / "daemon.log").read_text()[-300:])
        time.sleep(0.05)
    marker.touch()
    return data_dir


def daemon_rss_kib(env: Env) -> int:
    """Current RSS of the workload's daemon (from its pid file), or -1."""
    try:
        pid = int((Path(env.workdir) / "daemon" / "sessionward.pid").read_text().split()[0])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return -1


def daemon_cpu_seconds(env: Env) -> float:
    """CPU seconds used so far by the workload's daemon and its worker processes."""
    try:
        root = int((Path(env.workdir) / "daemon" / "sessionward.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0
    tick = float(os.sysconf("SC_CLK_TCK"))
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def sw_daemon(env: Env, mode: str = "plain", count: bool = False,
              workers: int = 1) -> SessionwardTarget:
    """sessionward through the daemon over its Unix socket (SQLite behind it).

    The daemon seals and opens records (encryption on, as embedded); the
    client sends cookies and data over ``DIR/sessionward.sock``.  ``workers``
    daemon processes share the socket (``serve --workers``).
    """
    remote = _import("sessionward.remote", "RemoteSessionManager")
    data_dir = _start_daemon(env, workers)
    manager = remote.from_url(f"sessionward://{data_dir / 'sessionward.sock'}",
                              token_file=str(data_dir / "tokens" / "app.token"),
                              admin_token=(data_dir / "tokens" / "admin.token").read_text()
                              .strip())
    return SessionwardTarget(manager, "daemon", mode)


class DaemonFloor(Target):
    """The daemon's floor, measured interleaved with it: one embedded SQLite
    cycle plus two ~1 KB round trips to an echo process over a Unix socket
    (what a daemon cycle cannot avoid: the same store work, two exchanges)."""

    store = "daemon"
    kind = "raw"

    def __init__(self, env: Env) -> None:
        from bench.raw import EchoPeer

        self.embedded = sw_sqlite(env)
        self.echo = EchoPeer(env, "floor-echo.sock")

    def create(self, data: dict[str, Any]) -> str:
        return self.embedded.create(data)

    def cycle(self, handle: str, value: int) -> str:
        self.echo.round_trip()
        handle = self.embedded.cycle(handle, value)
        self.echo.round_trip()
        return handle

    def read(self, handle: str) -> dict[str, Any]:
        return self.embedded.read(handle)

    def close(self) -> None:
        self.echo.close()
        self.embedded.close()


def daemon_floor(env: Env) -> DaemonFloor:
    return DaemonFloor(env)
