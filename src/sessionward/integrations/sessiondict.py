"""SessionDict: the session data as a real ``dict``, for Flask and Starlette apps.

Starlette types ``request.session`` as a ``dict`` and Flask recommends a
``dict`` subclass for ``flask.session``, so code like
``JSONResponse({"session": request.session})``, ``json.dumps(session)``,
``session |= {...}``, ``session.popitem()`` (last key) and ``session.copy()``
must work exactly as on a ``dict``.  A :class:`SessionDict` *is* the
request's data: the :class:`~sessionward.Session` keeps its data in it
(``Session.use_storage``), so the typed view and the dict never disagree.

It tracks what the app did, with the frameworks' meaning (Starlette 1.x
``Session``, Flask ``SecureCookieSession``):

- ``accessed``: the app got hold of the session (``request.session``,
  ``flask.session``) or changed it.  Shared with the ``Session``, whose reads
  also set it; drives ``Vary: Cookie`` + ``Cache-Control: no-store``;
- ``modified``: a mutating method changed the dict (``pop`` of a missing key
  and ``setdefault`` of a present one do not); the app may also set it;
- :attr:`emptied_by_app`: the app emptied the dict (``clear()``, or removed
  its last key) and did not log in or rotate afterwards.  Flask and Starlette
  then end the session — the usual ``session.clear()`` logout deletes the
  record, the cookie and the user binding.

The manager's own changes (merge after a conflict, login into another
account, logout) go through ``Session._set_data``, which bypasses the
tracking.  ``repr`` shows the keys only: values may be secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from ..lifecycle.session import Session

_NOT_EMPTIED = object()


class SessionDict(dict[str, Any]):
    """A ``dict`` holding one request's session data, with change tracking.

    Args:
        initial: data to start with (when used without a ``Session``).
        session: the request's :class:`~sessionward.Session`; its data moves
            into this dict and stays here.
    """

    def __init__(self, initial: Mapping[str, Any] | None = None, /, *,
                 session: Session | None = None) -> None:
        super().__init__()
        self.session = session
        self._accessed = False
        self.modified = False
        self._emptied: object = _NOT_EMPTIED
        if session is not None:
            dict.update(self, session.data_snapshot())
            session.use_storage(self)
        if initial is not None:
            dict.update(self, initial)

    # ------------------------------------------------------------- flags

    @property
    def accessed(self) -> bool:
        """The app used the session (read, written, or obtained it)."""
        if self.session is not None:
            return self.session.accessed
        return self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        if self.session is not None:
            self.session.accessed = bool(value)
        else:
            self._accessed = bool(value)

    def mark_accessed(self) -> None:
        """Starlette's hook: ``request.session`` was read."""
        self.accessed = True

    def mark_modified(self) -> None:
        """The dict changed (also marks it accessed)."""
        self.accessed = True
        self.modified = True

    def _current_key(self) -> str | None:
        return self.session.storage_key if self.session is not None else None

    def _note_if_empty(self) -> None:
        if not self:
            self._emptied = self._current_key()

    @property
    def emptied_by_app(self) -> bool:
        """The app emptied the session and it is still empty under the same ID.

        A login or rotation after the ``clear()`` moves the session to a new
        ID, so ``session.clear(); login(user)`` (fixation-safe login) keeps
        the new session.
        """
        return (self._emptied is not _NOT_EMPTIED and not self
                and self._emptied == self._current_key())

    # ---------------------------------------------------------- mutation

    def __setitem__(self, key: str, value: Any) -> None:
        self.mark_modified()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.mark_modified()
        super().__delitem__(key)
        self._note_if_empty()

    def clear(self) -> None:
        self.mark_modified()
        super().clear()
        self._note_if_empty()

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.mark_modified()
        value = super().pop(key, *default)
        if self.modified:
            self._note_if_empty()
        return value

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self.mark_modified()
        self._note_if_empty()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.mark_modified()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.mark_modified()
        super().update(*args, **kwargs)

    def __ior__(self, other: Any) -> Self:  # type: ignore[override,misc]  # pairs with dict.__or__
        self.mark_modified()
        super().update(other)
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} keys={sorted(self)!r}>"
