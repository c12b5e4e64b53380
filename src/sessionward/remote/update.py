"""The remote manager's atomic read-modify-write of one key (``update``).

``fn`` runs here, in the worker; the daemon compares the stored value with
the one ``fn`` saw and writes only if it is unchanged, else it answers the
current value and ``fn`` runs again (the function never travels).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from ..core import codec
from ..core.errors import SessionConflictError, SessionGoneError
from ..core.merge import pending_changes
from ..lifecycle.session import Session
from ..lifecycle.update import update_without_store
from .base import RemoteBase
from .lifecycle import ENDED
from .views import client_doc

MAX_TRIES = 200


class RemoteUpdate(RemoteBase):
    """``update(session, key, fn)`` over the daemon's ``update`` command."""

    def update(self, session: Session, key: str, fn: Callable[[Any], Any]) -> Any:
        """Atomic read-modify-write of one key (``fn`` runs here, may run several times).

        Raises:
            SessionGoneError, SessionConflictError, SessionReadOnlyError: as
            :meth:`SessionManager.update`.
        """
        handled, value = update_without_store(session, key, fn, self.save)
        if handled:
            return value
        if session.ended:
            raise SessionGoneError(ENDED)
        base = codec.loads(session.loaded_json or b"{}")
        expected, present = base.get(key), key in base
        for _attempt in range(MAX_TRIES):
            value = fn(codec.decode_data({key: expected})[key] if present else None)
            reply = self._update_once(session, base, key, value, expected, present)
            if reply["applied"]:
                self._merge_local(session, key, reply["session"])
                return value
            expected, present = reply["current"], reply["present"]
        raise SessionConflictError(
            f"update of {key!r} kept conflicting; gave up after {MAX_TRIES} tries")

    def _update_once(self, session: Session, base: dict[str, Any], key: str, value: Any,
                     expected: Any, present: bool) -> dict[str, Any]:
        encoded = codec.encode_data({key: value})[key]
        try:
            return cast(dict[str, Any], self._call(
                "update", cookie=session.cookie_value, version=session.version, base=base,
                client=client_doc(session.client), key=key, value=encoded,
                expected=expected if present else None, expected_present=present))
        except SessionGoneError:
            session.ended = True
            raise

    def _merge_local(self, session: Session, key: str, view: dict[str, Any]) -> None:
        """Adopt the stored data, keeping this request's other unsaved changes."""
        pending, deleted = pending_changes(session.loaded_json or b"{}", session.data_snapshot())
        self._apply(session, view)
        local = dict(session.data_snapshot())
        local.update(codec.decode_data({k: v for k, v in pending.items() if k != key}))
        for gone in deleted - {key}:
            local.pop(gone, None)
        session.replace_data(local)
