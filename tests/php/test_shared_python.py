"""One user's sessions shared by a PHP app (nginx + php-fpm) and a Python app (WSGI
over ``RemoteSessionManager``) on the same daemon and namespace.

Shared: the user index ("your devices" lists both apps' sessions), revocation
("sign out everywhere" from either side ends both), and the session data
itself, which PHP stores as JSON that Python reads (and the other way round).
Not shared: the cookie (each app sets its own), ``$_SESSION`` values that are
not JSON (refused in PHP).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from php.conftest import Browser, Site, php_to_cookie
from sessionward.remote import RemoteSessionManager

from integrations.harness import serve_wsgi

pytestmark = [pytest.mark.daemon, pytest.mark.php]

PY_COOKIE = "__Host-session"


def python_app(manager: RemoteSessionManager) -> Any:
    """A small Python app: login, whoami, devices, sign out everywhere, read a PHP session."""
    from sessionward.integrations.wsgi import SessionMiddleware, manager_of, session_of

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        session = session_of(environ)
        mgr = manager_of(environ)
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        path = environ["PATH_INFO"]
        doc: dict[str, Any] = {"ok": True}
        if path == "/login":
            mgr.login(session, query["user"])
            session["lang"] = "python"
        elif path == "/whoami":
            doc.update(user=session.user, data=dict(session))
        elif path == "/devices":
            doc["sessions"] = [i.to_dict() for i in mgr.sessions_of(session.user or "")]
        elif path == "/everywhere":
            doc["revoked"] = mgr.revoke_user(session.user or "")
        elif path == "/php-session":
            php = mgr.load(php_to_cookie(query["sid"]))
            doc["data"] = dict(php) if php is not None else None
            if php is not None and "note" in query:
                php["from_python"] = {"note": query["note"], "n": [1, 2]}
                mgr.save(php)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(doc).encode()]

    return SessionMiddleware(app, manager)


class PyBrowser:
    """Cookie handling by hand: the Python app's cookie is __Host- and Secure."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30.0)
        self.cookie: str | None = None

    def json(self, path: str, **params: str) -> Any:
        headers = {"Cookie": f"{PY_COOKIE}={self.cookie}"} if self.cookie else {}
        response = self.client.get(path, params=params, headers=headers)
        for header in response.headers.get_list("set-cookie"):
            match = re.match(rf"{PY_COOKIE}=([^;]*)", header)
            if match:
                self.cookie = match.group(1) or None
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(name="py")
def py_fixture(site: Site) -> Iterator[PyBrowser]:
    manager = RemoteSessionManager(str(site.daemon.socket), token=site.daemon.app_token)
    try:
        with serve_wsgi(python_app(manager)) as url:
            browser = PyBrowser(url)
            yield browser
            browser.client.close()
    finally:
        manager.close()


def test_php_login_shows_in_python_devices_and_revokes_both_ways(
        site: Site, browser: Browser, py: PyBrowser) -> None:
    """Logged in through PHP and Python: each app lists both sessions; "sign out
    everywhere" from Python ends the PHP session, and from PHP the Python one."""
    user = "dana"
    browser.json("/login", user=user)
    py.json("/login", user=user)
    devices = py.json("/devices")["sessions"]
    php_devices = browser.json("/devices")["sessions"]
    assert len(devices) == 2
    assert {d["handle"] for d in devices} == {d["handle"] for d in php_devices}
    assert [d["current"] for d in php_devices].count(True) == 1  # PHP marks its own
    assert py.json("/everywhere")["revoked"] == 2
    assert browser.json("/whoami")["user"] is None
    assert py.json("/whoami")["user"] is None

    browser.json("/login", user=user)
    py.json("/login", user=user)
    assert browser.json("/everywhere")["revoked"] == 2
    assert py.json("/whoami")["user"] is None
    assert browser.json("/whoami")["user"] is None


def test_php_json_data_readable_and_writable_by_python(browser: Browser, py: PyBrowser) -> None:
    """PHP stores JSON: Python reads the same session's values with their types, and a
    value Python adds is visible to PHP; PHP's untouched keys keep their exact JSON."""
    browser.json("/login", user="erin")
    browser.json("/json")
    seen = py.json("/php-session", sid=browser.sid or "")["data"]
    assert seen["lang"] == "php"
    assert seen["php"] == {"list": [1, 2, 3], "float": 1.5, "bool": True, "null": None,
                           "text": "h\u00e9llo", "nested": {"a": {"b": "c"}}}
    py.json("/php-session", sid=browser.sid or "", note="hi")
    php_view = browser.json("/whoami")["session"]
    assert php_view["from_python"] == {"note": "hi", "n": [1, 2]}
    browser.json("/set", later="1")  # PHP writes; Python's key survives unchanged
    assert py.json("/php-session", sid=browser.sid or "")["data"]["from_python"] == {
        "note": "hi", "n": [1, 2]}
