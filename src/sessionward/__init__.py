"""sessionward — hardened server-side sessions for Python web applications.

The recipe layer: :class:`SessionManager` / :class:`AsyncSessionManager`,
:class:`Settings`, :func:`open_store` and the error hierarchy.  Store classes
are imported from their modules (``sessionward.stores.sqlite``...); raw
primitives live in ``sessionward.hazmat``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .amanager import AsyncSessionManager as AsyncSessionManager
from .client import ClientInfo as ClientInfo
from .config import Secret as Secret
from .config import Settings as Settings
from .errors import CodecError as CodecError
from .errors import ConfigurationError as ConfigurationError
from .errors import InvalidSessionError as InvalidSessionError
from .errors import LockError as LockError
from .errors import LockLostError as LockLostError
from .errors import LockTimeoutError as LockTimeoutError
from .errors import ProtocolError as ProtocolError
from .errors import ReauthenticationRequired as ReauthenticationRequired
from .errors import SessionConflictError as SessionConflictError
from .errors import SessionError as SessionError
from .errors import SessionExistsError as SessionExistsError
from .errors import SessionGoneError as SessionGoneError
from .errors import SessionLimitError as SessionLimitError
from .errors import SessionReadOnlyError as SessionReadOnlyError
from .errors import SessionTooLargeError as SessionTooLargeError
from .errors import SessionWarning as SessionWarning
from .errors import StoreError as StoreError
from .errors import StoreTimeoutError as StoreTimeoutError
from .errors import StoreUnavailableError as StoreUnavailableError
from .errors import ThrottledError as ThrottledError
from .events import Event as Event
from .events import EventHub as EventHub
from .inventory import SessionInfo as SessionInfo
from .keys import KeyRing as KeyRing
from .manager import SessionManager as SessionManager
from .session import Session as Session
from .stores import open_store as open_store

try:
    __version__ = version("sessionward")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AsyncSessionManager", "ClientInfo", "CodecError", "ConfigurationError", "Event",
    "EventHub", "InvalidSessionError", "KeyRing", "LockError", "LockLostError",
    "LockTimeoutError", "ProtocolError", "ReauthenticationRequired", "Secret", "Session",
    "SessionConflictError", "SessionError", "SessionExistsError", "SessionGoneError",
    "SessionInfo", "SessionLimitError", "SessionManager", "SessionReadOnlyError",
    "SessionTooLargeError", "SessionWarning", "Settings", "StoreError", "StoreTimeoutError",
    "StoreUnavailableError", "ThrottledError", "__version__", "open_store",
]
