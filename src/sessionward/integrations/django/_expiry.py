"""Django's ``set_expiry()`` value → sessionward's per-session expiry.

Django keeps the app's choice in the data (``_session_expiry``: seconds of
inactivity, ``0`` for "until the browser closes", or an ISO datetime); at
each save the backend turns it into the sealed metadata the server enforces
(:meth:`SessionManager.set_expiry`), so ``set_expiry(60)`` really ends the
session after a minute of inactivity and a past datetime ends it now.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ...lifecycle.manager import SessionManager
from ...lifecycle.session import Session

EXPIRY_KEY = "_session_expiry"


def apply_django_expiry(mgr: SessionManager, session: Session) -> None:
    """Apply the session's ``_session_expiry`` (absent or ``0``: the settings).

    Raises:
        SessionGoneError: the session has ended.
        ConfigurationError: through the daemon (no per-session expiry there).
        ValueError: ``_session_expiry`` holds something Django never writes.
    """
    value = session.data_snapshot().get(EXPIRY_KEY)
    idle: timedelta | None = None
    at: float | None = None
    if isinstance(value, bool) or value is None or value == 0:
        pass
    elif isinstance(value, int | float):
        if value > 0:
            idle = timedelta(seconds=value)
        else:
            at = mgr.clock() + value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value).timestamp()
        except ValueError as exc:
            raise ValueError(f"{EXPIRY_KEY} is not an ISO datetime: {value!r}") from exc
    mgr.set_expiry(session, idle=idle, at=at)
