"""Django extras: the system checks and the ``sessionward_cleanup`` management command.

Runs in the same configured Django process as the HTTP suite
(``integrations.django_app``); each test changes settings only through
``override_settings`` and puts the manager back afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionward import SessionManager
from sessionward.core.clock import FrozenClock

from integrations.conftest import make_manager
from integrations.django_app import wsgi_application
from integrations.harness import FlakyStore

GUARD = "sessionward.integrations.django.middleware.SessionGuardMiddleware"
DJANGO_MW = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH_MW = "django.contrib.auth.middleware.AuthenticationMiddleware"


@pytest.fixture(autouse=True, name="django_ready")
def django_ready_fixture() -> Iterator[None]:
    """Django configured (once per process); the manager reset after each test."""
    from sessionward.integrations.django.backend import configure_manager

    wsgi_application()
    yield
    configure_manager(None)


def _ids(**overrides: Any) -> set[str]:
    from django.core import checks
    from django.test import override_settings

    with override_settings(**overrides):
        messages = checks.run_checks(tags=[checks.Tags.security])
    return {m.id for m in messages if str(m.id).startswith("sessionward.")}


def test_good_configuration_has_no_findings() -> None:
    assert _ids() == set()


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"MIDDLEWARE": [DJANGO_MW, AUTH_MW]}, "sessionward.E102"),
    ({"MIDDLEWARE": [DJANGO_MW, GUARD, AUTH_MW]}, "sessionward.E102"),
    ({"SESSION_ENGINE": "django.contrib.sessions.backends.db"}, "sessionward.W101"),
    ({"SESSIONWARD": {"namespace": "test", "cookie_name": "__Host-other"}}, "sessionward.E003"),
    ({"SESSION_COOKIE_DOMAIN": ".example.com"}, "sessionward.E003"),
    ({"SESSION_COOKIE_AGE": 3600}, "sessionward.W103"),
    ({"SESSIONWARD": {"namespace": "test", "no_such_setting": 1}}, "sessionward.E000"),
    ({"SESSIONWARD": {"namespace": "test", "unsafe_dev_http": True, "cookie_secure": False,
                      "cookie_name": "session"}, "SESSION_COOKIE_NAME": "session",
      "SESSION_COOKIE_SECURE": False},
     "sessionward.SW-E004"),
], ids=["guard-missing", "guard-after-session-mw", "engine", "cookie-name-conflict",
        "cookie-domain-on-host-prefix", "cookie-age-unused", "bad-settings", "dev-http-audit"])
def test_each_check_fires_on_its_bad_configuration(overrides: dict[str, Any],
                                                   expected: str) -> None:
    found = _ids(**overrides)
    assert expected in found
    assert found <= {expected, "sessionward.SW-W004"}  # nothing unrelated fires


def _manager_with_sessions(tmp: Path) -> tuple[SessionManager, FlakyStore, FrozenClock]:
    from sessionward.integrations.django.backend import configure_manager

    clock = FrozenClock()
    manager, store = make_manager(tmp, clock)
    for user in ("old-1", "old-2", "old-3"):
        manager.login(manager.new(), user)
    clock.advance(manager.settings.idle_timeout.total_seconds() + 1)
    manager.login(manager.new(), "fresh")
    configure_manager(manager)
    return manager, store, clock


def test_cleanup_command_removes_only_expired_records(tmp_path: Path) -> None:
    from django.core.management import call_command

    manager, store, clock = _manager_with_sessions(tmp_path)
    out = io.StringIO()
    call_command("sessionward_cleanup", "--batch", "2", stdout=out)
    assert "removed 3 expired session(s)" in out.getvalue()
    assert store.stats(clock()).records == 1
    assert [s.user for s in manager.sessions_of("fresh")] == ["fresh"]
    manager.close()


def test_cleanup_command_reports_a_store_outage(tmp_path: Path) -> None:
    from django.core.management import CommandError, call_command

    manager, store, _clock = _manager_with_sessions(tmp_path)
    store.down = True
    with pytest.raises(CommandError, match="unavailable"):
        call_command("sessionward_cleanup", stdout=io.StringIO())
    store.down = False
    manager.close()
