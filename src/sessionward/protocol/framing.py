"""NDJSON framing: the limits, the frame decoder, request parsing, response lines.

Framing is NDJSON: one JSON object per ``\\n``-terminated line, UTF-8.
A frame longer than :data:`MAX_FRAME` bytes is refused *as soon as the
buffer holds more than that many bytes without a newline* — a client cannot
make the daemon buffer an endless line.  Nesting deeper than
:data:`MAX_DEPTH` is refused before the JSON parser sees the frame.
"""

from __future__ import annotations

from array import array
from itertools import accumulate
from typing import Any, Final

import orjson

from ..audit.redact import sanitize
from ..core.errors import ProtocolError
from .errors import ERROR_TYPES, FrameTooLarge, invalid, spec_of

PROTOCOL_VERSION: Final = 1
MAX_FRAME: Final = 65_536
"""Longest accepted request frame in bytes, excluding the newline."""
MAX_BUFFER: Final = 1 << 20
"""Most unprocessed bytes held for one connection."""
MAX_DEPTH: Final = 32
"""Deepest accepted JSON nesting (the top-level object is depth 1)."""
MAX_RESPONSE: Final = 16 << 20
"""Longest response frame a client accepts."""


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

    def head(self, size: int = 8) -> bytes:
        """The first ``size`` bytes of the incomplete frame held so far."""
        return bytes(self._buf[:size])

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


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_TOO_DEEP_RUN = b"[" * (MAX_DEPTH + 1)
_SIGNED_STEP = bytes.maketrans(b"[]", b"\x01\xff")
"""``[`` → +1 and ``]`` → -1 as signed bytes."""


def nesting_depth(raw: bytes) -> int:
    """The deepest bracket nesting of ``raw`` (brackets inside strings do not
    count), exact up to :data:`MAX_DEPTH` and ``MAX_DEPTH + 1`` beyond.

    Works on invalid JSON too (it only counts; unbalanced brackets give an
    upper bound).  Every step is one pass of C code over the frame — escape
    pairs removed, the frame split at quotes (odd pieces are inside strings;
    an unterminated string's tail is simply dropped), everything but
    brackets deleted, rounds that each remove the innermost ``[]`` pairs
    while that shrinks the rest by an eighth or more, then one running sum in
    C (``accumulate``) over what is left — so the cost is linear in the frame whatever
    its shape: escaped quotes, unterminated strings and deep brackets cost
    the same per byte (the quadratic string regex of 1.0 stalled the daemon
    for 14 s on one 65,434-byte frame; issue 15).
    """
    opened = raw.count(b"[") + raw.count(b"{")
    if opened <= MAX_DEPTH:
        return opened
    # Backslash pairs first, left to right (as a JSON reader pairs them),
    # then escaped quotes: what is left of ``"`` delimits strings.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(_ONE_KIND, _NOT_BRACKETS)
    passes = 0
    while passes <= MAX_DEPTH and b"[" in brackets:
        if _TOO_DEEP_RUN in brackets:
            return MAX_DEPTH + 1  # 33 openers in a row, counted in C
        inner = brackets.replace(b"[]", b"")  # each pass: the height minus one
        if len(inner) > len(brackets) - len(brackets) // 8:
            break  # few pairs left to peel: walk the rest instead
        brackets, passes = inner, passes + 1
    steps = array("b")
    steps.frombytes(brackets.translate(_SIGNED_STEP))
    # Unclamped running sum: exact for valid JSON (it never goes below 0); a
    # frame it under-counts starts with a stray closer, which orjson refuses.
    return min(MAX_DEPTH + 1, passes + max(accumulate(steps), default=0))


HTTP_METHODS: Final = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ",
                       b"PATCH ", b"CONNECT ", b"TRACE ")
"""First-line prefixes of an HTTP request (a request frame starts with ``{``)."""


def looks_like_http(line: bytes) -> bool:
    """Whether ``line`` (a frame, or the start of the stream) is HTTP-shaped:
    a request line (``GET `` / ``POST `` ...) or a ``Host:`` header line.

    Security: a web page can make a browser send an HTTP request to a
    loopback port, with NDJSON hidden in its body (cross-protocol
    scripting).  The daemon closes such a connection before any body line
    is read, as Redis does (issue 15).
    """
    head = line[:8].lstrip()
    return head.startswith(HTTP_METHODS) or head[:5].lower() == b"host:"


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
