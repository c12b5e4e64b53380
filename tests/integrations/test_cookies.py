"""cookies.py: Set-Cookie building, hardened parsing, response headers (T-04, T-09, T-11, T-23)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionward import Settings
from sessionward.core.net import is_loopback_host as is_loopback
from sessionward.integrations import cookies
from sessionward.integrations.cookies import (
    CookiePolicy,
    delete_cookie_header,
    has_session_cookie,
    merge_headers,
    read_session_cookie,
    session_headers,
    set_cookie_header,
    transport_allowed,
)
from sessionward.testing import FrozenClock, memory_manager

NAME = "__Host-session"
VALUE = "A" * 43 + "." + "B" * 22


def attrs(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = [p.strip() for p in header.split(";")]
    out: dict[str, str] = {}
    for part in rest:
        key, _, val = part.partition("=")
        out[key.lower()] = val
    return first, out


class TestSetCookie:
    def test_defaults_are_host_prefixed_secure_httponly_lax_session_cookie(self) -> None:
        """T-09: the default cookie has every hardening attribute and no lifetime."""
        policy = CookiePolicy.from_settings(Settings())
        pair, a = attrs(set_cookie_header(policy, VALUE))
        assert pair == f"{NAME}={VALUE}"
        assert a == {"path": "/", "secure": "", "httponly": "", "samesite": "Lax"}

    def test_strict_and_domain_and_path(self) -> None:
        """Configured attributes are emitted as configured."""
        s = Settings(cookie_name="__Secure-sid", cookie_same_site="strict",
                     cookie_domain="example.com", cookie_path="/app")
        _, a = attrs(set_cookie_header(CookiePolicy.from_settings(s), VALUE))
        assert a["samesite"] == "Strict" and a["domain"] == "example.com"
        assert a["path"] == "/app"

    def test_max_age_capped_by_remaining_lifetime(self) -> None:
        """An opt-in persistent cookie never outlives the session."""
        s = Settings(cookie_max_age=timedelta(hours=2))
        policy = CookiePolicy.from_settings(s)
        assert attrs(set_cookie_header(policy, VALUE))[1]["max-age"] == "7200"
        assert attrs(set_cookie_header(policy, VALUE, max_age=60))[1]["max-age"] == "60"

    def test_dev_http_cookie_has_no_secure(self) -> None:
        """unsafe_dev_http drops Secure (and needs a non-prefixed name)."""
        s = Settings(cookie_name="session", cookie_secure=False, unsafe_dev_http=True)
        _, a = attrs(set_cookie_header(CookiePolicy.from_settings(s), VALUE))
        assert "secure" not in a and a["httponly"] == ""

    @pytest.mark.parametrize("bad", ["", "a;b", "a b", "a\r\nSet-Cookie: x", "é", '"x"'])
    def test_values_that_could_inject_are_refused(self, bad: str) -> None:
        """A value can never smuggle attributes or headers."""
        with pytest.raises(ValueError):
            set_cookie_header(CookiePolicy(), bad)


class TestDeleteCookie:
    def test_same_name_path_secure_and_max_age_zero(self) -> None:
        """T-04: deletion matches name, Path, Secure, with Max-Age=0 and a past Expires."""
        pair, a = attrs(delete_cookie_header(CookiePolicy()))
        assert pair == f"{NAME}="
        assert a["max-age"] == "0" and a["expires"].endswith("1970 00:00:00 GMT")
        assert a["path"] == "/" and "secure" in a and "domain" not in a


class TestParse:
    def test_exact_single_cookie(self) -> None:
        assert read_session_cookie([f"a=1; {NAME}={VALUE}; b=2"], NAME) == VALUE

    def test_split_headers(self) -> None:
        """HTTP/2 may split Cookie into several headers."""
        assert read_session_cookie(["a=1", f"{NAME}={VALUE}"], NAME) == VALUE

    @pytest.mark.parametrize("header", [
        f"={NAME}={VALUE}",
        f'"{NAME}"={VALUE}',
        f"..Host-session={VALUE}",
        f"_[Host-session={VALUE}",
        f"__host-session={VALUE}",
        f"__HOST-SESSION={VALUE}",
        f"{NAME} ={VALUE}",
        f"x{NAME}={VALUE}",
        f"{NAME}",
        f"{NAME}=",
        "",
    ])
    def test_lookalikes_never_match(self, header: str) -> None:
        """T-23: nameless, quoted, mangled and case variants are not the session cookie."""
        assert read_session_cookie([header], NAME) is None

    @pytest.mark.parametrize("headers", [
        [f"{NAME}={VALUE}; {NAME}={VALUE}"],
        [f"{NAME}={VALUE}; {NAME}=other"],
        [f"{NAME}={VALUE}", f"{NAME}=other"],
        [f"{NAME}=; {NAME}={VALUE}"],
    ])
    def test_duplicates_fail_closed(self, headers: list[str]) -> None:
        """T-23: two cookies with the session name are treated as no cookie."""
        assert read_session_cookie(headers, NAME) is None
        assert has_session_cookie(headers, NAME)

    def test_quoted_value_is_returned_verbatim(self) -> None:
        """Values are never unquoted (the manager then rejects them)."""
        assert read_session_cookie([f'{NAME}="{VALUE}"'], NAME) == f'"{VALUE}"'

    @given(st.text(max_size=80))
    def test_never_raises_and_only_exact_names(self, text: str) -> None:
        """Any header text parses without error; a match always has the exact name."""
        value = read_session_cookie([text], NAME)
        if value is not None:
            assert f"{NAME}=" in text


class TestSessionHeaders:
    def test_untouched_anonymous_request_gets_nothing(self) -> None:
        mgr = memory_manager()
        s = mgr.new()
        assert session_headers(CookiePolicy(), s, cookie_sent=False) == []

    def test_membership_test_only_gets_cache_headers(self) -> None:
        """T-11 / CVE-2026-27205: a bare `in` still marks the response private."""
        mgr = memory_manager()
        s = mgr.new()
        assert "x" not in s
        got = dict(session_headers(CookiePolicy(), s, cookie_sent=False))
        assert got == {"Vary": "Cookie", "Cache-Control": "no-store"}

    def test_refresh_only_gets_cache_headers(self) -> None:
        """T-11 / CVE-2023-30861: a presented cookie makes the response vary on it."""
        mgr = memory_manager()
        got = dict(session_headers(CookiePolicy(), mgr.new(), cookie_sent=True))
        assert got["Vary"] == "Cookie" and got["Cache-Control"] == "no-store"

    def test_new_cookie_after_save(self) -> None:
        mgr = memory_manager()
        s = mgr.new()
        s["a"] = 1
        mgr.save(s)
        got = session_headers(CookiePolicy(), s, cookie_sent=False)
        assert got[0] == ("Set-Cookie", set_cookie_header(CookiePolicy(), s.cookie_value or ""))

    def test_ended_session_gets_deletion_and_clear_site_data(self) -> None:
        mgr = memory_manager()
        s = mgr.new()
        s["a"] = 1
        mgr.save(s)
        mgr.logout(s)
        got = session_headers(CookiePolicy(), s, cookie_sent=True)
        assert ("Set-Cookie", delete_cookie_header(CookiePolicy())) in got
        assert ("Clear-Site-Data", '"cookies"') in got
        off = session_headers(CookiePolicy(clear_site_data=False), s, cookie_sent=True)
        assert all(name != "Clear-Site-Data" for name, _ in off)

    def test_max_age_follows_remaining_absolute_lifetime(self) -> None:
        clock = FrozenClock()
        mgr = memory_manager(clock=clock, cookie_max_age=timedelta(hours=12))
        s = mgr.new()
        s["a"] = 1
        mgr.save(s)
        clock.advance(3600)
        policy = CookiePolicy.from_settings(mgr.settings)
        (_, cookie), *_ = session_headers(policy, s, cookie_sent=False, now=clock())
        assert attrs(cookie)[1]["max-age"] == str(11 * 3600)


class TestMerge:
    def test_vary_merged_and_cache_control_replaced(self) -> None:
        """An app's public caching is overridden on session responses."""
        got = merge_headers(
            [("vary", "Accept-Encoding"), ("Cache-Control", "public, max-age=600"), ("X", "1")],
            [("Vary", "Cookie"), ("Cache-Control", "no-store")],
        )
        assert ("Vary", "Accept-Encoding, Cookie") in got
        assert [v for n, v in got if n.lower() == "cache-control"] == ["no-store"]
        assert ("X", "1") in got

    def test_vary_not_duplicated(self) -> None:
        got = merge_headers([("Vary", "cookie")], [("Vary", "Cookie")])
        assert [v for n, v in got if n.lower() == "vary"] == ["cookie"]

    def test_nothing_added_leaves_headers(self) -> None:
        assert merge_headers([("Cache-Control", "public")], []) == [("Cache-Control", "public")]


class TestTransport:
    @pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:80",
                                      "[::1]:8000", "::1", "app.localhost", "127.1.2.3"])
    def test_loopback_hosts(self, host: str) -> None:
        assert is_loopback(host)

    @pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "localhost.evil.com", "", None,
                                      "[2001:db8::1]:80"])
    def test_other_hosts(self, host: str | None) -> None:
        assert not is_loopback(host)

    def test_dev_http_only_on_loopback(self) -> None:
        """unsafe_dev_http allows plain http on localhost only."""
        dev = CookiePolicy(name="session", secure=False, dev_http=True)
        assert transport_allowed(dev, scheme="http", host="127.0.0.1:8000", client_ip="127.0.0.1")
        assert not transport_allowed(dev, scheme="http", host="example.com", client_ip="127.0.0.1")
        assert not transport_allowed(dev, scheme="http", host="localhost", client_ip="192.0.2.7")
        assert transport_allowed(dev, scheme="https", host="example.com", client_ip="192.0.2.7")
        assert transport_allowed(CookiePolicy(), scheme="http", host="x", client_ip="192.0.2.7")


def test_throttled_headers_round_up_and_bound_retry_after() -> None:
    """The 429 for a locked-out address: integer Retry-After in 1..86400, not cacheable."""
    assert cookies.retry_after_value(0.2) == "1"
    assert cookies.retry_after_value(29.01) == "30"
    assert cookies.retry_after_value(10**9) == "86400"
    assert cookies.retry_after_value(float("inf")) == "86400"
    headers = dict(cookies.throttled_headers(12.5))
    assert headers["Retry-After"] == "13"
    assert headers["Cache-Control"] == "no-store" and headers["Vary"] == "Cookie"
    assert "Set-Cookie" not in headers
