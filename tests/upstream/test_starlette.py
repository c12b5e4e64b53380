"""Starlette's own ``tests/middleware/test_session.py`` against sessionward's middleware.

Wiring (what a user migrating does): ``SessionMiddleware`` is
``sessionward.integrations.starlette.SessionMiddleware`` with Starlette's
keyword arguments (``session_cookie``, ``max_age``, ``path``, ``same_site``,
``https_only``, ``domain``, ``partitioned``) passed through; ``secret_key`` has
no meaning (sessionward's key lives in its keyring) and is dropped.  Each
middleware instance gets a fresh in-memory manager.  ``Session`` is
sessionward's ``SessionDict`` (what ``request.session`` is).

sessionward's cookie is always ``Secure``, so the ``test_client_factory``
fixture defaults to ``https://testserver`` (a plain-http client never sends a
Secure cookie back); tests that pass their own ``base_url`` keep it.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from sessionward import SessionManager, Settings
from sessionward.core.clock import system_clock
from sessionward.core.keys import KeyRing
from sessionward.integrations import starlette as sw
from sessionward.integrations.sessiondict import SessionDict
from sessionward.stores.memory import MemoryStore

from upstream import _fetch, _load

FILE = "tests/middleware/test_session.py"
ROOT = _fetch.require("starlette", [FILE, "tests/__init__.py"])


def _middleware(app: Any, secret_key: object = None, **options: Any) -> sw.SessionMiddleware:
    manager = SessionManager(MemoryStore(clock=system_clock), KeyRing.generate("upstream"),
                             Settings(namespace="upstream"), clock=system_clock)
    return sw.SessionMiddleware(app, manager=manager, **options)


_types = _load.stub("tests.types", TestClientFactory=object)
_module = _load.load(ROOT / FILE, "upstream_starlette_test_session",
                     modules={"tests": _load.stub("tests", types=_types), "tests.types": _types},
                     rebind={"SessionMiddleware": _middleware, "Session": SessionDict})
globals().update(_load.tests_of(_module))


@pytest.fixture(name="anyio_backend")
def anyio_backend_fixture() -> str:
    return "asyncio"


@pytest.fixture(name="test_client_factory")
def test_client_factory_fixture(anyio_backend_name: str,
                                anyio_backend_options: dict[str, Any]) -> Any:
    """Starlette's ``TestClient``, over https unless a test picks its own base URL."""
    from starlette.testclient import TestClient

    return functools.partial(TestClient, base_url="https://testserver",
                             backend=anyio_backend_name, backend_options=anyio_backend_options)
