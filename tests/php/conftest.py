"""Fixtures for the PHP client: a real daemon, real nginx + php-fpm, and HTTP helpers.

The daemon follows a clock file (``--unsafe-test-clock-file``) so that
rotation and expiry tests can move time; php-fpm runs ``pm = static`` with 4
workers.  Cookies are handled by hand (``Browser``) so tests see exactly
what each response set.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from svc_php import PhpStack, require_php

from svc_daemon import DaemonProcess

COOKIE = "PHPSESSID"
START_TIME = 1_900_000_000.0
KEEP = "\0keep"
"""Sentinel for ``Browser.get``: send the browser's own cookie."""


def php_to_cookie(php_id: str) -> str:
    """The daemon cookie value of a PHP session ID (clients/php/src/SessionId.php)."""
    raw = php_id.replace(",", "_")
    return f"{raw[:43]}.{raw[43:]}"


def cookie_to_php(cookie: str) -> str:
    """The PHP session ID of a daemon cookie value."""
    return (cookie[:43] + cookie[44:]).replace("_", ",")


@dataclass
class Site:
    """The PHP app behind nginx, its daemon and the daemon's clock."""

    url: str
    daemon: DaemonProcess
    stack: PhpStack
    clock_file: Path
    now: float = START_TIME

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.clock_file.write_text(repr(self.now))

    def admin(self, command: str, **fields: Any) -> Any:
        client = self.daemon.client(self.daemon.admin_token)
        try:
            reply = client.call(command, **fields)
        finally:
            client.close()
        assert reply["ok"], reply
        return reply["data"]

    def live_sessions(self) -> int:
        return len(self.admin("list")["sessions"])


@dataclass
class Browser:
    """One user agent: keeps the PHPSESSID cookie as the responses set it."""

    site: Site
    client: httpx.Client
    sid: str | None = None
    history: list[str | None] = field(default_factory=list)

    def get(self, path: str, *, sid: str | None = KEEP, **params: Any) -> httpx.Response:
        """GET with this browser's cookie (or ``sid``; ``None`` sends none)."""
        use = self.sid if sid == KEEP else sid
        headers = {"Cookie": f"{COOKIE}={use}"} if use else {}
        response = self.client.get(path, params=params, headers=headers)
        for value in set_cookies(response):
            self.sid = value or None
            self.history.append(self.sid)
        return response

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()


def set_cookies(response: httpx.Response) -> list[str]:
    """The PHPSESSID values the response set, in order ('' for a deletion)."""
    out = []
    for header in response.headers.get_list("set-cookie"):
        match = re.match(rf"{COOKIE}=([^;]*)", header)
        if match:
            value = unquote(match.group(1))
            out.append("" if value == "deleted" or "max-age=0" in header.lower() else value)
    return out


def start_site(tmp: Path, name: str = "site", *, workers: int = 4,
               daemon_args: tuple[str, ...] = ()) -> tuple[DaemonProcess, PhpStack, Path]:
    require_php(fpm=True)
    clock_file = tmp / f"{name}-clock"
    clock_file.write_text(repr(START_TIME))
    daemon = DaemonProcess(tmp, "--namespace", "shared", *daemon_args, clock_file=clock_file,
                           name=f"{name}-daemon").start()
    stack_dir = tmp / f"{name}-stack"
    stack_dir.mkdir()
    files = tmp / f"{name}-files"
    files.mkdir(mode=0o700)
    env = {"SW_DAEMON": daemon.url, "SW_TOKEN_FILE": str(daemon.data_dir / "tokens" / "app.token"),
           "SW_FILES_DIR": str(files)}
    try:
        stack = PhpStack(stack_dir, env=env, workers=workers).start()
    except BaseException:
        daemon.stop()
        raise
    return daemon, stack, clock_file


@pytest.fixture(name="site", scope="module")
def site_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One daemon + nginx + php-fpm for tests that do not move time or stop things."""
    tmp = tmp_path_factory.mktemp("php")
    daemon, stack, clock_file = start_site(tmp)
    try:
        yield Site(stack.url, daemon, stack, clock_file)
    finally:
        stack.stop()
        daemon.stop()
        errors = stack.log("php-errors.log")
        # Expected errors are caught by the app; anything here is a client bug.
        assert "Fatal" not in errors, errors


@pytest.fixture(name="own_site")
def own_site_fixture(tmp_path: Path) -> Iterator[Site]:
    """A private stack for tests that move the clock or stop the daemon."""
    daemon, stack, clock_file = start_site(tmp_path)
    try:
        yield Site(stack.url, daemon, stack, clock_file)
    finally:
        stack.stop()
        daemon.stop()


@pytest.fixture(name="http")
def http_fixture(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=30.0) as client:
        yield client


@pytest.fixture(name="browser")
def browser_fixture(site: Site, http: httpx.Client) -> Browser:
    return Browser(site, http)


def wait_until(predicate: Any, seconds: float = 10.0) -> bool:
    """Poll ``predicate`` (bounded); used only to wait for a server, never to time things."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(name="http_own")
def http_own_fixture(own_site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own_site.url, timeout=30.0) as client:
        yield client
