"""The demo's password forms under attack, over real HTTP from real loopback addresses
(issue 15 item 5).

Each client binds its own source address in 127.0.0.0/8, so the demo sees 20
distinct peers exactly as it would see 20 hosts.  Before the fix the sign-in
throttle was keyed on (user, address) only: 20 other addresses each got 4
more guesses at an account one address had locked, and one address made 24
guesses across 6 accounts without a single 429.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionward.demo import create_app
from sessionward.guards.throttle_set import LOGIN_LIMITS

from integrations.harness import serve_asgi

PASSWORD = "correct horse battery"


@pytest.fixture(name="url")
def url_fixture(tmp_path: Path) -> Iterator[str]:
    with serve_asgi(create_app(tmp_path / "data", environ={})) as url:
        yield url


def _client(url: str, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, transport=transport, timeout=30.0)


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def _signup(url: str, user: str) -> None:
    with _client(url, "127.0.0.250") as client:
        token = _token(client.get("/signup"))
        r = client.post("/signup", data={"username": user, "password": PASSWORD,
                                         "confirm": PASSWORD, "csrf": token})
        assert r.status_code == 303, r.text


def _guess(client: httpx.Client, user: str, password: str = "wrong guess 123") -> int:
    token = _token(client.get("/login"))
    return client.post("/login", data={"username": user, "password": password,
                                       "csrf": token}).status_code


def test_other_addresses_get_no_more_guesses_at_a_locked_account(url: str) -> None:
    """After one address is locked out, 20 others × 4 guesses: at most the account's
    remaining budget is checked at all, every other guess is a 429."""
    _signup(url, "victim")
    with _client(url, "127.0.0.2") as first:
        codes = [_guess(first, "victim") for _ in range(LOGIN_LIMITS["pair"] + 1)]
    assert codes[-1] == 429 and codes.count(401) == LOGIN_LIMITS["pair"]
    later: list[int] = []
    for n in range(3, 23):
        with _client(url, f"127.0.0.{n}") as other:
            later += [_guess(other, "victim") for _ in range(4)]
    assert later.count(401) <= LOGIN_LIMITS["user"] - LOGIN_LIMITS["pair"]
    assert later.count(429) == len(later) - later.count(401)
    assert later[-20:] == [429] * 20


def test_one_address_spraying_six_accounts_is_refused(url: str) -> None:
    """24 guesses from one address across 6 accounts (4 each, under the per-pair limit):
    the address is refused once it reaches its own limit."""
    _signup(url, "member0")  # the others need not exist: a guess costs the same
    with _client(url, "127.0.0.30") as sprayer:
        codes = [_guess(sprayer, f"member{n}") for n in range(6) for _ in range(4)]
    assert 429 in codes
    assert codes.count(401) == LOGIN_LIMITS["ip"]
    with _client(url, "127.0.0.31") as bystander:  # another address is unaffected
        assert _guess(bystander, "member0", PASSWORD) == 303


def test_locked_sign_in_says_why_and_when(url: str) -> None:
    """The 429 page names the scope that is locked and carries Retry-After."""
    with _client(url, "127.0.0.40") as client:
        for _ in range(LOGIN_LIMITS["pair"]):
            _guess(client, "nobody")
        token = _token(client.get("/login"))
        r = client.post("/login", data={"username": "nobody", "password": "x", "csrf": token})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 30
    assert "Too many failed attempts from this device" in r.text


def test_step_up_guesses_count_against_the_account(url: str) -> None:
    """Wrong passwords on the step-up form lock it like sign-in does."""
    _signup(url, "stepper")
    with _client(url, "127.0.0.50") as client:
        token = _token(client.get("/login"))
        assert client.post("/login", data={"username": "stepper", "password": PASSWORD,
                                           "csrf": token}).status_code == 303
        codes = []
        for _ in range(LOGIN_LIMITS["pair"] + 1):
            token = _token(client.get("/reauth?next=/password"))
            codes.append(client.post("/reauth", data={"password": "nope nope nope",
                                                      "next": "/password",
                                                      "csrf": token}).status_code)
        assert codes == [401] * LOGIN_LIMITS["pair"] + [429]
        token = _token(client.get("/reauth?next=/password"))
        locked = client.post("/reauth", data={"password": PASSWORD, "next": "/password",
                                              "csrf": token})
        assert locked.status_code == 429  # even the right password waits


def test_sign_up_probes_for_taken_names_are_throttled(url: str) -> None:
    """Sign-up says a name is taken (the documented trade-off), at most 10 times per
    address; then it is refused with 429 and does not answer at all."""
    _signup(url, "taken")
    codes = []
    with _client(url, "127.0.0.60") as prober:
        for _ in range(12):
            token = _token(prober.get("/signup"))
            r = prober.post("/signup", data={"username": "taken", "password": PASSWORD,
                                             "confirm": PASSWORD, "csrf": token})
            codes.append(r.status_code)
            if r.status_code == 429:
                assert "is taken" not in r.text
    assert codes == [400] * 10 + [429] * 2
    _signup(url, "fresh-name")  # another address still signs up
