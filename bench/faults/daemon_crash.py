"""Fault scenario: ``kill -9`` of ``sessionward serve`` under load (issue 18, part 5).

A supervisor loop (here, as systemd or a container runtime would) restarts
the daemon whenever it dies; a killer sends it SIGKILL every few seconds
while client processes run session cycles (load → append a unique item →
save), each on its own session, through :class:`RemoteSessionManager`.

Measured: requests, requests that failed to the app (``StoreUnavailableError``,
a 503) and the seconds during which they failed, sessions that stopped
loading, acknowledged items missing afterwards, items stored twice, whether
a lease held at a crash expired by its TTL (an exclusive load after the
restart gets it), and whether every record still opens and the SQLite file
passes ``PRAGMA integrity_check`` (nothing torn).

Expected (and what the short form in ``tests/faults`` checks): nothing
acknowledged is lost, nothing is applied twice, no session is lost; the
failures are the requests made while no daemon listened.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.faults.common import Row, Scenario, failure_windows

LOCK_TTL = 2
"""Seconds of the daemon's lease TTL in this scenario (short, to see it expire)."""


@dataclass
class Supervised:
    """A daemon restarted whenever it exits, until :meth:`stop`."""

    data_dir: Path
    config: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"sessionward://{self.data_dir / 'sessionward.sock'}"

    @property
    def token_file(self) -> Path:
        return self.data_dir / "tokens" / "app.token"

    def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sessionward.daemon", "--data-dir", str(self.data_dir),
             "--namespace", "default", "--config", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.starts += 1

    def start(self) -> None:
        """Start the daemon and the supervisor loop; wait until it answers."""
        self._spawn()
        self._wait_ready()
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        sock = self.data_dir / "sessionward.sock"
        while not (sock.exists() and self.token_file.exists()):
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.02)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            proc = self.proc
            if proc is not None and proc.poll() is not None:  # reaped: its PID is free
                if proc.stderr is not None:
                    proc.stderr.close()
                self._spawn()
            time.sleep(0.02)

    def kill9(self) -> None:
        """SIGKILL the running daemon (the supervisor restarts it)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)

    def stop(self) -> str:
        """Stop supervising and terminate the daemon; returns its last stderr."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        err = b""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                _, err = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, err = self.proc.communicate()
        return err.decode(errors="replace")


ITEMS_PER_SESSION = 300
"""A client starts a new session after this many items (records stay far below
the 64 KiB frame cap)."""


def client_loop(url: str, token_file: str, cid: int, seconds: float) -> dict[str, Any]:
    """One client: cycles on its own sessions (a new one every
    :data:`ITEMS_PER_SESSION` items) until ``seconds`` have passed."""
    from sessionward.core.errors import StoreUnavailableError
    from sessionward.remote import RemoteSessionManager

    manager = RemoteSessionManager.from_url(url, token_file=token_file)
    sessions: list[dict[str, Any]] = []  # {"cookie", "acked"} per session, newest last
    failures: list[float] = []
    requests = lost = k = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        requests += 1
        try:
            if not sessions or len(sessions[-1]["acked"]) >= ITEMS_PER_SESSION:
                session = manager.new()
                session["items"] = []
                manager.save(session)
                sessions.append({"cookie": session.cookie_value, "acked": []})
                continue
            current = sessions[-1]
            loaded = manager.load(current["cookie"])
            if loaded is None:
                lost += 1
                current["acked"] = [None] * ITEMS_PER_SESSION  # move on; counted as lost
                continue
            k += 1
            item = f"{cid}-{k}"
            loaded["items"] = [*loaded.get("items", []), item]
            manager.save(loaded)
            current["cookie"] = loaded.cookie_value or current["cookie"]
            current["acked"].append(item)
        except StoreUnavailableError:
            failures.append(time.monotonic())
            time.sleep(0.01)
    manager.close()
    return {"sessions": sessions, "failures": failures, "requests": requests, "lost": lost}


def _client_process(url: str, token_file: str, cid: int, seconds: float, out: Any) -> None:
    out.put(client_loop(url, token_file, cid, seconds))


def hold_lease(url: str, token_file: str) -> tuple[str, Any]:
    """Create a session and take its exclusive lease, never releasing it;
    returns its cookie and the manager (keep it alive: closing its
    connection would release the lease before any crash)."""
    from sessionward.remote import RemoteSessionManager

    manager = RemoteSessionManager.from_url(url, token_file=token_file)
    session = manager.new()
    session["held"] = True
    manager.save(session)
    cookie = str(session.cookie_value)
    held = manager.load(cookie, mode="exclusive")
    if held is None:
        raise RuntimeError("the lease holder's session vanished")
    # Deliberately neither saved nor released: the crash takes the holder's
    # connection with it; only the lease TTL frees the session.
    return cookie, manager


def lease_after_restart(url: str, token_file: str, cookie: str) -> float:
    """Seconds until an exclusive load of the crashed holder's session succeeds."""
    from sessionward.core.errors import LockTimeoutError, StoreUnavailableError
    from sessionward.remote import RemoteSessionManager

    manager = RemoteSessionManager.from_url(url, token_file=token_file)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 30:
            try:
                session = manager.load(cookie, mode="exclusive")
            except (LockTimeoutError, StoreUnavailableError):
                time.sleep(0.1)
                continue
            if session is None:
                raise RuntimeError("the lease holder's session was lost")
            manager.release(session)
            return time.monotonic() - started
    finally:
        manager.close()
    raise RuntimeError("the crashed holder's lease never expired")


def verify(data_dir: Path, cookies: list[str]) -> tuple[str, list[dict[str, Any] | None]]:
    """``PRAGMA integrity_check`` and every session's data, opened embedded."""
    from sessionward import SessionManager

    db = sqlite3.connect(data_dir / "sessions.db")
    integrity = str(db.execute("PRAGMA integrity_check").fetchone()[0])
    db.close()
    manager = SessionManager.from_url(f"sqlite:///{data_dir}/sessions.db",
                                      key_file=str(data_dir / "key"))
    try:
        loaded = [manager.load(c, mode="read") for c in cookies]
        return integrity, [None if s is None else dict(s.data_snapshot()) for s in loaded]
    finally:
        manager.close()


def _run_clients(sup: Supervised, clients: int, seconds: float, processes: bool,
                 crashes: int) -> list[dict[str, Any]]:
    """Run the clients while a killer SIGKILLs the daemon ``crashes`` times."""
    interval = seconds / (crashes + 1)

    def killer() -> None:
        for _ in range(crashes):
            time.sleep(interval)
            sup.kill9()

    kill_thread = threading.Thread(target=killer, daemon=True)
    args = (sup.url, str(sup.token_file))
    if processes:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_client_process, args=(*args, i, seconds, out))
                 for i in range(clients)]
        for p in procs:
            p.start()
        kill_thread.start()
        results = [out.get(timeout=seconds + 60) for _ in procs]
        for p in procs:
            p.join(30)
    else:
        results = []
        threads = [threading.Thread(target=lambda i=i: results.append(
            client_loop(*args, i, seconds))) for i in range(clients)]
        for t in threads:
            t.start()
        kill_thread.start()
        for t in threads:
            t.join(seconds + 120)
    kill_thread.join(seconds + 10)
    return results


def run(short: bool) -> list[Row]:
    """The scenario; ``short``: 2 client threads, 2 crashes in ~4 s (``make test``)."""
    clients, seconds, crashes = (2, 4.0, 2) if short else (4, 20.0, 6)
    with tempfile.TemporaryDirectory(prefix="sw-crash-") as tmp:
        root = Path(tmp)
        config = root / "sw.toml"
        config.write_text(f"[sessionward]\nlock_ttl_seconds = {LOCK_TTL}\n"
                          "lock_wait_seconds = 1\n")
        sup = Supervised(root / "d", config)
        sup.start()
        try:
            held, holder = hold_lease(sup.url, str(sup.token_file))
            sup.kill9()  # the lease dies with its holder's daemon, not in the store
            lease_wait = lease_after_restart(sup.url, str(sup.token_file), held)
            holder.close()
            results = _run_clients(sup, clients, seconds, not short, crashes)
        finally:
            stderr = sup.stop()
        return [_row(results, sup, crashes, clients, lease_wait, stderr, root / "d", held)]


def _row(results: list[dict[str, Any]], sup: Supervised, crashes: int, clients: int,
         lease_wait: float, stderr: str, data_dir: Path, held: str) -> Row:
    owned = [s for r in results for s in r["sessions"] if None not in s["acked"]]
    integrity, stored = verify(data_dir, [*(s["cookie"] for s in owned), held])
    missing = duplicates = 0
    for session, data in zip(owned, stored, strict=False):
        items = (data or {}).get("items", [])
        missing += len(set(session["acked"]) - set(items))
        duplicates += len(items) - len(set(items))
    lost = sum(r["lost"] for r in results) + sum(1 for d in stored if d is None)
    stamps = [t for r in results for t in r["failures"]]
    notes = (f"{sup.starts - 1} restarts, {len(owned)} sessions; items applied twice: "
             f"{duplicates}; a lease held at a crash was taken {lease_wait:.1f} s later "
             f"(TTL {LOCK_TTL} s); integrity_check: {integrity}; tracebacks in the last "
             f"daemon's log: {stderr.count('Traceback')}")
    return Row(f"daemon kill -9 ×{crashes} under {clients} clients (SQLite)",
               requests=sum(r["requests"] for r in results),
               user_visible_failures=len(stamps),
               failure_window_s=round(failure_windows(stamps), 2),
               sessions_lost=lost, acked_writes_lost=missing, notes=notes)


SCENARIOS: list[Scenario] = [Scenario("daemon_crash", run)]


if __name__ == "__main__":
    for row in run("--short" in sys.argv):
        print(row)
