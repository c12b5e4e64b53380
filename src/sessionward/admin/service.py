"""Admin operations over one :class:`~sessionward.SessionManager`: the CLI's and
the daemon's admin role share this class.

Every method takes plain keyword arguments and returns a JSON-ready value
(dicts, lists, strings, numbers), so the daemon can dispatch a request
``{"command": "revoke-user", "user": "alice"}`` to ``Admin.revoke_user(user=
"alice")`` and send the result back unchanged, and the CLI renders local and
remote results with the same code.

Output hygiene: results carry metadata and opaque handles (storage keys) only;
never a session ID, a cookie value, a key or a token.  Session data leaves
only through ``show(handle, data=True)``, which emits ``data_revealed``.
Every state change emits an event whose fields name the operator (the OS user
of the process that built this object, or what the daemon passes in).

Cost: ``list``/``show``/``revoke``/``revoke_user`` touch one record or one
user's records; ``list`` without a user, ``revoke_all``, ``stats``,
``key_usage`` and ``reseal`` walk the store with ``scan`` pages.

The operations live in :mod:`.listing`, :mod:`.revoking`, :mod:`.maintenance`
and :mod:`.rekey`; this class is their facade (each method's docstring is
the operation's contract).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..lifecycle.manager import SessionManager
from . import listing, maintenance, rekey, revoking
from .context import SCAN_PAGE, AdminContext, CountsFailures, operator_identity


class Admin:
    """Admin commands over ``manager``.

    Args:
        manager: the session manager (its store, keyring and event hub).
        operator: who acts, recorded in every event; default: the OS user.
        operator_uid: the operator's uid; default: this process's.
        sinks: event sinks whose ``failures`` counters ``stats`` reports.
    """

    def __init__(self, manager: SessionManager, *, operator: str | None = None,
                 operator_uid: int | None = None,
                 sinks: Sequence[CountsFailures] = ()) -> None:
        # Through the daemon the operator is the peer, not the daemon's own user.
        self.ctx = AdminContext(
            manager, operator or operator_identity(),
            os.geteuid() if operator_uid is None else operator_uid, tuple(sinks))

    @property
    def manager(self) -> SessionManager:
        return self.ctx.manager

    @property
    def operator(self) -> str:
        return self.ctx.operator

    def list(self, user: str | None = None, expired: bool = False, limit: int = 100,
             cursor: str | None = None) -> dict[str, Any]:
        """See :func:`.listing.list_sessions`."""
        return listing.list_sessions(self.ctx, user, expired, limit, cursor)

    def show(self, handle: str, data: bool = False) -> dict[str, Any]:
        """See :func:`.listing.show`."""
        return listing.show(self.ctx, handle, data)

    def revoke(self, handle: str) -> dict[str, Any]:
        """See :func:`.revoking.revoke`."""
        return revoking.revoke(self.ctx, handle)

    def revoke_user(self, user: str, keep: str | None = None) -> dict[str, Any]:
        """See :func:`.revoking.revoke_user`."""
        return revoking.revoke_user(self.ctx, user, keep)

    def revoke_all(self) -> dict[str, Any]:
        """See :func:`.revoking.revoke_all`."""
        return revoking.revoke_all(self.ctx)

    def cleanup(self, batch: int = 500, max_batches: int | None = None) -> dict[str, Any]:
        """See :func:`.maintenance.cleanup`."""
        return maintenance.cleanup(self.ctx, batch, max_batches)

    def stats(self) -> dict[str, Any]:
        """See :func:`.maintenance.stats`."""
        return maintenance.stats(self.ctx)

    def unlock(self, key: str | None = None, user: str | None = None, ip: str | None = None,
               throttle: str = "login") -> dict[str, Any]:
        """See :func:`.maintenance.unlock`."""
        return maintenance.unlock(self.ctx, key, user, ip, throttle)

    def reseal(self, batch: int = SCAN_PAGE, cursor: str | None = None) -> dict[str, Any]:
        """See :func:`.rekey.reseal`."""
        return rekey.reseal(self.ctx, batch, cursor)

    def note_key_change(self, action: str, kid: str) -> None:
        """See :func:`.rekey.note_key_change`."""
        rekey.note_key_change(self.ctx, action, kid)

    def key_usage(self, kid: str) -> dict[str, Any]:
        """See :func:`.rekey.key_usage`."""
        return rekey.key_usage(self.ctx, kid)
