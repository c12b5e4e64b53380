"""ASVS 5.0 4.4.4 over a real uvicorn server: WebSockets ride on a valid session only.

The Starlette and plain-ASGI test apps expose ``/ws`` (accept, send
``user=<user>``, close).  A handshake without a session, with a forged,
malformed, revoked (logged out) or idle-expired one is refused before
``accept`` — uvicorn turns that into an HTTP 403 for the handshake (close
code 1008 is accepted too) — while a valid session is accepted.  The
``websockets`` client drives the handshake; every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from sessionward.core import ids
from sessionward.core.clock import FrozenClock

from integrations.apps import BUILDERS
from integrations.conftest import NAME, Site, make_manager
from integrations.harness import serve_asgi

TIMEOUT = 10.0
ASGI_FRAMEWORKS = [name for name, (_, kind) in BUILDERS.items() if kind == "asgi"]


@pytest.fixture(name="ws_site", params=ASGI_FRAMEWORKS)
def ws_site_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """The Starlette and plain-ASGI apps under uvicorn (with its WebSocket support)."""
    clock = FrozenClock()
    manager, store = make_manager(tmp_path, clock)
    builder, _kind = BUILDERS[request.param]
    with serve_asgi(builder(manager)) as url:
        site = Site(request.param, url, manager, store, clock)
        yield site
        site.close()
    manager.close()


def _handshake(site: Site, cookie: str | None) -> str:
    """``"refused"`` (403 or close 1008 before any message), else the first message."""
    url = site.url.replace("http://", "ws://") + "/ws"
    headers = {"Cookie": f"{NAME}={cookie}"} if cookie is not None else None
    try:
        with connect(url, additional_headers=headers, open_timeout=TIMEOUT,
                     close_timeout=TIMEOUT) as socket:
            message = socket.recv(timeout=TIMEOUT)
    except InvalidStatus as exc:
        assert exc.response.status_code == 403
        return "refused"
    except ConnectionClosed as exc:
        assert exc.rcvd is not None and exc.rcvd.code == 1008
        return "refused"
    return str(message)


def _login(site: Site) -> str:
    jar = site.jar()
    assert jar.post("/login").status_code == 303 and jar.cookie
    return jar.cookie


def test_valid_session_is_accepted(ws_site: Site) -> None:
    assert _handshake(ws_site, _login(ws_site)) == "user=alice"


def test_missing_forged_or_malformed_session_is_refused(ws_site: Site) -> None:
    forged = ids.cookie_value(ids.new_session_id(), ws_site.manager.keyring.active)
    for cookie in (None, forged, "junk", ""):
        assert _handshake(ws_site, cookie) == "refused", cookie


def test_revoked_session_is_refused(ws_site: Site) -> None:
    """Logged out (record deleted) and revoke_user both end WebSocket access."""
    jar = ws_site.jar()
    jar.post("/login")
    old = jar.cookie
    assert jar.post("/logout").status_code == 200
    assert _handshake(ws_site, old) == "refused"
    other = _login(ws_site)
    assert _handshake(ws_site, other) == "user=alice"
    ws_site.manager.revoke_user("alice")
    assert _handshake(ws_site, other) == "refused"


def test_idle_expired_session_is_refused(ws_site: Site) -> None:
    cookie = _login(ws_site)
    ws_site.clock.advance(ws_site.manager.settings.idle_timeout.total_seconds() + 1)
    assert _handshake(ws_site, cookie) == "refused"
