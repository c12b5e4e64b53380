"""The demo over a store a writer has tampered with (issue 15 items 6 and 7).

* A throttle counter of the wrong type made sign-in answer 500 (``CodecError``);
  now the throttle fails closed: 429, never 500, never unlimited guesses.
* A session hidden from its user's index (``user_key`` set to NULL) survived
  "sign out everywhere" and a password change; now it no longer loads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.test_abuse import PASSWORD, _client, _guess, _signup, _token
from sessionward.demo import create_app

from integrations.harness import serve_asgi


@pytest.fixture(name="served")
def served_fixture(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with serve_asgi(create_app(tmp_path / "data", environ={})) as url:
        yield url, tmp_path / "data"


def _db(data: Path) -> sqlite3.Connection:
    (found,) = [p for p in data.rglob("*.db") if "session" in p.name]
    return sqlite3.connect(found, isolation_level=None)


@pytest.mark.parametrize("value", [5, 1.5, "not json", b"{\"f\": NaN}", b"[1, 2]"])
def test_corrupt_throttle_counter_is_429_not_500(served: tuple[str, Path], value: object
                                                 ) -> None:
    url, data = served
    _signup(url, "erin")
    with _client(url, "127.0.0.7") as client:
        assert _guess(client, "erin") == 401
        db = _db(data)
        assert db.execute("UPDATE sw_kv SET value = ? WHERE key LIKE 'thr:%'",
                          (value,)).rowcount > 0
        db.close()
        assert _guess(client, "erin") == 429
        assert _guess(client, "erin", PASSWORD) == 429  # fail closed: locked, not reset


def _sign_in(url: str, address: str) -> object:
    client = _client(url, address)
    token = _token(client.get("/login"))
    r = client.post("/login", data={"username": "frank", "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text
    return client


def test_session_hidden_from_the_index_does_not_survive_sign_out_everywhere(
        served: tuple[str, Path]) -> None:
    url, data = served
    _signup(url, "frank")
    hidden, other = _sign_in(url, "127.0.0.8"), _sign_in(url, "127.0.0.9")
    db = _db(data)
    rows = db.execute("SELECT key FROM sw_sessions WHERE user_key IS NOT NULL").fetchall()
    assert len(rows) >= 2
    db.execute("UPDATE sw_sessions SET user_key = NULL")  # hide every session of frank
    db.close()
    for client in (hidden, other):
        page = client.get("/account")  # type: ignore[attr-defined]
        assert page.status_code in (302, 303) or "Sign in" in page.text, page.status_code
        client.close()  # type: ignore[attr-defined]
