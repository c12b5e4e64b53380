"""Flask config → sessionward: ``SESSIONWARD_*`` settings and Flask's own cookie keys.

Two sources, one result:

- ``SESSIONWARD_*`` keys map 1:1 onto :class:`~sessionward.Settings`
  (``*_SECONDS`` become durations; ``SESSIONWARD_STORE`` is an alias of
  ``SESSIONWARD_STORE_URL``) — :func:`settings_from_config`;
- Flask's own ``SESSION_COOKIE_NAME``, ``_DOMAIN``, ``_PATH`` (else
  ``APPLICATION_ROOT``), ``_HTTPONLY``, ``_SECURE``, ``_SAMESITE`` and
  ``_PARTITIONED`` are honoured when the app changed them from Flask's
  defaults; left at Flask's defaults, sessionward's secure settings apply
  (``__Host-session``, ``Secure``, ``HttpOnly``, ``SameSite=Lax``, ``Path=/``).
  What sessionward refuses (a ``Domain`` or a narrower ``Path`` on a
  ``__Host-`` cookie, an invalid ``SameSite``...) raises
  :class:`~sessionward.core.errors.ConfigurationError` naming the Flask key —
  at ``init_app`` time, or on the first request after the config changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ..core.config import Settings
from ..core.errors import ConfigurationError
from . import cookies

PREFIX = "SESSIONWARD_"
GUARD_KEY = "SESSIONWARD_FLOOD_GUARD"
"""The Flask config key of the flood guard spec (not a Settings field)."""

# Flask key -> (Flask's default, Settings field)
_FLASK_COOKIE_KEYS: dict[str, tuple[Any, str]] = {
    "SESSION_COOKIE_NAME": ("session", "cookie_name"),
    "SESSION_COOKIE_DOMAIN": (None, "cookie_domain"),
    "SESSION_COOKIE_PATH": (None, "cookie_path"),
    "SESSION_COOKIE_HTTPONLY": (True, "cookie_http_only"),
    "SESSION_COOKIE_SECURE": (False, "cookie_secure"),
    "SESSION_COOKIE_SAMESITE": (None, "cookie_same_site"),
    "SESSION_COOKIE_PARTITIONED": (False, "cookie_partitioned"),
}


def settings_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``SESSIONWARD_*`` keys of a Flask config as Settings values.

    Returns:
        a mapping for :meth:`Settings.from_mapping` (keys lower-cased, prefix dropped).
    """
    values: dict[str, Any] = {}
    for name, value in config.items():
        if isinstance(name, str) and name.startswith(PREFIX) and name != GUARD_KEY:
            key = name[len(PREFIX):].lower()
            values["store_url" if key == "store" else key] = value
    return values


def flask_cookie_changes(config: Mapping[str, Any]) -> dict[str, Any]:
    """Settings changes for the Flask cookie keys the app set away from Flask's defaults.

    Raises:
        ConfigurationError: ``SESSION_COOKIE_SAMESITE`` is not Lax, Strict or None.
    """
    changes: dict[str, Any] = {}
    for key, (default, field) in _FLASK_COOKIE_KEYS.items():
        value = config.get(key, default)
        if value != default:
            changes[field] = value
    root = config.get("APPLICATION_ROOT", "/")
    if "cookie_path" not in changes and root not in (None, "/"):
        changes["cookie_path"] = root
    same_site = changes.get("cookie_same_site")
    if same_site is not None:
        if not isinstance(same_site, str) or same_site.lower() not in ("lax", "strict", "none"):
            raise ConfigurationError(
                f"SESSION_COOKIE_SAMESITE={same_site!r}: use 'Lax', 'Strict' or 'None'")
        changes["cookie_same_site"] = same_site.lower()
    return changes


def cookie_policy(config: Mapping[str, Any], base: Settings) -> cookies.CookiePolicy:
    """The session cookie policy for this Flask config over the manager's settings.

    Raises:
        ConfigurationError: a Flask cookie key sessionward refuses (names it).
    """
    changes = flask_cookie_changes(config)
    applied: dict[str, Any] = {}
    for field, value in changes.items():  # one at a time, to name the key refused
        applied[field] = value
        try:
            base.replace(**applied)
        except ConfigurationError as exc:
            raise ConfigurationError(f"Flask config {_key_of(field, config)}: {exc}") from exc
    return cookies.CookiePolicy.from_settings(base.replace(**applied))


def _key_of(field: str, config: Mapping[str, Any]) -> str:
    if field == "cookie_path" and config.get("SESSION_COOKIE_PATH") is None:
        return f"APPLICATION_ROOT={config.get('APPLICATION_ROOT')!r}"
    key = next(k for k, (_, f) in _FLASK_COOKIE_KEYS.items() if f == field)
    return f"{key}={config.get(key)!r}"


def permanent_lifetime(config: Mapping[str, Any]) -> int:
    """``PERMANENT_SESSION_LIFETIME`` in whole seconds (Flask accepts seconds or a timedelta).

    Raises:
        ConfigurationError: not a positive duration.
    """
    value = config.get("PERMANENT_SESSION_LIFETIME", timedelta(days=31))
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if not isinstance(seconds, int | float) or seconds <= 0:
        raise ConfigurationError("PERMANENT_SESSION_LIFETIME must be a positive duration")
    return int(seconds)


def policy_key(config: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the policy depends on (to rebuild it only when the config changed)."""
    return tuple(config.get(k) for k in (*_FLASK_COOKIE_KEYS, "APPLICATION_ROOT"))
