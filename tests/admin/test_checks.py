"""sessionward.admin.checks: SW-W013, Redis without TLS leaving the host (every Redis scheme)."""

from __future__ import annotations

import pytest

from sessionward.admin.checks import settings_findings
from sessionward.core.config import Settings


def _ids(url: str) -> set[str]:
    return {f.id for f in settings_findings(Settings(store_url=url))}


@pytest.mark.parametrize("url", [
    "redis://10.0.0.5:6379/0",
    "redis+cluster://redis.internal:7000",
    "redis+sentinel://10.0.0.5:26379/mymaster",
    "redis+sentinel://127.0.0.1:26379,10.0.0.6:26379/mymaster/0",  # one remote sentinel
    "redis+sentinel://user:pw@[2001:db8::1]:26379/mymaster",
])
def test_plain_redis_leaving_the_host_is_a_warning(url: str) -> None:
    assert "SW-W013" in _ids(url)


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0",
    "unix:///run/redis.sock",
    "rediss://10.0.0.5:6380/0",
    "redis+sentinel://127.0.0.1:26379,localhost:26380,[::1]:26381/mymaster",
    "rediss+sentinel://10.0.0.5:26379/mymaster",
])
def test_tls_or_local_redis_is_not(url: str) -> None:
    assert "SW-W013" not in _ids(url)
