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
from ..core.keys import Key, KeyRing
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
    recent: dict[str, Recent] = field(default_factory=dict)
    """What this connection last saw of a session, by cookie value (see
    :class:`Recent`); lets ``save`` skip re-opening the record."""
    reservations: dict[str, tuple[str, Key, float]] = field(default_factory=dict)
    """Reserved, never-stored IDs by reservation secret: ``(id, key, deadline)``
    (see :mod:`sessionward.daemon.reserved`)."""


RECENT_PER_CONNECTION = 32


@dataclass(frozen=True, slots=True)
class Recent:
    """A session as this connection last loaded or saved it.

    Attributes:
        session_id / storage_key: the identity its cookie verified to.
        version: the stored version then.
        meta: the sealed metadata then (never mutated: copied before use).
        data_json: the stored data bytes then (a client ``base`` equal to
            them needs no validation: the daemon wrote them).
        when: the daemon's clock then (idle time counts from it).
        ring: the keyring that verified the cookie (a key reload drops the
            entry, so a retired key's cookie is checked again).
        fingerprint: the session's log fingerprint (a keyed hash of the
            storage key, computed once).
    """

    session_id: str
    storage_key: str
    version: int
    meta: SessionMeta
    data_json: bytes | None
    when: float
    ring: KeyRing
    fingerprint: str


def remember(conn: Connection, session: Session, now: float,
             ring: KeyRing) -> Recent | None:
    """Cache what this connection saw of a live session, for its next save.

    Why it is safe: every stored change bumps the version, the cache is used
    only when the client's cookie *and* version equal the cached ones, and
    the store's compare-and-set still rejects a stale version or a deleted
    record.  The cookie verified to this ID once (MAC and keyed hash); a
    cache hit skips those two HMACs, never the compare-and-set.
    """
    cookie = session.cookie_value
    if cookie is None:
        return None
    before = conn.recent.pop(cookie, None)
    if session.storage_key is None or session.ended or session.meta.kind != LIVE \
            or session._id is None:
        return None
    meta = session.meta
    if session.lock_token is not None:  # a leased session lives on: keep a copy
        meta = replace(meta, profiles=list(meta.profiles), extra=dict(meta.extra))
    fingerprint = before.fingerprint if before is not None and \
        before.storage_key == session.storage_key else session.fingerprint
    entry = Recent(session._id, session.storage_key, session.version, meta,
                   session.loaded_json, now, ring, fingerprint)
    conn.recent[cookie] = entry
    while len(conn.recent) > RECENT_PER_CONNECTION:
        conn.recent.pop(next(iter(conn.recent)))
    return entry


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
