"""Flask drop-in regressions (issue 14), over a real werkzeug server.

``flask.session`` as a real dict, Flask's accessed/modified meaning, no
``Vary``/``no-store`` on responses that never touched the session (static
files keep their caching headers), ``session.clear()`` as a logout,
``flash(Markup(...))``, ``session.permanent`` and ``SESSION_COOKIE_*``; then
Flask-Login (``login_user``, ``logout_user``, ``fresh_login_required``, its
remember cookie alongside ours) and Flask-WTF's CSRF token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from markupsafe import Markup

from sessionward.core.clock import FrozenClock
from sessionward.core.errors import ConfigurationError
from sessionward.integrations import flask as sw

from integrations.conftest import Jar, Site, cookies_set, make_manager
from integrations.harness import serve_wsgi

Builder = Callable[[flask.Flask], None]


@pytest.fixture(name="serve")
def serve_fixture(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """``serve(routes, **config)``: a Flask app with sessionward, on a real server."""
    stack: list[Any] = []

    def serve(routes: Builder, **config: Any) -> Site:
        clock = FrozenClock()
        (tmp_path / f"s{len(stack)}").mkdir()
        manager, store = make_manager(tmp_path / f"s{len(stack)}", clock)
        static = tmp_path / "static"
        static.mkdir(exist_ok=True)
        (static / "app.css").write_text("body{}")
        app = flask.Flask("sw_dropin", static_folder=str(static))
        app.config.update(SECRET_KEY="unused-by-sessionward", **config)
        sw.init_app(app, manager=manager)
        routes(app)
        server = serve_wsgi(app)
        url = server.__enter__()
        site = Site("flask", url, manager, store, clock)
        stack.append((server, site))
        return site

    yield serve
    for server, site in stack:
        site.close()
        server.__exit__(None, None, None)
        site.manager.close()


def basic_routes(app: flask.Flask) -> None:
    @app.post("/set")
    def set_n() -> str:
        flask.session["n"] = flask.request.args.get("n", "")
        return "ok"

    @app.get("/plain")
    def plain() -> Any:
        response = flask.make_response("ok")
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    @app.get("/read")
    def read() -> str:
        return f"n={flask.session.get('n')};modified={flask.session.modified}"

    @app.post("/write")
    def write() -> str:
        flask.session["n"] = "w"
        return f"modified={flask.session.modified}"

    @app.post("/login")
    def login() -> str:
        sw.login("alice")
        return "in"

    @app.post("/clear")
    def clear() -> str:
        flask.session.clear()
        return "cleared"

    @app.post("/clear-then-login")
    def clear_then_login() -> str:
        flask.session.clear()
        sw.login("alice")
        return "in"

    @app.get("/dict")
    def as_dict() -> Any:
        s = flask.session._get_current_object()  # type: ignore[attr-defined]  # not the proxy
        assert isinstance(s, dict)
        s |= {"x": 1}
        s["y"] = 2
        last = s.popitem()
        copied = s.copy()
        return json.dumps({"session": s, "last": list(last), "copy": copied})


def _attrs(header: str) -> dict[str, str]:
    return {p.strip().partition("=")[0].lower(): p.strip().partition("=")[2]
            for p in header.split(";")[1:]}


class TestSessionObject:
    def test_it_is_a_real_dict(self, serve: Callable[..., Site]) -> None:
        jar = serve(basic_routes).jar()
        jar.post("/set", params={"n": "1"})
        body = jar.get("/dict").json()
        assert body == {"session": {"n": "1", "x": 1}, "last": ["y", 2],
                        "copy": {"n": "1", "x": 1}}
        assert jar.get("/read").text.startswith("n=1;")

    def test_modified_means_written(self, serve: Callable[..., Site]) -> None:
        jar = serve(basic_routes).jar()
        jar.post("/set", params={"n": "1"})
        assert jar.get("/read").text == "n=1;modified=False"
        assert jar.post("/write").text == "modified=True"

    def test_untouched_responses_keep_their_caching_headers(
            self, serve: Callable[..., Site]) -> None:
        """No Vary/no-store where the session was never touched — static files included."""
        jar = serve(basic_routes).jar()
        jar.post("/set", params={"n": "1"})
        plain = jar.get("/plain")
        assert plain.headers["cache-control"] == "public, max-age=60"
        assert "cookie" not in plain.headers.get("vary", "").lower()
        static = jar.get("/static/app.css")
        assert static.status_code == 200 and static.text == "body{}"
        assert "no-store" not in static.headers.get("cache-control", "")
        assert "cookie" not in static.headers.get("vary", "").lower()
        read = jar.get("/read")
        assert read.headers["cache-control"] == "no-store" and "Cookie" in read.headers["vary"]

    def test_clear_ends_the_session(self, serve: Callable[..., Site]) -> None:
        """session.clear(): record deleted, deletion cookie, user binding gone."""
        site = serve(basic_routes)
        jar = site.jar()
        jar.post("/login")
        cookie = jar.cookie
        assert [i.user for i in site.manager.sessions_of("alice")] == ["alice"]
        r = jar.post("/clear")
        assert any(h.startswith("__Host-session=;") for h in cookies_set(r))
        assert site.manager.sessions_of("alice") == []
        assert site.manager.load(cookie) is None

    def test_clear_then_login_keeps_the_new_session(self, serve: Callable[..., Site]) -> None:
        site = serve(basic_routes)
        jar = site.jar()
        jar.post("/set", params={"n": "1"})
        jar.post("/clear-then-login")
        assert [i.user for i in site.manager.sessions_of("alice")] == ["alice"]
        assert jar.get("/read").text == "n=None;modified=False"

    def test_flash_markup_round_trips(self, serve: Callable[..., Site]) -> None:
        def routes(app: flask.Flask) -> None:
            @app.post("/flash")
            def do_flash() -> str:
                flask.flash(Markup("<em>saved</em>"))
                return "ok"

            @app.get("/show")
            def show() -> str:
                (message,) = flask.get_flashed_messages()
                return f"{type(message).__name__}:{message}"

        jar = serve(routes).jar()
        assert jar.post("/flash").status_code == 200
        assert jar.get("/show").text == "Markup:<em>saved</em>"


class TestCookieConfig:
    def test_permanent_session_gets_a_lifetime_capped_at_the_absolute_expiry(
            self, serve: Callable[..., Site]) -> None:
        def routes(app: flask.Flask) -> None:
            @app.post("/remember")
            def remember() -> str:
                flask.session["n"] = 1
                flask.session.permanent = True
                return "ok"

            @app.get("/read")
            def read() -> str:
                return str(flask.session.get("n"))

        site = serve(routes, PERMANENT_SESSION_LIFETIME=3600)
        jar = site.jar()
        (first,) = cookies_set(jar.post("/remember"))
        assert _attrs(first)["max-age"] == "3600"
        (again,) = cookies_set(jar.get("/read"))  # SESSION_REFRESH_EACH_REQUEST
        assert _attrs(again)["max-age"] == "3600"
        long_site = serve(routes, PERMANENT_SESSION_LIFETIME=31 * 86400)
        (capped,) = cookies_set(long_site.jar().post("/remember"))
        assert int(_attrs(capped)["max-age"]) == 12 * 3600
        quiet = serve(routes, SESSION_REFRESH_EACH_REQUEST=False).jar()
        quiet.post("/remember")
        assert cookies_set(quiet.get("/read")) == []

    def test_session_cookie_keys_are_honoured(self, serve: Callable[..., Site]) -> None:
        site = serve(basic_routes, SESSION_COOKIE_NAME="__Secure-sid", SESSION_COOKIE_PATH="/",
                     SESSION_COOKIE_HTTPONLY=False, SESSION_COOKIE_SAMESITE="Strict")
        jar = Jar(site.jar().client, name="__Secure-sid")
        (header,) = [h for h in jar.post("/set", params={"n": "1"}).headers.get_list("set-cookie")]
        attrs = _attrs(header)
        assert header.startswith("__Secure-sid=") and "httponly" not in attrs
        assert attrs["samesite"] == "Strict" and "secure" in attrs
        assert jar.get("/read").text.startswith("n=1;")

    @pytest.mark.parametrize(("key", "value"), [("SESSION_COOKIE_DOMAIN", ".example.com"),
                                                ("APPLICATION_ROOT", "/app"),
                                                ("SESSION_COOKIE_SAMESITE", "sideways")])
    def test_refused_at_init_app_with_the_reason(self, key: str, value: str) -> None:
        from sessionward.testing import memory_manager

        app = flask.Flask("refused")
        app.config[key] = value
        with pytest.raises(ConfigurationError, match=key):
            sw.init_app(app, manager=memory_manager())


# ------------------------------------------------------------------ Flask-Login


def login_routes(app: flask.Flask) -> None:
    import flask_login

    manager = flask_login.LoginManager(app)

    class User(flask_login.UserMixin):
        def __init__(self, uid: str) -> None:
            self.id = uid

    @manager.user_loader
    def load(uid: str) -> User | None:
        return User(uid) if uid == "alice" else None

    @flask_login.user_logged_in.connect_via(app)
    def rotate_on_login(sender: flask.Flask, user: User, **extra: object) -> None:
        sw.login(user.get_id())  # the recipe: new session ID, user indexed

    @flask_login.user_loaded_from_cookie.connect_via(app)
    def rotate_on_remember(sender: flask.Flask, user: User, **extra: object) -> None:
        mgr = app.extensions["sessionward"]
        mgr.login(sw.current_session(), user.get_id(), fresh=False)  # no auth_time: not fresh

    @app.post("/login")
    def login() -> str:
        flask_login.login_user(User("alice"), remember=True)
        return "in"

    @app.get("/me")
    @flask_login.login_required
    def me() -> str:
        return f"user={flask_login.current_user.get_id()}"

    @app.get("/fresh")
    @flask_login.fresh_login_required
    def fresh() -> str:
        return "fresh"

    @app.post("/logout")
    def logout() -> str:
        flask_login.logout_user()
        return "out"


def _remember_token(response: Any) -> str:
    header = next(h for h in response.headers.get_list("set-cookie")
                  if h.startswith("remember_token="))
    return str(header.split(";", 1)[0].split("=", 1)[1])


class TestFlaskLogin:
    def test_login_user_rotates_and_logout_user_ends_the_session(
            self, serve: Callable[..., Site]) -> None:
        site = serve(login_routes)
        jar = site.jar()
        jar.post("/me")
        r = jar.post("/login")
        assert {h.split("=", 1)[0] for h in r.headers.get_list("set-cookie")} == {
            "__Host-session", "remember_token"}
        cookie = jar.cookie
        token = _remember_token(r)
        assert jar.get("/me").text == "user=alice" and jar.get("/fresh").text == "fresh"
        assert [i.user for i in site.manager.sessions_of("alice")] == ["alice"]
        out = jar.client.post("/logout", headers={
            "Cookie": f"__Host-session={cookie}; remember_token={token}"})
        names = {h.split("=", 1)[0] for h in out.headers.get_list("set-cookie")}
        assert names == {"__Host-session", "remember_token"}  # both deleted
        assert site.manager.load(cookie) is None
        assert site.manager.sessions_of("alice") == []
        assert jar.get("/me").status_code == 401

    def test_remember_cookie_restores_a_non_fresh_login(self, serve: Callable[..., Site]) -> None:
        site = serve(login_routes)
        jar = site.jar()
        token = _remember_token(jar.post("/login"))
        browser_restarted = site.jar()  # the session cookie is gone, the remember one is not
        me = browser_restarted.client.get("/me", headers={"Cookie": f"remember_token={token}"})
        assert me.text == "user=alice"
        fresh = browser_restarted.client.get("/fresh",
                                             headers={"Cookie": f"remember_token={token}"})
        assert fresh.status_code == 401  # fresh_login_required: the password again
        restored = [i for i in site.manager.sessions_of("alice") if i.auth_time is None]
        assert len(restored) == 2  # one per remember-cookie visit (no session cookie kept)


# ------------------------------------------------------------------ Flask-WTF


def csrf_routes(app: flask.Flask) -> None:
    from flask_wtf.csrf import CSRFProtect, generate_csrf

    CSRFProtect(app)

    @app.get("/form")
    def form() -> str:
        return generate_csrf()

    @app.post("/submit")
    def submit() -> str:
        return "accepted"


class TestFlaskWTF:
    def test_csrf_token_lives_in_the_session(self, serve: Callable[..., Site]) -> None:
        site = serve(csrf_routes, WTF_CSRF_SSL_STRICT=False)
        jar = site.jar()
        token = jar.get("/form").text
        assert jar.cookie and re.fullmatch(r"[\w.-]+", token)
        session = site.manager.load(jar.cookie)
        assert session is not None and "csrf_token" in session
        assert jar.post("/submit").status_code == 400
        ok = jar.post("/submit", data={"csrf_token": token})
        assert ok.status_code == 200 and ok.text == "accepted"
        assert site.jar().post("/submit", data={"csrf_token": token}).status_code == 400
