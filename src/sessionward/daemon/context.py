"""Per-connection state and what every daemon command handler may use.

Handlers are ``handler(ctx, conn, args) -> JSON-ready data``: ``ctx`` is the
daemon-wide :class:`Context` (the real manager, key reload, limits, audit
sinks), ``conn`` the :class:`Connection` the request came on (its peer, role,
exclusive leases and a small cache of sealed metadata).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..admin.service import Admin
from ..core.keys import Key
from ..core.record import LIVE, SessionMeta
from ..lifecycle.manager import SessionManager
from ..lifecycle.session import Session

MAX_LEASES_PER_CONNECTION = 16


@dataclass
class Connection:
    """Per-connection state: who the peer is and which leases it holds."""

    peer: str
    uid: int | None = None
    role: str | None = None
    leases: dict[str, Session] = field(default_factory=dict)
    recent: dict[str, tuple[int, SessionMeta, float]] = field(default_factory=dict)
    """Sealed metadata of sessions this connection just loaded or saved, by
    storage key: ``(version, meta, when)``.  Lets ``save`` skip re-opening the
    record; see :func:`remember`."""
    reservations: dict[str, tuple[str, Key, float]] = field(default_factory=dict)
    """Reserved, never-stored IDs by reservation secret: ``(id, key, deadline)``
    (see :mod:`sessionward.daemon.reserved`)."""


RECENT_PER_CONNECTION = 32


def remember(conn: Connection, session: Session, now: float) -> None:
    """Cache a live session's metadata for this connection's next save.

    Why it is safe: every stored change bumps the version, the cache is used
    only when the client's version equals the cached one, and the store's
    compare-and-set still rejects a stale version or a deleted record.
    """
    key = session.storage_key
    if key is None or session.ended or session.meta.kind != LIVE:
        conn.recent.pop(key or "", None)
        return
    meta = replace(session.meta, profiles=list(session.meta.profiles),
                   extra=dict(session.meta.extra))
    conn.recent.pop(key, None)
    conn.recent[key] = (session.version, meta, now)
    while len(conn.recent) > RECENT_PER_CONNECTION:
        conn.recent.pop(next(iter(conn.recent)))


@dataclass
class Context:
    """What every handler may use.

    Attributes:
        manager: the real session manager.
        reload_keys: re-reads the key and token files (``reload-keys``).
        limits: the caps reported by ``describe``.
        sinks: the audit sinks whose failure counters ``stats`` reports.
    """

    manager: SessionManager
    reload_keys: Callable[[], dict[str, Any]]
    limits: Mapping[str, Any]
    sinks: Sequence[Any] = ()

    def admin_for(self, conn: Connection) -> Admin:
        """The admin API acting as the connection's peer (``uid:<n>`` from
        SO_PEERCRED, or ``ip:<address>`` on loopback TCP), so every admin
        event names the real operator."""
        return Admin(self.manager, operator=conn.peer, operator_uid=conn.uid, sinks=self.sinks)


Handler = Callable[[Context, Connection, dict[str, Any]], Any]


def release_all(ctx: Context, conn: Connection) -> None:
    """Release every lease of a closing connection (or a ``reset``)."""
    for session in list(conn.leases.values()):
        ctx.manager.release(session)
    conn.leases.clear()
