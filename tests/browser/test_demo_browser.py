"""Real headless Chromium (Debian's /usr/bin/chromium via Playwright) against the demo.

The demo runs under a real uvicorn subprocess on a free loopback port with a
2-second rotation interval (``SESSIONWARD_ROTATION_INTERVAL_SECONDS``), so a
periodic rotation happens during the test.  Screenshots of every page go to
``test-artifacts/screenshots/``.  Every wait is bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"
STARTUP = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(name="demo_url", scope="module")
def demo_url_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo under uvicorn in a subprocess (fresh data dir, short rotation)."""
    data = tmp_path_factory.mktemp("demo") / "data"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    env["SESSIONWARD_ROTATION_INTERVAL_SECONDS"] = "2"
    env["SESSIONWARD_ROTATION_GRACE_SECONDS"] = "30"
    code = ("import uvicorn, sys; from sessionward.demo import create_app; "
            "uvicorn.run(create_app(sys.argv[1]), host='127.0.0.1', port=int(sys.argv[2]), "
            "log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(data), str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP
    try:
        while True:
            try:
                httpx.get(f"{url}/login", timeout=2.0)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the demo server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(name="browser", scope="module")
def browser_fixture() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required at /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        yield browser
        browser.close()


def _context(browser: Browser, ua: str) -> BrowserContext:
    ctx = browser.new_context(user_agent=ua, viewport={"width": 1100, "height": 760})
    ctx.set_default_timeout(15_000)
    return ctx


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _session_cookie(ctx: BrowserContext) -> str | None:
    return next((c["value"] for c in ctx.cookies() if c["name"] == "session"), None)


def _signup(page: Page, url: str, user: str) -> None:
    page.goto(f"{url}/signup")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{url}/account")


def _login(page: Page, url: str, user: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{url}/account")


def test_cookie_hidden_from_script_and_login_changes_it(browser: Browser, demo_url: str) -> None:
    """HttpOnly keeps the cookies out of document.cookie; the sign-in page (and a failed
    sign-in) create no session; only a successful login issues one."""
    ctx = _context(browser, "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36")
    page = ctx.new_page()
    _signup(page, demo_url, "carol")
    page.click("form[action='/logout'] button")
    page.wait_for_url(f"{demo_url}/login")
    _shot(page, "login")
    assert _session_cookie(ctx) is None, "an anonymous visitor must get no session (T-15)"
    assert any(c["name"] == "csrf" for c in ctx.cookies()), "the stateless CSRF nonce cookie"
    assert "csrf=" not in page.evaluate("document.cookie")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "wrong password!")
    page.click("button.primary")
    page.wait_for_selector("p.error")
    _shot(page, "login-error")
    assert _session_cookie(ctx) is None, "a failed sign-in stores no session either"
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{demo_url}/account")
    after = _session_cookie(ctx)
    assert after
    assert "session=" not in page.evaluate("document.cookie")
    assert after not in page.content()
    _shot(page, "account")
    page.goto(f"{demo_url}/events")
    assert "Failed sign-in attempt" in page.content()
    _shot(page, "events")
    ctx.close()


def test_revoke_device_and_sign_out_everywhere(browser: Browser, demo_url: str) -> None:
    """Revoking a device logs it out on its next request; "everywhere else" ends the rest."""
    laptop = _context(browser, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    phone = _context(browser, "Mozilla/5.0 (Linux; Android 14) Chrome/140.0 Mobile Safari/537.36")
    tablet = _context(browser, "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) Safari/604.1")
    a = laptop.new_page()
    _signup(a, demo_url, "dave")
    b, c = phone.new_page(), tablet.new_page()
    _login(b, demo_url, "dave")
    _login(c, demo_url, "dave")
    a.goto(f"{demo_url}/devices")
    assert a.locator("tbody tr").count() == 3
    assert a.locator("tr.current").count() == 1
    _shot(a, "devices")
    a.locator("tr", has_text="Android").locator("button").click()
    a.wait_for_url(f"{demo_url}/devices")
    assert a.locator("tbody tr").count() == 2
    b.goto(f"{demo_url}/account")
    assert b.url.startswith(f"{demo_url}/login")
    _shot(b, "revoked-device-login")
    a.click("text=Sign out everywhere else")
    a.wait_for_url(f"{demo_url}/devices")
    assert a.locator("tbody tr").count() == 1
    _shot(a, "devices-after-sign-out-everywhere")
    c.goto(f"{demo_url}/account")
    assert c.url.startswith(f"{demo_url}/login")
    a.goto(f"{demo_url}/account")
    assert a.url == f"{demo_url}/account"
    for ctx in (laptop, phone, tablet):
        ctx.close()


def test_step_up_before_password_change(browser: Browser, demo_url: str) -> None:
    """A stale-enough session is asked for its password; the step-up then allows the change."""
    ctx = _context(browser, "Mozilla/5.0 (Macintosh; Mac OS X 14_0) Safari/605.1.15")
    page = ctx.new_page()
    _signup(page, demo_url, "erin")
    page.goto(f"{demo_url}/reauth?next=/password")
    _shot(page, "reauth")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{demo_url}/password")
    _shot(page, "password")
    page.fill("input[name=password]", PASSWORD + "2")
    page.fill("input[name=confirm]", PASSWORD + "2")
    page.click("button.primary")
    page.wait_for_url(f"{demo_url}/account")
    assert "Password changed" in page.content()
    ctx.close()


def test_parallel_fetches_during_periodic_rotation(browser: Browser, demo_url: str) -> None:
    """Five parallel fetch() calls fired when rotation is due all succeed, as the same user."""
    ctx = _context(browser, "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36")
    page = ctx.new_page()
    _signup(page, demo_url, "frank")
    before = _session_cookie(ctx)
    page.wait_for_timeout(2500)  # let the 2-second rotation interval pass (not an assertion)
    results = page.evaluate("""async () => {
        const calls = Array.from({length: 5}, () =>
            fetch('/api/ping', {credentials: 'same-origin'})
                .then(async r => [r.status, await r.json()]));
        return Promise.all(calls);
    }""")
    assert [status for status, _ in results] == [200] * 5
    assert [body["user"] for _, body in results] == ["frank"] * 5
    after = _session_cookie(ctx)
    assert after and after != before
    page.goto(f"{demo_url}/account")
    assert page.url == f"{demo_url}/account"
    ctx.close()
