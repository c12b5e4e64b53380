"""The demo over real HTTP: anonymous visitors get no session (T-15, ASVS 5.0 7.6.2).

The sign-in and sign-up forms carry a stateless signed double-submit CSRF
token (``sessionward.demo.csrf``) instead of a session-bound one, so opening
them stores nothing and sets no session cookie; a POST whose token is
missing, wrong, or bound to another browser's nonce is refused with 403.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.demo import create_app
from sessionward.stores.sqlite import SQLiteStore

from integrations.harness import serve_asgi

SESSION = "session"
NONCE = "csrf"
PASSWORD = "correct horse battery"
STARTUP = 30.0


@pytest.fixture(name="demo")
def demo_fixture(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The demo app under uvicorn on loopback, over a fresh data directory."""
    data = tmp_path / "data"
    with serve_asgi(create_app(data, environ={})) as url:
        yield url, data


def _records(data: Path) -> int:
    store = SQLiteStore(data / "sessions.db")
    try:
        return store.stats(0.0).records
    finally:
        store.close()


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def _set_cookie_names(response: httpx.Response) -> list[str]:
    return [h.split("=", 1)[0] for h in response.headers.get_list("set-cookie")]


def test_anonymous_form_pages_store_nothing(demo: tuple[str, Path]) -> None:
    """GET /login and /signup (twice each): no record, no session cookie, only the nonce cookie."""
    url, data = demo
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for path in ("/login", "/signup", "/login?next=/devices", "/signup", "/"):
            r = client.get(path)
            assert r.status_code in (200, 303), path
            assert SESSION not in _set_cookie_names(r), path
        nonce_header = client.get("/login").headers["set-cookie"]
    assert _records(data) == 0
    attrs = {p.strip().split("=")[0].lower() for p in nonce_header.split(";")[1:]}
    assert nonce_header.startswith(f"{NONCE}=")
    assert {"httponly", "max-age", "path", "samesite"} <= attrs
    assert "samesite=strict" in nonce_header.lower()


@pytest.mark.parametrize("path", ["/login", "/signup"])
def test_anonymous_posts_need_a_matching_token(demo: tuple[str, Path], path: str) -> None:
    """No token, a wrong one, a tampered one, or one bound to another browser's nonce: 403."""
    url, data = demo
    form = {"username": "mallory", "password": PASSWORD, "confirm": PASSWORD}
    with httpx.Client(base_url=url, timeout=30.0) as victim, \
            httpx.Client(base_url=url, timeout=30.0) as other:
        token = _token(victim.get(path))
        foreign = _token(other.get(path))
        issued, mac = token.split(".")
        tampered = f"{issued}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}"
        for bad in ({}, {"csrf": "x"}, {"csrf": tampered}, {"csrf": foreign},
                    {"csrf": f"{int(issued) + 1}.{mac}"}):
            r = victim.post(path, data={**form, **bad})
            assert r.status_code == 403, bad
            assert SESSION not in _set_cookie_names(r), bad
        bare = httpx.post(f"{url}{path}", data={**form, "csrf": token}, timeout=30.0)
        assert bare.status_code == 403  # right token, but no nonce cookie
    assert _records(data) == 0


def test_valid_token_signs_up_and_then_uses_the_session_token(demo: tuple[str, Path]) -> None:
    """The positive path: sign-up succeeds and the signed-in forms carry the session token."""
    url, data = demo
    with httpx.Client(base_url=url, timeout=30.0) as client:
        token = _token(client.get("/signup"))
        r = client.post("/signup", data={"username": "grace", "password": PASSWORD,
                                         "confirm": PASSWORD, "csrf": token})
        assert r.status_code == 303 and r.headers["location"] == "/account"
        assert SESSION in _set_cookie_names(r)
        account = client.get("/account")
        assert account.status_code == 200
        session_token = _token(account)
        assert session_token != token
        assert client.post("/logout", data={"csrf": token}).status_code == 403
        assert client.post("/logout", data={"csrf": session_token}).status_code == 303
    assert _records(data) == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[bytes]) -> httpx.Response:
    """GET ``url`` until the server answers (bounded by STARTUP seconds)."""
    deadline = time.monotonic() + STARTUP
    while True:
        try:
            return httpx.get(url, timeout=2.0, follow_redirects=False)
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("`sessionward demo` did not start") from None
            time.sleep(0.1)


def test_demo_cli_serves_and_creates_a_private_data_dir(tmp_path: Path) -> None:
    """`sessionward demo --data-dir D --port P`: GET / redirects to /login; D is 0700, keys 0600."""
    data, port = tmp_path / "demo-data", _free_port()
    exe = Path(sys.executable).with_name("sessionward")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    proc = subprocess.Popen([str(exe), "demo", "--data-dir", str(data), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        r = _wait_for(f"http://127.0.0.1:{port}/", proc)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert _wait_for(f"http://127.0.0.1:{port}/login", proc).status_code == 200
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("session.key", "csrf.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    assert f"http://127.0.0.1:{port}/".encode() in out, err
    inspect = f"inspect its sessions: sessionward --store sqlite:///{data.resolve()}/sessions.db"
    assert inspect.encode() in out and b"--namespace demo list" in out
    assert _records(data) == 0
