"""Real headless Chromium against the PHP example app (``examples/php``) behind nginx +
php-fpm and a real daemon: lazy creation, HttpOnly, login rotation, "your devices",
revoking another device, sign out everywhere.  Screenshots go to
``test-artifacts/screenshots/php-*.png``.  Every wait is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from svc_php import CLIENT_DIR, PhpStack

from svc_daemon import DaemonProcess

pytestmark = [pytest.mark.browser, pytest.mark.php, pytest.mark.daemon]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(name="example_url", scope="module")
def example_url_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("php-example")
    with DaemonProcess(tmp, "--namespace", "example") as daemon:
        stack_dir = tmp / "stack"
        stack_dir.mkdir()
        env = {"SESSIONWARD_URL": daemon.url, "SW_EXAMPLE_INSECURE_HTTP": "1",
               "SESSIONWARD_TOKEN_FILE": str(daemon.data_dir / "tokens" / "app.token"),
               "SESSIONWARD_CLIENT": str(CLIENT_DIR / "autoload.php")}
        with PhpStack(stack_dir, app_dir=ROOT / "examples" / "php", env=env) as stack:
            stack_log = stack
            yield stack.url
        assert "Fatal" not in stack_log.log("php-errors.log"), stack_log.log("php-errors.log")


@pytest.fixture(name="chromium", scope="module")
def chromium_fixture() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required at /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        yield browser
        browser.close()


def _context(browser: Browser, ua: str) -> BrowserContext:
    ctx = browser.new_context(user_agent=ua, viewport={"width": 1000, "height": 700})
    ctx.set_default_timeout(15_000)
    return ctx


def _cookie(ctx: BrowserContext) -> dict[str, object] | None:
    return next((dict(c) for c in ctx.cookies() if c["name"] == "PHPSESSID"), None)


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"php-{name}.png"), full_page=True)


def _sign_in(page: Page, url: str, user: str) -> None:
    page.goto(url + "/")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", "demo")
    page.click("form[action='/login'] button")
    page.wait_for_selector("#devices")


def test_devices_revoke_and_sign_out_everywhere(chromium: Browser, example_url: str) -> None:
    """Two devices of one user: each sees both; one revokes the other; sign out
    everywhere ends the rest. Cookies stay HttpOnly and change at login."""
    laptop = _context(chromium, "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    phone = _context(chromium, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Mobile Safari/604.1")
    page = laptop.new_page()
    page.goto(example_url + "/")
    _shot(page, "sign-in")
    assert _cookie(laptop) is None, "the anonymous sign-in page stores no session"
    _sign_in(page, example_url, "alice")
    cookie = _cookie(laptop)
    assert cookie is not None and cookie["httpOnly"] is True
    assert "PHPSESSID" not in page.evaluate("document.cookie")
    assert page.inner_text("#user") == "alice"

    other = phone.new_page()
    _sign_in(other, example_url, "alice")
    page.reload()
    assert page.locator("#devices tr").count() == 3  # header + 2 devices
    _shot(page, "devices")

    page.click("#devices form[action='/revoke'] button")
    page.wait_for_selector("#devices")
    assert page.locator("#devices tr").count() == 2
    other.reload()
    other.wait_for_selector("input[name=user]")  # the phone is signed out

    _sign_in(other, example_url, "alice")
    other.click("form[action='/everywhere'] button")
    other.wait_for_selector("input[name=user]")
    page.reload()
    page.wait_for_selector("input[name=user]")
    _shot(page, "signed-out")
    laptop.close()
    phone.close()
