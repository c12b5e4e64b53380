"""The MW contract, over real HTTP, for every integration (Starlette, ASGI, WSGI, Flask, Django).

Each test drives a real server on 127.0.0.1 with httpx; the manager behind it
uses a FrozenClock, so timeouts and rotation are exact and nothing sleeps.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from sessionward.core import ids

from integrations.conftest import NAME, Site, cookie_value, cookies_set


def attrs(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";")[1:]:
        key, _, val = part.strip().partition("=")
        out[key.lower()] = val
    return out


def logged_in(site: Site) -> tuple[object, str]:
    jar = site.jar()
    r = jar.post("/login")
    assert r.status_code == 303 and jar.cookie
    return jar, jar.cookie


def test_untouched_anonymous_request_sets_nothing(site: Site) -> None:
    """Lazy creation: no cookie, no record for a request that stores nothing."""
    jar = site.jar()
    r = jar.get("/whoami")
    assert r.text == "user=anon;n=None"
    assert cookies_set(r) == []
    assert site.store.stats(site.clock()).records == 0


def test_store_and_read_back(site: Site) -> None:
    jar = site.jar()
    assert cookies_set(jar.post("/set", params={"n": "7"}))
    assert jar.get("/whoami").text == "user=anon;n=7"


def test_t09_cookie_attributes(site: Site) -> None:
    """T-09: __Host- name, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, no lifetime."""
    jar = site.jar()
    (header,) = cookies_set(jar.post("/set", params={"n": "1"}))
    assert header.startswith(f"{NAME}=")
    a = attrs(header)
    assert {k: a[k] for k in ("path", "samesite")} == {"path": "/", "samesite": "Lax"}
    assert "secure" in a and "httponly" in a
    assert not {"domain", "max-age", "expires"} & set(a)


def test_t02_forged_cookie_gets_new_id_and_nothing_stored(site: Site) -> None:
    """Strict mode: a well-formed, correctly MAC'd but unknown ID is never adopted."""
    forged = ids.cookie_value(ids.new_session_id(), site.manager.keyring.active)
    jar = site.jar()
    r = jar.post("/set", params={"n": "1"}, cookie=forged)
    (header,) = cookies_set(r)
    assert cookie_value(header) != forged
    assert site.manager.load(forged) is None
    assert site.store.stats(site.clock()).records == 1


def test_t03_login_rotates_and_old_id_is_dead(site: Site) -> None:
    """T-03: login issues a new ID; replaying the anonymous one is anonymous."""
    jar = site.jar()
    jar.post("/set", params={"n": "5"})
    before = jar.cookie
    r = jar.post("/login")
    assert r.status_code == 303
    assert jar.cookie and jar.cookie != before
    assert jar.get("/whoami").text == "user=alice;n=5"
    replay = site.jar().get("/whoami", cookie=before)
    assert replay.text == "user=anon;n=None" and cookies_set(replay) == []


def test_t04_logout_deletes_cookie_and_record(site: Site) -> None:
    """T-04: deletion cookie (same name, Path, Secure, Max-Age=0), record gone, replay anonymous."""
    jar, cookie = logged_in(site)
    r = jar.post("/logout")
    (header,) = cookies_set(r)
    a = attrs(header)
    assert cookie_value(header) == "" and a["max-age"] == "0" and "1970" in a["expires"]
    assert a["path"] == "/" and "secure" in a
    assert r.headers.get("clear-site-data") == '"cookies"'
    assert site.manager.load(cookie) is None
    replay = site.jar().post("/set", params={"n": "x"}, cookie=cookie)
    (fresh,) = cookies_set(replay)
    assert cookie_value(fresh) != cookie


def test_t07_idle_timeout(site: Site) -> None:
    """T-07: valid at idle - 1 s, anonymous at idle + 1 s (server-side, fake clock)."""
    jar, _ = logged_in(site)
    idle = site.manager.settings.idle_timeout.total_seconds()
    site.clock.advance(idle - 1)
    assert jar.get("/whoami").text.startswith("user=alice")
    site.clock.advance(idle + 1)
    assert jar.get("/whoami").text.startswith("user=anon")


def test_t08_absolute_timeout_despite_activity(site: Site) -> None:
    """T-08: a request every 29 min (with rotations) still ends at the absolute limit."""
    jar, _ = logged_in(site)
    absolute = site.manager.settings.absolute_timeout.total_seconds()
    elapsed = 0.0
    while elapsed + 29 * 60 < absolute:
        site.clock.advance(29 * 60)
        elapsed += 29 * 60
        assert jar.get("/whoami").text.startswith("user=alice"), elapsed
    site.clock.advance(absolute - elapsed + 1)
    assert jar.get("/whoami").text.startswith("user=anon")


def test_t22_parallel_requests_during_periodic_rotation(site: Site) -> None:
    """Grace: five in-flight requests with the old ID all succeed and share one successor."""
    _, old = logged_in(site)
    interval = site.manager.settings.rotation_interval
    assert interval is not None
    site.clock.advance(interval.total_seconds() + 1)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=site.url, timeout=30.0) as c:
            return c.get("/whoami", headers={"Cookie": f"{NAME}={old}"})

    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(one, range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert all(r.text.startswith("user=alice") for r in responses)
    successors = {cookie_value(h) for r in responses for h in cookies_set(r)}
    assert len(successors) == 1 and old not in successors
    assert site.jar().get("/whoami", cookie=successors.pop()).text.startswith("user=alice")


def test_store_down_is_503_never_logout(site: Site) -> None:
    """A store outage gives 503 without Set-Cookie; the session survives it."""
    jar, cookie = logged_in(site)
    site.store.down = True
    try:
        for method, path in (("GET", "/whoami"), ("POST", "/set"), ("POST", "/login")):
            r = jar.request(method, path)
            assert r.status_code == 503, (method, path)
            assert r.headers.get_list("set-cookie") == []
            assert r.headers["cache-control"] == "no-store"
    finally:
        site.store.down = False
    assert jar.cookie == cookie
    assert jar.get("/whoami").text.startswith("user=alice")


def test_t10_id_never_outside_set_cookie_and_never_read_from_url(site: Site) -> None:
    """T-10: no ID (or 10-char piece) in bodies, Location or other headers; URL/form IDs ignored."""
    jar = site.jar()
    jar.post("/set", params={"n": "1"})
    jar.post("/login")
    jar.get("/whoami")
    issued = {cookie_value(h) for r in jar.history for h in cookies_set(r)} - {""}
    jar.post("/logout")
    pieces = {v[i:i + 10] for v in issued for i in range(0, len(v) - 9)}
    for r in jar.history:
        others = [v for k, v in r.headers.multi_items() if k.lower() != "set-cookie"]
        text = r.text + " ".join(others)
        assert not any(p in text for p in pieces), r.request.url
    live = site.jar()
    live.post("/login")
    value = live.cookie or ""
    anon = site.jar()
    for params in ({"session": value}, {NAME: value}, {"sessionid": value}):
        assert anon.get("/whoami", params=params).text.startswith("user=anon")
    posted = anon.post("/form", data={"session": value, NAME: value})
    assert posted.text.startswith("user=anon")
    assert posted.headers.get_list("set-cookie") == []


def test_t11_cache_headers_on_every_session_path(site: Site) -> None:
    """T-11: Vary: Cookie + no-store on set, read, refresh-only and membership-only responses."""
    jar = site.jar()
    responses = [jar.post("/set", params={"n": "1"}), jar.get("/whoami"),
                 jar.get("/peek"), site.jar().get("/peek")]
    for r in responses:
        assert "cookie" in r.headers.get("vary", "").lower(), r.request.url
        assert r.headers.get("cache-control") == "no-store", r.request.url


def test_t11_untouched_route_keeps_its_caching(site: Site) -> None:
    """A route that never touches the session is cacheable even with the cookie presented.

    Flask, Starlette and Django know when the app touched the session (their
    accessors mark it); plain ASGI/WSGI apps can read the scope's session
    without marking it, so there a presented cookie alone still means private.
    """
    jar = site.jar()
    jar.post("/set", params={"n": "1"})
    r = jar.get("/plain")
    private = site.framework in ("asgi", "wsgi")
    assert ("cookie" in r.headers.get("vary", "").lower()) is private
    assert (r.headers.get("cache-control") == "no-store") is private
    assert cookies_set(r) == []


def test_t23_lookalike_and_duplicate_cookies(site: Site) -> None:
    """T-23: only the exact name counts; duplicates fail closed."""
    _, good = logged_in(site)
    anon = site.jar()
    for header in (f"={NAME}={good}", f'"{NAME}"={good}', f"..Host-session={good}",
                   f"_[Host-session={good}", f"__host-session={good}",
                   f"{NAME}={good}; {NAME}={good}"):
        r = anon.client.get("/whoami", headers={"Cookie": header})
        assert r.text.startswith("user=anon"), header
        assert cookies_set(r) == [], header
    ok = anon.client.get("/whoami", headers={"Cookie": f"other=1; {NAME}={good}"})
    assert ok.text.startswith("user=alice")


def test_websocket_without_valid_session_is_refused() -> None:
    """A WebSocket handshake with a forged or missing session closes with 1008 before accept.

    This drives the ASGI middleware directly to pin the exact ASGI messages;
    ``test_websocket.py`` does the same over a real uvicorn server.
    """
    import asyncio

    from sessionward.integrations.asgi import SessionMiddleware
    from sessionward.testing import memory_manager

    mgr = memory_manager(namespace="test")
    reached: list[object] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        reached.append(scope["sessionward.lifecycle.session"])

    async def handshake(cookie: str | None) -> list[dict[str, object]]:
        sent: list[dict[str, object]] = []
        headers = [(b"cookie", f"{NAME}={cookie}".encode())] if cookie else []
        scope = {"type": "websocket", "path": "/ws", "headers": headers,
                 "client": ("127.0.0.1", 5000), "scheme": "ws"}

        async def receive() -> dict[str, object]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await SessionMiddleware(app, mgr)(scope, receive, send)
        return sent

    forged = ids.cookie_value(ids.new_session_id(), mgr.keyring.active)
    for cookie in (None, forged, "junk"):
        assert asyncio.run(handshake(cookie)) == [{"type": "websocket.close", "code": 1008}]
    assert reached == []
    live = mgr.new()
    mgr.login(live, USER_FOR_WS)
    assert asyncio.run(handshake(live.cookie_value)) == []
    assert len(reached) == 1


USER_FOR_WS = "alice"
