"""Settings: defaults, validation, and source precedence."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sessionward import Secret, Settings
from sessionward.core.errors import ConfigurationError


def test_secure_defaults() -> None:
    """Defaults meet ASVS L2 and the cookie rules (T-09)."""
    s = Settings()
    assert s.idle_timeout == timedelta(minutes=30)
    assert s.absolute_timeout == timedelta(hours=12)
    assert s.rotation_interval == timedelta(minutes=15)
    assert s.rotation_grace == timedelta(seconds=10)
    assert (s.cookie_name, s.cookie_secure, s.cookie_http_only, s.cookie_same_site,
            s.cookie_path, s.cookie_domain, s.cookie_max_age) == (
        "__Host-session", True, True, "lax", "/", None, None)
    assert s.max_record_bytes == 65536


@pytest.mark.parametrize("changes,message", [
    ({"cookie_secure": False}, "unsafe_dev_http"),
    ({"cookie_domain": "example.com"}, "__Host-"),
    ({"cookie_path": "/app"}, "__Host-"),
    ({"cookie_name": "__Secure-s", "cookie_secure": False, "unsafe_dev_http": True},
     "__Secure-"),
    ({"cookie_name": "s", "cookie_same_site": "none", "cookie_secure": False,
      "unsafe_dev_http": True}, "none"),
    ({"rotation_grace": timedelta(seconds=301)}, "300"),
    ({"idle_timeout": timedelta(hours=13)}, "absolute"),
    ({"cookie_same_site": "sometimes"}, "cookie_same_site"),
    ({"namespace": "a b"}, "namespace"),
    ({"cookie_name": "bad;name"}, "cookie name"),
    ({"max_sessions_per_user": 0}, "max_sessions_per_user"),
])
def test_insecure_or_invalid_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings(**changes)  # type: ignore[arg-type]


def test_dev_http_switch() -> None:
    s = Settings(cookie_name="session", cookie_secure=False, unsafe_dev_http=True)
    assert not s.cookie_secure


def test_precedence_file_env_overrides(tmp_path: Path) -> None:
    """defaults < TOML < SESSIONWARD_* < overrides."""
    conf = tmp_path / "sessionward.toml"
    conf.write_text('[sessionward]\nnamespace = "file"\nidle_timeout_seconds = 600\n'
                    'store_url = "sqlite:///file.db"\n')
    s = Settings.load(config_file=conf, environ={})
    assert (s.namespace, s.idle_timeout) == ("file", timedelta(minutes=10))
    s = Settings.load(config_file=conf, environ={"SESSIONWARD_NAMESPACE": "env",
                                                 "SESSIONWARD_STORE": "memory://"})
    assert (s.namespace, s.store_url, s.idle_timeout) == ("env", "memory://",
                                                          timedelta(minutes=10))
    s = Settings.load(config_file=conf, environ={"SESSIONWARD_NAMESPACE": "env"},
                      overrides={"namespace": "flag"})
    assert s.namespace == "flag"


@pytest.mark.parametrize("env", [{"SESSIONWARD_BOGUS": "1"},
                                 {"SESSIONWARD_IDLE_TIMEOUT_SECONDS": "soon"},
                                 {"SESSIONWARD_COOKIE_SECURE": "maybe"}])
def test_bad_environment_is_clear(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match=r"SESSIONWARD_|seconds|true or false"):
        Settings.load(environ=env)


def test_bad_toml(tmp_path: Path) -> None:
    bad = tmp_path / "x.toml"
    bad.write_text("namespace = [")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        Settings.load(config_file=bad, environ={})


def test_secret_is_masked() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert secret.reveal() == "hunter2"
