"""T-16 / CS-26 over real HTTP, for every integration: ID guessing is noticed and refused.

One attacker address sends 1,000 requests, each with a fresh well-formed ID
carrying a *valid* MAC under the app's key (so every one reaches the store
lookup and is rejected there as unknown).  The apps sit behind their
framework's trusted-proxy handling (uvicorn's proxy headers, werkzeug
``ProxyFix``), so the attacker and a legitimate user get distinct client
addresses through ``X-Forwarded-For`` although both connect from 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.audit.events import Event
from sessionward.core import ids
from sessionward.core.clock import FrozenClock
from sessionward.integrations._flood import DEFAULT_OPTIONS

from integrations.apps import BUILDERS, behind_proxy
from integrations.conftest import NAME, Site, cookies_set, make_manager
from integrations.harness import serve_asgi, serve_wsgi

ATTACKER = "203.0.113.66"
USER_ADDRESS = "198.51.100.7"
REQUESTS = 1000
ATTEMPTS = int(DEFAULT_OPTIONS["attempts"])


def _serve(request: pytest.FixtureRequest, tmp_path: Path, guard: object) -> Iterator[Site]:
    framework: str = request.param
    clock = FrozenClock()
    manager, store = make_manager(tmp_path, clock)
    builder, kind = BUILDERS[framework]
    serve = serve_asgi if kind == "asgi" else serve_wsgi
    with serve(behind_proxy(builder(manager, guard), kind)) as url:
        site = Site(framework, url, manager, store, clock)
        yield site
        site.close()
    manager.close()


@pytest.fixture(name="guarded", params=list(BUILDERS))
def guarded_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """Each integration with the flood guard on through its own config (``True``)."""
    yield from _serve(request, tmp_path, True)


@pytest.fixture(name="counting", params=list(BUILDERS))
def counting_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """Each integration with a count-only guard (``block=False``): alerts, never 429."""
    yield from _serve(request, tmp_path, {"block": False})


def _events(site: Site, name: str) -> list[Event]:
    seen: list[Event] = []
    site.manager.events.subscribe(lambda e: seen.append(e) if e.name == name else None)
    return seen


def _spray(site: Site, count: int) -> list[httpx.Response]:
    """``count`` GETs from the attacker's address, each with a fresh unknown, MAC-valid ID."""
    key = site.manager.keyring.active
    out: list[httpx.Response] = []
    with httpx.Client(base_url=site.url, timeout=30.0,
                      headers={"X-Forwarded-For": ATTACKER}) as client:
        for _ in range(count):
            forged = ids.cookie_value(ids.new_session_id(), key)
            out.append(client.get("/whoami", headers={"Cookie": f"{NAME}={forged}"}))
    return out


def test_t16_id_spray_is_throttled_and_other_clients_unaffected(guarded: Site) -> None:
    """1,000 unknown IDs from one address: ``throttled`` fires, then 429s; others keep working."""
    throttled = _events(guarded, "throttled")
    suspected = _events(guarded, "id_bruteforce_suspected")
    user = guarded.jar()
    user.client.headers["X-Forwarded-For"] = USER_ADDRESS
    assert user.post("/login").status_code == 303 and user.cookie
    responses = _spray(guarded, REQUESTS)
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * ATTEMPTS + [429] * (REQUESTS - ATTEMPTS)
    assert all(r.text == "user=anon;n=None" and not cookies_set(r)
               for r in responses[:ATTEMPTS])
    for r in responses[ATTEMPTS:ATTEMPTS + 3]:
        assert r.headers.get_list("set-cookie") == []
        assert 1 <= int(r.headers["retry-after"]) <= 30
        assert r.headers["cache-control"] == "no-store"
    assert [(e.client, e.fields["throttle"]) for e in throttled] == [(ATTACKER, "invalid")]
    assert [e.client for e in suspected] == [ATTACKER]
    assert user.get("/whoami").text == "user=alice;n=None"
    assert guarded.store.stats(guarded.clock()).records == 1
    with httpx.Client(base_url=guarded.url, headers={"X-Forwarded-For": ATTACKER}) as anon:
        assert anon.get("/whoami").text == "user=anon;n=None"  # no cookie: not refused
    guarded.clock.advance(31)
    assert _spray(guarded, 1)[0].status_code == 200


def test_t16_count_only_guard_alerts_without_refusing(counting: Site) -> None:
    """``block=False``: the spray is noticed (``throttled``) but every request is served."""
    throttled = _events(counting, "throttled")
    responses = _spray(counting, ATTEMPTS + 5)
    assert {r.status_code for r in responses} == {200}
    assert [e.client for e in throttled] == [ATTACKER]


def test_guard_is_off_by_default(site: Site) -> None:
    """Without a guard spec nothing is counted and nothing is refused."""
    throttled = _events(site, "throttled")
    assert {r.status_code for r in _spray(site, ATTEMPTS + 5)} == {200}
    assert throttled == []
