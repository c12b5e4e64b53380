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
:class:`~sessionward.errors.StoreUnavailableError` (answer 503, never log
anybody out).

Differences from the embedded manager (documented in ``docs/PROTOCOL.md``):
``require_recent_auth``/``is_elevated`` are evaluated with this process's
clock and emit no event; events fire in the daemon, not here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import orjson

from . import codec
from ._clock import Clock, system_clock
from ._merge import pending_changes
from ._remote_kv import RemoteThrottle, RemoteTokens
from .client import ClientInfo
from .config import OpenMode, Settings
from .errors import (
    CodecError,
    ConfigurationError,
    LockLostError,
    LockTimeoutError,
    ProtocolError,
    ReauthenticationRequired,
    SessionConflictError,
    SessionError,
    SessionExistsError,
    SessionGoneError,
    SessionLimitError,
    SessionReadOnlyError,
    SessionTooLargeError,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
    ThrottledError,
)
from .inventory import SessionInfo
from .keys import read_secret_file
from .record import SessionMeta
from .session import Session
from .throttle import Duration

MAX_RESPONSE = 16 << 20
POOL_IDLE_SECONDS = 20.0
"""Pooled connections idle longer than this are dropped (daemon closes at 30 s)."""


# ------------------------------------------------------------------ errors


def _too_large(message: str) -> SessionTooLargeError:
    exc = SessionTooLargeError(0, 0)
    exc.args = (message,)
    return exc


_BY_REASON: dict[str, Callable[[str], SessionError | TypeError | ValueError]] = {
    "exists": SessionExistsError, "session_limit": SessionLimitError,
    "reauth_required": ReauthenticationRequired, "read_only": SessionReadOnlyError,
    "too_large": _too_large, "configuration": ConfigurationError, "codec": CodecError,
    "type": TypeError, "value": ValueError, "store_unavailable": StoreUnavailableError,
    "store_timeout": StoreTimeoutError, "store": StoreError,
}


def error_from_wire(error: dict[str, Any]) -> Exception:
    """The library exception for a wire error (inverse of the daemon's table)."""
    kind = str(error.get("type", "internal_error"))
    message = str(error.get("message", ""))
    reason = str(error.get("reason", ""))
    if reason in _BY_REASON:
        return _BY_REASON[reason](message)
    if kind == "session_not_found":
        return SessionGoneError(message)
    if kind == "conflict":
        return SessionConflictError(message, keys=frozenset(error.get("keys") or ()))
    if kind == "lock_timeout":
        return LockTimeoutError(message)
    if kind == "lock_lost":
        return LockLostError(message)
    if kind == "throttled":
        return ThrottledError(float(error.get("retry_after") or 0.0), message)
    return ProtocolError(kind, message)


# -------------------------------------------------------------- transport


class _Connection:
    """One blocking connection speaking NDJSON; not thread-safe (the pool
    hands it to one thread at a time)."""

    def __init__(self, address: str | tuple[str, int], timeout: float) -> None:
        family = socket.AF_UNIX if isinstance(address, str) else _tcp_family(address[0])
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(address)
        except OSError as exc:
            self.sock.close()
            raise StoreUnavailableError(f"cannot reach the sessionward daemon: {exc.strerror}",
                                        store="daemon") from None
        self.file = self.sock.makefile("rb")
        self.last_used = time.monotonic()
        self._ids = itertools.count(1)

    def call(self, doc: dict[str, Any]) -> Any:
        """Send one request and return ``data``.

        Raises:
            StoreUnavailableError: the connection broke.
            SessionError / TypeError: the daemon answered with an error.
        """
        request_id = next(self._ids)
        try:
            self.sock.sendall(orjson.dumps({**doc, "id": request_id}) + b"\n")
            line = self.file.readline(MAX_RESPONSE + 1)
        except (OSError, ValueError) as exc:
            raise _Broken(str(exc)) from None
        self.last_used = time.monotonic()
        if not line.endswith(b"\n"):
            raise _Broken("the daemon closed the connection")
        reply = orjson.loads(line)
        if reply.get("ok") is True and reply.get("id") == request_id:
            return reply.get("data")
        error = reply.get("error") or {}
        kind = error.get("type")
        if kind in ("connection_timeout", "too_many_connections"):
            raise _Broken(str(error.get("message")), retry=kind == "connection_timeout")
        if reply.get("id") not in (request_id, None):
            raise _Broken("response id mismatch")
        raise error_from_wire(error)

    def close(self) -> None:
        """Close quietly."""
        self.file.close()
        self.sock.close()


class _Broken(StoreUnavailableError):
    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(f"sessionward daemon connection failed: {message}", store="daemon")
        self.retry = retry


def _tcp_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _Pool:
    """A bounded LIFO pool of connections."""

    def __init__(self, address: str | tuple[str, int], size: int, timeout: float) -> None:
        self.address = address
        self.size = size
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def get(self) -> tuple[_Connection, bool]:
        """A connection and whether it was reused from the pool."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if time.monotonic() - conn.last_used < POOL_IDLE_SECONDS:
                    return conn, True
                conn.close()
        return _Connection(self.address, self.timeout), False

    def put(self, conn: _Connection) -> None:
        """Return a healthy connection."""
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def parse_url(url: str) -> str | tuple[str, int]:
    """The socket path or ``(host, port)`` of a daemon URL.

    Raises:
        ConfigurationError: another scheme, or a non-loopback host.
    """
    from .daemon.config import require_loopback

    parts = urlsplit(url)
    if parts.scheme == "sessionward" and parts.path:
        return unquote(parts.path)
    if parts.scheme == "sessionward+tcp" and parts.hostname and parts.port:
        return require_loopback(parts.hostname), parts.port
    raise ConfigurationError(
        "daemon URLs are sessionward:///path/sessionward.sock or "
        "sessionward+tcp://127.0.0.1:PORT"
    )


# ---------------------------------------------------------------- sessions


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


def _meta_from(view: dict[str, Any]) -> SessionMeta:
    m = view["meta"]
    return SessionMeta(
        created=m["created"], last_seen=m["last_seen"], idle=m["idle"], absolute=m["absolute"],
        user=m["user"], auth_time=m["auth_time"], auth_level=m["auth_level"],
        pending=m["pending"], elevated_until=m["elevated_until"], rotated_at=m["rotated_at"],
        profiles=list(m["profiles"]),
    )


def _client_doc(client: ClientInfo | None) -> dict[str, Any] | None:
    if client is None:
        return None
    return {"ip": client.ip, "user_agent": client.user_agent,
            "correlation_id": client.correlation_id}


class RemoteSessionManager:
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
        self._pool = _Pool(address, pool_size, timeout)
        self._pinned: dict[int, _Connection] = {}

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
            except _Broken as exc:
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

    @property
    def tokens(self) -> RemoteTokens:
        """One-time tokens in the daemon (same methods as
        :class:`~sessionward.tokens.OneTimeTokens`)."""
        return RemoteTokens(self._call)

    def throttle(self, *, attempts: int = 5, initial: Duration = 30.0, cap: Duration = 3600.0,
                 multiplier: float = 2.0, quiet_period: Duration = 3600.0,
                 namespace: str = "login") -> RemoteThrottle:
        """A throttle counted in the daemon's store (same arguments and
        methods as :class:`~sessionward.throttle.Throttle`, without store and
        keyring); the ``daemon`` throttle is reserved."""
        return RemoteThrottle(self._call, attempts=attempts, initial=initial, cap=cap,
                              multiplier=multiplier, quiet_period=quiet_period,
                              namespace=namespace)

    def ping(self) -> bool:
        """True when the daemon answers (auth included)."""
        return bool(self._call("ping").get("pong"))

    def describe(self) -> dict[str, Any]:
        """The daemon's commands, version and limits for this token's role."""
        return cast(dict[str, Any], self._call("describe"))

    # ------------------------------------------------------------ sessions

    def _session(self, view: dict[str, Any], client: ClientInfo | None,
                 mode: OpenMode) -> RemoteSession:
        session = RemoteSession(cast(Any, self), meta=_meta_from(view), mode=mode,
                                client=client)
        self._apply(session, view)
        return session

    def _apply(self, session: Session, view: dict[str, Any]) -> None:
        """Update ``session`` in place from a daemon view."""
        session.meta = _meta_from(view)
        data = session.data_snapshot()
        data.clear()
        data.update(codec.decode_data(view["data"]))
        session._bind("", view["cookie"], view["handle"], view["version"])
        session._id = None
        session._reset_baseline(codec.dumps(view.get("base", view["data"])))
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
                                 "client": _client_doc(session.client)}
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
        return RemoteSession(cast(Any, self), meta=meta, data_json=b"{}",
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
        reply = self._call("load", cookie=cookie_value, mode=mode, client=_client_doc(client))
        view = reply["session"]
        return None if view is None else self._session(view, client, mode)

    def _lock(self, cookie: str, client: ClientInfo | None) -> RemoteSession | None:
        conn, _reused = self._pool.get()
        try:
            reply = conn.call({"command": "lock", "token": self._token, "cookie": cookie,
                               **({"client": _client_doc(client)} if client else {})})
        except _Broken:
            conn.close()
            raise
        except BaseException:
            self._pool.put(conn)
            raise
        if reply["session"] is None:
            self._pool.put(conn)
            return None
        session = RemoteSession(cast(Any, self), meta=_meta_from(reply["session"]),
                                mode="exclusive", client=client)
        self._pinned[id(session)] = conn
        self._apply(session, reply["session"])
        return session

    def _unpin(self, session: Session) -> None:
        conn = self._pinned.pop(id(session), None)
        if conn is not None:
            self._pool.put(conn)

    def save(self, session: Session) -> None:
        """Persist the session if it changed (the daemon merges; never last-write-wins).

        Raises:
            SessionReadOnlyError, SessionGoneError, SessionConflictError,
            LockLostError, SessionTooLargeError, TypeError: as
            :meth:`SessionManager.save`; StoreUnavailableError when the
            daemon is unreachable.
        """
        if session.mode == "read":
            raise SessionReadOnlyError("this session was opened in read mode and cannot be saved")
        if session.ended:
            raise SessionGoneError("this session has ended (logout, revoke or login elsewhere)")
        data_json = codec.dumps(codec.encode_data(session.data_snapshot()))
        if session.is_new:
            if session.data_snapshot():
                view = self._call("create", data=codec.loads(data_json),
                                  client=_client_doc(session.client))
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
        if session.mode == "read":
            raise SessionReadOnlyError("this session was opened in read mode and cannot be saved")
        if session.is_new or session.lock_token is not None:
            value = fn(session.data_snapshot().get(key))
            session[key] = value
            self.save(session)
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
                client=_client_doc(session.client), key=key, value=encoded,
                expected=expected if present else None, expected_present=present))
        except SessionGoneError:
            session.ended = True
            raise

    def _merge_local(self, session: Session, key: str, view: dict[str, Any]) -> None:
        """Adopt the stored data, keeping this request's other unsaved changes."""
        pending, deleted = pending_changes(session.loaded_json or b"{}", session.data_snapshot())
        self._apply(session, view)
        local = session.data_snapshot()
        local.update(codec.decode_data({k: v for k, v in pending.items() if k != key}))
        for gone in deleted - {key}:
            local.pop(gone, None)

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
        until = session.meta.elevated_until
        return until is not None and self.clock() < until

    def require_recent_auth(self, session: Session, max_age: timedelta) -> None:
        """Guard for sensitive actions: fully authenticated within ``max_age``.

        Raises:
            ReauthenticationRequired: not logged in, MFA pending, or too old.
        """
        if not session.is_fully_authenticated or session.meta.auth_time is None:
            raise ReauthenticationRequired("full authentication is required")
        if self.clock() - session.meta.auth_time > max_age.total_seconds():
            raise ReauthenticationRequired("please authenticate again to continue")

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
        session.data_snapshot().clear()

    # ------------------------------------------------------------- inventory

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


class AsyncRemoteSessionManager:
    """Awaitable facade over :class:`RemoteSessionManager` (same design as
    :class:`~sessionward.AsyncSessionManager`: each call runs in a worker
    thread, so one implementation serves both flavours)."""

    def __init__(self, remote: RemoteSessionManager) -> None:
        self.sync = remote

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> AsyncRemoteSessionManager:
        """Same arguments as :meth:`RemoteSessionManager.from_url`.

        Raises:
            ConfigurationError: see :meth:`RemoteSessionManager.from_url`.
        """
        return cls(RemoteSessionManager.from_url(url, **kwargs))

    @property
    def settings(self) -> Settings:
        return self.sync.settings

    def new(self, *, client: ClientInfo | None = None,
            mode: OpenMode | None = None) -> RemoteSession:
        return self.sync.new(client=client, mode=mode)

    async def load(self, cookie_value: object, *, client: ClientInfo | None = None,
                   mode: OpenMode | None = None) -> RemoteSession | None:
        return await asyncio.to_thread(self.sync.load, cookie_value, client=client, mode=mode)

    async def save(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.save, session)

    async def update(self, session: Session, key: str, fn: Callable[[Any], Any]) -> Any:
        return await asyncio.to_thread(self.sync.update, session, key, fn)

    async def release(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.release, session)

    @asynccontextmanager
    async def open(self, cookie_value: object, *, client: ClientInfo | None = None,
                   mode: OpenMode | None = None) -> AsyncIterator[Session]:
        """Async twin of :meth:`RemoteSessionManager.open`."""
        session: Session | None = await self.load(cookie_value, client=client, mode=mode)
        if session is None:
            session = self.new(client=client, mode=mode)
        try:
            yield session
            if not session.ended and session.mode != "read":
                await self.save(session)
        finally:
            await self.release(session)

    async def login(self, session: Session, user: str, *, level: int = 1,
                    pending: bool = False, keep_data: bool = True) -> Session:
        return await asyncio.to_thread(self.sync.login, session, user, level=level,
                                       pending=pending, keep_data=keep_data)

    async def rotate(self, session: Session, *, reason: str = "privilege_change") -> Session:
        return await asyncio.to_thread(self.sync.rotate, session, reason=reason)

    async def elevate(self, session: Session,
                      duration: timedelta = timedelta(minutes=5)) -> Session:
        return await asyncio.to_thread(self.sync.elevate, session, duration)

    def is_elevated(self, session: Session) -> bool:
        return self.sync.is_elevated(session)

    def require_recent_auth(self, session: Session, max_age: timedelta) -> None:
        self.sync.require_recent_auth(session, max_age)

    async def logout(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.logout, session)

    async def destroy(self, session: Session) -> None:
        await asyncio.to_thread(self.sync.destroy, session)

    async def sessions_of(self, user: str, *, current: Session | None = None
                          ) -> list[SessionInfo]:
        return await asyncio.to_thread(self.sync.sessions_of, user, current=current)

    async def revoke(self, handle: str, *, reason: str = "admin") -> bool:
        return await asyncio.to_thread(self.sync.revoke, handle, reason=reason)

    async def revoke_user(self, user: str, *, keep: Session | str | None = None) -> int:
        return await asyncio.to_thread(self.sync.revoke_user, user, keep=keep)

    async def revoke_device(self, session: Session, handle: str, *,
                            max_auth_age: timedelta = timedelta(minutes=5)) -> bool:
        return await asyncio.to_thread(self.sync.revoke_device, session, handle,
                                       max_auth_age=max_auth_age)

    async def cleanup(self, *, batch: int = 1000, max_batches: int | None = None) -> int:
        return await asyncio.to_thread(self.sync.cleanup, batch=batch, max_batches=max_batches)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)
