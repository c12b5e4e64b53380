"""NDJSON framing: the limits, the frame decoder, request parsing, response lines.

Framing is NDJSON: one JSON object per ``\\n``-terminated line, UTF-8.
A frame longer than :data:`MAX_FRAME` bytes is refused *as soon as the
buffer holds more than that many bytes without a newline* — a client cannot
make the daemon buffer an endless line.  Nesting deeper than
:data:`MAX_DEPTH` is refused before the JSON parser sees the frame.
"""

from __future__ import annotations

import re
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
