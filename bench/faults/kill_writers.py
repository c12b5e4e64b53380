"""Fault scenario: ``kill -9`` of store writers at random points (issue 18, part 4).

Each trial forks two writer processes on the same store (SQLite or
filesystem) and SIGKILLs each after an independent random delay (0-40 ms:
some die while opening the store, most in the middle of a write).  A writer
runs a random mix through a real :class:`~sessionward.SessionManager`: new
sessions, load → append an item → save (default mode, and exclusive mode:
a lease), logouts, ``Throttle`` hits (kv compare-and-set) and cleanup
batches, and reports every *acknowledged* write (the call returned) on a
pipe, one line each (a line is below ``PIPE_BUF``: whole or absent).  A
logout is announced before it starts, so a session killed mid-logout may be
cleanly absent.

After every kill: ``PRAGMA integrity_check`` (SQLite); every stored record
read and opened (a torn or half-written record fails to parse or to
authenticate); every live session loads and holds every acknowledged item;
every acknowledged throttle hit is counted; the store is still writable (a
probe record created and deleted; records no writer acknowledged are
deleted, which keeps the store small).

Why a driver process that forks: the driver has imported everything once
and runs no thread, so a writer starts in a few milliseconds (a fresh
interpreter takes ~300 ms) and forking is safe; it never holds a store
connection across a fork (SQLite forbids it).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.faults.common import Row, Scenario
from bench.faults.local import KINDS, LABEL, check_store, store_url

WRITERS = 2
MAX_DELAY = 0.04
LIVE_CAP = 60
"""Sessions kept live; beyond it writers log out more than they create."""


def settings() -> Any:
    from sessionward import Settings

    # Leases of killed writers expire fast; a writer that finds one held moves on.
    return Settings(lock_ttl=timedelta(seconds=1), lock_wait=timedelta(milliseconds=20))


# ------------------------------------------------------------- the writer


def writer(url: str, keyring: Any, live: list[str], out: int, seed: int) -> None:
    """Random session writes forever, each acknowledged on ``out`` (a pipe fd)."""
    from sessionward import SessionManager
    from sessionward.core.errors import LockTimeoutError, SessionConflictError, SessionGoneError
    from sessionward.guards.throttle import Throttle
    from sessionward.stores import open_store

    rng = random.Random(seed)
    manager = SessionManager(open_store(url), keyring, settings())
    throttle = Throttle(manager.store, keyring, attempts=100, namespace="faults")
    mine = list(live)

    def say(*words: str) -> None:
        os.write(out, (" ".join(words) + "\n").encode())

    n = 0
    while True:
        n += 1
        roll = rng.random()
        try:
            if roll < 0.12 or not mine:
                if len(mine) < LIVE_CAP:
                    s = manager.new()
                    s["items"] = []
                    manager.save(s)
                    mine.append(str(s.cookie_value))
                    say("C", mine[-1])
                    continue
                roll = 0.95  # too many: log one out instead
            if roll < 0.85:
                cookie = rng.choice(mine)
                mode = "exclusive" if roll > 0.65 else "default"
                s = manager.load(cookie, mode=mode)
                if s is None:
                    mine.remove(cookie)
                    continue
                item = f"{seed}-{n}"
                try:
                    s["items"] = [*s.get("items", []), item]
                    manager.save(s)
                finally:
                    manager.release(s)
                say("A", cookie, item)
            elif roll < 0.95:
                key = f"thr:faults:s{seed}k{n % 3}"
                throttle.hit(key)
                say("T", key)
            elif roll < 0.98:
                cookie = rng.choice(mine)
                mine.remove(cookie)
                say("d", cookie)  # announced: it may be cleanly absent from now on
                s = manager.load(cookie)
                if s is not None:
                    manager.destroy(s)
            else:
                manager.cleanup(batch=50, max_batches=1)
        except (SessionConflictError, SessionGoneError, LockTimeoutError):
            continue  # not acknowledged: nothing to check


# ------------------------------------------------------------- the driver


@dataclass
class Tally:
    trials: int = 0
    acked: int = 0
    lost_items: int = 0
    lost_sessions: int = 0
    lost_hits: int = 0
    torn: int = 0
    bad_integrity: int = 0
    not_writable: int = 0
    errors: list[str] = field(default_factory=list)
    live: dict[str, list[str]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)


def trial(url: str, kind: str, root: Path, keyring: Any, rng: random.Random,
          tally: Tally) -> None:
    """Fork the writers, kill them, read their acknowledgements, check the store."""
    r, w = os.pipe()
    live = list(tally.live)
    pids = []
    for _ in range(WRITERS):
        seed = rng.getrandbits(40)
        pid = os.fork()
        if pid == 0:  # the writer: never returns
            os.close(r)
            try:
                writer(url, keyring, live, w, seed)
            except BaseException as exc:  # a finding: report it, then die
                with contextlib.suppress(OSError):
                    os.write(w, f"E {type(exc).__name__}: {exc}"[:400].encode() + b"\n")
            finally:
                os._exit(1)
        pids.append(pid)
    os.close(w)
    start = time.monotonic()
    for delay, pid in sorted((rng.uniform(0, MAX_DELAY), p) for p in pids):
        time.sleep(max(0.0, start + delay - time.monotonic()))
        os.kill(pid, signal.SIGKILL)
    for pid in pids:
        os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    apply_log(data.decode(), tally)
    verify(url, kind, root, keyring, tally)
    tally.trials += 1


def apply_log(text: str, tally: Tally) -> None:
    """Fold the writers' acknowledgements into what must be in the store."""
    for line in text.splitlines():
        word, *rest = line.split(" ")
        if word == "C" and len(rest) == 1:
            tally.live[rest[0]] = []
        elif word == "A" and len(rest) == 2 and rest[0] in tally.live:
            tally.live[rest[0]].append(rest[1])
            tally.acked += 1
        elif word == "T" and len(rest) == 1:
            tally.hits[rest[0]] = tally.hits.get(rest[0], 0) + 1
            tally.acked += 1
        elif word == "d" and len(rest) == 1:
            tally.live.pop(rest[0], None)  # from now on cleanly absent or present
        elif word == "E":
            tally.errors.append(line[2:200])


def verify(url: str, kind: str, root: Path, keyring: Any, tally: Tally) -> None:
    """Everything acknowledged is there, nothing is torn, the store still writes."""
    from sessionward import SessionManager
    from sessionward.core.errors import SessionError
    from sessionward.stores import open_store

    manager = SessionManager(open_store(url), keyring, settings())
    try:
        found = check_store(kind, root, manager)
        tally.torn += found.torn
        tally.bad_integrity += found.integrity not in ("ok", "n/a")
        known = set()
        for cookie, items in list(tally.live.items()):
            s = manager.load(cookie, mode="read")
            if s is None:
                tally.lost_sessions += 1
                del tally.live[cookie]
                continue
            known.add(s.storage_key)
            tally.lost_items += len(set(items) - set(s.get("items", [])))
        for key, count in tally.hits.items():
            entry = manager.store.kv_get(key)
            stored = json.loads(entry[0])["f"] if entry is not None else 0
            tally.lost_hits += max(0, count - stored)
            manager.store.kv_delete(key)  # checked: keeps the store small
        tally.hits.clear()  # keys are per writer: never hit again
        try:
            probe(manager, known)
        except (SessionError, OSError) as exc:
            tally.not_writable += 1
            tally.errors.append(f"{type(exc).__name__}: {exc}"[:200])
    finally:
        manager.close()


def probe(manager: Any, known: set[str]) -> None:
    """Create and delete a record; delete records no writer acknowledged."""
    s = manager.new()
    s["probe"] = True
    manager.save(s)
    manager.destroy(s)
    store = manager.store
    cursor = None
    while True:
        page, cursor = store.scan(cursor, 500)
        for key, _record in page:
            if key not in known:
                store.delete(key)
        if cursor is None:
            return


def drive(kind: str, root: Path, trials: int, seed: int) -> dict[str, Any]:
    """All trials on one store (in this process, which must run no thread)."""
    from sessionward.core.keys import KeyRing
    from sessionward.stores import open_store

    url = store_url(kind, root)
    open_store(url).close()
    keyring = KeyRing.generate("default")
    rng = random.Random(seed)
    tally = Tally()
    for _ in range(trials):
        trial(url, kind, root, keyring, rng, tally)
    out = {k: v for k, v in vars(tally).items() if k not in ("live", "hits", "started")}
    out["seconds"] = time.monotonic() - tally.started
    out["live_at_end"] = len(tally.live)
    return out


def run_driver(kind: str, trials: int, seed: int = 18) -> dict[str, Any]:
    """:func:`drive` in a fresh, thread-free child process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix="sw-kill-") as tmp:
        root = Path(tmp) / "store"
        root.mkdir(mode=0o700)
        proc = subprocess.run(
            [sys.executable, "-m", "bench.faults.kill_writers", "--driver", kind, str(root),
             str(trials), str(seed)], capture_output=True, text=True,
            timeout=60 + trials * 2, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"kill -9 driver failed ({kind}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def row(kind: str, out: dict[str, Any]) -> Row:
    notes = (f"{out['trials']} trials × {WRITERS} writers killed at random points; "
             f"integrity_check failures: {out['bad_integrity']}; torn or half-written "
             f"records: {out['torn']}; throttle hits lost: {out['lost_hits']}; "
             f"store not writable after a kill: {out['not_writable']}; writer errors: "
             f"{len(out['errors'])}{' ' + repr(out['errors'][:3]) if out['errors'] else ''}; "
             f"requests = acknowledged writes; {out['seconds']:.0f} s")
    return Row(f"kill -9 of writers, {LABEL[kind]} store", requests=out["acked"],
               user_visible_failures=out["not_writable"], failure_window_s=0.0,
               sessions_lost=out["lost_sessions"],
               acked_writes_lost=out["lost_items"] + out["lost_hits"], notes=notes)


def run(short: bool) -> list[Row]:
    """Both stores; ``short``: 50 trials each, else 1,000."""
    trials = 50 if short else 1000
    return [row(kind, run_driver(kind, trials)) for kind in KINDS]


SCENARIOS: list[Scenario] = [Scenario("kill_writers", run)]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:
        with contextlib.redirect_stdout(sys.stderr):  # only the JSON on stdout
            result = drive(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        print(json.dumps(result))
    else:
        for r in run("--short" in sys.argv):
            print(r)
