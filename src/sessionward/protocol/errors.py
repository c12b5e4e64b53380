"""Error tokens and the table between library exceptions and wire errors.

The daemon turns an exception into ``{"type", "reason", ...}`` with
:data:`ERROR_TABLE`; the client turns it back with :func:`error_from_wire`
(the inverse).  Tokens are a contract (DESIGN §9, docs/PROTOCOL.md §6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ..core.errors import (
    CodecError,
    ConfigurationError,
    LockLostError,
    LockTimeoutError,
    ProtocolError,
    ReauthenticationRequired,
    SessionConflictError,
    SessionError,
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



# ------------------------------------------------------------ the inverse


def _too_large(message: str) -> SessionTooLargeError:
    exc = SessionTooLargeError(0, 0)
    exc.args = (message,)
    return exc


_BY_REASON: dict[str, Callable[[str], SessionError | TypeError | ValueError]] = {
    "exists": SessionExistsError, "session_limit": SessionLimitError,
    "reauth_required": ReauthenticationRequired, "read_only": SessionReadOnlyError,
    "too_large": _too_large, "configuration": ConfigurationError, "codec": CodecError,
    "type": TypeError, "value": ValueError, "store_unavailable": StoreUnavailableError,
    "store_timeout": StoreTimeoutError, "store": StoreError,
}


def error_from_wire(error: dict[str, Any]) -> Exception:
    """The library exception for a wire error (the inverse of :data:`ERROR_TABLE`)."""
    kind = str(error.get("type", "internal_error"))
    message = str(error.get("message", ""))
    reason = str(error.get("reason", ""))
    if reason in _BY_REASON:
        return _BY_REASON[reason](message)
    if kind == "session_not_found":
        return SessionGoneError(message)
    if kind == "conflict":
        return SessionConflictError(message, keys=frozenset(error.get("keys") or ()))
    if kind == "lock_timeout":
        return LockTimeoutError(message)
    if kind == "lock_lost":
        return LockLostError(message)
    if kind == "throttled":
        return ThrottledError(float(error.get("retry_after") or 0.0), message)
    return ProtocolError(kind, message)
