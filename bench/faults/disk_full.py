"""Fault scenario: the disk under the SQLite or filesystem store fills up (issue 18, part 4).

Two real faults, each in its own child process:

- ``enospc``: the store lives on a 2 MiB tmpfs (``mount -t tmpfs``; needs
  root or CAP_SYS_ADMIN, else the row says it was skipped and why); a filler
  file takes every free block, so every write that needs space gets ENOSPC.
- ``efbig``: the child lowers its own ``RLIMIT_FSIZE`` (``ulimit -f``) to the
  size of the largest store file, with ``SIGXFSZ`` ignored, so every write
  that grows a file gets EFBIG (or a short write).

Under the fault, users of a real Flask app (``sessionward.integrations.flask``)
keep adding ~1 KB items to their sessions (``POST /add``) and reading them
(``GET /items``), while the app also takes exclusive leases
(``SessionManager.load(mode="exclusive")``) and counts failed sign-ins in a
``Throttle`` (kv entries).  Then space comes back (filler removed, limit
raised) and the same requests run again.

Measured: requests; user-visible failures (503s and ``StoreUnavailableError``);
their window; sessions that stopped loading (a logout); acknowledged items
missing at the end; unclean failures (a 500, another exception type, a
message that does not say what is wrong); reads served during the fault;
whether every write worked again after recovery; ``PRAGMA integrity_check``
and torn records (every record read and opened).

Expected: failures are clean 503s naming the cause, reads keep working, no
session and no acknowledged write is lost, nothing is torn, and every write
works again once space is back.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.faults.common import Row, Scenario
from bench.faults.local import KINDS, LABEL, check_store, store_url

FAULTS = ("enospc", "efbig")
COOKIE = "__Host-session"
CLEAN_WORDS = ("is full", "file-size limit", "disk I/O error")
"""A clean disk-fault message says one of these (see ``sessionward.stores.disk``)."""


# ------------------------------------------------------------- the faults


def mount_problem() -> str | None:
    """Why a tmpfs cannot be mounted here, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "not root: mounting a tmpfs needs root (CAP_SYS_ADMIN)"
    with tempfile.TemporaryDirectory(prefix="sw-mnt-probe-") as tmp:
        try:
            with small_fs(Path(tmp), "64k"):
                return None
        except (OSError, subprocess.CalledProcessError) as exc:
            return f"mount -t tmpfs failed: {exc}"


@contextlib.contextmanager
def small_fs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``where`` (unmounted on exit)."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                    str(where)], check=True, capture_output=True, timeout=30)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True,
                          timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill(directory: Path) -> Path:
    """Take every free block of ``directory``'s filesystem with a filler file."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as out:
        while True:
            out.write(chunk)
    with contextlib.suppress(OSError), open(filler, "ab", buffering=0) as out:
        while True:
            out.write(b"\0" * 512)  # the last partial chunk's worth
    return filler


def limit_files(root: Path) -> None:
    """``RLIMIT_FSIZE`` = the largest store file: any file that grows gets EFBIG."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    largest = max(p.stat().st_size for p in root.rglob("*") if p.is_file())
    resource.setrlimit(resource.RLIMIT_FSIZE, (largest, resource.RLIM_INFINITY))


def unlimit_files() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


# ------------------------------------------------------------- the app


def web_app(manager: Any) -> Any:
    """A Flask app on ``manager``: ``POST /add?item=`` and ``GET /items``."""
    import flask

    from sessionward.integrations import flask as sw

    app = flask.Flask("sw_disk_full")
    sw.init_app(app, manager=manager)

    @app.post("/add")
    def add() -> str:
        flask.session["items"] = [*flask.session.get("items", []), flask.request.args["item"]]
        return str(len(flask.session["items"]))

    @app.get("/items")
    def items() -> Any:
        return flask.jsonify(flask.session.get("items"))

    return app


class User:
    """One browser: its cookie and the items the app acknowledged (a 200)."""

    def __init__(self, client: Any, n: int) -> None:
        self.client = client
        self.n = n
        self.cookie: str | None = None
        self.acked: list[str] = []
        self.lost = False

    def request(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"Cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {}
        r = self.client.open(path, method=method, headers=headers,
                             base_url="https://localhost", **kw)
        for header in r.headers.getlist("Set-Cookie"):
            if header.startswith(f"{COOKIE}="):
                self.cookie = header.split(";", 1)[0].split("=", 1)[1] or None
        return r


class Tally:
    """Outcomes of one phase (``fault`` or ``after``)."""

    def __init__(self) -> None:
        self.requests = self.failures = self.unclean = self.reads_ok = self.reads = 0
        self.stamps: list[float] = []
        self.messages: set[str] = set()
        self.unclean_kinds: set[str] = set()

    def failed(self, message: str) -> None:
        self.failures += 1
        self.stamps.append(time.monotonic())
        if any(w in message for w in CLEAN_WORDS):
            self.messages.add(message.split(":", 1)[0])
        else:
            self.bad(f"unclear message {message[:80]!r}")

    def bad(self, kind: str) -> None:
        self.unclean += 1
        self.unclean_kinds.add(kind)


def one_round(user: User, manager: Any, throttle: Any, tally: Tally) -> None:
    """One user's requests: add an item, read back, a lease cycle, a throttle hit."""
    from sessionward.core.errors import StoreUnavailableError

    item = f"{user.n}-{secrets.token_hex(512)}"  # ~1 KB, incompressible
    tally.requests += 1
    r = user.request("POST", "/add", query_string={"item": item})
    if r.status_code == 200:
        user.acked.append(item)
    elif r.status_code == 503:
        tally.failed(_last_error(manager))
    else:
        tally.bad(f"HTTP {r.status_code} on a write")
    tally.requests += 1
    tally.reads += 1
    r = user.request("GET", "/items")
    if r.status_code == 200 and r.json is not None and set(user.acked) <= set(r.json):
        tally.reads_ok += 1
    elif r.status_code == 200:
        user.lost = True  # the session stopped loading, or lost items
    elif r.status_code == 503:
        tally.failed(_last_error(manager))
    else:
        tally.bad(f"HTTP {r.status_code} on a read")
    for call in (lambda: _lease_cycle(manager, user), lambda: throttle.hit(f"user{user.n}")):
        tally.requests += 1
        try:
            call()
        except StoreUnavailableError as exc:
            tally.failed(str(exc))
        except Exception as exc:
            tally.bad(type(exc).__name__)


def _lease_cycle(manager: Any, user: User) -> None:
    """Take the session's exclusive lease, save a counter, release."""
    session = manager.load(user.cookie, mode="exclusive")
    if session is None:
        user.lost = True
        return
    try:
        session["leased"] = int(session.get("leased", 0)) + 1
        manager.save(session)
    finally:
        manager.release(session)


def _last_error(manager: Any) -> str:
    """The message of the store error behind the last 503 (the app logs it)."""
    return str(manager.store.last)


class _Recording:
    """A store proxy remembering the last ``StoreError`` message (what an
    operator would read in the log behind a 503)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.last = ""

    def __getattr__(self, name: str) -> Any:
        from sessionward.core.errors import StoreError

        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return target(*args, **kwargs)
            except StoreError as exc:
                self.last = str(exc)
                raise

        return call


# ------------------------------------------------------------- one child


def exercise(kind: str, fault: str, root: Path, rounds: int, users: int = 4) -> dict[str, Any]:
    """The scenario in this process (``root``: an empty directory, on a small
    filesystem for ``enospc``); returns the measured outcome."""
    from sessionward import SessionManager, Settings
    from sessionward.core.keys import KeyRing
    from sessionward.guards.throttle import Throttle
    from sessionward.stores import open_store

    keyring = KeyRing.generate("default")
    store = _Recording(open_store(store_url(kind, root)))
    manager = SessionManager(store, keyring, Settings())  # type: ignore[arg-type]
    throttle = Throttle(store, keyring, attempts=100)  # type: ignore[arg-type]
    app = web_app(manager)
    people = [User(app.test_client(), n) for n in range(users)]
    warm = Tally()
    for user in people:
        one_round(user, manager, throttle, warm)
    filler = fill(root) if fault == "enospc" else None
    if fault == "efbig":
        limit_files(root)
    during = Tally()
    started = time.monotonic()
    for _ in range(rounds):
        for user in people:
            one_round(user, manager, throttle, during)
    window = time.monotonic() - started
    if filler is not None:
        filler.unlink()
    else:
        unlimit_files()
    after = Tally()
    for _ in range(2):
        for user in people:
            one_round(user, manager, throttle, after)
    found = check_store(kind, root, manager)
    missing = 0
    for user in people:
        r = user.request("GET", "/items")
        have = set(r.json or []) if r.status_code == 200 else set()
        missing += len(set(user.acked) - have)
    manager.close()
    return {"kind": kind, "fault": fault, "warm": _plain(warm), "during": _plain(during),
            "after": _plain(after), "window": window, "missing": missing,
            "lost": sum(u.lost for u in people), "records": found.records,
            "torn": found.torn, "integrity": found.integrity}


def _plain(t: Tally) -> dict[str, Any]:
    out = dict(vars(t))
    out["messages"] = sorted(t.messages)
    out["unclean_kinds"] = sorted(t.unclean_kinds)
    span = (max(t.stamps) - min(t.stamps)) if t.stamps else 0.0
    out["stamps"] = span
    return out


def run_child(kind: str, fault: str, root: Path, rounds: int) -> dict[str, Any]:
    """:func:`exercise` in a fresh child process (its rlimit stays its own)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.faults.disk_full", "--child", kind, fault, str(root),
         str(rounds)], capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"disk-full child failed ({kind}, {fault}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def scenario_row(kind: str, fault: str, rounds: int, problem: str | None) -> Row:
    """Run one (store, fault) pair; its report row."""
    what = {"enospc": "disk full (2 MiB tmpfs, ENOSPC)",
            "efbig": "file-size limit (RLIMIT_FSIZE, EFBIG)"}[fault]
    name = f"{what}, {LABEL[kind]} store, Flask app"
    if fault == "enospc" and problem is not None:
        return Row(name, 0, 0, 0.0, 0, 0, f"not run: {problem}")
    with tempfile.TemporaryDirectory(prefix="sw-disk-") as tmp:
        root = Path(tmp) / "store"
        root.mkdir(mode=0o700)
        if fault == "enospc":
            with small_fs(root, "2m"):
                out = run_child(kind, fault, root, rounds)
        else:
            out = run_child(kind, fault, root, rounds)
    return _row(name, out)


def _row(name: str, out: dict[str, Any]) -> Row:
    during, after = out["during"], out["after"]
    notes = (f"unclean failures: {during['unclean'] + after['unclean']}"
             f"{' ' + str(during['unclean_kinds'] + after['unclean_kinds']) if during['unclean'] + after['unclean'] else ''}; "  # noqa: E501
             f"reads served during the fault: {during['reads_ok']}/{during['reads']}; "
             f"after space came back: {after['requests'] - after['failures']}/"
             f"{after['requests']} requests ok; integrity_check: {out['integrity']}; "
             f"torn records: {out['torn']} of {out['records'] + out['torn']}; "
             f"errors said: {'; '.join(during['messages']) or '-'}")
    return Row(name, requests=during["requests"] + after["requests"],
               user_visible_failures=during["failures"] + after["failures"],
               failure_window_s=round(during["stamps"] + after["stamps"], 2),
               sessions_lost=out["lost"], acked_writes_lost=out["missing"], notes=notes)


def run(short: bool) -> list[Row]:
    """Every (store, fault) pair; ``short``: 3 rounds of 4 users, else 25."""
    rounds = 3 if short else 25
    problem = mount_problem()
    return [scenario_row(kind, fault, rounds, problem) for kind in KINDS for fault in FAULTS]


SCENARIOS: list[Scenario] = [Scenario("disk_full", run)]


def _child(argv: list[str]) -> None:
    kind, fault, root, rounds = argv[0], argv[1], Path(argv[2]), int(argv[3])
    out = exercise(kind, fault, root, rounds)
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        for row in run("--short" in sys.argv):
            print(row)
