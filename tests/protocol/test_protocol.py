"""Sans-IO protocol: framing, parsing, schemas, roles and the error table (no sockets)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.core.errors import (
    ConfigurationError,
    LockLostError,
    LockTimeoutError,
    ProtocolError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    SessionLimitError,
    SessionReadOnlyError,
    StoreUnavailableError,
    ThrottledError,
)
from sessionward.core.net import is_loopback_address as is_loopback
from sessionward.core.net import require_loopback
from sessionward.daemon.config import parse_tcp
from sessionward.protocol import errors as wire_errors
from sessionward.protocol import framing, schema
from sessionward.protocol.errors import FrameTooLarge, error_from_wire
from sessionward.protocol.framing import FrameDecoder, parse_frame
from sessionward.protocol.schema import validate
from sessionward.remote import parse_url

# Pickle streams written out as bytes (the repository never imports pickle):
# pickle.dumps({"a": 1}), pickle.dumps([1], protocol=0), pickle.dumps({"command": "ping"}).
PICKLE_DICT = b"\x80\x04\x95\n\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."
PICKLE_LIST_P0 = b"(lp0\nI1\na."
PICKLE_PING = (b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x07command\x94"
               b"\x8c\x04ping\x94s.")

ALL_COMMANDS = sorted(schema.APP_COMMANDS | schema.ADMIN_COMMANDS)
HOSTILE_NAMES = ["", " ", "__init__", "__class__", "__dict__", "__getattribute__", "PING",
                 " ping", "ping ", "ping\x00", "h_ping", "reload_keys", "revoke_all",
                 "rotate-keys", "_end", "../list", "list\n"]


class TestFraming:
    def test_many_frames_in_one_packet(self) -> None:
        """Several frames in one chunk come out in order."""
        dec = FrameDecoder()
        assert dec.feed(b'{"a":1}\n{"b":2}\n{"c"') == [b'{"a":1}', b'{"b":2}']
        assert dec.feed(b":3}\n") == [b'{"c":3}']

    def test_one_frame_over_many_packets(self) -> None:
        """A frame split byte by byte is reassembled."""
        dec = FrameDecoder()
        out: list[bytes] = []
        for byte in b'{"command":"ping"}\r\n':
            out += dec.feed(bytes([byte]))
        assert out == [b'{"command":"ping"}']

    def test_blank_lines_skipped(self) -> None:
        assert FrameDecoder().feed(b"\n\r\n  \n{}\n") == [b"{}"]

    def test_exactly_max_frame_accepted(self) -> None:
        """A 65 536-byte frame is the largest accepted."""
        frame = b"x" * framing.MAX_FRAME
        assert FrameDecoder().feed(frame + b"\n") == [frame]

    def test_over_cap_detected_before_newline(self) -> None:
        """65 537 bytes without a newline are refused at once (no waiting for the end)."""
        dec = FrameDecoder()
        dec.feed(b"x" * framing.MAX_FRAME)
        with pytest.raises(FrameTooLarge) as info:
            dec.feed(b"x")
        assert info.value.code == "payload_too_large"

    def test_over_cap_complete_frame(self) -> None:
        with pytest.raises(FrameTooLarge):
            FrameDecoder().feed(b"x" * (framing.MAX_FRAME + 1) + b"\n")

    def test_connection_buffer_cap(self) -> None:
        """More than 1 MiB in one feed is refused even if made of small frames."""
        dec = FrameDecoder()
        with pytest.raises(FrameTooLarge, match="1 MiB"):
            dec.feed(b"{}\n" * (framing.MAX_BUFFER // 3 + 1))


class TestParse:
    @pytest.mark.parametrize("raw", [
        b"\xff\xfe{}", b'{"a":"\xc3"}', PICKLE_DICT, PICKLE_LIST_P0,
        b"NaN", b'{"a":1e400}', b'{"a":NaN}', b"{", b'{"a":1,}', b"\x80\x04K\x01.",
        b'{"a":"\\ud800"}' + b"\xed\xa0\x80",
    ])
    def test_invalid_json(self, raw: bytes) -> None:
        """Non-UTF-8, pickle opcodes, NaN, infinities, truncation: invalid_json."""
        with pytest.raises(ProtocolError) as info:
            parse_frame(raw)
        assert info.value.code in ("invalid_json", "invalid_argument")

    def test_pickle_is_never_loaded(self) -> None:
        """A pickle stream is refused as invalid_json, never unpickled."""
        with pytest.raises(ProtocolError) as info:
            parse_frame(PICKLE_PING)
        assert info.value.code == "invalid_json"

    @pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null", b"true"])
    def test_not_an_object(self, raw: bytes) -> None:
        with pytest.raises(ProtocolError) as info:
            parse_frame(raw)
        assert info.value.code == "invalid_argument"

    def test_depth_32_accepted_33_refused(self) -> None:
        """Nesting of 32 passes; 33 is invalid_argument."""
        ok = b'{"a":' * 31 + b"{}" + b"}" * 31
        assert framing.nesting_depth(ok) == 32
        parse_frame(ok)
        deep = b'{"a":' * 32 + b"{}" + b"}" * 32
        with pytest.raises(ProtocolError) as info:
            parse_frame(deep)
        assert info.value.code == "invalid_argument"

    def test_deep_garbage_is_invalid_argument(self) -> None:
        """Ten thousand open brackets never reach the parser."""
        with pytest.raises(ProtocolError) as info:
            parse_frame(b"[" * 10_000)
        assert info.value.code == "invalid_argument"

    def test_brackets_in_strings_do_not_count(self) -> None:
        raw = orjson.dumps({"s": "[" * 100 + "{" * 100, "t": '\\"[[[['})
        assert framing.nesting_depth(raw) == 1
        assert parse_frame(raw)["s"].startswith("[")

    def test_huge_integer_is_not_an_int(self) -> None:
        """orjson turns a 30-digit integer into a float, which int fields refuse."""
        doc = parse_frame(b'{"limit": 123456789012345678901234567890}')
        with pytest.raises(ProtocolError):
            validate(doc, schema.SCHEMAS["list"])


class TestSchemas:
    def base(self, **fields: Any) -> dict[str, Any]:
        return {"command": "load", "token": "t", **fields}

    def check(self, command: str, doc: dict[str, Any], role: str = "app") -> dict[str, Any]:
        return validate(doc, schema.schema_for(role, command), extra=schema.COMMON)

    def test_valid(self) -> None:
        args = self.check("load", self.base(cookie="c", mode="read", id=3))
        assert args == {"cookie": "c", "mode": "read"}

    @pytest.mark.parametrize("doc", [
        {"cookie": 1}, {"cookie": True}, {"mode": "exclusive"}, {"mode": 1}, {"extra": 1},
        {"client": {"ip": "1.2.3.4", "evil": 1}}, {"client": []}, {"cookie": "x" * 129},
        {"__class__": 1}, {"client": {"ip": 5}},
    ])
    def test_invalid(self, doc: dict[str, Any]) -> None:
        """Unknown fields, wrong types, bad enums, oversized strings: invalid_argument."""
        with pytest.raises(ProtocolError) as info:
            self.check("load", self.base(**doc))
        assert info.value.code == "invalid_argument"

    @pytest.mark.parametrize(("command", "doc"), [
        ("list", {"limit": True}), ("list", {"limit": 0}), ("list", {"limit": 1.5}),
        ("cleanup", {"batch": -1}), ("show", {}), ("revoke", {"handle": None}),
        ("revoke-user", {"user": ""}),
    ])
    def test_admin_invalid(self, command: str, doc: dict[str, Any]) -> None:
        with pytest.raises(ProtocolError):
            self.check(command, {"command": command, "token": "t", **doc}, role="admin")

    def test_missing_token_is_invalid(self) -> None:
        with pytest.raises(ProtocolError):
            validate({"command": "ping"}, {}, extra=schema.COMMON)

    @pytest.mark.parametrize("value", [1.5, [], {}, "x" * 129, True, 2**60])
    def test_bad_request_id(self, value: Any) -> None:
        with pytest.raises(ProtocolError):
            schema.check_request_id(value)

    def test_every_command_has_a_schema(self) -> None:
        for command in ALL_COMMANDS:
            for role in ("app", "admin"):
                if schema.allowed(role, command):
                    schema.schema_for(role, command)


class TestRoles:
    @pytest.mark.parametrize("role", ["app", "admin"])
    def test_only_allowlisted_commands(self, role: str) -> None:
        """Every name outside the role's allowlist is refused, incl. empty and dunder."""
        allowed = schema.ROLES[role]
        for name in [*ALL_COMMANDS, *HOSTILE_NAMES]:
            assert schema.allowed(role, name) == (name in allowed), name
        assert not schema.allowed(role, None)
        assert not schema.allowed(role, ["ping"])

    def test_admin_cannot_do_session_ops_and_app_cannot_administer(self) -> None:
        shared = {"ping", "describe", "unlock"}  # unlock: own lease (app) / break a lock (admin)
        assert schema.APP_COMMANDS & schema.ADMIN_COMMANDS == shared
        assert not schema.allowed("nobody", "ping")


class TestErrors:
    def test_message_sanitised(self) -> None:
        """Even messages echoing client input pass the sanitiser."""
        frame = framing.error_frame(1, "invalid_argument",
                                     "unknown field '/etc/shadow' redis://u:pw@h:1/0")
        text = frame.decode()
        assert "/etc/shadow" not in text and "pw@" not in text
        assert "[path]" in text and "[url]" in text

    def test_unknown_type_becomes_internal(self) -> None:
        doc = orjson.loads(framing.error_frame(None, "bogus", "x"))
        assert doc["error"]["type"] == "internal_error" and "id" not in doc

    @pytest.mark.parametrize("exc", [
        SessionGoneError("g"), SessionExistsError("e"), SessionConflictError("c"),
        LockTimeoutError("t"), LockLostError("l"), ThrottledError(3.5, "th"),
        SessionLimitError("s"), SessionReadOnlyError("r"), ConfigurationError("cfg"),
        StoreUnavailableError("down"), TypeError("bad type"),
    ])
    def test_round_trip(self, exc: Exception) -> None:
        """Each library exception crosses the wire and comes back as the same class."""
        frame = framing.exception_frame(7, exc)
        assert frame is not None
        doc = orjson.loads(frame)
        assert doc["id"] == 7 and doc["error"]["type"] in wire_errors.ERROR_TYPES
        back = error_from_wire(doc["error"])
        assert type(back) is type(exc)
        if isinstance(exc, ThrottledError):
            assert isinstance(back, ThrottledError) and back.retry_after == 3.5

    def test_conflict_keys_travel(self) -> None:
        frame = framing.exception_frame(None, SessionConflictError("c", keys=frozenset("ab")))
        assert frame is not None
        back = error_from_wire(orjson.loads(frame)["error"])
        assert isinstance(back, SessionConflictError) and back.keys == {"a", "b"}

    def test_unexpected_exception_has_no_frame(self) -> None:
        assert framing.exception_frame(None, KeyError("x")) is None


class TestLoopback:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1",
                                      "::ffff:127.0.0.1", "::ffff:127.9.9.9"])
    def test_accepted(self, host: str) -> None:
        assert is_loopback(host)
        assert require_loopback(host) == host

    def test_localhost_name(self) -> None:
        assert require_loopback("localhost") == "127.0.0.1"

    @pytest.mark.parametrize("host", ["0.0.0.0", "::",  # noqa: S104 - refused addresses "::ffff:10.0.0.1", "::ffff:0.0.0.0",
                                      "10.0.0.1", "192.168.1.1", "example.com", "localhost.",
                                      "128.0.0.1", "::2", "fe80::1", "", "127.0.0.1.nip.io"])
    def test_refused(self, host: str) -> None:
        with pytest.raises(ConfigurationError):
            require_loopback(host)

    def test_tcp_flag(self) -> None:
        assert parse_tcp("127.0.0.1:8080") == ("127.0.0.1", 8080)
        assert parse_tcp("[::1]:0") == ("::1", 0)
        for bad in ("0.0.0.0:1", "[::]:1", "host:1", "127.0.0.1", "127.0.0.1:x"):
            with pytest.raises(ConfigurationError):
                parse_tcp(bad)

    def test_client_urls(self) -> None:
        """The client refuses non-loopback daemons too."""
        assert parse_url("sessionward:///run/x.sock") == "/run/x.sock"
        assert parse_url("sessionward+tcp://127.0.0.1:9") == ("127.0.0.1", 9)
        for bad in ("sessionward+tcp://10.0.0.1:9", "sessionward+tcp://[::]:9",
                    "sessionward+tcp://[::ffff:10.1.1.1]:9", "redis://x", "sessionward://"):
            with pytest.raises(ConfigurationError):
                parse_url(bad)


# ------------------------------------------------------------------ fuzzing


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096), st.lists(st.integers(1, 512), max_size=20))
def test_fuzz_decoder_and_parser_never_crash(data: bytes, cuts: list[int]) -> None:
    """Random bytes in random chunks: only FrameTooLarge / ProtocolError ever escape."""
    dec = FrameDecoder(max_frame=1024, max_buffer=8192)
    pos = 0
    frames: list[bytes] = []
    try:
        for cut in [*cuts, len(data)]:
            frames += dec.feed(data[pos:pos + cut])
            pos += cut
    except FrameTooLarge:
        return
    for frame in frames:
        try:
            parse_frame(frame)
        except ProtocolError as exc:
            assert exc.code in ("invalid_json", "invalid_argument")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), max_size=6),
       st.integers(1, 64))
def test_fuzz_split_invariance(docs: list[dict[str, Any]], chunk: int) -> None:
    """Frames come out the same whatever the packet boundaries."""
    stream = b"".join(orjson.dumps(d) + b"\n" for d in docs)
    dec = FrameDecoder()
    frames: list[bytes] = []
    for i in range(0, len(stream), chunk):
        frames += dec.feed(stream[i:i + chunk])
    assert [orjson.loads(f) for f in frames] == [orjson.loads(orjson.dumps(d)) for d in docs]
    for frame in frames:
        try:
            parse_frame(frame)
        except ProtocolError as exc:
            assert exc.code == "invalid_argument"  # only nesting may be refused


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(10**40), max_value=10**40), st.integers(0, 60))
def test_fuzz_numbers_and_depth(number: int, depth: int) -> None:
    """Huge numbers and any nesting depth: a clean answer, never a crash."""
    raw = b'{"a":' * depth + str(number).encode() + b"}" * depth
    try:
        parse_frame(raw if depth else b'{"n":' + str(number).encode() + b"}")
    except ProtocolError as exc:
        assert exc.code == "invalid_argument" and depth > framing.MAX_DEPTH


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_truncated_json(text: str) -> None:
    """Every prefix of a valid request is either valid or a clean error."""
    raw = orjson.dumps({"command": "load", "token": text, "cookie": text})
    for end in range(0, len(raw), max(1, len(raw) // 20)):
        try:
            parse_frame(raw[:end])
        except ProtocolError:
            pass
