"""The one exception hierarchy of sessionward.

Every public exception and warning lives here.  Errors carry attributes
instead of meaning encoded in strings, and never carry a raw session ID,
token, key or cookie value.  Backend-library exceptions are wrapped at the
store boundary (``raise StoreUnavailableError(...) from exc``).
"""

from __future__ import annotations

from enum import StrEnum


class SessionError(Exception):
    """Base class of every sessionward error; never raised directly."""


class ConfigurationError(SessionError, ValueError):
    """Invalid settings, key file or URL; raised at construction or start-up.

    The message always says what is wrong *and* how to fix it.
    """


class InvalidReason(StrEnum):
    """Why a client-supplied session cookie was not accepted (for logs only)."""

    MALFORMED = "malformed"
    BAD_MAC = "bad_mac"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    IDLE = "idle"
    REVOKED = "revoked"
    TAMPERED = "tampered"
    ZOMBIE = "zombie"
    PROFILE = "profile"
    THROTTLED = "throttled"


class InvalidSessionError(SessionError):
    """A client-supplied cookie or ID is unusable.

    Raised only by APIs that must distinguish it (``require_session``);
    ``load`` returns ``None`` instead.  ``reason`` is for logs, never for
    the client.
    """

    def __init__(self, reason: InvalidReason, message: str = "invalid session") -> None:
        super().__init__(message)
        self.reason = reason


class SessionConflictError(SessionError):
    """A concurrent writer changed the same key of the same session.

    ``keys`` names the conflicting session keys (data keys, not IDs).
    """

    def __init__(self, message: str, *, keys: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.keys = keys


class SessionExistsError(SessionConflictError):
    """``create`` collided with an existing record (never overwrites)."""


class SessionGoneError(SessionConflictError):
    """The record was deleted (logout, revoke, login rotation) while this
    request held it; saving would resurrect it, so it is refused."""


class SessionReadOnlyError(SessionError):
    """A session opened in ``read`` mode was saved."""


class LockError(SessionError):
    """Base of the exclusive-lock errors; ``lock_name`` is a fingerprint."""

    def __init__(self, message: str, *, lock_name: str = "") -> None:
        super().__init__(message)
        self.lock_name = lock_name


class LockTimeoutError(LockError):
    """The exclusive lock could not be acquired within the wait bound."""


class LockLostError(LockError):
    """The lease expired or was taken over; this holder may no longer save."""


class SessionTooLargeError(SessionError, ValueError):
    """The sealed record exceeds ``max_record_bytes``; nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"sealed session record is {size} bytes, over the limit of {limit} bytes; "
            "store less in the session or raise Settings.max_record_bytes"
        )
        self.size = size
        self.limit = limit


class SessionLimitError(SessionError):
    """The user already has ``max_sessions_per_user`` sessions and the
    policy is ``reject``."""


class ReauthenticationRequired(SessionError):
    """A guard (``require_recent_auth`` / ``require_full_auth``) refused.

    ``reason`` is ``"not_full"`` (not logged in, or MFA pending) or
    ``"auth_too_old"``.
    """

    def __init__(self, message: str, *, reason: str = "not_full") -> None:
        super().__init__(message)
        self.reason = reason


class ThrottledError(SessionError):
    """The key is locked out; ``retry_after`` is the seconds left."""

    def __init__(self, retry_after: float, message: str = "too many attempts") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(SessionError):
    """A backend failure; ``store`` names the backend kind (never a URL)."""

    def __init__(self, message: str, *, store: str = "") -> None:
        super().__init__(message)
        self.store = store


class StoreUnavailableError(StoreError):
    """The store cannot be reached (web layer answers 503, never logs out)."""


class StoreNotFoundError(StoreUnavailableError):
    """The store does not exist, and opening it was told not to create it
    (``open_store(url, create=False)``, every admin CLI command without ``--create``)."""


class CorruptEntryError(StoreError):
    """A stored entry has a value of the wrong type or shape (a store writer,
    a torn file, another program): the store refuses to hand it on.

    Sessions: the manager turns it into "no session" plus a ``decode_failed``
    event.  Kv entries: each guard fails closed (a throttle treats the key as
    locked, a one-time token or remember-me cookie as invalid).
    """


class StoreTimeoutError(StoreError):
    """The store did not answer in time."""


class CodecError(SessionError):
    """A stored record is undecodable, tampered or of an unknown version.

    ``reason`` is a short machine token safe for events and logs.
    """

    def __init__(self, message: str, *, reason: str = "undecodable") -> None:
        super().__init__(message)
        self.reason = reason


class ProtocolError(SessionError):
    """A daemon wire-protocol error; ``code`` is the protocol error token."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SignatureError(SessionError):
    """A signed request was refused; ``code`` is a stable machine token."""

    code = "invalid_signature"


class MissingSignatureError(SignatureError):
    """A signature header is absent or malformed."""

    code = "missing_signature"


class BadSignatureError(SignatureError):
    """The MAC does not match (wrong secret, or the request was altered)."""

    code = "bad_signature"


class StaleRequestError(SignatureError):
    """The timestamp is outside the accepted window."""

    code = "stale_timestamp"


class ReplayedRequestError(SignatureError):
    """The nonce was already used inside the window."""

    code = "replayed_nonce"


class SessionWarning(UserWarning):
    """Visible-by-default warning for risky but allowed configurations."""


class SessionDeprecationWarning(SessionWarning):
    """A deprecated API was used."""
