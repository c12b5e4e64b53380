"""Django's ``SESSION_COOKIE_*`` settings → the session cookie policy.

The rule (``docs/integrations.md``): a Django cookie setting the project
*set* (``settings.is_overridden``) is honoured; one left at Django's default
yields sessionward's setting instead (``Secure``, ``SameSite=Lax``, no
``Domain``, ``Path=/``...), because Django's defaults are not hardened
(``SESSION_COOKIE_SECURE = False``).  What sessionward refuses — a
``Domain`` or a narrower ``Path`` on a ``__Host-`` cookie, ``Secure`` off
outside ``unsafe_dev_http`` — raises
:class:`~sessionward.core.errors.ConfigurationError` naming the Django setting,
when ``SessionGuardMiddleware`` is built (start-up) and in ``manage.py check``.

``SESSION_EXPIRE_AT_BROWSER_CLOSE`` works the same way (left at Django's
default, the cookie lasts for the browser session unless sessionward's
``cookie_max_age`` is set).  ``SESSION_COOKIE_AGE`` is not used: sessions
end after sessionward's idle and absolute timeouts (check
``sessionward.W103`` says so when the project sets it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

from ...core.config import Settings
from ...core.errors import ConfigurationError
from .. import cookies

# Django setting -> Settings field
COOKIE_SETTINGS: dict[str, str] = {
    "SESSION_COOKIE_NAME": "cookie_name",
    "SESSION_COOKIE_SECURE": "cookie_secure",
    "SESSION_COOKIE_HTTPONLY": "cookie_http_only",
    "SESSION_COOKIE_SAMESITE": "cookie_same_site",
    "SESSION_COOKIE_DOMAIN": "cookie_domain",
    "SESSION_COOKIE_PATH": "cookie_path",
}


def explicit(name: str) -> bool:
    """The project set ``name`` (in settings.py, ``configure()`` or ``override_settings``)."""
    return bool(django_settings.is_overridden(name))


def _value(name: str) -> Any:
    value = getattr(django_settings, name)
    if name == "SESSION_COOKIE_SAMESITE":
        if value is None or value is False:
            raise ConfigurationError(
                "SESSION_COOKIE_SAMESITE: sessionward always sends SameSite; use 'Lax', "
                "'Strict' or 'None'")
        return str(value).lower()
    return value


def cookie_policy(base: Settings) -> cookies.CookiePolicy:
    """The cookie policy: ``base`` with the project's own Django cookie settings.

    Raises:
        ConfigurationError: a Django cookie setting sessionward refuses, or one
            that contradicts the same setting in ``SESSIONWARD`` (named).
    """
    applied: dict[str, Any] = {}
    defaults = Settings()
    for name, field in COOKIE_SETTINGS.items():
        if not explicit(name):
            continue
        try:
            applied[field] = _value(name)
            ours = getattr(base, field)
            if ours != getattr(defaults, field) and ours != applied[field]:
                raise ConfigurationError(
                    f"it conflicts with SESSIONWARD's {field} = {ours!r}; set it in one place")
            base.replace(**applied)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{name} = {getattr(django_settings, name)!r}: {exc}") \
                from exc
    return cookies.CookiePolicy.from_settings(base.replace(**applied))


def expire_at_browser_close(policy: cookies.CookiePolicy) -> bool:
    """Django's ``SESSION_EXPIRE_AT_BROWSER_CLOSE`` under the rule above."""
    if explicit("SESSION_EXPIRE_AT_BROWSER_CLOSE"):
        return bool(django_settings.SESSION_EXPIRE_AT_BROWSER_CLOSE)
    return policy.max_age is None


def policy_key() -> tuple[Any, ...]:
    """What :func:`cookie_policy` depends on (to rebuild it only when settings change)."""
    return tuple((name, explicit(name), getattr(django_settings, name, None))
                 for name in COOKIE_SETTINGS)
