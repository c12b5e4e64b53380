"""sessionward — hardened server-side sessions for Python web applications.

The recipe layer: :class:`SessionManager` / :class:`AsyncSessionManager`,
:class:`Settings`, :func:`open_store` and the error hierarchy.  Store classes
are imported from their modules (``sessionward.stores.sqlite``...); raw
primitives live in ``sessionward.hazmat``.
"""

from __future__ import annotations

from .audit.events import Event as Event
from .audit.events import EventHub as EventHub
from .core.client import ClientInfo as ClientInfo
from .core.config import Secret as Secret
from .core.config import Settings as Settings
from .core.errors import CodecError as CodecError
from .core.errors import ConfigurationError as ConfigurationError
from .core.errors import InvalidSessionError as InvalidSessionError
from .core.errors import LockError as LockError
from .core.errors import LockLostError as LockLostError
from .core.errors import LockTimeoutError as LockTimeoutError
from .core.errors import ProtocolError as ProtocolError
from .core.errors import ReauthenticationRequired as ReauthenticationRequired
from .core.errors import SessionConflictError as SessionConflictError
from .core.errors import SessionError as SessionError
from .core.errors import SessionExistsError as SessionExistsError
from .core.errors import SessionGoneError as SessionGoneError
from .core.errors import SessionLimitError as SessionLimitError
from .core.errors import SessionReadOnlyError as SessionReadOnlyError
from .core.errors import SessionTooLargeError as SessionTooLargeError
from .core.errors import SessionWarning as SessionWarning
from .core.errors import StoreError as StoreError
from .core.errors import StoreNotFoundError as StoreNotFoundError
from .core.errors import StoreTimeoutError as StoreTimeoutError
from .core.errors import StoreUnavailableError as StoreUnavailableError
from .core.errors import ThrottledError as ThrottledError
from .core.keys import KeyRing as KeyRing
from .core.version import __version__ as __version__
from .lifecycle.amanager import AsyncSessionManager as AsyncSessionManager
from .lifecycle.inventory import SessionInfo as SessionInfo
from .lifecycle.manager import SessionManager as SessionManager
from .lifecycle.session import Session as Session
from .stores import open_store as open_store

__all__ = [
    "AsyncSessionManager", "ClientInfo", "CodecError", "ConfigurationError", "Event",
    "EventHub", "InvalidSessionError", "KeyRing", "LockError", "LockLostError",
    "LockTimeoutError", "ProtocolError", "ReauthenticationRequired", "Secret", "Session",
    "SessionConflictError", "SessionError", "SessionExistsError", "SessionGoneError",
    "SessionInfo", "SessionLimitError", "SessionManager", "SessionReadOnlyError",
    "SessionTooLargeError", "SessionWarning", "Settings", "StoreError", "StoreNotFoundError",
    "StoreTimeoutError", "StoreUnavailableError", "ThrottledError", "__version__", "open_store",
]
