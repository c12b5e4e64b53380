"""Django drop-in regressions (issue 14), each over a real server.

WSGI views run under werkzeug, the async views (``/a/...``: ``alogin``,
``alogout``, ``aset``, ``acycle_key``, ``aflush``) under uvicorn, on SQLite
and on a real Redis.  The manager runs on a FrozenClock, so expiry is exact.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionward import SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.errors import ConfigurationError
from sessionward.core.keys import KeyRing

from integrations import django_app
from integrations.conftest import Jar, Site, cookies_set, make_manager
from integrations.harness import FlakyStore, serve_asgi, serve_wsgi


def _site(app: Any, manager: SessionManager, store: Any, clock: FrozenClock,
          serve: Any) -> Iterator[Site]:
    from sessionward.integrations.django.backend import configure_manager

    configure_manager(manager)
    try:
        with serve(app) as url:
            site = Site("django", url, manager, store, clock)
            yield site
            site.close()
    finally:
        configure_manager(None)
        manager.close()


@pytest.fixture(name="wsgi_site")
def wsgi_site_fixture(tmp_path: Path) -> Iterator[Site]:
    clock = FrozenClock()
    manager, store = make_manager(tmp_path, clock)
    yield from _site(django_app.wsgi_application(), manager, store, clock, serve_wsgi)


@pytest.fixture(name="asgi_site", params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def asgi_site_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """Django's ASGI handler under uvicorn, on SQLite and on a real redis-server."""
    clock = FrozenClock()
    if request.param == "sqlite":
        manager, store = make_manager(tmp_path, clock)
    else:
        from svc_redis import make_redis_store

        server = request.getfixturevalue("redis_server")
        store = FlakyStore(make_redis_store(server.url, clock))
        manager = SessionManager(store, KeyRing.generate("test"),  # type: ignore[arg-type]
                                 Settings(namespace="test"), clock=clock)
    yield from _site(django_app.asgi_application(), manager, store, clock, serve_asgi)


def _login(jar: Jar, user: str = "alice", password: str = "pw-alice-123") -> str:
    r = jar.post("/login-as", data={"u": user, "p": password})
    assert r.text == f"in={user}" and jar.cookie
    return jar.cookie


class TestAsyncViews:
    def test_alogin_on_a_new_session_logs_in_with_a_cookie(self, asgi_site: Site) -> None:
        """alogin() on a brand-new session: a stored, indexed login and a cookie."""
        jar = asgi_site.jar()
        r = jar.post("/a/login")
        assert r.status_code == 200 and jar.cookie
        assert jar.get("/a/whoami").text == "user=alice;n=None"
        assert [i.user for i in asgi_site.manager.sessions_of("1")] == ["1"]

    def test_alogin_on_an_existing_session_rotates_and_keeps_data(self, asgi_site: Site) -> None:
        jar = asgi_site.jar()
        jar.post("/a/set", params={"n": "7"})
        before = jar.cookie
        r = jar.post("/a/login")
        assert cookies_set(r) and jar.cookie and jar.cookie != before
        assert jar.get("/a/whoami").text == "user=alice;n=7"
        assert asgi_site.jar().get("/a/whoami", cookie=before).text == "user=anon;n=None"

    def test_aset_on_a_new_session_is_saved(self, asgi_site: Site) -> None:
        jar = asgi_site.jar()
        assert cookies_set(jar.post("/a/set", params={"n": "5"}))
        assert jar.get("/a/whoami").text == "user=anon;n=5"

    def test_acycle_key_issues_a_new_id_and_kills_the_old(self, asgi_site: Site) -> None:
        jar = asgi_site.jar()
        jar.post("/a/set", params={"n": "3"})
        before = jar.cookie
        r = jar.post("/a/cycle")
        assert cookies_set(r) and jar.cookie != before
        assert jar.get("/a/whoami").text == "user=anon;n=3"
        assert asgi_site.jar().get("/a/whoami", cookie=before).text == "user=anon;n=None"

    def test_alogout_and_aflush_end_the_session(self, asgi_site: Site) -> None:
        for path in ("/a/logout", "/a/flush"):
            jar = asgi_site.jar()
            jar.post("/a/login")
            cookie = jar.cookie
            r = jar.post(path)
            assert any(h.startswith("__Host-session=;") for h in cookies_set(r)), path
            assert asgi_site.jar().get("/a/whoami", cookie=cookie).text == "user=anon;n=None"
        assert asgi_site.manager.sessions_of("1") == []


class TestSessionSemantics:
    def test_clear_empties_the_data_at_save(self, wsgi_site: Site) -> None:
        """Django's clear(): the data is gone once saved; the session goes on."""
        jar = wsgi_site.jar()
        jar.post("/set", params={"n": "9"})
        jar.post("/clear")
        assert jar.get("/whoami").text == "user=anon;n=None"

    def test_set_expiry_is_enforced_by_the_server(self, wsgi_site: Site) -> None:
        jar = wsgi_site.jar()
        assert jar.post("/expiry", params={"s": "60"}).text == "60"
        wsgi_site.clock.advance(30)
        assert jar.get("/age").text == "60;x"  # reading extends the idle time
        wsgi_site.clock.advance(61)
        assert jar.get("/age").text == "1800;None"  # gone server-side: a new session

    def test_expiry_age_tells_the_truth(self, wsgi_site: Site) -> None:
        """get_expiry_age(): the idle timeout by default, capped at the absolute expiry."""
        jar = wsgi_site.jar()
        jar.post("/set", params={"n": "1"})
        assert jar.get("/age").text == "1800;1"
        for _ in range(43):  # keep it alive to within 20 min of the 12 h absolute expiry
            wsgi_site.clock.advance(1000)
            jar.get("/whoami")
        assert jar.get("/age").text == f"{12 * 3600 - 43_000};1"

    def test_save_after_a_concurrent_logout_answers_400(self, wsgi_site: Site) -> None:
        """UpdateError → Django's SessionInterrupted (400) and the deletion cookie."""
        jar = wsgi_site.jar()
        cookie = _login(jar)
        django_app.HOLD_LOADED.clear()
        django_app.HOLD_RELEASE.clear()
        result: dict[str, httpx.Response] = {}
        slow = threading.Thread(target=lambda: result.update(r=jar.post("/slow-set")))
        slow.start()
        assert django_app.HOLD_LOADED.wait(10)
        wsgi_site.jar().post("/logout", cookie=cookie)
        django_app.HOLD_RELEASE.set()
        slow.join(15)
        response = result["r"]
        assert response.status_code == 400
        assert any(h.startswith("__Host-session=;") for h in cookies_set(response))
        assert wsgi_site.jar().get("/whoami", cookie=cookie).text.startswith("user=anon")


class TestCookieSettings:
    def test_django_cookie_settings_are_honoured(self, wsgi_site: Site) -> None:
        from django.test import override_settings

        with override_settings(SESSION_COOKIE_HTTPONLY=False, SESSION_COOKIE_SAMESITE="Strict"):
            (header,) = cookies_set(wsgi_site.jar().post("/set", params={"n": "1"}))
        attrs = {p.strip().split("=")[0].lower(): p for p in header.split(";")[1:]}
        assert "httponly" not in attrs and attrs["samesite"].strip() == "SameSite=Strict"
        assert "secure" in attrs

    def test_secure_prefix_cookie_may_take_a_path_and_domain(self, wsgi_site: Site) -> None:
        from django.test import override_settings

        with override_settings(SESSION_COOKIE_NAME="__Secure-sid", SESSION_COOKIE_PATH="/",
                               SESSION_COOKIE_DOMAIN="127.0.0.1"):
            r = wsgi_site.jar().post("/set", params={"n": "1"})
        (header,) = [h for h in r.headers.get_list("set-cookie") if h.startswith("__Secure-sid=")]
        assert "Domain=127.0.0.1" in header and "Path=/" in header

    @pytest.mark.parametrize(("setting", "value"), [("SESSION_COOKIE_DOMAIN", ".example.com"),
                                                    ("SESSION_COOKIE_PATH", "/app"),
                                                    ("SESSION_COOKIE_SECURE", False)])
    def test_refused_at_start_up_with_the_reason(self, setting: str, value: object) -> None:
        from django.test import override_settings

        from sessionward.integrations.django.middleware import SessionGuardMiddleware

        django_app.wsgi_application()
        with override_settings(**{setting: value}), pytest.raises(ConfigurationError) as err:
            SessionGuardMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]
        assert setting in str(err.value)
        assert ("__Host-" in str(err.value)) or ("plain http" in str(err.value))


class TestAuth:
    def test_update_session_auth_hash_keeps_this_session_and_ends_the_others(
            self, wsgi_site: Site) -> None:
        from django.contrib.auth.models import User

        here, there = wsgi_site.jar(), wsgi_site.jar()
        _login(here, "bob", "pw-bob-123")
        _login(there, "bob", "pw-bob-123")
        before = here.cookie
        try:
            assert here.post("/password", data={"new": "pw-bob-456"}).text == "changed"
            assert here.cookie != before
            assert here.get("/whoami").text.startswith("user=bob")
            assert there.get("/whoami").text.startswith("user=anon")
        finally:
            user = User.objects.get(username="bob")
            user.set_password("pw-bob-123")
            user.save()

    def test_csrf_use_sessions_keeps_the_token_in_the_session(self, wsgi_site: Site) -> None:
        from django.test import override_settings

        jar = wsgi_site.jar()
        with override_settings(CSRF_USE_SESSIONS=True):
            token = jar.get("/csrf-token").text
            assert jar.cookie  # the token went into a (new, stored) session
            assert not [h for h in jar.history[-1].headers.get_list("set-cookie")
                        if h.startswith("csrftoken=")]
            assert jar.post("/csrf-post").status_code == 403
            ok = jar.post("/csrf-post", data={"csrfmiddlewaretoken": token})
            assert ok.status_code == 200 and ok.text == "posted"

    def test_login_then_logout_through_django_auth(self, wsgi_site: Site) -> None:
        jar = wsgi_site.jar()
        cookie = _login(jar)
        assert [i.user for i in wsgi_site.manager.sessions_of("1")] == ["1"]
        r = jar.post("/logout")
        assert any(h.startswith("__Host-session=;") for h in cookies_set(r))
        assert wsgi_site.manager.sessions_of("1") == []
        assert wsgi_site.jar().get("/whoami", cookie=cookie).text.startswith("user=anon")
