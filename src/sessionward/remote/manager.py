"""RemoteSessionManager: the :class:`~sessionward.SessionManager` interface over the daemon.

Same method names, arguments, return types and exceptions as the embedded
manager, so every integration works the same embedded or through
``sessionward serve``.  The worker never holds keys: the daemon seals,
opens, merges and enforces policy; this client only carries cookies and
(codec-tagged) data.

Transport: ``sessionward:///path/sessionward.sock`` (Unix socket) or
``sessionward+tcp://127.0.0.1:PORT`` (loopback only, checked here too).
Connections are pooled (LIFO, bounded) and dropped before the daemon's idle
timeout.  A daemon that cannot be reached raises
:class:`~sessionward.core.errors.StoreUnavailableError` (answer 503, never log
anybody out).

This module holds the session core (load, new, save, open, release); the
other parts are :mod:`.lifecycle` (login, rotation, logout, expiry),
:mod:`.update`, :mod:`.inventory` (listings, admin, tokens, throttles), the
transport :mod:`.pool` and the view conversions :mod:`.views`.

Differences from the embedded manager (documented in ``docs/PROTOCOL.md``):
``require_recent_auth``/``is_elevated`` are evaluated with this process's
clock and emit no event; events fire in the daemon, not here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from ..core import codec
from ..core.client import ClientInfo
from ..core.clock import Clock, system_clock
from ..core.config import OpenMode, Settings
from ..core.errors import (
    ConfigurationError,
    SessionGoneError,
    SessionReadOnlyError,
    StoreUnavailableError,
)
from ..core.keys import read_secret_file
from ..core.record import SessionMeta
from ..lifecycle.session import Session
from .inventory import RemoteInventory
from .lifecycle import ENDED, RemoteLifecycle
from .pool import Broken, Connection, Pool, parse_url
from .update import RemoteUpdate
from .views import RemoteSession, apply_view, client_doc, meta_from, state_of


class RemoteSessionManager(RemoteLifecycle, RemoteUpdate, RemoteInventory):
    """The manager interface over a sessionward daemon (see the module docstring).

    Args:
        address: a socket path or ``(host, port)`` (prefer :meth:`from_url`).
        token: the ``app`` role token.
        admin_token: optional ``admin`` token for ``revoke``/``cleanup``.
        settings: cookie policy for the web integrations (the daemon holds
            the session policy).
        clock: for :meth:`is_elevated` / :meth:`require_recent_auth`.
        pool_size: idle connections kept.
        timeout: socket timeout in seconds (keep above the daemon's lock wait).
    """

    def __init__(self, address: str | tuple[str, int], *, token: str,
                 admin_token: str | None = None, settings: Settings | None = None,
                 clock: Clock | None = None, pool_size: int = 8,
                 timeout: float = 30.0) -> None:
        self.settings = settings or Settings()
        self.clock = clock or system_clock
        self._token = token
        self._admin_token = admin_token
        self._pool = Pool(address, pool_size, timeout)
        self._pinned: dict[int, Connection] = {}

    @classmethod
    def from_url(cls, url: str, *, token: str | None = None,
                 token_file: str | os.PathLike[str] | None = None,
                 **kwargs: Any) -> RemoteSessionManager:
        """Connect to ``sessionward:///path.sock`` or ``sessionward+tcp://127.0.0.1:PORT``.

        The token comes from ``token``, else ``token_file`` (0600, ours, no
        symlink), else ``SESSIONWARD_APP_TOKEN``.

        Raises:
            ConfigurationError: bad URL, non-loopback host, no usable token.
        """
        if token is None and token_file is not None:
            token = read_secret_file(Path(token_file), what="token file").decode().strip()
        token = token or os.environ.get("SESSIONWARD_APP_TOKEN")
        if not token:
            raise ConfigurationError("no daemon token: pass token=, token_file= or set "
                                     "SESSIONWARD_APP_TOKEN")
        return cls(parse_url(url), token=token, **kwargs)

    # ------------------------------------------------------------ transport

    def _call(self, command: str, *, admin: bool = False,
              session: Session | None = None, **fields: Any) -> Any:
        doc = {"command": command, "token": self._admin_token if admin and self._admin_token
               else self._token, **{k: v for k, v in fields.items() if v is not None}}
        pinned = self._pinned.get(id(session)) if session is not None else None
        if pinned is not None:
            return pinned.call(doc)
        return self._pool.call(doc)

    def ping(self) -> bool:
        """True when the daemon answers (auth included)."""
        return bool(self._call("ping").get("pong"))

    def describe(self) -> dict[str, Any]:
        """The daemon's commands, version and limits for this token's role."""
        return cast(dict[str, Any], self._call("describe"))

    def fingerprint_of(self, session: Session) -> str:
        """The fingerprint the daemon computed for ``session`` ("" if none)."""
        return session.fingerprint if isinstance(session, RemoteSession) else ""

    # ------------------------------------------------------------ sessions

    def _apply(self, session: Session, view: dict[str, Any]) -> None:
        apply_view(session, view)
        if session.lock_token is None:
            self._unpin(session)

    def _state(self, session: Session) -> dict[str, Any]:
        return state_of(session)

    def _state_call(self, command: str, session: Session, *,
                    tree: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        try:
            view = self._call(command, session=session, **state_of(session, tree), **fields)
        except SessionGoneError:
            session.ended = True
            self._unpin(session)
            raise
        self._apply(session, view)
        return cast(dict[str, Any], view)

    def new(self, *, client: ClientInfo | None = None,
            mode: OpenMode | None = None) -> RemoteSession:
        """A new, empty session; nothing is sent until it holds data (lazy)."""
        now = self.clock()
        s = self.settings
        meta = SessionMeta(created=now, last_seen=now, idle=s.idle_timeout.total_seconds(),
                           absolute=now + s.absolute_timeout.total_seconds(), rotated_at=now)
        return RemoteSession(self, meta=meta, data_json=b"{}",
                             mode=mode or s.default_mode, client=client)

    def load(self, cookie_value: object, *, client: ClientInfo | None = None,
             mode: OpenMode | None = None) -> RemoteSession | None:
        """The session for a cookie value, or ``None`` (strict mode, in the daemon).

        Raises:
            StoreUnavailableError: the daemon is unreachable.
            LockTimeoutError: ``exclusive`` mode could not get the lease in time.
        """
        mode = mode or self.settings.default_mode
        if not isinstance(cookie_value, str) or not cookie_value or len(cookie_value) > 128:
            return None
        if mode == "exclusive":
            return self._lock(cookie_value, client)
        reply = self._call("load", cookie=cookie_value, mode=mode, client=client_doc(client))
        view = reply["session"]
        if view is None:
            return None
        session = RemoteSession(self, meta=meta_from(view), mode=mode, client=client)
        self._apply(session, view)
        return session

    def _lock(self, cookie: str, client: ClientInfo | None) -> RemoteSession | None:
        conn, reply = self._pool.call_keeping({
            "command": "lock", "token": self._token, "cookie": cookie,
            **({"client": client_doc(client)} if client else {})})
        if reply["session"] is None:
            self._pool.put(conn)
            return None
        session = RemoteSession(self, meta=meta_from(reply["session"]),
                                mode="exclusive", client=client)
        self._pinned[id(session)] = conn
        self._apply(session, reply["session"])
        return session

    def _unpin(self, session: Session) -> None:
        conn = self._pinned.pop(id(session), None)
        if conn is not None:
            self._pool.put(conn)

    def save(self, session: Session, *, create_empty: bool = False) -> None:
        """Persist the session if it changed (the daemon merges; never last-write-wins).

        A new session with no data stays unstored (lazy creation), unless
        ``create_empty``; a :meth:`set_expiry` request travels with the save.

        Raises:
            SessionReadOnlyError: as :meth:`SessionManager.save`, and so are
                SessionGoneError, SessionConflictError, LockLostError,
                SessionTooLargeError and TypeError.
            StoreUnavailableError: the daemon is unreachable.
        """
        if session.mode == "read":
            raise SessionReadOnlyError("this session was opened in read mode and cannot be saved")
        if session.ended:
            raise SessionGoneError(ENDED)
        tree = codec.encode_data(session.data_snapshot())
        if session.is_new:
            if tree or create_empty:
                expiry = session.pending_expiry if isinstance(session, RemoteSession) else None
                view = self._call("create", data=tree, client=client_doc(session.client),
                                  create_empty=create_empty or None, expiry=expiry)
                self._apply(session, view)
            return
        if codec.dumps(tree) == session.loaded_json and not session.meta_dirty:
            return
        self._state_call("save", session, tree=tree)

    @contextmanager
    def open(self, cookie_value: object, *, client: ClientInfo | None = None,
             mode: OpenMode | None = None) -> Iterator[Session]:
        """Load (or start) a session, save it on success, always release its lease.

        Raises:
            see :meth:`load` and :meth:`save`.
        """
        session: Session | None = self.load(cookie_value, client=client, mode=mode)
        if session is None:
            session = self.new(client=client, mode=mode)
        try:
            yield session
            if not session.ended and session.mode != "read":
                self.save(session)
        finally:
            self.release(session)

    def release(self, session: Session) -> None:
        """Release an exclusive-mode lease (no-op otherwise)."""
        lease = session.lock_token
        conn = self._pinned.pop(id(session), None)
        session.lock_token = None
        if conn is None:
            return
        if lease is not None:
            try:
                conn.call({"command": "unlock", "token": self._token, "lease": lease})
            except StoreUnavailableError:
                conn.close()  # closing the connection releases the lease too
                return
        self._pool.put(conn)

    def close(self) -> None:
        """Release leases and close pooled connections."""
        for conn in list(self._pinned.values()):
            conn.close()
        self._pinned.clear()
        self._pool.close()

    def __enter__(self) -> RemoteSessionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Broken", "RemoteSessionManager"]
