"""The client-side view of a daemon session: :class:`RemoteSession` and the
conversions between the daemon's session views and library objects."""

from __future__ import annotations

from typing import Any

from ..core.client import ClientInfo
from ..core.record import SessionMeta
from ..lifecycle.session import Session


class RemoteSession(Session):
    """A :class:`Session` whose record lives in the daemon.

    Never holds the raw ID; ``cookie_value`` is still the bearer secret.
    """

    _fingerprint = ""
    lease: str | None = None

    @property
    def fingerprint(self) -> str:
        """Short keyed fingerprint for logs, as computed by the daemon."""
        return self._fingerprint


def meta_from(view: dict[str, Any]) -> SessionMeta:
    m = view["meta"]
    return SessionMeta(
        created=m["created"], last_seen=m["last_seen"], idle=m["idle"], absolute=m["absolute"],
        user=m["user"], auth_time=m["auth_time"], auth_level=m["auth_level"],
        pending=m["pending"], elevated_until=m["elevated_until"], rotated_at=m["rotated_at"],
        profiles=list(m["profiles"]),
    )


def client_doc(client: ClientInfo | None) -> dict[str, Any] | None:
    if client is None:
        return None
    return {"ip": client.ip, "user_agent": client.user_agent,
            "correlation_id": client.correlation_id}

