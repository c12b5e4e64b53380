"""The daemon's I/O: listeners, the connection caps, deadlines, signals, drain.

Each connection is a :class:`~.connection.ClientProtocol`; each frame goes
through :class:`~.dispatch.Dispatcher` (parse, authenticate, validate, run
the handler on the loop or in the pool).

Caps (DESIGN §9):

- ``max_connections`` (50) concurrent connections per worker process, of
  which at most ``max_unauthenticated`` (16) not yet authenticated.  When a
  new connection would pass either cap, the oldest unauthenticated, idle
  connection is closed to make room (``too_many_connections``): a peer
  without a token cannot keep a real client out (slowloris, issue 15).  Only
  when every connection is authenticated or busy is the new one refused.
- ``idle_timeout`` (30 s) without a *complete* request: a per-request
  deadline counted from the end of the previous request, not an inactivity
  timer that a byte re-arms; ``preauth_timeout`` (5 s) from the accept for
  a connection not yet authenticated.  A sweep checks them every
  :func:`_tick` seconds, so a request pays for no timer.
- 64 KiB per frame, 1 MiB buffered per connection, at most
  :data:`~.connection.PREAUTH_FRAMES` frames before a valid token.
- HTTP-shaped input (``GET ``/``POST `` first line, a ``Host:`` line) closes
  the connection before anything else it sent is read.

Shutdown (SIGTERM/SIGINT): stop accepting, close idle connections, let
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
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..audit.redact import sanitize
from ..core.net import is_loopback_address
from ..lifecycle.manager import SessionManager
from ..protocol import framing
from .auth import Authenticator
from .config import DaemonConfig, load_keys, load_tokens
from .connection import PREAUTH_FRAMES, ClientProtocol
from .context import MAX_LEASES_PER_CONNECTION, Connection, Context, release_all
from .dispatch import Answer, Dispatcher
from .gate import GatedStore

log = logging.getLogger("sessionward.daemon")
DRAIN_SECONDS = 30.0
HTTP_LOG_INTERVAL = 60.0


class Daemon:
    """One daemon process: manager, authenticator, listeners, connections.

    Args:
        config: the validated configuration.
        manager: the real :class:`SessionManager` the commands use.
        auth: role tokens and the failure budget.
        sinks: the audit sinks (``stats`` reports their failure counts).
        store: the manager's store proxy, when its store can fail fast
            (:mod:`.gate`).
    """

    def __init__(self, config: DaemonConfig, manager: SessionManager,
                 auth: Authenticator, sinks: Sequence[Any] = (),
                 store: GatedStore | None = None) -> None:
        self.config = config
        self.manager = manager
        self.auth = auth
        self.limits = {
            "max_frame": framing.MAX_FRAME, "max_buffer": framing.MAX_BUFFER,
            "max_depth": framing.MAX_DEPTH, "max_connections": config.max_connections,
            "max_unauthenticated": config.unauthenticated_cap,
            "idle_timeout": config.idle_timeout, "preauth_timeout": config.preauth_deadline,
            "preauth_frames": PREAUTH_FRAMES, "workers": config.workers,
            "max_leases_per_connection": MAX_LEASES_PER_CONNECTION,
        }
        self.ctx = Context(manager, self.reload_keys, self.limits, sinks)
        self._pool = ThreadPoolExecutor(max_workers=config.max_connections + 4,
                                        thread_name_prefix="sessionward-daemon")
        self.dispatcher = Dispatcher(self.ctx, auth, store, self._pool)
        self.clients: dict[ClientProtocol, None] = {}
        self.unauthenticated: dict[ClientProtocol, None] = {}
        self.failed: dict[ClientProtocol, None] = {}
        self._releases: set[asyncio.Future[Any]] = set()
        self._stop = asyncio.Event()
        self._drained = asyncio.Event()
        self._servers: list[asyncio.AbstractServer] = []
        self._http_logged = 0.0
        self.http_refused = 0

    @property
    def stopping(self) -> bool:
        """True once SIGTERM/SIGINT was received."""
        return self._stop.is_set()

    @property
    def internal_errors(self) -> int:
        """Unexpected exceptions answered as ``internal_error``."""
        return self.dispatcher.internal_errors

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

    async def serve(self, listeners: Sequence[socket.socket],
                    say: Callable[[str], None]) -> None:
        """Serve on already bound ``listeners`` until SIGTERM/SIGINT, then drain."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        for sock in listeners:
            if sock.family == socket.AF_UNIX:
                server = await loop.create_unix_server(self._protocol, sock=sock)
            else:
                server = await loop.create_server(self._protocol, sock=sock)
            self._servers.append(server)
        loop.call_later(self._tick(), self.sweep)
        say("sessionward daemon ready")
        await self._stop.wait()
        await self._drain()

    def _protocol(self) -> ClientProtocol:
        return ClientProtocol(self)

    def _on_sighup(self) -> None:
        future = asyncio.get_running_loop().run_in_executor(self._pool, self.reload_keys)
        future.add_done_callback(_log_reload)

    async def _drain(self) -> None:
        for server in self._servers:
            server.close()
        for client in list(self.clients):
            if not client.busy:
                client.close()
        if self.clients:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), DRAIN_SECONDS)
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.abort()
        await asyncio.sleep(0)  # let connection_lost run for the aborted ones
        if self._releases:
            await asyncio.wait(list(self._releases), timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------- connections

    def admit(self, client: ClientProtocol) -> None:
        """Identify a new connection and apply the caps (module docstring)."""
        if self.stopping:
            client.close()
            return
        conn = self._identify(client)
        if conn is None:
            client.refuse("auth_failed", "this peer is not allowed to connect")
            return
        client.conn = conn
        if not self._make_room():
            client.refuse("too_many_connections",
                          f"at most {self.config.max_connections} connections")
            return
        self.clients[client] = None
        self.unauthenticated[client] = None

    def _make_room(self) -> bool:
        """Close the oldest idle unauthenticated connection while a cap is reached."""
        while (len(self.clients) >= self.config.max_connections
               or len(self.unauthenticated) >= self.config.unauthenticated_cap):
            victim = next((c for c in self.unauthenticated if not c.busy and not c.queue), None)
            if victim is None:
                return False
            self._evict(victim)
        return True

    def _evict(self, client: ClientProtocol) -> None:
        self.clients.pop(client, None)
        self.unauthenticated.pop(client, None)
        client.refuse("too_many_connections",
                      "closed to make room: send a request with a valid token promptly")

    def failing(self, client: ClientProtocol) -> None:
        """``client`` sent a wrong token: it leaves the caps (it is bounded by the
        failure budget of :mod:`.auth` instead), so failures never take the
        slots a correct token needs."""
        self.clients.pop(client, None)
        self.unauthenticated.pop(client, None)
        self.failed[client] = None

    def authenticated(self, client: ClientProtocol) -> None:
        """``client`` sent its first valid token."""
        self.unauthenticated.pop(client, None)

    def forget(self, client: ClientProtocol) -> None:
        """A connection is gone: drop it and release its leases (in the pool)."""
        self.clients.pop(client, None)
        self.unauthenticated.pop(client, None)
        self.failed.pop(client, None)
        if self.stopping and not self.clients:
            self._drained.set()
        conn = client.conn
        if conn.leases:
            with contextlib.suppress(RuntimeError):  # pool already shut down
                future = asyncio.get_running_loop().run_in_executor(
                    self._pool, release_all, self.ctx, conn)
                self._releases.add(future)
                future.add_done_callback(self._releases.discard)

    def handle(self, client: ClientProtocol, raw: bytes) -> Answer:
        """The answer to one frame (see :class:`~.dispatch.Dispatcher`)."""
        return self.dispatcher.handle(client, raw)

    def refuse_http(self, client: ClientProtocol) -> None:
        """Close an HTTP-shaped connection, unanswered (logged once a minute)."""
        self.http_refused += 1
        now = time.monotonic()
        if now - self._http_logged >= HTTP_LOG_INTERVAL:
            self._http_logged = now
            log.warning("refused HTTP-shaped input from %s (possible cross-protocol attack; "
                        "%d so far)", client.conn.peer, self.http_refused)
        client.close()

    def _identify(self, client: ClientProtocol) -> Connection | None:
        """The peer's identity; ``None`` when it must be refused (P-D1)."""
        transport = client.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None or transport is None:
            return None
        if sock.family == socket.AF_UNIX:
            return self._unix_peer(sock)
        host = str(transport.get_extra_info("peername")[0])
        return Connection(peer=f"ip:{host}") if is_loopback_address(host) else None

    def _unix_peer(self, sock: Any) -> Connection | None:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", creds)
        if self.config.allow_uids and uid not in self.config.allow_uids:
            log.warning("refused connection from uid %d (pid %d): not in --allow-uid", uid, pid)
            return None
        if self.config.allow_gids and gid not in self.config.allow_gids:
            log.warning("refused connection from gid %d (pid %d): not in --allow-gid", gid, pid)
            return None
        return Connection(peer=f"uid:{uid}", uid=uid)

    # ------------------------------------------------------------ deadlines

    def _tick(self) -> float:
        return max(0.02, min(1.0, self.config.idle_timeout / 4,
                             self.config.preauth_deadline / 4))

    def sweep(self) -> None:
        """Close connections past their deadline; re-arms itself."""
        now = time.monotonic()
        for client in list(self.clients):
            if client.busy or client.closing:
                continue
            if client.authenticated:
                if now - client.last_request > self.config.idle_timeout:
                    client.refuse("connection_timeout", "no complete request for "
                                  f"{self.config.idle_timeout:g} s")
            elif now - client.opened > self.config.preauth_deadline:
                client.refuse("connection_timeout", "no valid request within "
                              f"{self.config.preauth_deadline:g} s of connecting")
        if not self.stopping:
            asyncio.get_running_loop().call_later(self._tick(), self.sweep)


def _log_reload(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("key reload failed, old keys kept: %s", sanitize(exc))
