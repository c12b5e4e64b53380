"""One client connection as an :class:`asyncio.Protocol`: bytes in, frames out, one at a time.

Why a protocol and not asyncio streams: a stream read plus an
``asyncio.timeout`` per request cost 60–90 µs of CPU; a protocol's
``data_received`` costs a few (issue 16).  Deadlines are not per-read
timers either: the daemon's sweeper (:meth:`Daemon.sweep`) closes a
connection that has gone too long without a *complete* request, so a byte a
second does not keep a connection open (slowloris, issue 15).

Fairness, by construction: a connection runs at most one frame per event
loop callback.  Pipelined frames wait in its queue (reading is paused
meanwhile) and the next one is scheduled with ``call_soon``, behind every
other connection's ready callbacks — so no connection's burst delays
another's request by more than one frame's work, and a frame's work is
bounded: parsing is linear (at most about 2 ms for the worst 64 KiB frame
on this machine, see :func:`sessionward.protocol.framing.nesting_depth`) and
handlers that may wait run in the pool (:mod:`.gate`).

Client disconnects are quiet: a peer that closes with responses unread makes
the transport drop them (no ``BrokenPipeError`` traceback, issue 15).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol, cast

from ..protocol import errors as wire_errors
from ..protocol import framing
from .context import Connection

PREAUTH_FRAMES = 4
"""Frames a connection may send before one carries a valid token; the next
closes it.  With the 64 KiB frame cap and linear parsing this bounds the CPU
an unauthenticated peer can spend per connection."""


class Owner(Protocol):
    """What a connection needs from its daemon (:class:`~.server.Daemon`)."""

    @property
    def stopping(self) -> bool: ...

    def admit(self, client: ClientProtocol) -> None: ...

    def forget(self, client: ClientProtocol) -> None: ...

    def failing(self, client: ClientProtocol) -> None: ...

    def authenticated(self, client: ClientProtocol) -> None: ...

    def refuse_http(self, client: ClientProtocol) -> None: ...

    def handle(self, client: ClientProtocol,
               raw: bytes) -> bytes | asyncio.Future[bytes] | None: ...


class ClientProtocol(asyncio.Protocol):
    """The daemon side of one connection (see the module docstring).

    Attributes:
        conn: the handlers' per-connection state (peer, role, leases...).
        authenticated: a request on it carried a valid token.
        failing: a wrong token was seen; the connection is being closed.
        busy: a request is being answered (in the pool, or a delayed failure).
        opened / last_request: loop times of the accept and of the last
            complete request (the deadlines count from them).
    """

    def __init__(self, daemon: Owner) -> None:
        self.daemon = daemon
        self.transport: asyncio.Transport | None = None
        self.conn = Connection(peer="?")
        self.decoder = framing.FrameDecoder()
        self.queue: deque[bytes] = deque()
        self.authenticated = False
        self.failing = False
        self.busy = False
        self.closing = False
        self.close_after = False
        self.preauth_frames = 0
        self.proven_token: bytes | None = None
        self.proven_generation = -1
        self.opened = self.last_request = time.monotonic()
        self._paused_reading = False
        self._paused_writing = False
        self._scheduled = False

    def mark_failing(self) -> None:
        """A wrong token: read nothing more, answer after the delay, close."""
        self.failing = True
        self.close_after = True
        self.queue.clear()
        self.daemon.failing(self)

    def mark_authenticated(self) -> None:
        """A request on this connection carried a valid token."""
        if not self.authenticated:
            self.authenticated = True
            self.daemon.authenticated(self)

    # ------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self.transport = cast(asyncio.Transport, transport)
        self.daemon.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.queue.clear()
        self.daemon.forget(self)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._schedule()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.failing:
            return
        try:
            frames = self.decoder.feed(data)
        except wire_errors.FrameTooLarge as exc:
            self.refuse("payload_too_large", str(exc))
            return
        if not frames:
            if not self.authenticated and framing.looks_like_http(self.decoder.head()):
                self.daemon.refuse_http(self)
            return
        self.queue.extend(frames)
        self._pause_reading()
        self._schedule()

    def eof_received(self) -> bool | None:
        # Half-close: answer what is queued, then close.
        self.close_after = True
        if not self.busy and not self.queue:
            self.close()
        return True

    # ---------------------------------------------------------------- frames

    def _schedule(self) -> None:
        if not self._scheduled and not self.busy and self.queue and not self.closing:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._next)

    def _next(self) -> None:
        """Answer one queued frame (the fairness rule of the module docstring)."""
        self._scheduled = False
        if self.closing or self.busy or self._paused_writing or not self.queue:
            return
        raw = self.queue.popleft()
        if framing.looks_like_http(raw):
            self.daemon.refuse_http(self)
            return
        if not self.authenticated:
            self.preauth_frames += 1
            if self.preauth_frames > PREAUTH_FRAMES:
                self.refuse("auth_failed", "no valid token within the first requests")
                return
        answer = self.daemon.handle(self, raw)
        if isinstance(answer, bytes):
            self._finish(answer)
        elif answer is not None:
            self.busy = True
            answer.add_done_callback(self._answered)

    def _answered(self, future: asyncio.Future[bytes]) -> None:
        self.busy = False
        if future.cancelled() or self.closing:
            return
        self._finish(future.result())

    def _finish(self, frame: bytes) -> None:
        self.last_request = time.monotonic()
        if self.transport is not None and not self.closing:
            self.transport.write(frame)
        if (self.close_after and not self.queue) or self.daemon.stopping:
            self.close()
            return
        if self.queue:
            self._schedule()
        else:
            self._resume_reading()

    # ------------------------------------------------------------- closing

    def refuse(self, kind: str, message: str) -> None:
        """Send one error line and close (the transport flushes it first)."""
        if self.transport is not None and not self.closing:
            self.transport.write(framing.error_frame(None, kind, message))
        self.close()

    def close(self) -> None:
        """Close now; queued frames are dropped."""
        if self.closing:
            return
        self.closing = True
        self.queue.clear()
        if self.transport is not None:
            self.transport.close()

    def _pause_reading(self) -> None:
        if not self._paused_reading and self.transport is not None:
            self._paused_reading = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._paused_reading and self.transport is not None and not self.closing:
            self._paused_reading = False
            self.transport.resume_reading()
