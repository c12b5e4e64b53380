"""Fixtures: every integration's test app behind a real server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sessionward import SessionManager, Settings
from sessionward.core.clock import FrozenClock
from sessionward.core.keys import KeyRing
from sessionward.stores.sqlite import SQLiteStore

from integrations.apps import BUILDERS
from integrations.harness import FlakyStore, serve_asgi, serve_wsgi

NAME = "__Host-session"
FRAMEWORKS = list(BUILDERS)


def cookies_set(response: httpx.Response, name: str = NAME) -> list[str]:
    """Every ``Set-Cookie`` header for ``name``."""
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]


def cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


@dataclass
class Jar:
    """One browser's view: a client plus the session cookie it holds."""

    client: httpx.Client
    name: str = NAME
    cookie: str | None = None
    history: list[httpx.Response] = field(default_factory=list)

    def request(self, method: str, path: str, *, cookie: str | None = None,
                **kwargs: object) -> httpx.Response:
        value = cookie if cookie is not None else self.cookie
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if value is not None:
            headers["Cookie"] = f"{self.name}={value}"
        response = self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        self.history.append(response)
        for header in cookies_set(response, self.name):
            got = cookie_value(header)
            self.cookie = got or None
        return response

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@dataclass
class Site:
    """A running integration test app and the manager/store/clock behind it."""

    framework: str
    url: str
    manager: SessionManager
    store: FlakyStore
    clock: FrozenClock
    jars: list[Jar] = field(default_factory=list)

    def jar(self) -> Jar:
        jar = Jar(httpx.Client(base_url=self.url, follow_redirects=False, timeout=30.0))
        self.jars.append(jar)
        return jar

    def close(self) -> None:
        for jar in self.jars:
            jar.client.close()


def make_manager(tmp: Path, clock: FrozenClock, **overrides: object) -> tuple[SessionManager,
                                                                                 FlakyStore]:
    store = FlakyStore(SQLiteStore(tmp / "sessions.db", clock=clock))
    settings = Settings(namespace="test").replace(**overrides)
    mgr = SessionManager(store, KeyRing.generate("test"), settings, clock=clock)  # type: ignore[arg-type]
    return mgr, store


@pytest.fixture(name="site", params=FRAMEWORKS)
def site_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """Each integration's app, served over real HTTP on 127.0.0.1."""
    framework: str = request.param
    clock = FrozenClock()
    manager, store = make_manager(tmp_path, clock)
    builder, kind = BUILDERS[framework]
    serve = serve_asgi if kind == "asgi" else serve_wsgi
    with serve(builder(manager)) as url:
        site = Site(framework, url, manager, store, clock)
        yield site
        site.close()
    manager.close()
