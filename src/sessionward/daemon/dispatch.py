"""One request frame → one response line: the pipeline, and where the handler runs.

Pipeline (each step a small function; the first failure answers)::

    frame -> parse (JSON only, depth <= 32, linear) -> id -> token -> role
          -> role allowlist -> schema -> handler (loop or pool, see .gate)
          -> response

A wrong token is answered after a delay and closes the connection
(:mod:`.auth`).  The answer is either the response bytes (the handler ran
inline on the loop) or a future of them (it ran in the pool, or a failure is
being delayed); :class:`~.connection.ClientProtocol` writes either.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..audit.redact import sanitize_exception
from ..core.errors import ProtocolError
from ..protocol import framing, schema
from . import handlers
from .auth import FAIL_DELAY, Authenticator
from .context import Connection, Context, Handler
from .gate import Contended, GatedStore, InlineGate

if TYPE_CHECKING:
    from .connection import ClientProtocol

log = logging.getLogger("sessionward.daemon")
Answer = bytes | asyncio.Future[bytes] | None
"""Response bytes now, a future of them, or ``None`` (the connection was closed)."""


class Dispatcher:
    """Runs the pipeline of the module docstring.

    Args:
        ctx: what handlers may use.
        auth: the role tokens and the failure budget.
        store: the manager's store proxy (rule 2 of :mod:`.gate`), if any.
        pool: worker threads for waits, leases, admin scans and slow stores.
    """

    def __init__(self, ctx: Context, auth: Authenticator, store: GatedStore | None,
                 pool: ThreadPoolExecutor) -> None:
        self.ctx = ctx
        self.auth = auth
        self.store = store
        self.pool = pool
        self.gate = InlineGate()
        self.internal_errors = 0
        self.inline_runs = 0
        self.pooled_runs = 0

    def handle(self, client: ClientProtocol, raw: bytes) -> Answer:
        """The answer to one frame of ``client`` (never raises)."""
        conn = client.conn
        request_id: str | int | None = None
        try:
            doc = framing.parse_frame(raw)
            request_id = schema.check_request_id(doc.get("id"))
            role = self._role(client, doc.get("token"))
            if role is None:
                return self._auth_failure(client, request_id)
            command = doc.get("command")
            if not schema.allowed(role, command):
                raise ProtocolError("forbidden_command", f"command not allowed for role {role}")
            args = schema.validate_request(doc, role, str(command))
            handler = handlers.handler_for(role, str(command))
        except Exception as exc:  # noqa: BLE001 - mapped to a wire error, never raised
            return self.error(request_id, exc)
        if handlers.pooled(role, str(command), conn) or not self.gate.inline_ok():
            return self._pooled(handler, conn, args, request_id)
        return self._inline(handler, conn, args, request_id)

    def _role(self, client: ClientProtocol, token: object) -> str | None:
        """The role of ``token``; the connection remembers the token it last
        proved, so its next requests cost one constant-time comparison with
        it instead of a hash and one comparison per role."""
        known = client.proven_token
        if (known is not None and type(token) is str and client.proven_generation
                == self.auth.generation and hmac.compare_digest(token.encode(), known)):
            return client.conn.role
        role = self.auth.role_of(token)
        if role is not None and isinstance(token, str):
            client.proven_token, client.proven_generation = token.encode(), self.auth.generation
            client.mark_authenticated()
            client.conn.role = role
        return role

    # ---------------------------------------------------------- where it runs

    def _inline(self, handler: Handler, conn: Connection, args: dict[str, Any],
                request_id: str | int | None) -> Answer:
        store = self.store
        started = time.perf_counter()
        if store is not None:
            store.begin()
        try:
            result = handler(self.ctx, conn, args)
            frame = framing.ok_frame(request_id, result)
        except Contended:
            self.gate.observe(float("inf"))  # the store is contended: pool for a while
            return self._pooled(handler, conn, args, request_id)
        except Exception as exc:  # noqa: BLE001 - the one mapping to a wire error
            frame = self.error(request_id, exc)
        finally:
            if store is not None:
                store.end()
        self.inline_runs += 1
        self.gate.observe(time.perf_counter() - started)
        return frame

    def _pooled(self, handler: Handler, conn: Connection, args: dict[str, Any],
                request_id: str | int | None) -> Answer:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        def run() -> tuple[bytes, float]:
            started = time.perf_counter()
            try:
                frame = framing.ok_frame(request_id, handler(self.ctx, conn, args))
            except Exception as exc:  # noqa: BLE001 - the one mapping to a wire error
                frame = self.error(request_id, exc)
            return frame, time.perf_counter() - started

        def done(future: asyncio.Future[tuple[bytes, float]]) -> None:
            if future.cancelled():
                answer.cancel()
                return
            frame, seconds = future.result()
            self.gate.observe(seconds)
            if not answer.done():
                answer.set_result(frame)

        self.pooled_runs += 1
        loop.run_in_executor(self.pool, run).add_done_callback(done)
        return answer

    # ------------------------------------------------------------ failures

    def _auth_failure(self, client: ClientProtocol, request_id: str | int | None) -> Answer:
        """Audit, then answer after :data:`FAIL_DELAY` and close (see :mod:`.auth`)."""
        client.mark_failing()
        suppressed = self.auth.audit_slot()
        if suppressed is not None:
            self.ctx.manager.emit("auth_failed", outcome="denied", reason="bad_token",
                                  peer=client.conn.peer, suppressed=suppressed)
        if not self.auth.begin_failure():
            client.close()
            return None
        frame = framing.error_frame(request_id, "auth_failed", "missing or wrong token")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        def reply() -> None:
            self.auth.end_failure()
            if not answer.done():
                answer.set_result(frame)

        loop.call_later(FAIL_DELAY, reply)
        return answer

    def error(self, request_id: str | int | None, exc: Exception) -> bytes:
        """The error line for ``exc``; an unexpected one is logged as internal."""
        frame = framing.exception_frame(request_id, exc)
        if frame is not None:
            return frame
        self.internal_errors += 1
        log.error("internal error #%d: %s", self.internal_errors, sanitize_exception(exc))
        return framing.error_frame(request_id, "internal_error",
                                   "internal error; see the daemon log")


def run_in_pool(pool: ThreadPoolExecutor, fn: Callable[[], Any]) -> asyncio.Future[Any]:
    """``fn()`` in the pool, as an awaitable of the running loop."""
    return asyncio.get_running_loop().run_in_executor(pool, fn)
