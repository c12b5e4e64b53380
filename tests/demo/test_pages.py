"""The demo reads like a product (issue 19 item 5), over real HTTP: notices after signing
out, one step-up rule for every sign-out of other devices, events in words that name the
device, a stable device order, and styled 403/404/405/503 pages with a way back."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from sessionward.core.clock import FrozenClock
from sessionward.core.ids import cookie_value, new_session_id
from sessionward.core.keys import load_keyring
from sessionward.demo import create_app
from sessionward.stores import open_store

from integrations.harness import serve_asgi

PASSWORD = "correct horse battery"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
ANDROID = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/140.0 Mobile Safari/537.36"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"


@pytest.fixture(name="demo")
def demo_fixture(tmp_path: Path) -> Iterator[tuple[str, FrozenClock]]:
    """The demo under uvicorn with a manual clock (so "6 minutes later" takes no time)."""
    clock = FrozenClock()
    with serve_asgi(create_app(tmp_path / "data", environ={}, clock=clock)) as url:
        yield url, clock


def _client(url: str, agent: str = FIREFOX) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30.0, headers={"User-Agent": agent})


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def _signup(client: httpx.Client, user: str) -> None:
    token = _token(client.get("/signup"))
    r = client.post("/signup", data={"username": user, "password": PASSWORD,
                                     "confirm": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text


def _login(client: httpx.Client, user: str) -> None:
    token = _token(client.get("/login"))
    r = client.post("/login", data={"username": user, "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text


def _rows(page: httpx.Response) -> list[str]:
    """The device cells of the devices table, in order."""
    return re.findall(r'data-label="Device"><span><strong>([^<]+)</strong>', page.text)


def _post(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    token = _token(client.get("/account"))
    return client.post(path, data={**fields, "csrf": token})


class TestStepUp:
    def test_every_sign_out_of_other_devices_asks_for_the_password(
            self, demo: tuple[str, FrozenClock]) -> None:
        """Six minutes after signing in, "sign out everywhere else", signing out one device
        and the password page all go to /reauth first, and nothing is signed out."""
        url, clock = demo
        with _client(url) as laptop, _client(url, ANDROID) as phone:
            _signup(laptop, "ada")
            _login(phone, "ada")
            handle = re.findall(r'name="handle" value="([0-9a-f]{64})"',
                                laptop.get("/devices").text)[0]
            clock.advance(timedelta(minutes=6).total_seconds())
            for path, fields in (("/devices/others", {}), ("/devices/revoke",
                                                          {"handle": handle})):
                r = _post(laptop, path, **fields)
                assert (r.status_code, r.headers["location"]) == (303, "/reauth?next=/devices")
            assert laptop.get("/password").headers["location"] == "/reauth?next=/password"
            assert phone.get("/account").status_code == 200  # still signed in
            token = _token(laptop.get("/reauth?next=/devices"))
            r = laptop.post("/reauth", data={"password": PASSWORD, "next": "/devices",
                                             "csrf": token})
            assert r.headers["location"] == "/devices"
            r = _post(laptop, "/devices/others")
            assert r.headers["location"] == "/devices"
            assert "Signed out 1 other device." in laptop.get("/devices").text
            assert phone.get("/account").status_code == 303


class TestNotices:
    def test_signed_out_and_ended_elsewhere(self, demo: tuple[str, FrozenClock]) -> None:
        """Signing out says so; a device signed out from elsewhere is told why, once."""
        url, _ = demo
        with _client(url) as laptop, _client(url, ANDROID) as phone:
            _signup(laptop, "bea")
            _login(phone, "bea")
            r = _post(phone, "/logout")
            assert r.headers["location"] == "/login?notice=signed_out"
            assert "You are signed out." in phone.get(r.headers["location"]).text
            _login(phone, "bea")
            assert _post(laptop, "/devices/others").status_code == 303
            r = phone.get("/devices")
            assert r.status_code == 303
            assert r.headers["location"] == "/login?notice=ended&next=/devices"
            assert any(h.startswith("session=") and "max-age=0" in h.lower()
                       for h in r.headers.get_list("set-cookie"))
            page = phone.get(r.headers["location"]).text
            assert "signed out from another device" in page
            again = phone.get("/account")  # the stale cookie is gone: a plain sign-in prompt
            assert again.headers["location"] == "/login?notice=signin&next=/account"


class TestDevicesAndEvents:
    def test_order_is_this_device_then_last_seen_and_stable(
            self, demo: tuple[str, FrozenClock]) -> None:
        """This device first, then the most recently active, the same on every load."""
        url, clock = demo
        with _client(url) as laptop, _client(url, ANDROID) as phone, \
                _client(url, IPAD) as tablet:
            _signup(laptop, "cyd")
            clock.advance(60)
            _login(phone, "cyd")
            clock.advance(60)
            _login(tablet, "cyd")
            clock.advance(60)
            phone.get("/account")  # the phone is now the most recently used other device
            pages = [_rows(laptop.get("/devices")) for _ in range(3)]
            assert pages[0] == ["Firefox on Linux", "Chrome on Android", "Safari on iPadOS"]
            assert pages[1:] == [pages[0]] * 2
            assert _rows(tablet.get("/devices"))[0] == "Safari on iPadOS"

    def test_events_name_the_devices_in_words(self, demo: tuple[str, FrozenClock]) -> None:
        """Signing out a device records which one; no raw reason code reaches the page."""
        url, _ = demo
        with _client(url) as laptop, _client(url, ANDROID) as phone:
            _signup(laptop, "deedee")
            _login(phone, "deedee")
            page = laptop.get("/devices").text
            handle = re.search(r'name="handle" value="([0-9a-f]{64})"', page)
            assert handle is not None
            r = _post(laptop, "/devices/revoke", handle=handle.group(1))
            assert r.headers["location"] == "/devices"
            assert "Chrome on Android is signed out." in laptop.get("/devices").text
            events = laptop.get("/events").text
        assert "Device signed out" in events
        assert "Chrome on Android (127.0.0.0/24), from Firefox on Linux" in events
        cells = re.findall(r'data-label="Details">([^<]*)<', events)
        assert cells and not {"user", "revoke user", "revoke_user", "login"} & set(cells)
        assert "Firefox on Linux" in cells  # the sign-in names its device


class TestErrorPages:
    def test_404_405_and_403_are_pages_with_a_way_back(self, demo: tuple[str, FrozenClock]
                                                       ) -> None:
        """Unknown page, wrong method and an expired form: styled, each with a link back."""
        url, _ = demo
        with _client(url) as client:
            missing = client.get("/no/such/page")
            wrong = client.get("/logout")
            forged = client.post("/login", data={"username": "x", "password": "y"})
        for r, code, title, back in ((missing, 404, "Page not found", "/"),
                                     (wrong, 405, "Not allowed here", "/"),
                                     (forged, 403, "This form has expired", "/login")):
            assert r.status_code == code
            assert r.headers["content-type"].startswith("text/html")
            assert f"<h1>{title}</h1>" in r.text
            assert f'href="{back}"' in r.text and "/static/style.css" in r.text

    def test_store_down_is_a_503_page(self, tmp_path: Path) -> None:
        """A session cookie while the store is unreachable: 503 with Retry-After, styled."""
        with socket.socket() as probe:  # a port with nothing listening on it
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        store = open_store(f"redis://127.0.0.1:{port}/0?socket_connect_timeout=1")
        data = tmp_path / "data"
        with serve_asgi(create_app(data, environ={}, store=store)) as url:
            key = load_keyring(data / "session.key", "demo").active
            cookies = {"session": cookie_value(new_session_id(), key)}
            with httpx.Client(base_url=url, timeout=30.0, cookies=cookies) as client:
                r = client.get("/account")
            login = httpx.get(f"{url}/login", timeout=30.0)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        assert "<h1>Sessions are unavailable</h1>" in r.text and 'href="/"' in r.text
        assert login.status_code == 200  # no cookie, no store I/O: the sign-in page works
