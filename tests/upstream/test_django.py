"""Django's own ``tests/sessions_tests/tests.py`` against sessionward's session engine.

Wiring (the documented one, in the test process's Django project from
``integrations.django_app``: ``SESSION_ENGINE`` is sessionward's backend,
``SESSION_COOKIE_NAME = "__Host-session"``, ``SESSIONWARD`` settings):

- ``SessionwardSessionTests`` binds Django's ``SessionTestsMixin`` to
  sessionward's ``SessionStore`` exactly as Django binds its own backends
  (``class ...(SessionTestsMixin, SimpleTestCase): backend = SessionStore``);
- ``SessionMiddlewareTests`` is Django's class as is (Django's
  ``SessionMiddleware`` with sessionward's engine, no guard), and
  ``GuardedSessionMiddlewareTests`` the same tests with ``SessionMiddleware``
  standing for ``SessionGuardMiddleware(SessionMiddleware(...))``, the
  documented middleware order.

Each test gets a fresh in-memory manager on the wall clock
(``configure_manager``).  ``.models`` (Django's custom-model backend, used
only by tests not run here) is a stand-in module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sessionward import SessionManager, Settings
from sessionward.core.clock import system_clock
from sessionward.core.keys import KeyRing
from sessionward.stores.memory import MemoryStore

from integrations.django_app import wsgi_application
from upstream import _fetch, _load

FILE = "tests/sessions_tests/tests.py"
ROOT = _fetch.require("django", [FILE])

wsgi_application()  # configures the test process's Django project (once)

from django.contrib.sessions.middleware import SessionMiddleware  # noqa: E402
from django.test import SimpleTestCase  # noqa: E402

from sessionward.integrations.django.backend import SessionStore, configure_manager  # noqa: E402
from sessionward.integrations.django.middleware import SessionGuardMiddleware  # noqa: E402


def _guarded(get_response: Callable[[Any], Any]) -> SessionGuardMiddleware:
    return SessionGuardMiddleware(SessionMiddleware(get_response))


_stand_ins = {"sessions_tests": _load.stub("sessions_tests"),
              "sessions_tests.models": _load.stub("sessions_tests.models", SessionStore=None)}
_alone = _load.load(ROOT / FILE, "sessions_tests.tests_alone", package="sessions_tests",
                    modules=_stand_ins)
_behind_guard = _load.load(ROOT / FILE, "sessions_tests.tests_guarded", package="sessions_tests",
                           modules=_stand_ins, rebind={"SessionMiddleware": _guarded})


class SessionwardSessionTests(_alone.SessionTestsMixin, SimpleTestCase):  # type: ignore[misc,name-defined]
    """Django's backend test mixin, bound to sessionward's engine."""

    backend = SessionStore


SessionMiddlewareTests = _alone.SessionMiddlewareTests


class GuardedSessionMiddlewareTests(_behind_guard.SessionMiddlewareTests):  # type: ignore[misc,name-defined]
    """Django's middleware tests behind SessionGuardMiddleware."""


@pytest.fixture(autouse=True, name="fresh_manager")
def fresh_manager_fixture() -> Iterator[SessionManager]:
    """A fresh in-memory manager for each test; the process-wide one is reset after."""
    manager = SessionManager(MemoryStore(clock=system_clock), KeyRing.generate("test"),
                             Settings(namespace="test"), clock=system_clock)
    configure_manager(manager)
    yield manager
    configure_manager(None)
    manager.close()
