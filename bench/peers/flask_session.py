"""Flask-Session: ``session_interface.open_session`` / ``save_session``.

A request object is built from a prepared WSGI environ carrying the session
cookie (as on every real request) and a fresh response receives the cookie;
that is what Flask itself does around a view.  Flask-Session's defaults are
kept (msgspec serialization, permanent sessions refreshed each request, no
signer, no encryption).
"""

from __future__ import annotations

from typing import Any

from bench.common import SESSION_TTL
from bench.targets import Env, Target, shared_secret


class FlaskSessionTarget(Target):
    kind = "peer"

    def __init__(self, env: Env, config: dict[str, Any], store: str) -> None:
        from datetime import timedelta

        import flask
        import flask_session

        self.store = store
        self.app = flask.Flask("bench")
        self.app.config.update(
            SECRET_KEY=shared_secret(env).hex(),
            PERMANENT_SESSION_LIFETIME=timedelta(seconds=SESSION_TTL),
            **config,
        )
        flask_session.Session(self.app)
        self.iface: Any = self.app.session_interface
        self.cookie_name = self.app.config["SESSION_COOKIE_NAME"]
        self._environs: dict[str, dict[str, Any]] = {}

    def _request(self, sid: str | None) -> Any:
        from werkzeug.test import EnvironBuilder

        key = sid or ""
        if key not in self._environs:
            headers = [("Cookie", f"{self.cookie_name}={sid}")] if sid else []
            self._environs[key] = EnvironBuilder(headers=headers).get_environ()
        return self.app.request_class(dict(self._environs[key]))

    def _open(self, sid: str | None) -> Any:
        return self.iface.open_session(self.app, self._request(sid))

    def _save(self, sess: Any) -> str:
        resp = self.app.response_class()
        self.iface.save_session(self.app, sess, resp)
        return str(sess.sid)

    def create(self, data: dict[str, Any]) -> str:
        sess = self._open(None)
        sess.update(data)
        return self._save(sess)

    def cycle(self, handle: str, value: int) -> str:
        sess = self._open(handle)
        sess["counter"] = value
        return self._save(sess)

    def append(self, handle: str, item: Any) -> dict[str, Any]:
        sess = self._open(handle)
        sess["items"] = [*sess.get("items", []), item]
        self._save(sess)
        return {}

    def read(self, handle: str) -> dict[str, Any]:
        return dict(self._open(handle))


def flask_redis(env: Env) -> FlaskSessionTarget:
    import redis

    client = redis.Redis(host=env.redis_host, port=env.redis_port)
    return FlaskSessionTarget(env, {"SESSION_TYPE": "redis", "SESSION_REDIS": client}, "redis")


def flask_filesystem(env: Env) -> FlaskSessionTarget:
    from cachelib.file import FileSystemCache

    cache = FileSystemCache(f"{env.workdir}/flask-fs", threshold=500)
    return FlaskSessionTarget(
        env, {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": cache}, "filesystem"
    )
