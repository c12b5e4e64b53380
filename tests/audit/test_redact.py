"""Tests for sessionward.audit.redact: the one sanitiser for messages and logs."""

from __future__ import annotations

import logging
import string
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.audit.redact import (
    MAX_LENGTH,
    OPERATOR_MAX_LENGTH,
    REDACTED,
    RedactingFilter,
    for_operator,
    redact_mapping,
    sanitize,
    sanitize_exception,
)

# Secrets carry the sentinel "Q"; surrounding text never does, so any "Q" in
# the output is a leak.
SENTINEL = "Q"
NONSPACE = "".join(c for c in string.printable if not c.isspace() and c != SENTINEL)
SAFE_TEXT = "".join(c for c in string.ascii_lowercase + string.digits + " .,;!?-_" if c != "q")
# What may stand between ordinary text and a path or URL (no word characters:
# "TCP/IP"-style single-slash words are deliberately kept).
SEPARATORS = [
    " ",
    "=",
    "'",
    '"',
    "(",
    "[",
    "<",
    ": ",
    ", ",
    "\n",
    "\t",
    "\x00",
    "\u202e",
    " \x1b[31m",
]

PROPS = settings(max_examples=300, database=None, deadline=None)

secret = st.text(alphabet=NONSPACE, min_size=0, max_size=12).map(lambda s: SENTINEL + s)
segment = st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=8)
secret_segment = st.tuples(segment, secret).map("".join)


@st.composite
def urls(draw: st.DrawFn) -> str:
    """URLs of many schemes with a secret in the userinfo, path or query."""
    scheme = draw(
        st.sampled_from(
            ["redis", "rediss", "https", "http", "sqlite", "postgres+psycopg", "s3", "x-custom"]
        )
    )
    where = draw(st.sampled_from(["password", "user", "path", "query", "fragment", "host"]))
    user, password, host = "u", "pw", "host.local"
    path, query, fragment = "/0", "", ""
    if where == "password":
        password = draw(secret)
    elif where == "user":
        user = draw(secret)
    elif where == "host":
        host = draw(secret_segment)
    elif where == "path":
        path = "/" + draw(secret_segment)
    elif where == "query":
        query = "?token=" + draw(secret)
    else:
        fragment = "#" + draw(secret)
    creds = draw(st.booleans()) or where in ("user", "password")
    auth = f"{user}:{password}@" if creds else ""
    return f"{scheme}://{auth}{host}:6379{path}{query}{fragment}"


@st.composite
def paths(draw: st.DrawFn) -> str:
    """Unix and Windows paths with a secret somewhere in a segment."""
    segs = draw(st.lists(segment, min_size=0, max_size=3))
    segs.insert(draw(st.integers(0, len(segs))), draw(secret_segment))
    kind = draw(
        st.sampled_from(
            ["abs", "home", "homeuser", "dot", "dotdot", "drive", "drive/", "unc", "rooted"]
        )
    )
    if kind == "abs":
        return "/" + "/".join(segs)
    if kind == "home":
        return "~/" + "/".join(segs)
    if kind == "homeuser":
        return "~bob/" + "/".join(segs)
    if kind == "dot":
        return "./" + "/".join(segs)
    if kind == "dotdot":
        return "../" + "/".join(segs)
    if kind == "drive":
        return "C:\\" + "\\".join(segs)
    if kind == "drive/":
        return "d:/" + "/".join(segs)
    if kind == "unc":
        return "\\\\server\\" + "\\".join(segs)
    return "\\" + "\\".join(segs)


@st.composite
def messages(draw: st.DrawFn, sensitive: st.SearchStrategy[str]) -> str:
    """Ordinary text with one sensitive token embedded after a separator."""
    before = draw(st.text(alphabet=SAFE_TEXT, max_size=60))
    after = draw(st.text(alphabet=SAFE_TEXT, max_size=60))
    sep = draw(st.sampled_from(SEPARATORS))
    closing = draw(st.sampled_from(["", "'", ")", ".", ",", '"', ">", "]"]))
    return f"{before}{sep}{draw(sensitive)}{closing} {after}"


fragments = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [*SEPARATORS, "/", "\\", ":", "//", "~", ".", "@", "[url]", "[path]", "C:", "://"]
    ),
    urls(),
    paths(),
)


class TestProperties:
    """The invariants every caller relies on."""

    @PROPS
    @given(messages(urls()))
    def test_url_secrets_never_survive(self, text: str) -> None:
        """No part of a URL's credentials, host, path or query reaches the output."""
        assert SENTINEL not in sanitize(text)

    @PROPS
    @given(messages(paths()))
    def test_path_segments_never_survive(self, text: str) -> None:
        """No segment of a Unix or Windows path reaches the output."""
        assert SENTINEL not in sanitize(text)

    @PROPS
    @given(st.text(max_size=2000))
    def test_length_is_capped(self, text: str) -> None:
        """The output never exceeds MAX_LENGTH characters."""
        assert len(sanitize(text)) <= MAX_LENGTH

    @PROPS
    @given(st.lists(fragments, max_size=40).map("".join))
    def test_idempotent(self, text: str) -> None:
        """Sanitising a sanitised text changes nothing."""
        once = sanitize(text)
        assert sanitize(once) == once

    @PROPS
    @given(st.text(max_size=300))
    def test_no_control_characters(self, text: str) -> None:
        """Control and format characters never reach the output."""
        out = sanitize(text)
        assert not [c for c in out if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]

    @PROPS
    @given(st.text(alphabet=NONSPACE, max_size=100).map(lambda s: "x" * 490 + " /" + SENTINEL + s))
    def test_truncation_never_uncovers_a_path(self, text: str) -> None:
        """A path cut by the length limit is still hidden."""
        assert SENTINEL not in sanitize(text)


class TestExamples:
    """Concrete inputs from the design and from real error messages."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("connect redis://user:pw@h:1/0 failed", "connect [url] failed"),
            ("GET https://x/y?token=abc.", "GET [url]."),
            ("open sqlite:///a/b.db", "open [url]"),
            ("dsn=postgres://bob:hunter2@db/app", "dsn=[url]"),
            ("user:hunter2@db.local refused", "[url] refused"),
            ("mailto:ops@example.com", "[url]"),
            ("cannot read /etc/x", "cannot read [path]"),
            ("cannot read ~/x", "cannot read [path]"),
            ("cannot read ./x/y", "cannot read [path]"),
            ("cannot read ../up", "cannot read [path]"),
            ("cannot read C:\\x\\y", "cannot read [path]"),
            ("cannot read c:/x/y", "cannot read [path]"),
            ("cannot read \\\\server\\share", "cannot read [path]"),
            (
                "[Errno 2] No such file or directory: '/srv/keys/k1'",
                "[Errno 2] No such file or directory: '[path]'",
            ),
            ("(see /var/log/a.log).", "(see [path])."),
            ("see\x00/etc/x", "see [path]"),
            ("redis:\x00//u:p@h", "redis: [path]"),
            ("line1\r\nline2\x1b[31mred", "line1 line2 red"),
            ("TCP/IP and/or 1/2, ratio 3:4", "TCP/IP and/or 1/2, ratio 3:4"),
            ("session_limit reached for alice", "session_limit reached for alice"),
        ],
    )
    def test_examples(self, text: str, expected: str) -> None:
        """Each documented shape is replaced and ordinary prose is kept."""
        assert sanitize(text) == expected

    def test_non_string_objects(self) -> None:
        """Any object is converted with str() first."""
        assert (
            sanitize(OSError(13, "Permission denied", "/etc/shadow"))
            == "[Errno 13] Permission denied: '[path]'"
        )

    def test_broken_str_does_not_raise(self) -> None:
        """An object whose __str__ raises gives its type name."""

        class Broken:
            def __str__(self) -> str:
                raise RuntimeError("boom")

        assert sanitize(Broken()) == "<unprintable Broken>"

    def test_sanitize_exception(self) -> None:
        """Exceptions become 'TypeName: message' without paths."""
        exc = FileNotFoundError(2, "No such file", "/srv/secret/key")
        assert sanitize_exception(exc) == "FileNotFoundError: [Errno 2] No such file: '[path]'"
        assert sanitize_exception(ValueError()) == "ValueError"

    def test_huge_input_is_bounded(self) -> None:
        """A multi-megabyte input is handled and capped."""
        assert len(sanitize("/a " * 2_000_000)) == MAX_LENGTH


class TestRedactMapping:
    """The allowlist helper for list/show/audit output."""

    def test_drops_fields_not_allowed(self) -> None:
        """Only allowlisted keys survive, in their original order."""
        data = {"user": "alice", "token": "s3cret", "created": 1.5, "ip": "127.0.0.1"}
        assert redact_mapping(data, ["created", "user"]) == {"user": "alice", "created": 1.5}

    def test_placeholder_keeps_key_not_value(self) -> None:
        """With a placeholder the key is shown but its value is not."""
        out = redact_mapping({"user": "alice", "token": "s3cret"}, {"user"}, placeholder=REDACTED)
        assert out == {"user": "alice", "token": REDACTED}

    def test_allowed_values_are_sanitised(self) -> None:
        """Strings inside allowed values (nested too) still pass the sanitiser."""
        data = {
            "store": "redis://u:pw@h/0",
            "meta": {"file": "/etc/x", "n": [1, "~/y"]},
            "ok": True,
        }
        out = redact_mapping(data, ["store", "meta", "ok"])
        assert out == {"store": "[url]", "meta": {"file": "[path]", "n": [1, "[path]"]}, "ok": True}

    def test_input_not_modified(self) -> None:
        """The caller's mapping is left as it was."""
        data = {"a": "/etc/x", "b": 1}
        redact_mapping(data, ["a"])
        assert data == {"a": "/etc/x", "b": 1}


class TestRedactingFilter:
    """The logging filter."""

    @pytest.fixture(name="capture")
    def fixture_capture(self) -> Iterator[list[str]]:
        records: list[str] = []
        logger = logging.getLogger("sessionward.test.redact")
        handler = logging.Handler()
        handler.setFormatter(logging.Formatter("%(message)s|%(extra_field)s"))
        handler.emit = lambda record: records.append(handler.format(record))  # type: ignore[method-assign]
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
        logger.propagate = False
        yield records
        logger.removeHandler(handler)
        logger.propagate = True

    def test_message_and_args(self, capture: list[str]) -> None:
        """Secrets split between the format string and the arguments are caught."""
        log = logging.getLogger("sessionward.test.redact")
        log.warning("store %s%s unreachable", "redis:", "//u:pw@h/0", extra={"extra_field": "-"})
        log.warning("key file %s refused", "/srv/keys/k", extra={"extra_field": "C:\\k"})
        assert capture == ["store [url] unreachable|-", "key file [path] refused|[path]"]

    def test_exception_info_has_no_traceback_paths(self, capture: list[str]) -> None:
        """Tracebacks (full of file paths) are reduced to a sanitised line."""
        log = logging.getLogger("sessionward.test.redact")
        try:
            raise OSError(2, "No such file", "/srv/x")
        except OSError:
            log.exception("failed", extra={"extra_field": "-"})
        assert capture == ["failed|-\nFileNotFoundError: [Errno 2] No such file: '[path]'"]
        assert 'File "' not in capture[0]

    def test_bad_format_args_do_not_raise(self, capture: list[str]) -> None:
        """A log call with mismatched arguments still yields a sanitised record."""
        logging.getLogger("sessionward.test.redact").warning(
            "%s %s /etc/x", "a", extra={"extra_field": "-"}
        )
        assert capture == ["%s %s [path] (unformattable args)|-"]

    def test_never_rejects(self) -> None:
        """The filter keeps every record."""
        record = logging.makeLogRecord({"msg": "hello /etc/x"})
        assert RedactingFilter().filter(record) is True
        assert record.getMessage() == "hello [path]"


PASSWORDS = st.text(alphabet=NONSPACE, min_size=1, max_size=30).map(lambda p: f"{SENTINEL}{p}")


class TestForOperator:
    """for_operator keeps what the operator typed (paths, schemes) and masks secrets."""

    @pytest.mark.parametrize("text", [
        "unknown store URL scheme 'bogus'; known: file://, memory://, redis://",
        "key file /etc/app/session.key does not exist; create one with "
        "`sessionward keygen --out /etc/app/session.key`",
        "key file keys/k.key is group-readable; fix with: chmod 600 keys/k.key",
        r"cannot open C:\data\sessions.db",
        "SQLite store sqlite:////var/lib/app/sessions.db does not exist",
        "redis store at /run/redis/redis.sock is unreachable",
    ])
    def test_paths_and_schemes_are_kept(self, text: str) -> None:
        """Messages without credentials come back unchanged."""
        assert for_operator(text) == text

    @given(user=st.text(alphabet=string.ascii_lowercase, max_size=8), password=PASSWORDS,
           host=st.sampled_from(["h", "127.0.0.1:6379", "[::1]:1", "node-1.example"]))
    def test_url_passwords_are_masked(self, user: str, password: str, host: str) -> None:
        """scheme://user:password@host and scheme://secret@host never show the secret."""
        lone = password.replace(":", "")  # a lone userinfo with a colon is user:password
        for url in (f"redis://{user}:{password}@{host}/0", f"rediss://{lone}@{host}",
                    f"{user or 'u'}:{password}@{host}"):
            shown = for_operator(f"cannot reach {url}: refused")
            assert SENTINEL not in shown, shown
            assert "***@" in shown

    @pytest.mark.parametrize("name", ["password", "token", "secret", "PASSWORD", "api_key"])
    def test_secret_query_options_are_masked(self, name: str) -> None:
        """?password=... and friends are masked; other options stay."""
        shown = for_operator(f"redis://h:1/0?db=2&{name}=QsecretQ&socket_timeout=1")
        assert shown == f"redis://h:1/0?db=2&{name}=***&socket_timeout=1"

    def test_controls_stripped_and_length_bounded(self) -> None:
        """Escapes go as in sanitize(); the text is cut at OPERATOR_MAX_LENGTH."""
        assert for_operator("a\x1b[31mred\x00/etc/x") == "a red /etc/x"
        assert len(for_operator("x" * 10 * OPERATOR_MAX_LENGTH)) == OPERATOR_MAX_LENGTH

    def test_sanitize_still_redacts_the_same_text(self) -> None:
        """The logs' sanitiser is unchanged: the operator's view is a separate function."""
        text = "key file /etc/app/k missing; redis://u:pw@h/0"
        assert sanitize(text) == "key file [path] missing; [url]"
        assert for_operator(text) == "key file /etc/app/k missing; redis://u:***@h/0"
