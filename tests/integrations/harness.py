"""Real servers on loopback for the integration tests, plus a store that can go down.

- :func:`serve_asgi` runs uvicorn in a thread on a pre-bound loopback socket;
- :func:`serve_wsgi` runs ``werkzeug.serving.make_server`` (threaded) likewise;
- :class:`FlakyStore` wraps a real store; ``down = True`` makes every call raise
  ``StoreUnavailableError`` (a Redis or SQLite outage as the manager sees it).

Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from werkzeug.serving import make_server

from sessionward.core.errors import StoreUnavailableError
from sessionward.stores.base import SessionStore

STARTUP_TIMEOUT = 15.0


class FlakyStore:
    """Delegates to ``inner``; while ``down`` every method raises StoreUnavailableError."""

    def __init__(self, inner: SessionStore) -> None:
        self._inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreUnavailableError("store is down (test)")
            return target(*args, **kwargs)

        return call


def _bound_socket() -> socket.socket:
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP; without it every two-write response (start, body)
    # waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _wait_until(pred: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {STARTUP_TIMEOUT}s")
        time.sleep(0.02)


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1; yields the base URL."""
    sock = _bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _wait_until(lambda: server.started, "uvicorn")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        sock.close()


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server on 127.0.0.1; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(STARTUP_TIMEOUT)
        server.server_close()
