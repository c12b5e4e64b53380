"""Every integration, over real HTTP, with sessions held by a real daemon subprocess.

The apps get a ``RemoteSessionManager`` (``tests/svc_daemon.py``) instead of an
embedded manager; the daemon follows the test's FrozenClock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.core import ids
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing

from integrations.apps import BUILDERS
from integrations.conftest import NAME, Jar, cookie_value, cookies_set
from integrations.harness import serve_asgi, serve_wsgi

pytestmark = [pytest.mark.daemon, pytest.mark.slow]


@pytest.fixture(name="daemon_site", params=list(BUILDERS))
def daemon_site_fixture(request: pytest.FixtureRequest,
                        tmp_path: Path) -> Iterator[tuple[str, object, FrozenClock]]:
    from svc_daemon import make_remote_manager

    clock = FrozenClock()
    remote = make_remote_manager(tmp_path, clock)
    builder, kind = BUILDERS[request.param]
    serve = serve_asgi if kind == "asgi" else serve_wsgi
    try:
        with serve(builder(remote)) as url:  # type: ignore[arg-type]
            yield url, remote, clock
    finally:
        remote.close()


def test_flow_through_daemon(daemon_site: tuple[str, object, FrozenClock]) -> None:
    """Strict mode, login rotation, logout with deletion cookie, replay, idle timeout."""
    url, _remote, clock = daemon_site
    with httpx.Client(base_url=url, timeout=30.0) as client:
        jar = Jar(client)
        forged = ids.cookie_value(ids.new_session_id(), KeyRing.generate("test").active)
        (header,) = cookies_set(jar.post("/set", params={"n": "3"}, cookie=forged))
        assert cookie_value(header) != forged
        assert "secure" in header.lower() and "httponly" in header.lower()
        anon = jar.cookie
        assert jar.post("/login").status_code == 303 and jar.cookie != anon
        assert jar.get("/whoami").text == "user=alice;n=3"
        assert Jar(client).get("/whoami", cookie=anon).text.startswith("user=anon")
        logged = jar.cookie
        r = jar.post("/logout")
        assert cookie_value(cookies_set(r)[0]) == "" and "max-age=0" in r.headers[
            "set-cookie"].lower()
        assert Jar(client).get("/whoami", cookie=logged).text.startswith("user=anon")
        jar2 = Jar(client)
        jar2.post("/login")
        clock.advance(31 * 60)
        assert jar2.get("/whoami").text.startswith("user=anon")
        assert NAME == "__Host-session"
