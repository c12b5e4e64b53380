"""``serve --workers N``: N daemon processes sharing one set of listening sockets.

The parent holds the PID file and the bound sockets, forks the workers, and
supervises them: it prints "ready" once every worker is serving, forwards
SIGTERM/SIGINT (drain) and SIGHUP (reload keys) to them, and starts a new
worker in place of one that died (at most one restart a second, so a worker
that cannot start does not spin).  Each worker is a complete daemon — its
own store connection, manager, authenticator, caps and audit sink — on the
inherited listening sockets; the kernel gives each new connection to one
worker, and a connection stays with that worker (its leases and
reservations live there).

Why fork and not spawn: the listening sockets, already bound and checked,
are inherited as they are; nothing else is set up before the fork (no
threads, no event loop, no store), so the children start clean.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Sequence
from types import FrameType

from ..audit.redact import sanitize_exception
from ..core.errors import ConfigurationError
from .config import DaemonConfig

log = logging.getLogger("sessionward.daemon")
Serve = Callable[[DaemonConfig, Sequence[socket.socket], Callable[[str], None]], None]
"""What a worker runs: :func:`sessionward.daemon.runner.serve_process`."""
READY = "sessionward daemon ready"
START_SECONDS = 60.0
RESTART_INTERVAL = 1.0


class Supervisor:
    """The parent of the worker processes (see the module docstring).

    Args:
        config: the daemon configuration (``config.workers`` processes).
        serve: what each worker runs on the inherited listeners.
        listeners: the bound listening sockets the workers inherit.
        say: the parent's output (the "ready" line).
    """

    def __init__(self, config: DaemonConfig, listeners: Sequence[socket.socket],
                 say: Callable[[str], None], serve: Serve) -> None:
        self.config = config
        self.serve = serve
        self.listeners = listeners
        self.say = say
        self.children: dict[int, int] = {}  # pid -> worker number
        self.stopping = False
        self._reload = False
        self._last_restart = 0.0

    def spawn(self, number: int, ready_fd: int | None) -> int:
        """Fork worker ``number``; it writes one byte to ``ready_fd`` when serving."""
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            _worker_main(self.serve, self.config, self.listeners, ready_fd)
        self.children[pid] = number
        return pid

    def start(self) -> None:
        """Fork every worker and wait until all are serving.

        Raises:
            ConfigurationError: a worker exited before it was ready.
        """
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        read_fd, write_fd = os.pipe()
        try:
            for number in range(self.config.workers):
                self.spawn(number, write_fd)
            os.close(write_fd)
            write_fd = -1
            self._wait_ready(read_fd)
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        self.say(READY)

    def _wait_ready(self, read_fd: int) -> None:
        ready = 0
        deadline = time.monotonic() + START_SECONDS
        while ready < self.config.workers:
            left = deadline - time.monotonic()
            readable, _, _ = select.select([read_fd], [], [], max(0.0, min(left, 0.5)))
            if readable:
                chunk = os.read(read_fd, 64)
                ready += len(chunk)
                if not chunk:
                    break
            if self._reap(restart=False) or left <= 0:
                break
        if ready < self.config.workers:
            self.stop()
            raise ConfigurationError("a daemon worker did not start; see the messages above")

    def run(self) -> None:
        """Supervise until SIGTERM/SIGINT, then stop the workers and wait for them."""
        while not self.stopping:
            time.sleep(0.1)
            if self._reload:
                self._reload = False
                self._signal_all(signal.SIGHUP)
            self._reap(restart=True)
        self.stop()

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload = True

    def _reap(self, *, restart: bool) -> bool:
        """Collect exited workers (restarting them if asked); whether any exited."""
        exited = False
        for pid in list(self.children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                continue
            exited = True
            number = self.children.pop(pid)
            log.error("daemon worker %d (pid %d) exited with status %d", number, pid, status)
            if restart and not self.stopping:
                time.sleep(max(0.0, self._last_restart + RESTART_INTERVAL - time.monotonic()))
                self._last_restart = time.monotonic()
                self.spawn(number, None)
        return exited

    def _signal_all(self, sig: int) -> None:
        for pid in self.children:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue

    def stop(self) -> None:
        """SIGTERM every worker and wait for all of them (they drain first)."""
        self._signal_all(signal.SIGTERM)
        for pid in list(self.children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self.children.pop(pid, None)


def _worker_main(serve: Serve, config: DaemonConfig, listeners: Sequence[socket.socket],
                 ready_fd: int | None) -> None:
    """The body of a forked worker: serve, then exit without returning."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    code = 0

    def say(line: str) -> None:
        if line == READY and ready_fd is not None:
            os.write(ready_fd, b"r")

    try:
        serve(config, listeners, say)
    except BaseException as exc:  # noqa: BLE001 - the last handler of a child process
        log.error("daemon worker failed: %s", sanitize_exception(exc))
        code = 1
    finally:
        if ready_fd is not None:
            os.close(ready_fd)
    os._exit(code)


def supervise(config: DaemonConfig, listeners: Sequence[socket.socket],
              say: Callable[[str], None], serve: Serve) -> None:
    """Run ``config.workers`` worker processes, each running ``serve``, until SIGTERM/SIGINT.

    Raises:
        ConfigurationError: a worker could not start.
    """
    supervisor = Supervisor(config, listeners, say, serve)
    supervisor.start()
    supervisor.run()
