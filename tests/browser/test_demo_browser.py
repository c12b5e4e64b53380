"""Real headless Chromium (Debian's /usr/bin/chromium via Playwright) against the demo.

The demo runs under a real uvicorn subprocess on a free loopback port with a
2-second rotation interval (``SESSIONWARD_ROTATION_INTERVAL_SECONDS``), so a
periodic rotation happens during the test.  Every page is also opened at a
desktop (1100 px) and a phone (390 px) width and checked for layout faults
that a person would see: a page wider than the screen, a nav that wraps,
key elements missing or cut off (:func:`_layout_faults`).  Screenshots of
every page at both widths go to ``test-artifacts/screenshots/``.  Every wait
is bounded.
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


def _serve(data: Path, extra: str = "") -> Iterator[str]:
    """The demo under uvicorn in a subprocess; ``extra`` is a store URL (optional)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONWARD_")}
    env["SESSIONWARD_ROTATION_INTERVAL_SECONDS"] = "2"
    env["SESSIONWARD_ROTATION_GRACE_SECONDS"] = "30"
    code = ("import uvicorn, sys; from sessionward.demo import create_app; "
            "from sessionward.stores import open_store; "
            "store = open_store(sys.argv[3]) if sys.argv[3] else None; "
            "uvicorn.run(create_app(sys.argv[1], store=store), host='127.0.0.1', "
            "port=int(sys.argv[2]), log_level='warning')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(data), str(port), extra], env=env)
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


@pytest.fixture(name="demo_url", scope="module")
def demo_url_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo under uvicorn in a subprocess (fresh data dir, short rotation)."""
    yield from _serve(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture(name="browser", scope="module")
def browser_fixture() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required at /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        yield browser
        browser.close()


VIEWPORTS = {"desktop": {"width": 1100, "height": 760}, "phone": {"width": 390, "height": 844}}
"""The two widths every page is checked at (390 px: a common phone in CSS pixels)."""
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
ANDROID = "Mozilla/5.0 (Linux; Android 14) Chrome/140.0 Mobile Safari/537.36"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) Safari/604.1"

_FAULTS_JS = """(required) => {
    const width = window.innerWidth, faults = [];
    const page = document.documentElement.scrollWidth;
    if (page > width) faults.push(`page is ${page}px wide on a ${width}px screen`);
    const nav = document.querySelector('header nav');
    if (nav) {
        const tops = new Set([...nav.children].map(e => Math.round(e.getBoundingClientRect().top)));
        if (tops.size > 1) faults.push(`the nav wraps onto ${tops.size} lines`);
        if (nav.scrollWidth > nav.clientWidth + 1) faults.push('the nav is cut off');
    }
    if (getComputedStyle(document.body).display !== 'flex')
        faults.push('the stylesheet did not load');
    for (const e of document.querySelectorAll('main *, header *')) {
        const r = e.getBoundingClientRect(), name = `${e.tagName.toLowerCase()}.${e.className}`;
        if (r.width <= 1 || r.height <= 1) continue;
        if (r.right > width + 1 || r.left < -1)
            faults.push(`${name} is cut off by the screen (${r.left}-${r.right})`);
        const card = e.parentElement && e.parentElement.closest('.card');
        const c = card && card.getBoundingClientRect();
        if (c && (r.right > c.right + 1 || r.left < c.left - 1))
            faults.push(`${name} sticks out of its card (${r.left}-${r.right})`);
    }
    for (const sel of required) {
        const e = document.querySelector(sel);
        const r = e && e.getBoundingClientRect();
        const seen = e && r.width > 0 && r.height > 0
            && getComputedStyle(e).visibility !== 'hidden';
        if (!seen) faults.push(`${sel} is not visible`);
    }
    return faults;
}"""


def _context(browser: Browser, ua: str, viewport: str = "desktop") -> BrowserContext:
    phone = viewport == "phone"
    ctx = browser.new_context(user_agent=ua, viewport=VIEWPORTS[viewport], is_mobile=phone,
                              has_touch=phone)
    ctx.set_default_timeout(15_000)
    return ctx


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _layout_faults(page: Page, *required: str) -> list[str]:
    """What a person would see wrong on this page at this width (empty: none)."""
    faults: list[str] = page.evaluate(_FAULTS_JS, ["h1", *required])
    return faults


def _look(page: Page, name: str, viewport: str, *required: str) -> None:
    """Screenshot the page and require a layout without faults."""
    _shot(page, f"{name}-{viewport}")
    assert _layout_faults(page, *required) == [], (name, viewport)


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
    page.wait_for_url(f"{demo_url}/login?notice=signed_out")
    assert page.locator("p.notice").inner_text() == "You are signed out."
    assert _session_cookie(ctx) is None, "an anonymous visitor must get no session (T-15)"
    assert any(c["name"] == "csrf" for c in ctx.cookies()), "the stateless CSRF nonce cookie"
    assert "csrf=" not in page.evaluate("document.cookie")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "wrong password!")
    page.click("button.primary")
    page.wait_for_selector("p.error")
    assert _session_cookie(ctx) is None, "a failed sign-in stores no session either"
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{demo_url}/account")
    after = _session_cookie(ctx)
    assert after
    assert "session=" not in page.evaluate("document.cookie")
    assert after not in page.content()
    page.goto(f"{demo_url}/events")
    assert "Failed sign-in attempt" in page.content()
    ctx.close()


def test_revoke_device_and_sign_out_everywhere(browser: Browser, demo_url: str) -> None:
    """Revoking a device logs it out on its next request, which is told why; "everywhere
    else" ends the rest; the events say which devices went."""
    laptop = _context(browser, FIREFOX)
    phone = _context(browser, ANDROID)
    tablet = _context(browser, IPAD)
    a = laptop.new_page()
    _signup(a, demo_url, "dave")
    b, c = phone.new_page(), tablet.new_page()
    _login(b, demo_url, "dave")
    _login(c, demo_url, "dave")
    a.goto(f"{demo_url}/devices")
    assert a.locator("tbody tr").count() == 3
    assert a.locator("tbody tr").first.get_attribute("class") == "current"
    order = a.locator("tbody tr td:first-child").all_inner_texts()
    a.reload()
    assert a.locator("tbody tr td:first-child").all_inner_texts() == order
    a.locator("tr", has_text="Android").locator("button").click()
    a.wait_for_url(f"{demo_url}/devices")
    assert a.locator("p.flash").inner_text() == "Chrome on Android is signed out."
    assert a.locator("tbody tr").count() == 2
    b.goto(f"{demo_url}/account")
    assert b.url.startswith(f"{demo_url}/login?notice=ended")
    assert "signed out from another device" in b.locator("p.notice").inner_text()
    _shot(b, "revoked-device-login")
    a.click("text=Sign out everywhere else")
    a.wait_for_url(f"{demo_url}/devices")
    assert a.locator("p.flash").inner_text() == "Signed out 1 other device."
    assert a.locator("tbody tr").count() == 1
    c.goto(f"{demo_url}/account")
    assert c.url.startswith(f"{demo_url}/login")
    a.goto(f"{demo_url}/events")
    text = a.locator("main").inner_text()
    assert "Chrome on Android" in text and "Safari on iPadOS" in text
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
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(f"{demo_url}/password")
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


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_every_page_fits_the_screen(browser: Browser, demo_url: str, viewport: str) -> None:
    """Each page at 1100 px and at 390 px: no horizontal overflow, the nav on one line,
    the key controls visible (screenshots of each)."""
    user = f"tour-{viewport}"
    ctx, other = _context(browser, FIREFOX, viewport), _context(browser, ANDROID, viewport)
    page = ctx.new_page()
    page.goto(f"{demo_url}/login")
    _look(page, "login", viewport, "input[name=username]", "button.primary")
    page.goto(f"{demo_url}/signup")
    _look(page, "signup", viewport, "input[name=confirm]", "button.primary")
    _signup(page, demo_url, user)
    _login(other.new_page(), demo_url, user)
    _look(page, "account", viewport, "header nav", "a.button[href='/devices']")
    page.goto(f"{demo_url}/devices")
    _look(page, "devices", viewport, "header nav", "tr.current .badge",
          "tbody tr:not(.current) button.danger", "form[action='/devices/others'] button")
    page.goto(f"{demo_url}/events")
    _look(page, "events", viewport, "header nav", "table.events td")
    page.goto(f"{demo_url}/reauth?next=/password")
    _look(page, "reauth", viewport, "input[name=password]", "button.primary")
    page.goto(f"{demo_url}/no-such-page")
    _look(page, "404", viewport, "a.button")
    page.click("form[action='/logout'] button")
    page.wait_for_url(f"{demo_url}/login?notice=signed_out")
    _look(page, "signed-out", viewport, "p.notice")
    ctx.clear_cookies()  # the form's CSRF nonce cookie is gone: the POST is refused
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_selector("h1:text('This form has expired')")
    _look(page, "403", viewport, "a.button")
    page.click("a.button")
    page.wait_for_url(f"{demo_url}/login")
    for _ in range(6):
        page.fill("input[name=username]", f"locked-{viewport}")
        page.fill("input[name=password]", "wrong password!")
        page.click("button.primary")
        page.wait_for_selector("p.error")
    assert "Try again in" in page.locator("p.error").inner_text()
    _look(page, "429", viewport, "p.error", "button.primary")
    ctx.close()
    other.close()


@pytest.fixture(name="down_url", scope="module")
def down_url_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The demo over a Redis store that is not running (nothing listens on the port)."""
    data = tmp_path_factory.mktemp("down") / "data"
    store = f"redis://127.0.0.1:{_free_port()}/0?socket_connect_timeout=1"
    for url in _serve(data, store):
        yield url, data


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_store_down_page(browser: Browser, down_url: tuple[str, Path], viewport: str) -> None:
    """A browser with a session cookie while the store is down gets the styled 503 page."""
    from sessionward.core.ids import cookie_value, new_session_id
    from sessionward.core.keys import load_keyring

    url, data = down_url
    key = load_keyring(data / "session.key", "demo").active
    ctx = _context(browser, FIREFOX, viewport)
    ctx.add_cookies([{"name": "session", "value": cookie_value(new_session_id(), key),
                      "url": url}])
    page = ctx.new_page()
    response = page.goto(f"{url}/account")
    assert response is not None and response.status == 503
    assert page.locator("h1").inner_text() == "Sessions are unavailable"
    _look(page, "503", viewport, "a.button")
    ctx.close()
