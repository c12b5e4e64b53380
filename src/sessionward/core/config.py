"""Settings: one frozen, validated configuration object.

Sources, lowest to highest: defaults < ``sessionward.toml`` < environment
``SESSIONWARD_*`` < explicit overrides (CLI flags, framework config).
Durations are :class:`~datetime.timedelta` in Python and ``*_seconds`` at the
config-file and environment boundary.  Construction fails fast with an
actionable :class:`ConfigurationError`; insecure choices need an explicit
``unsafe_`` switch that ``sessionward check`` reports.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from .errors import ConfigurationError

SameSite = Literal["lax", "strict", "none"]
BindingPolicy = Literal["ignore", "log", "rotate", "deny"]
ZombiePolicy = Literal["revoke", "log"]
LimitPolicy = Literal["evict_oldest", "reject"]
OpenMode = Literal["read", "optimistic", "exclusive"]

MAX_GRACE = timedelta(seconds=300)


class Secret:
    """A string whose ``repr``/``str`` are masked (tokens, passwords)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself — pass it only to the code that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every tunable of a :class:`~sessionward.SessionManager`.

    Defaults meet OWASP ASVS 4.0.3 L2 (30 min idle, 12 h absolute) and the
    cookie defaults of ASVS 5.0 V3.3 (``__Host-`` name, Secure, HttpOnly,
    SameSite=Lax, Path=/, no Domain, no Max-Age).

    Raises:
        ConfigurationError: on any invalid or insecure combination.
    """

    namespace: str = "default"
    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_timeout: timedelta = timedelta(hours=12)
    rotation_interval: timedelta | None = timedelta(minutes=15)
    rotation_grace: timedelta = timedelta(seconds=10)
    grace_ends_on_successor_use: bool = True
    zombie_policy: ZombiePolicy = "revoke"
    touch_interval: timedelta | None = None
    """Coalesce idle-time touches: at most one per interval (default: the
    smaller of 60 s and a tenth of ``idle_timeout``)."""
    max_record_bytes: int = 64 * 1024
    max_sessions_per_user: int | None = None
    session_limit_policy: LimitPolicy = "evict_oldest"
    default_mode: OpenMode = "optimistic"
    lock_ttl: timedelta = timedelta(seconds=30)
    lock_wait: timedelta = timedelta(seconds=15)
    conflict_retries: int = 200
    """Merge-and-retry attempts of an optimistic save before SessionConflictError."""
    client_binding: BindingPolicy = "log"
    ip_prefix_v4: int = 24
    ip_prefix_v6: int = 64
    revalidate_interval: timedelta | None = None
    invalid_event_limit: int = 20
    """``invalid_session`` events per client address per minute (then summarized)."""
    cookie_name: str = "__Host-session"
    cookie_secure: bool = True
    cookie_http_only: bool = True
    cookie_same_site: SameSite = "lax"
    cookie_path: str = "/"
    cookie_domain: str | None = None
    cookie_max_age: timedelta | None = None
    cookie_partitioned: bool = False
    """Send ``Partitioned`` (CHIPS: a cookie keyed to the top-level site; needs Secure)."""
    clear_site_data: bool = True
    unsafe_dev_http: bool = False
    """Allow a non-Secure cookie over plain http on localhost (development only)."""
    key_file: str | None = None
    store_url: str = "sqlite:///sessionward.db"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def effective_touch_interval(self) -> float:
        """Seconds between coalesced idle-time touches."""
        if self.touch_interval is not None:
            return self.touch_interval.total_seconds()
        return min(60.0, self.idle_timeout.total_seconds() / 10)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "settings") -> Settings:
        """Build from plain values (TOML, env, framework config).

        ``*_seconds`` keys become timedeltas; unknown keys are errors.

        Raises:
            ConfigurationError: unknown key or a value of the wrong type.
        """
        return cls(**_coerce_all(values, source))

    @classmethod
    def load(
        cls,
        *,
        config_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Merge defaults < TOML file < ``SESSIONWARD_*`` environment < overrides.

        Raises:
            ConfigurationError: unreadable file, unknown key, bad value.
        """
        merged: dict[str, Any] = {}
        if config_file is not None:
            merged.update(_read_toml(Path(config_file)))
        merged.update(_from_environ(os.environ if environ is None else environ))
        merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.from_mapping(merged, source="configuration")


_FIELD_TYPES: dict[str, str] = {}


def _field_kinds() -> dict[str, str]:
    if not _FIELD_TYPES:
        for f in fields(Settings):
            _FIELD_TYPES[f.name] = str(f.type)
    return _FIELD_TYPES


def _coerce_all(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    kinds = _field_kinds()
    out: dict[str, Any] = {}
    for raw_name, value in values.items():
        name = raw_name.lower()
        if name.endswith("_seconds") and name[: -len("_seconds")] in kinds:
            name = name[: -len("_seconds")]
            out[name] = _seconds(value, raw_name, source)
            continue
        if name not in kinds:
            raise ConfigurationError(f"{source}: unknown setting {raw_name!r}")
        out[name] = _coerce(name, kinds[name], value, source)
    return out


def _seconds(value: Any, name: str, source: str) -> timedelta | None:
    if value is None or (isinstance(value, str) and value.lower() in ("", "none", "off")):
        return None
    try:
        return timedelta(seconds=float(value))
    except (TypeError, ValueError):
        raise ConfigurationError(f"{source}: {name} must be a number of seconds") from None


def _coerce(name: str, kind: str, value: Any, source: str) -> Any:
    if "timedelta" in kind:
        if isinstance(value, timedelta) or value is None:
            return value
        return _seconds(value, name, source)
    if kind.startswith("bool"):
        return _bool(value, name, source)
    if kind.startswith("int"):
        if value is None or (isinstance(value, str) and value.lower() in ("", "none")):
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{source}: {name} must be an integer") from None
    if kind.startswith("Mapping"):
        return value
    return None if value is None else str(value)


def _bool(value: Any, name: str, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{source}: {name} must be true or false, got {value!r}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None
    section = doc.get("sessionward", doc)
    if not isinstance(section, dict):
        raise ConfigurationError(f"config file {path}: [sessionward] must be a table")
    return {k: v for k, v in section.items() if not isinstance(v, dict)}


# SESSIONWARD_* variables that belong to the CLI/daemon, not to Settings.
_ENV_IGNORED = {"admin_token", "app_token", "debug", "config", "token", "data_dir",
                "daemon", "token_file", "audit_file", "audit_chain"}


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    kinds = _field_kinds()
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("SESSIONWARD_"):
            continue
        key = name[len("SESSIONWARD_") :].lower()
        base = key[: -len("_seconds")] if key.endswith("_seconds") else key
        if key == "store":
            out["store_url"] = value
        elif base in kinds:
            out[key] = value
        elif key not in _ENV_IGNORED:
            raise ConfigurationError(f"environment: unknown setting {name}")
    return out


# ---------------------------------------------------------------- validation


def _validate(s: Settings) -> None:
    _validate_lifetimes(s)
    _validate_cookie(s)
    _validate_choices(s)


def _positive(value: timedelta | None, name: str) -> None:
    if value is not None and value <= timedelta(0):
        raise ConfigurationError(f"{name} must be positive")


def _validate_lifetimes(s: Settings) -> None:
    for name in ("idle_timeout", "absolute_timeout", "touch_interval", "lock_ttl", "lock_wait"):
        _positive(getattr(s, name), name)
    if s.touch_interval is not None and s.touch_interval >= s.idle_timeout:
        raise ConfigurationError("touch_interval must be shorter than idle_timeout")
    _positive(s.rotation_interval, "rotation_interval")
    _positive(s.revalidate_interval, "revalidate_interval")
    if s.idle_timeout > s.absolute_timeout:
        raise ConfigurationError("idle_timeout must not exceed absolute_timeout")
    if not timedelta(0) <= s.rotation_grace <= MAX_GRACE:
        raise ConfigurationError("rotation_grace must be between 0 and 300 seconds")
    if not 1024 <= s.max_record_bytes <= 16 * 1024 * 1024:
        raise ConfigurationError("max_record_bytes must be between 1 KiB and 16 MiB")
    if s.max_sessions_per_user is not None and s.max_sessions_per_user < 1:
        raise ConfigurationError("max_sessions_per_user must be at least 1 (or None)")
    if not 0 <= s.conflict_retries <= 10_000:
        raise ConfigurationError("conflict_retries must be between 0 and 10000")
    if not 8 <= s.ip_prefix_v4 <= 32 or not 16 <= s.ip_prefix_v6 <= 128:
        raise ConfigurationError("ip_prefix_v4 must be 8..32 and ip_prefix_v6 16..128")
    if s.cookie_max_age is not None and s.cookie_max_age > s.absolute_timeout:
        raise ConfigurationError("cookie_max_age must not exceed absolute_timeout")


def _validate_cookie(s: Settings) -> None:
    name = s.cookie_name
    if not name or any(c in name for c in ' ;,="\t\r\n\\') or not name.isascii():
        raise ConfigurationError(f"cookie_name {name!r} is not a valid cookie name")
    if not s.cookie_secure and not s.unsafe_dev_http:
        raise ConfigurationError(
            "cookie_secure=False sends the session over plain http; it is only allowed "
            "with unsafe_dev_http=True (development on localhost)"
        )
    if name.startswith("__Host-"):
        if s.cookie_domain is not None or s.cookie_path != "/":
            raise ConfigurationError(
                "a __Host- cookie must have Path=/ and no Domain; rename the cookie "
                "(e.g. __Secure-session) to use cookie_domain or a narrower cookie_path"
            )
        if not s.cookie_secure:
            raise ConfigurationError(
                "a __Host- cookie requires cookie_secure=True; with unsafe_dev_http "
                "use a plain cookie_name such as 'session'"
            )
    if name.startswith("__Secure-") and not s.cookie_secure:
        raise ConfigurationError("a __Secure- cookie requires cookie_secure=True")
    if s.cookie_partitioned and not s.cookie_secure:
        raise ConfigurationError("cookie_partitioned=True requires cookie_secure=True")
    if s.cookie_same_site == "none" and not s.cookie_secure:
        raise ConfigurationError("cookie_same_site='none' requires cookie_secure=True")
    if not s.cookie_path.startswith("/"):
        raise ConfigurationError("cookie_path must start with '/'")


def _validate_choices(s: Settings) -> None:
    choices = {
        "cookie_same_site": SameSite,
        "client_binding": BindingPolicy,
        "zombie_policy": ZombiePolicy,
        "session_limit_policy": LimitPolicy,
        "default_mode": OpenMode,
    }
    for name, literal in choices.items():
        allowed = get_args(literal)
        if getattr(s, name) not in allowed:
            raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}")
    ns = s.namespace
    if not ns or len(ns) > 64 or not all(c.isalnum() or c in "-_." for c in ns):
        raise ConfigurationError("namespace must be 1-64 characters of [A-Za-z0-9._-]")
