"""Flask's own session tests (``tests/test_basic.py``, ``tests/test_testing.py``) on sessionward.

Wiring (the documented one): the ``app`` fixture is Flask's test app
(``TESTING``, a ``SECRET_KEY``) with ``init_app(app, manager=...)`` over a
fresh in-memory manager on the wall clock.  The tests taken are those that
use that ``app`` and whose name says ``session`` or ``flash`` (flashed
messages live in the session); tests that build their own ``Flask()`` never
reach sessionward and are left out.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import flask
import pytest

from sessionward import SessionManager, Settings
from sessionward.core.clock import system_clock
from sessionward.core.keys import KeyRing
from sessionward.integrations.flask import init_app
from sessionward.stores.memory import MemoryStore

from upstream import _fetch, _load

FILES = ["tests/test_basic.py", "tests/test_testing.py"]
ROOT = _fetch.require("flask", FILES)


def _about_sessions(name: str, obj: Any) -> bool:
    uses_app = "app" in inspect.signature(obj).parameters
    return uses_app and ("session" in name or "flash" in name)


for _file in FILES:
    _module = _load.load(ROOT / _file, "upstream_flask_" + _file.rsplit("/", 1)[1][:-3])
    globals().update(_load.tests_of(_module, _about_sessions))


@pytest.fixture(name="app")
def app_fixture() -> Iterator[flask.Flask]:
    """Flask's test app with sessionward installed through ``init_app``."""
    app = flask.Flask("flask_test", root_path=str(ROOT / "tests"))
    app.config.update(TESTING=True, SECRET_KEY="test key")
    manager = SessionManager(MemoryStore(clock=system_clock), KeyRing.generate("upstream"),
                             Settings(namespace="upstream"), clock=system_clock)
    init_app(app, manager=manager)
    yield app
    manager.close()


@pytest.fixture(name="client")
def client_fixture(app: flask.Flask) -> Any:
    return app.test_client()


@pytest.fixture(name="app_ctx")
def app_ctx_fixture(app: flask.Flask) -> Iterator[Any]:
    with app.app_context() as ctx:
        yield ctx


@pytest.fixture(name="req_ctx")
def req_ctx_fixture(app: flask.Flask) -> Iterator[Any]:
    with app.test_request_context() as ctx:
        yield ctx
