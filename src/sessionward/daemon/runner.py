"""Assembling and running the daemon: manager, audit, listeners, one or several processes.

``run`` takes the PID file, binds every listener once (the Unix socket, and
loopback TCP if asked), then serves in this process — or, with
``--workers N``, forks N worker processes that share those listening
sockets (the kernel hands each new connection to one of them) and
supervises them (:mod:`.workers`).  Every store the daemon opens by URL is
safe across processes (SQLite and file locks, Redis), and each worker opens
its own connection to it after the fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError
from ..lifecycle.manager import SessionManager
from ..stores import open_store
from .auth import Authenticator
from .config import DaemonConfig, load_keys, load_tokens, make_clock
from .fsutil import PidFile, bind_unix_socket
from .gate import GatedStore
from .server import Daemon


def build_manager(config: DaemonConfig) -> tuple[SessionManager, GatedStore | None]:
    """The real manager over the configured store, keys and clock, and the
    store proxy that lets the event loop's writes fail fast (:mod:`.gate`;
    ``None`` for a store that has no per-thread busy timeout).

    Raises:
        ConfigurationError: bad store URL, key file or test clock.
    """
    clock = make_clock(config)
    store: Any = open_store(config.store, clock=clock)
    gated = GatedStore(store) if hasattr(store, "set_thread_busy_timeout") else None
    manager = SessionManager(gated or store, load_keys(config), config.settings, clock=clock)
    return manager, gated


def attach_audit(config: DaemonConfig, manager: SessionManager) -> list[Any]:
    """Subscribe the configured audit sink(s) to ``manager``'s events.

    Returns:
        The sinks (for ``stats`` and for closing at shutdown).

    Raises:
        ConfigurationError: the audit file is unsafe or cannot be opened.
    """
    sinks: list[Any] = []
    if config.audit_file is not None:
        from ..audit.sinks.audit_file import AuditFileSink

        sinks.append(AuditFileSink(config.audit_file, level="auth",
                                   group_read=config.audit_group_read))
    for sink in sinks:
        manager.events.subscribe(sink)
    return sinks


def bind_listeners(config: DaemonConfig, say: Callable[[str], None]) -> list[socket.socket]:
    """The Unix socket (always) and the loopback TCP socket (``--tcp``), listening.

    Raises:
        ConfigurationError: see :func:`.fsutil.bind_unix_socket`; the TCP
            address cannot be bound.
    """
    listeners = [bind_unix_socket(config.socket_path, config.socket_mode)]
    if config.tcp is not None:
        host, port = config.tcp
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            tcp = socket.create_server((host, port), family=family, backlog=128)
        except OSError as exc:
            for sock in listeners:
                sock.close()
            raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        tcp.setblocking(False)
        listeners.append(tcp)
        bound = tcp.getsockname()
        say(f"tcp                   {bound[0]}:{bound[1]}")
    return listeners


def serve_process(config: DaemonConfig, listeners: Sequence[socket.socket],
                  say: Callable[[str], None]) -> None:
    """Serve on ``listeners`` in this process until SIGTERM/SIGINT.

    Raises:
        ConfigurationError: the store, keys, tokens or audit file are unusable.
    """
    manager, gated = build_manager(config)
    try:
        sinks = attach_audit(config, manager)
        daemon = Daemon(config, manager, Authenticator(load_tokens(config)), sinks, gated)
        _run_loop(daemon.serve(listeners, say))
        for sink in sinks:
            sink.close()
    finally:
        manager.close()


def run(config: DaemonConfig, say: Callable[[str], None]) -> None:
    """Start the daemon and block until it is stopped.

    Raises:
        ConfigurationError: any refused setting, file or socket path.
    """
    pid = PidFile(config.pid_path)
    pid.acquire()
    listeners: list[socket.socket] = []
    try:
        listeners = bind_listeners(config, say)
        if config.workers > 1:
            from .workers import supervise

            supervise(config, listeners, say, serve_process)
        else:
            serve_process(config, listeners, say)
    finally:
        for sock in listeners:
            sock.close()
        if listeners:
            _unlink_socket(config.socket_path)
        pid.release()


def _run_loop(main: Any) -> None:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _unlink_socket(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


__all__ = ["ConfigurationError", "attach_audit", "bind_listeners", "build_manager", "run",
           "serve_process"]
