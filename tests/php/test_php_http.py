"""The PHP client behind real nginx + php-fpm (4 workers), against a real daemon.

Each scenario of issue 17: lazy creation, strict mode, fixation, rotation
(regenerate and the daemon's periodic rotation with grace), logout without
resurrection, concurrency with and without the lease, a daemon that is down,
and session_gc().
"""

from __future__ import annotations

import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from php.conftest import Browser, Site, php_to_cookie, set_cookies

pytestmark = [pytest.mark.daemon, pytest.mark.php]

PHP_ID = re.compile(r"[A-Za-z0-9,-]{65}")


def forged_php_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789,-"
    return "".join(secrets.choice(alphabet) for _ in range(65))


class TestLazyAndStrict:
    def test_anonymous_request_stores_nothing_and_sets_no_cookie(self, site: Site,
                                                                 browser: Browser) -> None:
        """session_start() without data: no record, and the queued cookie is withdrawn."""
        before = site.live_sessions()
        response = browser.get("/anon")
        assert response.json() == {"ok": True, "id_len": 65}
        assert set_cookies(response) == []
        assert site.live_sessions() == before

    def test_first_write_stores_under_the_issued_id(self, site: Site, browser: Browser) -> None:
        """PHP's cookie is daemon-issued, in PHP's alphabet, and maps to the daemon cookie."""
        browser.json("/set", a="1")
        assert browser.sid is not None and PHP_ID.fullmatch(browser.sid)
        reply = site.daemon.client().call("load", cookie=php_to_cookie(browser.sid))
        assert reply["data"]["session"]["data"] == {"a": "1"}

    def test_forged_id_never_adopted(self, site: Site, browser: Browser) -> None:
        """A well-formed but forged ID gets a fresh daemon ID when data is stored."""
        forged = forged_php_id()
        browser.sid = forged
        assert browser.json("/set", x="1")["session"] == {"x": "1"}
        assert browser.sid != forged
        load = site.daemon.client().call("load", cookie=php_to_cookie(forged))
        assert load["data"]["session"] is None

    def test_hostile_ids_never_reach_the_daemon(self, browser: Browser) -> None:
        """Wrong length, traversal or odd characters: PHP or the handler drops them."""
        for hostile in ["../../etc/passwd", "a" * 300, "x" * 64, "abc%00def", "'; DROP"]:
            browser.sid = hostile
            assert browser.json("/set", y="1")["session"] == {"y": "1"}
            assert browser.sid != hostile and PHP_ID.fullmatch(browser.sid or "")

    def test_reserved_but_unstored_id_is_unknown_next_time(self, site: Site,
                                                           browser: Browser) -> None:
        """An ID whose cookie left before anything was stored is not adopted later."""
        response = browser.get("/anon-sent")
        (reserved,) = set_cookies(response)
        assert PHP_ID.fullmatch(reserved)
        assert site.daemon.client().call("load", cookie=php_to_cookie(reserved))[
            "data"]["session"] is None
        browser.json("/set", z="1")
        assert browser.sid != reserved

    def test_fixation_login_changes_the_id(self, site: Site, http: httpx.Client) -> None:
        """An attacker's planted session ID is dead after the victim logs in."""
        attacker = Browser(site, http)
        attacker.json("/set", planted="1")
        victim = Browser(site, http, sid=attacker.sid)
        assert victim.json("/login", user="victim")["user"] == "victim"
        assert victim.sid != attacker.sid
        assert attacker.json("/whoami") == {"ok": True, "user": None, "session": []}
        assert victim.json("/whoami")["user"] == "victim"


class TestRotation:
    @pytest.mark.parametrize("delete", ["1", "0"])
    def test_regenerate_id_kills_the_old_id(self, browser: Browser, delete: str) -> None:
        """session_regenerate_id(true|false) is a daemon rotation: no zombie ID, data kept."""
        browser.json("/set", keep="me")
        old = browser.sid
        assert browser.json("/regen", delete=delete)["changed"] is True
        assert browser.sid != old
        assert browser.json("/get")["session"] == {"keep": "me", "regenerated": True}
        assert browser.json("/get", sid=old)["session"] == []

    def test_periodic_rotation_with_grace(self, own_site: Site, http_own: httpx.Client) -> None:
        """After the rotation interval the daemon rotates on load; PHP sends the new
        cookie; the old ID works for the grace period, then it is dead."""
        browser = Browser(own_site, http_own)
        browser.json("/set", n="1")
        old = browser.sid
        own_site.advance(16 * 60)
        assert browser.json("/get")["session"] == {"n": "1"}
        new = browser.sid
        assert new != old and PHP_ID.fullmatch(new or "")
        in_grace = browser.get("/get", sid=old)
        assert in_grace.json()["session"] == {"n": "1"}
        assert set_cookies(in_grace) == [new]  # forwarded to the successor
        own_site.advance(11)
        assert browser.json("/get", sid=old)["session"] == []


class TestLogout:
    def test_logout_ends_the_session(self, site: Site, browser: Browser) -> None:
        """Session::logout(): record deleted, cookie deleted, the old ID dead."""
        browser.json("/login", user="carol")
        sid = browser.sid
        response = browser.get("/logout")
        assert set_cookies(response) == [""]
        assert browser.json("/whoami", sid=sid)["user"] is None
        assert site.daemon.client().call("load", cookie=php_to_cookie(sid or ""))[
            "data"]["session"] is None

    def test_session_destroy_is_a_logout(self, browser: Browser) -> None:
        """Plain session_destroy() deletes the record too."""
        browser.json("/set", a="1")
        sid = browser.sid
        browser.json("/destroy")
        assert browser.json("/get", sid=sid)["session"] == []

    def test_in_flight_save_cannot_resurrect(self, site: Site, http: httpx.Client) -> None:
        """A slow optimistic request saving after a logout gets an error, not the session back."""
        browser = Browser(site, http)
        browser.json("/set", h="sw-opt", a="1")
        sid = browser.sid
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(http.get, "/append", params={"h": "sw-opt", "sleep_ms": "1500"},
                               headers={"Cookie": f"PHPSESSID={sid}"})
            time.sleep(0.5)  # ordering only: let the slow request load first
            browser.json("/logout", h="sw-opt")
            late = slow.result()
        assert late.status_code == 500 and late.json()["error"] == "session_not_found"
        assert browser.json("/get", sid=sid)["session"] == []


class TestConcurrency:
    def test_lease_mode_loses_no_update(self, browser: Browser, http: httpx.Client) -> None:
        """8 concurrent read-modify-write requests on one session, 4 workers: all 8 kept."""
        browser.json("/set", start="1")
        headers = {"Cookie": f"PHPSESSID={browser.sid}"}
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: http.get(
                "/append", params={"item": str(i), "sleep_ms": "30"}, headers=headers), range(8)))
        assert all(r.status_code == 200 for r in results)
        items = browser.json("/get")["session"]["items"]
        assert sorted(items) == sorted(str(i) for i in range(8))

    def test_optimistic_same_key_conflicts_are_reported(self, browser: Browser,
                                                        http: httpx.Client) -> None:
        """Lock-free: a same-key race is a 409, never a silent loss."""
        browser.json("/set", h="sw-opt", start="1")
        headers = {"Cookie": f"PHPSESSID={browser.sid}"}
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: http.get(
                "/append", params={"h": "sw-opt", "item": str(i), "sleep_ms": "30"},
                headers=headers), range(8)))
        assert {r.status_code for r in results} <= {200, 409}
        ok = [str(i) for i, r in enumerate(results) if r.status_code == 200]
        items = browser.json("/get", h="sw-opt")["session"].get("items", [])
        assert sorted(items) == sorted(ok)  # exactly the acknowledged writes

    def test_optimistic_disjoint_keys_merge(self, browser: Browser, http: httpx.Client) -> None:
        """Lock-free: concurrent changes to different keys are all kept."""
        browser.json("/set", h="sw-opt", start="1")
        headers = {"Cookie": f"PHPSESSID={browser.sid}"}
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda i: http.get(
                "/disjoint", params={"h": "sw-opt", "key": f"k{i}", "sleep_ms": "30"},
                headers=headers), range(6)))
        assert all(r.status_code == 200 for r in results)
        session = browser.json("/get", h="sw-opt")["session"]
        assert all(session[f"k{i}"] == 1 for i in range(6))

    def test_update_counter_is_atomic(self, browser: Browser, http: httpx.Client) -> None:
        """Session::update() in lock-free mode: 10 concurrent increments give 10."""
        browser.json("/set", h="sw-opt", start="1")
        headers = {"Cookie": f"PHPSESSID={browser.sid}"}
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: http.get(
                "/counter", params={"h": "sw-opt"}, headers=headers), range(10)))
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
        assert browser.json("/get", h="sw-opt")["session"]["counter"] == 10

    def test_read_and_close_takes_no_lease(self, browser: Browser, http: httpx.Client) -> None:
        """session_start(['read_and_close' => true]) reads while another request holds the lease."""
        browser.json("/set", a="1")
        headers = {"Cookie": f"PHPSESSID={browser.sid}"}
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(http.get, "/append", params={"sleep_ms": "4000"}, headers=headers)
            time.sleep(0.5)  # ordering only
            read = http.get("/read", headers=headers)
            assert not slow.done()  # answered while the lease is still held
            assert read.json()["session"]["a"] == "1"
            assert slow.result().status_code == 200


class TestData:
    def test_objects_refused_and_nothing_lost(self, browser: Browser) -> None:
        """An object in $_SESSION is refused with a clear error; the stored data stays."""
        browser.json("/set", a="1")
        response = browser.get("/object")
        assert response.status_code == 500
        assert "holds an object (ArrayObject)" in response.json()["message"]
        assert browser.json("/get")["session"] == {"a": "1"}

    def test_gc_is_harmless(self, browser: Browser) -> None:
        """session_gc() deletes nothing (cleanup is the daemon's)."""
        browser.json("/set", a="1")
        assert browser.json("/gc")["gc"] == 0
        assert browser.json("/get")["session"] == {"a": "1"}


class TestDaemonDown:
    def test_down_daemon_is_a_503_never_a_fresh_session(self, own_site: Site,
                                                        http_own: httpx.Client) -> None:
        """With the daemon stopped: 503 and no Set-Cookie, with the exception or the
        handler's own 503 answer; after a restart the session is still there."""
        browser = Browser(own_site, http_own)
        browser.json("/set", a="1")
        sid = browser.sid
        own_site.daemon.stop()
        for params in ({}, {"down": "503"}):
            response = browser.get("/get", **params)
            assert response.status_code == 503, response.text
            assert set_cookies(response) == []
        assert "Retry-After" in browser.get("/get", down="503").headers
        own_site.daemon.start()
        assert browser.json("/get")["session"] == {"a": "1"} and browser.sid == sid
