"""What the remote manager's parts share: the transport and state hooks.

:class:`~sessionward.remote.RemoteSessionManager` is assembled from parts of
one concept each (:mod:`.lifecycle` — login, rotation, logout, expiry;
:mod:`.update` — the atomic read-modify-write; :mod:`.inventory` — listings,
admin, tokens, throttles).  Each part calls the transport through the hooks
declared here; the manager (:mod:`.manager`) implements them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..core.clock import Clock
from ..core.config import Settings
from ..lifecycle.session import Session


class RemoteBase:
    """The hooks every part of the remote manager may call."""

    settings: Settings
    clock: Clock

    def _call(self, command: str, *, admin: bool = False,
              session: Session | None = None, **fields: Any) -> Any:
        """One request to the daemon, returning its ``data`` (the manager's).

        Raises:
            NotImplementedError: always, here.
        """
        raise NotImplementedError

    def _state(self, session: Session) -> dict[str, Any]:
        """The session's state fields (the manager's).

        Raises:
            NotImplementedError: always, here.
        """
        raise NotImplementedError

    def _state_call(self, command: str, session: Session, **fields: Any) -> dict[str, Any]:
        """A state-changing command whose reply is the session's new view (the manager's).

        Raises:
            NotImplementedError: always, here.
        """
        raise NotImplementedError

    def _apply(self, session: Session, view: dict[str, Any]) -> None:
        """Update ``session`` from a daemon view (the manager's).

        Raises:
            NotImplementedError: always, here.
        """
        raise NotImplementedError

    def _unpin(self, session: Session) -> None:
        """Give back the connection an exclusive session held (the manager's).

        Raises:
            NotImplementedError: always, here.
        """
        raise NotImplementedError

    def save(self, session: Session, *, create_empty: bool = False) -> None:
        """Persist the session (the manager's).

        Raises:
            NotImplementedError: always, here.
        """
        raise NotImplementedError

    def require_recent_auth(self, session: Session, max_age: timedelta) -> None:
        """The recent-authentication guard (:mod:`.lifecycle`'s).

        Raises:
            NotImplementedError: always, here.
        """
        raise NotImplementedError
