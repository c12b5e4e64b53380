"""The daemon wire protocol, sans I/O: framing, schemas, roles and the error table.

Everything here is a pure function or a small state machine over bytes, so
it is tested with vectors and fuzzed without sockets
(``tests/daemon/test_protocol.py``).  The prose contract is
``docs/PROTOCOL.md``; change both together.

Framing is NDJSON: one JSON object per ``\\n``-terminated line, UTF-8.
A frame longer than :data:`MAX_FRAME` bytes is refused *as soon as the
buffer holds more than that many bytes without a newline* — a client cannot
make the daemon buffer an endless line.  Nesting deeper than
:data:`MAX_DEPTH` is refused before the JSON parser sees the frame.

Security: nothing but JSON is ever decoded (a pickle opcode stream is just
invalid JSON); every request is checked against a strict per-command schema
(unknown fields, wrong types, oversized strings are ``invalid_argument``);
every error message leaves through :func:`error_frame`, which runs the one
sanitiser (:func:`sessionward.redact.sanitize`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from ..errors import (
    CodecError,
    ConfigurationError,
    LockLostError,
    LockTimeoutError,
    ProtocolError,
    ReauthenticationRequired,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    SessionLimitError,
    SessionReadOnlyError,
    SessionTooLargeError,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
    ThrottledError,
)
from ..redact import sanitize

PROTOCOL_VERSION: Final = 1
MAX_FRAME: Final = 65_536
"""Longest accepted request frame in bytes, excluding the newline."""
MAX_BUFFER: Final = 1 << 20
"""Most unprocessed bytes held for one connection."""
MAX_DEPTH: Final = 32
"""Deepest accepted JSON nesting (the top-level object is depth 1)."""
MAX_RESPONSE: Final = 16 << 20
"""Longest response frame a client accepts."""

ERROR_TYPES: Final = (
    "invalid_json", "payload_too_large", "connection_timeout", "too_many_connections",
    "auth_failed", "unknown_command", "forbidden_command", "invalid_argument",
    "session_not_found", "conflict", "lock_timeout", "lock_lost", "throttled",
    "internal_error",
)
"""Every ``error.type`` the daemon sends (DESIGN §9, a MUST)."""


class FrameTooLarge(ProtocolError):
    """A frame (or the connection's buffer) exceeded its cap; close the connection."""

    def __init__(self, message: str = "frame exceeds 65536 bytes") -> None:
        super().__init__("payload_too_large", message)


def invalid(message: str) -> ProtocolError:
    """An ``invalid_argument`` error (for ``raise invalid(...)``)."""
    return ProtocolError("invalid_argument", message)


# ------------------------------------------------------------------- framing


class FrameDecoder:
    """Split a byte stream into frames (lines), enforcing the caps.

    Usage: ``for frame in decoder.feed(chunk): ...``.  Blank lines are
    skipped (keep-alives); a trailing ``\\r`` is dropped.

    Raises (``feed``):
        FrameTooLarge: a line over ``max_frame`` bytes (even without a
            newline yet) or more than ``max_buffer`` unprocessed bytes.
    """

    def __init__(self, max_frame: int = MAX_FRAME, max_buffer: int = MAX_BUFFER) -> None:
        self.max_frame = max_frame
        self.max_buffer = max_buffer
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held so far."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the frames it completed, in order."""
        if len(self._buf) + len(data) > self.max_buffer:
            raise FrameTooLarge("connection buffer exceeds 1 MiB")
        self._buf += data
        frames: list[bytes] = []
        start = 0
        while (end := self._buf.find(b"\n", start)) != -1:
            line = bytes(self._buf[start:end])
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_frame:
                raise FrameTooLarge()
            if line.strip():
                frames.append(line)
        del self._buf[:start]
        if len(self._buf) > self.max_frame:
            raise FrameTooLarge()
        return frames


_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE = re.compile(rb"[\[\]{}]")


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting of ``raw``, ignoring brackets inside strings.

    Works on invalid JSON too (it only counts); linear time.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return raw.count(b"[") + raw.count(b"{")
    depth = deepest = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def parse_frame(raw: bytes) -> dict[str, Any]:
    """Decode one frame into a request object.

    Raises:
        ProtocolError: ``invalid_argument`` for nesting over :data:`MAX_DEPTH`
            or a value that is not an object; ``invalid_json`` for anything
            that is not UTF-8 JSON (including pickle streams, NaN, 1e400).
    """
    if nesting_depth(raw) > MAX_DEPTH:
        raise invalid(f"JSON nesting deeper than {MAX_DEPTH} levels")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtocolError("invalid_json", "the frame is not valid UTF-8 JSON") from None
    if type(doc) is not dict:
        raise invalid("a request must be a JSON object")
    return doc


# ------------------------------------------------------------------- schemas


@dataclass(frozen=True, slots=True)
class Field:
    """One request field.

    Attributes:
        kind: ``str``, ``int``, ``bool``, ``num``, ``obj`` (a JSON object),
            ``any`` (any JSON value) or ``enum`` (a str in ``choices``).
        required: the field must be present.
        nullable: ``null`` is accepted (and means "absent").
        max_len: longest accepted string (characters).
        min_len: shortest accepted string.
        lo / hi: bounds of an ``int`` or ``num``.
        choices: allowed values of an ``enum``.
        schema: for ``obj``, the schema of its members (``None``: any members).
    """

    kind: str
    required: bool = False
    nullable: bool = False
    max_len: int = 256
    min_len: int = 0
    lo: float = 0
    hi: float = 2**53
    choices: tuple[str, ...] = ()
    schema: Mapping[str, Field] | None = None


Schema = Mapping[str, Field]

_HANDLE = Field("str", max_len=64)
_COOKIE = Field("str", max_len=128)
_CLIENT: Schema = {
    "ip": Field("str", nullable=True, max_len=64),
    "user_agent": Field("str", nullable=True, max_len=512),
    "correlation_id": Field("str", nullable=True, max_len=128),
}
_CLIENT_F = Field("obj", nullable=True, schema=_CLIENT)
_USER = Field("str", required=True, max_len=256, min_len=1)
_STATE: Schema = {
    "cookie": Field("str", nullable=True, max_len=128),
    "version": Field("int", nullable=True),
    "base": Field("obj", nullable=True),
    "data": Field("obj", nullable=True),
    "lease": Field("str", nullable=True, max_len=64),
    "client": _CLIENT_F,
}
"""The client's copy of a session, sent with every state-changing command."""

COMMON: Schema = {
    "command": Field("str", required=True, max_len=64),
    "token": Field("str", required=True, max_len=512),
    "id": Field("any", nullable=True),
}

SCHEMAS: dict[str, Schema] = {
    "ping": {},
    "describe": {},
    "create": {"data": Field("obj", required=True), "client": _CLIENT_F,
               "reservation": Field("str", nullable=True, min_len=1, max_len=64)},
    "reserve": {},
    "reset": {},
    "load": {"cookie": _COOKIE, "client": _CLIENT_F,
             "mode": Field("enum", choices=("read", "optimistic"))},
    "lock": {"cookie": _COOKIE, "client": _CLIENT_F},
    "unlock": {"lease": Field("str", required=True, max_len=64)},
    "touch": {"cookie": _COOKIE, "client": _CLIENT_F},
    "save": {**_STATE, "mode": Field("enum", choices=("optimistic", "exclusive"))},
    "update": {**_STATE, "key": Field("str", required=True, max_len=256),
               "value": Field("any", nullable=True),
               "expected": Field("any", nullable=True),
               "expected_present": Field("bool", required=True)},
    "login": {**_STATE, "user": _USER, "level": Field("int", hi=1000),
              "pending": Field("bool"), "keep_data": Field("bool")},
    "rotate": {**_STATE, "reason": Field("str", max_len=64)},
    "elevate": {**_STATE, "duration": Field("num", lo=0, hi=86_400)},
    "logout": _STATE,
    "destroy": _STATE,
    "sessions_of": {"user": _USER, "current": _HANDLE},
    "revoke_user": {"user": _USER, "keep": _HANDLE},
    "revoke_device": {**_STATE, "handle": Field("str", required=True, max_len=64),
                      "max_auth_age": Field("num", lo=0, hi=86_400)},
    "tokens": {"action": Field("enum", required=True, choices=("issue", "consume", "revoke")),
               "purpose": Field("str", required=True, min_len=1, max_len=64),
               "subject": Field("str", nullable=True, min_len=1, max_len=256),
               "secret": Field("str", nullable=True, min_len=1, max_len=64),
               "ttl": Field("num", lo=1, hi=30 * 86_400),
               "data": Field("any", nullable=True, max_len=16_384)},
    "throttle": {"action": Field("enum", required=True,
                                 choices=("hit", "check", "require", "reset")),
                 "namespace": Field("str", min_len=1, max_len=32),
                 "key": Field("str", nullable=True, max_len=128),
                 "user": Field("str", nullable=True, max_len=256),
                 "ip": Field("str", nullable=True, max_len=64),
                 "attempts": Field("int", lo=1, hi=100),
                 "initial": Field("num", lo=1, hi=3600),
                 "cap": Field("num", lo=60, hi=86_400),
                 "multiplier": Field("num", lo=1.1, hi=10),
                 "quiet_period": Field("num", lo=60, hi=30 * 86_400)},
    # admin
    "list": {"user": Field("str", nullable=True, max_len=256), "expired": Field("bool"),
             "limit": Field("int", lo=1, hi=1000), "cursor": Field("str", nullable=True,
                                                                   max_len=512)},
    "show": {"handle": Field("str", required=True, max_len=64), "data": Field("bool")},
    "revoke": {"handle": Field("str", required=True, max_len=64)},
    "revoke-user": {"user": _USER, "keep": Field("str", nullable=True, max_len=64)},
    "revoke-all": {},
    "cleanup": {"batch": Field("int", lo=1, hi=10_000),
                "max_batches": Field("int", nullable=True, lo=1, hi=10_000)},
    "stats": {},
    "unlock-admin": {"key": Field("str", nullable=True, max_len=128),
                     "user": Field("str", nullable=True, max_len=256),
                     "ip": Field("str", nullable=True, max_len=64),
                     "throttle": Field("str", min_len=1, max_len=32)},
    "reseal": {"batch": Field("int", lo=1, hi=10_000),
               "cursor": Field("str", nullable=True, max_len=512)},
    "key-usage": {"kid": Field("str", required=True, min_len=1, max_len=16)},
    "reload-keys": {},
}

BOTH: Final = frozenset({"ping", "describe"})
APP_COMMANDS: Final = BOTH | frozenset({
    "create", "load", "save", "rotate", "login", "logout", "destroy", "touch", "lock",
    "unlock", "update", "elevate", "sessions_of", "revoke_user", "revoke_device", "tokens",
    "throttle", "reserve", "reset",
})
ADMIN_COMMANDS: Final = BOTH | frozenset({
    "list", "show", "revoke", "revoke-user", "revoke-all", "cleanup", "stats", "unlock",
    "reseal", "key-usage", "reload-keys",
})
ROLES: Final[Mapping[str, frozenset[str]]] = {"app": APP_COMMANDS, "admin": ADMIN_COMMANDS}


def schema_for(role: str, command: str) -> Schema:
    """The schema of ``command`` as ``role`` sends it.

    ``unlock`` means "release my lease" to ``app`` and "break a lock" to
    ``admin``; the table keys the admin flavour as ``unlock-admin``.
    """
    if role == "admin" and command == "unlock":
        return SCHEMAS["unlock-admin"]
    return SCHEMAS[command]


def allowed(role: str, command: object) -> bool:
    """Whether ``role`` may run ``command`` (exact membership, nothing else)."""
    return isinstance(command, str) and command in ROLES.get(role, frozenset())


def _check_kind(name: str, spec: Field, value: Any) -> None:
    kind = spec.kind
    ok = {
        "str": type(value) is str, "enum": type(value) is str, "bool": type(value) is bool,
        "int": type(value) is int, "num": type(value) in (int, float),
        "obj": type(value) is dict, "any": True,
    }.get(kind, False)
    if not ok:
        raise invalid(f"field {name!r} must be of type {'string' if kind == 'enum' else kind}")
    if type(value) is str and not spec.min_len <= len(value) <= spec.max_len:
        raise invalid(f"field {name!r} must be {spec.min_len} to {spec.max_len} characters")
    if kind == "enum" and value not in spec.choices:
        raise invalid(f"field {name!r} must be one of {', '.join(spec.choices)}")
    if kind in ("int", "num") and not spec.lo <= value <= spec.hi:
        raise invalid(f"field {name!r} must be between {spec.lo:g} and {spec.hi:g}")
    if kind == "obj" and spec.schema is not None:
        validate(value, spec.schema, prefix=f"{name}.")


def validate(doc: Mapping[str, Any], schema: Schema, *, prefix: str = "",
             extra: Schema | None = None) -> dict[str, Any]:
    """Check ``doc`` against ``schema`` (plus ``extra``, e.g. :data:`COMMON`).

    Returns:
        The fields of ``schema`` that are present and not null.

    Raises:
        ProtocolError: ``invalid_argument`` naming the first bad field.
    """
    every = {**(extra or {}), **schema}
    for name in doc:
        if name not in every:
            raise invalid(f"unknown field {prefix}{name[:64]!r}")
    out: dict[str, Any] = {}
    for name, spec in every.items():
        value = doc.get(name)
        if value is None:
            if spec.required or (name in doc and not spec.nullable and spec.kind != "any"):
                raise invalid(f"field {prefix}{name!r} is required")
            continue
        _check_kind(prefix + name, spec, value)
        if name in schema:
            out[name] = value
    return out


def check_request_id(value: Any) -> str | int | None:
    """The request ``id`` to echo (a string of at most 128 characters or an
    integer), else ``None``.

    Raises:
        ProtocolError: ``invalid_argument`` for any other id.
    """
    if value is None:
        return None
    if (type(value) is str and len(value) <= 128) or (
        type(value) is int and abs(value) < 2**53
    ):
        return value
    raise invalid("field 'id' must be a string (<= 128 chars) or an integer")


# ----------------------------------------------------------------- responses


def ok_frame(request_id: str | int | None, data: Any) -> bytes:
    """A success response line.

    Raises:
        TypeError: ``data`` is not JSON-serialisable (a handler bug).
    """
    doc: dict[str, Any] = {"ok": True, "data": data}
    if request_id is not None:
        doc["id"] = request_id
    return orjson.dumps(doc) + b"\n"


def error_frame(request_id: str | int | None, error_type: str, message: object,
                **details: Any) -> bytes:
    """An error response line; the message always passes the sanitiser.

    ``details`` (``reason``, ``retry_after``, ``keys``) must be JSON-ready.
    """
    if error_type not in ERROR_TYPES:
        error_type = "internal_error"
    error: dict[str, Any] = {"type": error_type, "message": sanitize(message)}
    error.update({k: v for k, v in details.items() if v not in (None, "", [])})
    doc: dict[str, Any] = {"ok": False, "error": error}
    if request_id is not None:
        doc["id"] = request_id
    return orjson.dumps(doc) + b"\n"


# --------------------------------------------------------------- error table


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """How an exception class travels: ``error.type`` and ``error.reason``."""

    type: str
    reason: str = ""
    extra: tuple[str, ...] = field(default=())


ERROR_TABLE: tuple[tuple[type[BaseException], ErrorSpec], ...] = (
    (ProtocolError, ErrorSpec("invalid_argument")),  # type replaced by .code
    (SessionGoneError, ErrorSpec("session_not_found", "gone")),
    (SessionExistsError, ErrorSpec("conflict", "exists")),
    (SessionConflictError, ErrorSpec("conflict", "", ("keys",))),
    (LockTimeoutError, ErrorSpec("lock_timeout")),
    (LockLostError, ErrorSpec("lock_lost")),
    (ThrottledError, ErrorSpec("throttled", "", ("retry_after",))),
    (SessionLimitError, ErrorSpec("conflict", "session_limit")),
    (ReauthenticationRequired, ErrorSpec("invalid_argument", "reauth_required")),
    (SessionReadOnlyError, ErrorSpec("invalid_argument", "read_only")),
    (SessionTooLargeError, ErrorSpec("invalid_argument", "too_large")),
    (ConfigurationError, ErrorSpec("invalid_argument", "configuration")),
    (CodecError, ErrorSpec("invalid_argument", "codec")),
    (StoreUnavailableError, ErrorSpec("internal_error", "store_unavailable")),
    (StoreTimeoutError, ErrorSpec("internal_error", "store_timeout")),
    (StoreError, ErrorSpec("internal_error", "store")),
    (TypeError, ErrorSpec("invalid_argument", "type")),
    (ValueError, ErrorSpec("invalid_argument", "value")),
)
"""Exception class → wire error, most specific first (the client inverts it)."""


def spec_of(exc: BaseException) -> ErrorSpec | None:
    """The wire form of ``exc``, or ``None`` when it is unexpected (a bug)."""
    for cls, spec in ERROR_TABLE:
        if isinstance(exc, cls):
            if isinstance(exc, ProtocolError):
                return ErrorSpec(exc.code)
            return spec
    return None


def exception_frame(request_id: str | int | None, exc: BaseException) -> bytes | None:
    """The error line for an expected exception, or ``None`` for a bug."""
    spec = spec_of(exc)
    if spec is None:
        return None
    details: dict[str, Any] = {"reason": spec.reason}
    if "keys" in spec.extra:
        details["keys"] = sorted(getattr(exc, "keys", ()))
    if "retry_after" in spec.extra:
        details["retry_after"] = float(getattr(exc, "retry_after", 0.0))
    return error_frame(request_id, spec.type, exc, **details)
