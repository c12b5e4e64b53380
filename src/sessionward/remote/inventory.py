"""The remote manager's inventory and admin calls, one-time tokens and
throttles (a mixin over the transport of :class:`~sessionward.remote.RemoteSessionManager`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from ..guards.throttle import Duration
from ..lifecycle.inventory import SessionInfo
from ..lifecycle.session import Session
from .base import RemoteBase
from .kv import RemoteThrottle, RemoteTokens


class RemoteInventory(RemoteBase):
    """Inventory, admin, token and throttle calls; the manager provides the transport."""

    @property
    def tokens(self) -> RemoteTokens:
        """One-time tokens in the daemon (same methods as
        :class:`~sessionward.guards.tokens.OneTimeTokens`)."""
        return RemoteTokens(self._call)

    def throttle(self, *, attempts: int = 5, initial: Duration = 30.0, cap: Duration = 3600.0,
                 multiplier: float = 2.0, quiet_period: Duration = 3600.0,
                 namespace: str = "login") -> RemoteThrottle:
        """A throttle counted in the daemon's store (same arguments and
        methods as :class:`~sessionward.guards.throttle.Throttle`, without store and
        keyring); the ``daemon`` throttle is reserved."""
        return RemoteThrottle(self._call, attempts=attempts, initial=initial, cap=cap,
                              multiplier=multiplier, quiet_period=quiet_period,
                              namespace=namespace)

    def sessions_of(self, user: str, *, current: Session | None = None) -> list[SessionInfo]:
        """Metadata of every live session of ``user`` (never IDs), newest first."""
        reply = self._call("sessions_of", user=user,
                           current=current.handle if current is not None else None)
        return [SessionInfo(**item) for item in reply["sessions"]]

    def revoke(self, handle: str, *, reason: str = "admin") -> bool:
        """End the session with this handle (needs ``admin_token``).

        Raises:
            ProtocolError: ``forbidden_command`` without an admin token.
        """
        reply = self._call("revoke", admin=True, handle=handle)
        return bool(reply.get("revoked"))

    def revoke_user(self, user: str, *, keep: Session | str | None = None) -> int:
        """End every session of ``user`` except ``keep``; returns the count."""
        keep_handle = keep if isinstance(keep, str) or keep is None else keep.handle
        return int(self._call("revoke_user", user=user, keep=keep_handle)["count"])

    def revoke_device(self, session: Session, handle: str, *,
                      max_auth_age: timedelta = timedelta(minutes=5)) -> bool:
        """A user ends one of their own sessions.

        Raises:
            ReauthenticationRequired: the caller did not authenticate recently.
        """
        self.require_recent_auth(session, max_auth_age)
        reply = self._call("revoke_device", session=session, **self._state(session),
                           handle=handle, max_auth_age=max_auth_age.total_seconds())
        return bool(reply["revoked"])

    def cleanup(self, *, batch: int = 1000, max_batches: int | None = None,
                progress: Callable[[int], None] | None = None) -> int:
        """Purge expired records in the daemon (needs ``admin_token``).

        Raises:
            ProtocolError: ``forbidden_command`` without an admin token;
                ``invalid_argument`` for ``batch``/``max_batches`` outside 1..10000.
            StoreUnavailableError: the daemon is unreachable.
        """
        reply = self._call("cleanup", admin=True, batch=batch, max_batches=max_batches)
        count = int(reply["removed"])
        if progress is not None:
            progress(count)
        return count
