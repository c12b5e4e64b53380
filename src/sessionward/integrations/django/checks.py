"""Django system checks mirroring ``sessionward check`` (IDs ``sessionward.SW-...``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from ...admin.checks import settings_findings
from ...core.errors import ConfigurationError
from . import cookie
from .backend import settings_from_django

ENGINE = "sessionward.integrations.django.backend"
GUARD = "sessionward.integrations.django.middleware.SessionGuardMiddleware"
DJANGO_MW = "django.contrib.sessions.middleware.SessionMiddleware"


def sessionward_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``settings.SESSIONWARD`` validates and passes ``sessionward check``'s settings audit."""
    try:
        conf = settings_from_django()
    except ConfigurationError as exc:
        return [checks.Error(str(exc), id="sessionward.E000")]
    out: list[checks.CheckMessage] = []
    for f in settings_findings(conf):
        kind = checks.Error if f.severity == "error" else checks.Warning
        out.append(kind(f"{f.title}: {f.message}", hint=f.fix, id=f"sessionward.{f.id}"))
    try:
        policy = cookie.cookie_policy(conf)
    except ConfigurationError as exc:
        return [*out, checks.Error(str(exc), id="sessionward.E003",
                                   hint="fix or remove that SESSION_COOKIE_* setting")]
    if getattr(settings, "SESSION_COOKIE_NAME", None) != policy.name:
        out.append(checks.Error(
            "SESSION_COOKIE_NAME differs from SESSIONWARD['cookie_name']",
            hint=f"set SESSION_COOKIE_NAME = {policy.name!r}", id="sessionward.E001"))
    if cookie.explicit("SESSION_COOKIE_AGE"):
        out.append(checks.Warning(
            "SESSION_COOKIE_AGE is not used: sessions end after sessionward's idle timeout "
            f"({int(conf.idle_timeout.total_seconds())} s) and absolute timeout "
            f"({int(conf.absolute_timeout.total_seconds())} s)",
            hint="set SESSIONWARD['idle_timeout_seconds'] / ['absolute_timeout_seconds'] "
                 "and remove SESSION_COOKIE_AGE", id="sessionward.W103"))
    return out


def sessionward_wiring(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The engine is ours and the guard sits right before Django's SessionMiddleware."""
    out: list[checks.CheckMessage] = []
    if getattr(settings, "SESSION_ENGINE", "") != ENGINE:
        out.append(checks.Warning("SESSION_ENGINE is not sessionward's",
                                  hint=f"SESSION_ENGINE = {ENGINE!r}", id="sessionward.W101"))
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if GUARD not in middleware or (DJANGO_MW in middleware
                                   and middleware.index(GUARD) > middleware.index(DJANGO_MW)):
        out.append(checks.Error(
            "SessionGuardMiddleware is missing or after SessionMiddleware: duplicate or "
            "look-alike cookies are not rejected and cache headers are not set",
            hint=f"add {GUARD!r} right before {DJANGO_MW!r}", id="sessionward.E102"))
    return out


checks.register(sessionward_settings, checks.Tags.security)
checks.register(sessionward_wiring, checks.Tags.security)
