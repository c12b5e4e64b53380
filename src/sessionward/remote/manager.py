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

Modules: this one holds :class:`RemoteSessionManager` (session commands);
``_remote_pool`` the transport, pool, URLs and wire-error mapping;
``_remote_views`` :class:`RemoteSession` and view conversions;
``_remote_inventory`` inventory/admin calls, ``tokens`` and ``throttle``;
``_remote_kv`` the token and throttle clients; ``_remote_async`` the
awaitable facade.  Import everything from here.

Differences from the embedded manager (documented in ``docs/PROTOCOL.md``):
``require_recent_auth``/``is_elevated`` are evaluated with this process's
clock and emit no event; events fire in the daemon, not here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from ..core import codec
from ..core.client import ClientInfo
from ..core.clock import Clock, system_clock
from ..core.config import OpenMode, Settings
from ..core.errors import (
    ConfigurationError,
    ReauthenticationRequired,
    SessionConflictError,
    SessionGoneError,
    SessionReadOnlyError,
    StoreUnavailableError,
)
from ..core.keys import read_secret_file
from ..core.merge import pending_changes
from ..core.record import SessionMeta
from ..lifecycle.session import Session
from ..lifecycle.update import update_without_store
from .inventory import RemoteInventory
from .pool import (
    Broken,
    Connection,
    Pool,
    parse_url,
)
from .views import RemoteSession, client_doc, meta_from


class RemoteSessionManager(RemoteInventory):
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
        self.clock: Clock = clock or system_clock
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
        for _attempt in range(2):
            conn, reused = self._pool.get()
            try:
                data = conn.call(doc)
            except Broken as exc:
                conn.close()
                if reused and exc.retry:
                    continue  # a pooled connection the daemon had closed: retry once
                raise
            except BaseException:
                self._pool.put(conn)
                raise
            self._pool.put(conn)
            return data
        raise StoreUnavailableError("sessionward daemon connection failed", store="daemon")


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

    def _session(self, view: dict[str, Any], client: ClientInfo | None,
                 mode: OpenMode) -> RemoteSession:
        session = RemoteSession(self, meta=meta_from(view), mode=mode,
                                client=client)
        self._apply(session, view)
        return session

    def _apply(self, session: Session, view: dict[str, Any]) -> None:
        """Update ``session`` in place from a daemon view."""
        session.meta = meta_from(view)
        session.replace_data(codec.decode_data(view["data"]))
        session.bind_identity(None, view["cookie"], view["handle"], view["version"])
        session.mark_stored(codec.dumps(view.get("base", view["data"])))
        session.cookie_changed = session.cookie_changed or bool(view["cookie_changed"])
        session.ended = bool(view["ended"])
        if isinstance(session, RemoteSession):
            session._fingerprint = view["fingerprint"]
            session.lease = view.get("lease")
        session.lock_token = view.get("lease")
        if session.lock_token is None:
            self._unpin(session)

    def _state(self, session: Session) -> dict[str, Any]:
        """What the daemon needs to re-create ``session`` (see handlers.restore).

        Raises:
            TypeError: a value outside the codec's allowlist (names the key).
        """
        state: dict[str, Any] = {"data": codec.encode_data(session.data_snapshot()),
                                 "client": client_doc(session.client)}
        if session.lock_token is not None:
            state["lease"] = session.lock_token
        elif session.cookie_value is not None:
            state.update(cookie=session.cookie_value, version=session.version,
                         base=codec.loads(session.loaded_json or b"{}"))
        return state

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
        return None if view is None else self._session(view, client, mode)

    def _lock(self, cookie: str, client: ClientInfo | None) -> RemoteSession | None:
        conn, _reused = self._pool.get()
        try:
            reply = conn.call({"command": "lock", "token": self._token, "cookie": cookie,
                               **({"client": client_doc(client)} if client else {})})
        except Broken:
            conn.close()
            raise
        except BaseException:
            self._pool.put(conn)
            raise
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

    def set_expiry(self, session: Session, *, idle: timedelta | None = None,
                   at: float | None = None) -> None:
        """Not available through the daemon (its protocol has no command for it yet).

        Raises:
            ConfigurationError: always, unless both arguments are ``None``
                (restoring the default is a no-op here).
        """
        if idle is None and at is None:
            return
        raise ConfigurationError(
            "a per-session expiry (set_expiry) needs an embedded SessionManager: the daemon "
            "protocol has no command for it yet; use idle_timeout/absolute_timeout instead")

    def save(self, session: Session, *, create_empty: bool = False) -> None:
        """Persist the session if it changed (the daemon merges; never last-write-wins).

        ``create_empty`` is accepted for interface parity but has no effect: the
        daemon's ``create`` stores nothing for empty data (lazy creation).

        Raises:
            SessionReadOnlyError: as :meth:`SessionManager.save`, and so are
                SessionGoneError, SessionConflictError, LockLostError,
                SessionTooLargeError and TypeError.
            StoreUnavailableError: the daemon is unreachable.
        """
        if session.mode == "read":
            raise SessionReadOnlyError("this session was opened in read mode and cannot be saved")
        if session.ended:
            raise SessionGoneError("this session has ended (logout, revoke or login elsewhere)")
        data_json = codec.dumps(codec.encode_data(session.data_snapshot()))
        if session.is_new:
            # create_empty is not available through the daemon: its create
            # command stores nothing for empty data (lazy creation, PROTOCOL.md).
            if session.data_snapshot():
                view = self._call("create", data=codec.loads(data_json),
                                  client=client_doc(session.client))
                self._apply(session, view)
            return
        if data_json == session.loaded_json:
            return
        self._state_call("save", session)

    def _state_call(self, command: str, session: Session, **fields: Any) -> dict[str, Any]:
        try:
            view = self._call(command, session=session, **self._state(session), **fields)
        except SessionGoneError:
            session.ended = True
            self._unpin(session)
            raise
        self._apply(session, view)
        return cast(dict[str, Any], view)

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
            raise SessionGoneError("this session has ended (logout, revoke or login elsewhere)")
        base = codec.loads(session.loaded_json or b"{}")
        expected, present = base.get(key), key in base
        for _attempt in range(200):
            value = fn(codec.decode_data({key: expected})[key] if present else None)
            reply = self._update_once(session, base, key, value, expected, present)
            if reply["applied"]:
                self._merge_local(session, key, reply["session"])
                return value
            expected, present = reply["current"], reply["present"]
        raise SessionConflictError(f"update of {key!r} kept conflicting; gave up after 200 tries")

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

    # -------------------------------------------------------- auth lifecycle

    def login(self, session: Session, user: str, *, level: int = 1, pending: bool = False,
              keep_data: bool = True) -> Session:
        """Attach ``user`` and rotate to a new ID (in the daemon).

        Raises:
            SessionLimitError: the user's session limit with policy ``reject``.
            SessionGoneError: the session ended meanwhile.
            ValueError: empty user id.
        """
        if not isinstance(user, str) or not user:
            raise ValueError("user must be a non-empty string")
        self._state_call("login", session, user=user, level=level, pending=pending,
                         keep_data=keep_data)
        return session

    def rotate(self, session: Session, *, reason: str = "privilege_change") -> Session:
        """Rotate to a new ID with no grace.

        Raises:
            SessionGoneError: the session ended meanwhile.
        """
        self._state_call("rotate", session, reason=reason)
        return session

    def elevate(self, session: Session, duration: timedelta = timedelta(minutes=5)) -> Session:
        """Step-up: new ID, fresh auth time, elevated for ``duration``.

        Raises:
            ReauthenticationRequired: no user is logged in.
        """
        if session.meta.user is None:
            raise ReauthenticationRequired("log in before elevating the session")
        self._state_call("elevate", session, duration=duration.total_seconds())
        return session

    def is_elevated(self, session: Session) -> bool:
        """True inside the step-up window (this process's clock)."""
        return session.elevated_at(self.clock())

    def require_recent_auth(self, session: Session, max_age: timedelta) -> None:
        """Guard for sensitive actions (this process's clock; no event).

        Raises:
            ReauthenticationRequired: not logged in, MFA pending, or too old.
        """
        session.check_recent_auth(max_age, self.clock())

    def logout(self, session: Session) -> None:
        """End the session in the daemon; the cookie must be cleared."""
        self._end(session, "logout")

    def destroy(self, session: Session) -> None:
        """Like :meth:`logout`, for sessions without a login."""
        self._end(session, "destroy")

    def _end(self, session: Session, command: str) -> None:
        if not session.is_new:
            self._call(command, session=session, **self._state(session))
        session.lock_token = None
        self._unpin(session)
        session.ended = True
        session.replace_data({})


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
