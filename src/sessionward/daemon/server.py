"""The daemon's I/O: accept connections, read frames, enforce the caps, dispatch.

Pipeline per request (each step a small function; the first failure answers)::

    frame -> parse (JSON only, depth <= 32) -> id -> peer lockout -> token -> role
          -> role allowlist -> schema -> handler (worker thread) -> response

Caps: ``max_connections`` (50) concurrent connections, ``idle_timeout``
(30 s) without a complete request, 64 KiB per frame, 1 MiB buffered per
connection.  A connection is served one request at a time, so a slow
client only ever slows itself (P-D5).

Shutdown (SIGTERM/SIGINT): stop accepting, cancel idle connections, let
in-flight requests finish (bounded), release their leases, then remove the
socket and the PID file.  SIGHUP re-reads the key file and the token files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..audit.redact import sanitize, sanitize_exception
from ..core.errors import ConfigurationError, ProtocolError
from ..core.net import is_loopback_address
from ..lifecycle.manager import SessionManager
from ..protocol import errors as wire_errors
from ..protocol import framing, schema
from ..stores import open_store
from . import handlers
from .auth import Authenticator
from .config import DaemonConfig, load_keys, load_tokens, make_clock
from .context import MAX_LEASES_PER_CONNECTION, Connection, Context, release_all
from .fsutil import PidFile, bind_unix_socket

log = logging.getLogger("sessionward.daemon")
READ_CHUNK = 65_536
DRAIN_SECONDS = 30.0


class Daemon:
    """One running daemon: manager, authenticator, listeners, connections.

    Args:
        config: the validated configuration.
        manager: the real :class:`SessionManager` the commands use.
        auth: role tokens and the per-peer backoff.
        sinks: the audit sinks (``stats`` reports their failure counts).
    """

    def __init__(self, config: DaemonConfig, manager: SessionManager,
                 auth: Authenticator, sinks: Sequence[Any] = ()) -> None:
        self.config = config
        self.manager = manager
        self.auth = auth
        self.internal_errors = 0
        self.limits = {
            "max_frame": framing.MAX_FRAME, "max_buffer": framing.MAX_BUFFER,
            "max_depth": framing.MAX_DEPTH, "max_connections": config.max_connections,
            "idle_timeout": config.idle_timeout,
            "max_leases_per_connection": MAX_LEASES_PER_CONNECTION,
        }
        self.ctx = Context(manager, self.reload_keys, self.limits, sinks)
        self._pool = ThreadPoolExecutor(max_workers=config.max_connections + 4,
                                        thread_name_prefix="sessionward-daemon")
        self._conns: dict[asyncio.Task[None], Connection] = {}
        self._busy: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._servers: list[asyncio.AbstractServer] = []

    # ------------------------------------------------------------ lifecycle

    def reload_keys(self) -> dict[str, Any]:
        """Re-read the key file and token files (SIGHUP, ``reload-keys``).

        Raises:
            ConfigurationError: the new files are unusable (old ones stay).
        """
        ring = load_keys(self.config)
        tokens = load_tokens(self.config)
        self.manager.replace_keys(ring)
        self.auth.replace_tokens(tokens)
        log.info("keys reloaded: active key %s, %d keys", ring.active.kid, len(ring.keys))
        return {"active_key": ring.active.kid, "keys": len(ring.keys)}

    async def serve(self, unix_sock: socket.socket | None,
                    say: Callable[[str], None]) -> None:
        """Serve until SIGTERM/SIGINT, then drain (see the module docstring)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        if unix_sock is not None:
            self._servers.append(await asyncio.start_unix_server(self._accept, sock=unix_sock))
        if self.config.tcp is not None:
            host, port = self.config.tcp
            server = await asyncio.start_server(self._accept, host, port)
            self._servers.append(server)
            bound = server.sockets[0].getsockname()
            say(f"tcp                   {bound[0]}:{bound[1]}")
        say("sessionward daemon ready")
        await self._stop.wait()
        await self._drain()

    def _on_sighup(self) -> None:
        future = asyncio.get_running_loop().run_in_executor(self._pool, self.reload_keys)
        future.add_done_callback(_log_reload)

    async def _drain(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._conns):
            if task not in self._busy:
                task.cancel()
        pending = list(self._conns)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=DRAIN_SECONDS)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------- connections

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or self._stop.is_set():
            writer.close()
            return
        if len(self._conns) >= self.config.max_connections:
            await self._refuse(writer, "too_many_connections",
                               f"at most {self.config.max_connections} connections")
            return
        conn = self._identify(writer)
        if conn is None:
            await self._refuse(writer, "auth_failed", "this peer is not allowed to connect")
            return
        self._conns[task] = conn
        try:
            await self._serve_connection(conn, reader, writer)
        finally:
            del self._conns[task]
            await self._close(conn, writer)

    async def _refuse(self, writer: asyncio.StreamWriter, kind: str, message: str) -> None:
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            writer.write(framing.error_frame(None, kind, message))
            await asyncio.wait_for(writer.drain(), 1.0)
        writer.close()

    async def _close(self, conn: Connection, writer: asyncio.StreamWriter) -> None:
        if conn.leases:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(RuntimeError):  # pool already shut down
                await loop.run_in_executor(self._pool, release_all, self.ctx, conn)
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)

    def _identify(self, writer: asyncio.StreamWriter) -> Connection | None:
        """The peer's identity; ``None`` when it must be refused (P-D1)."""
        sock = writer.get_extra_info("socket")
        if sock is None:
            return None
        if sock.family == socket.AF_UNIX:
            return self._unix_peer(sock)
        host = str(writer.get_extra_info("peername")[0])
        return Connection(peer=f"ip:{host}") if is_loopback_address(host) else None

    def _unix_peer(self, sock: socket.socket) -> Connection | None:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", creds)
        if self.config.allow_uids and uid not in self.config.allow_uids:
            log.warning("refused connection from uid %d (pid %d): not in --allow-uid", uid, pid)
            return None
        if self.config.allow_gids and gid not in self.config.allow_gids:
            log.warning("refused connection from gid %d (pid %d): not in --allow-gid", gid, pid)
            return None
        return Connection(peer=f"uid:{uid}", uid=uid)

    async def _serve_connection(self, conn: Connection, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        decoder = framing.FrameDecoder()
        task = asyncio.current_task()
        while not self._stop.is_set():
            try:
                # asyncio.timeout() re-arms one timer; wait_for() would wrap every
                # read in a new Task (measured: a large share of per-request cost).
                async with asyncio.timeout(self.config.idle_timeout):
                    chunk = await reader.read(READ_CHUNK)
            except TimeoutError:
                await self._refuse(writer, "connection_timeout", "idle for too long")
                return
            if not chunk:
                return
            try:
                frames = decoder.feed(chunk)
            except wire_errors.FrameTooLarge as exc:
                await self._refuse(writer, "payload_too_large", str(exc))
                return
            if task is not None:
                self._busy.add(task)
            try:
                for raw in frames:
                    writer.write(await self.respond(conn, raw))
                async with asyncio.timeout(self.config.idle_timeout):
                    await writer.drain()
            finally:
                if task is not None:
                    self._busy.discard(task)

    # -------------------------------------------------------------- requests

    async def respond(self, conn: Connection, raw: bytes) -> bytes:
        """The response line for one request frame (never raises)."""
        request_id: str | int | None = None
        try:
            doc = framing.parse_frame(raw)
            request_id = schema.check_request_id(doc.get("id"))
            role, command = self._authorize(conn, doc)
            args = schema.validate(doc, schema.schema_for(role, command),
                                     extra=schema.COMMON)
            handler = handlers.handler_for(role, command)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._pool, handler, self.ctx, conn, args)
            return framing.ok_frame(request_id, result)
        except Exception as exc:  # noqa: BLE001 - the one top-level mapping to internal_error
            return self._error(request_id, exc)

    def _authorize(self, conn: Connection, doc: dict[str, Any]) -> tuple[str, str]:
        """Lockout, then token → role, then the role's allowlist.

        Raises:
            ProtocolError: ``throttled``, ``auth_failed`` or ``forbidden_command``.
        """
        wait = self.auth.locked_for(conn.peer)
        if wait > 0:
            raise _Throttled(wait)
        role = self.auth.role_of(doc.get("token"))
        if role is None:
            lockout = self.auth.failed(conn.peer)
            self.manager.emit("auth_failed", outcome="denied", reason="bad_token",
                              peer=conn.peer, lockout=lockout)
            raise ProtocolError("auth_failed", "missing or wrong token")
        self.auth.succeeded(conn.peer)
        conn.role = role
        command = doc.get("command")
        if not schema.allowed(role, command):
            raise ProtocolError("forbidden_command", f"command not allowed for role {role}")
        return role, str(command)

    def _error(self, request_id: str | int | None, exc: Exception) -> bytes:
        if isinstance(exc, _Throttled):
            return framing.error_frame(request_id, "throttled", exc,
                                        retry_after=round(exc.retry_after, 3))
        frame = framing.exception_frame(request_id, exc)
        if frame is not None:
            return frame
        self.internal_errors += 1
        log.error("internal error #%d: %s", self.internal_errors, sanitize_exception(exc))
        return framing.error_frame(request_id, "internal_error",
                                    "internal error; see the daemon log")


class _Throttled(ProtocolError):
    def __init__(self, retry_after: float) -> None:
        super().__init__("throttled", "too many failed authentications; try again later")
        self.retry_after = retry_after


def _log_reload(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("key reload failed, old keys kept: %s", sanitize(exc))


# ------------------------------------------------------------------ assembly


def build_manager(config: DaemonConfig) -> SessionManager:
    """The real manager over the configured store, keys and clock.

    Raises:
        ConfigurationError: bad store URL, key file or test clock.
    """
    clock = make_clock(config)
    store = open_store(config.store, clock=clock)
    return SessionManager(store, load_keys(config), config.settings, clock=clock)


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

        sinks.append(AuditFileSink(config.audit_file, level="auth"))
    for sink in sinks:
        manager.events.subscribe(sink)
    return sinks


def run(config: DaemonConfig, say: Callable[[str], None]) -> None:
    """Start the daemon and block until it is stopped.

    Raises:
        ConfigurationError: any refused setting, file or socket path.
    """
    pid = PidFile(config.pid_path)
    pid.acquire()
    sock: socket.socket | None = None
    try:
        manager = build_manager(config)
        sinks = attach_audit(config, manager)
        auth = Authenticator(load_tokens(config))
        sock = bind_unix_socket(config.socket_path, config.socket_mode)
        daemon = Daemon(config, manager, auth, sinks)
        _run_loop(daemon.serve(sock, say))
        manager.close()
        for sink in sinks:
            sink.close()
    finally:
        if sock is not None:
            sock.close()
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


__all__ = ["ConfigurationError", "Daemon", "attach_audit", "build_manager", "run"]
