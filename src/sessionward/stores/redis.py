"""RedisStore: the store contract on one Redis node or a Redis Cluster.

Layout (``P`` is the prefix, ``K`` a storage/kv/lock key, ``U`` a user key)::

    P:{K}:rec    hash  b=blob v=version e=expires_at t=touched_at u=user_key|""
    P:{K}:lock   hash  t=token e=expires_at
    P:{K}:kv     hash  v=value n=version e=expires_at
    P:{U}:user   set   of K (the per-user index)

The ``{K}`` hash tag puts a record and its lock in one slot, so every script
(including the fenced compare-and-set) runs on one Cluster node.  Every write
sets a native TTL in the same script (garbage collection), and the scripts
also compare the plaintext ``e`` with the store's clock passed in ARGV, so an
injected test clock sees the same expiry as the memory reference store.

The user index lives in another slot, so it is updated *around* the record
write instead of inside it: added before (a crash leaves an extra entry, never
a missing one) and again after (repairs a concurrent prune), removed only
with a re-check.  ``by_user`` prunes lazily.  See docs/stores-redis.md.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from .._clock import system_clock
from ..errors import (
    ConfigurationError,
    LockLostError,
    SessionConflictError,
    SessionExistsError,
    SessionGoneError,
    StoreError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from .base import Capability, StoredRecord, StoreStats, check_key

Client = Any
"""``redis.Redis`` or ``redis.cluster.RedisCluster`` (their stubs share no base type)."""

_PREFIX_RE = re.compile(r"[a-z0-9_-]{1,32}")
_STATS_SCAN_BUDGET = 10_000
"""``stats`` counts exactly only while the prefix holds fewer keys than this."""

# ---------------------------------------------------------------------- scripts
# Conventions: numbers travel as decimal strings (Lua would truncate floats in
# replies); "" stands for "no user"; ``now`` is the store clock.

_LUA_LIVE = """
local function live(key, now)
  local e = redis.call('HGET', key, 'e')
  return e and tonumber(e) > tonumber(now)
end
"""

# KEYS[1] record.  ARGV: blob, expires_at, now, user_key|"", ttl_ms.
# Returns 1 when created, 0 when a record (expired or not) already exists.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'b', ARGV[1], 'v', '1', 'e', ARGV[2], 't', ARGV[3], 'u', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1] record, KEYS[2] its lock.  ARGV: blob, expected_version, expires_at,
# now, user_key|"", ttl_ms, fence ("0" = none, "1"..token = fenced by token),
# indexed ("1" when the caller already
# added the key to the new user's index).
# Returns {"gone"} | {"lost"} | {"conflict"} | {"index", old_user} (nothing
# written: index the new user first, then call again with indexed=1) |
# {"ok", old_user}.
_REPLACE = """
local cur = redis.call('HMGET', KEYS[1], 'v', 'u')
if not cur[1] then return {'gone'} end
if string.sub(ARGV[7], 1, 1) == '1' then
  local lk = redis.call('HMGET', KEYS[2], 't', 'e')
  local held = lk[1] == string.sub(ARGV[7], 2) and tonumber(lk[2]) > tonumber(ARGV[4])
  if not held then return {'lost'} end
end
if cur[1] ~= ARGV[2] then return {'conflict'} end
if ARGV[5] ~= '' and cur[2] ~= ARGV[5] and ARGV[8] ~= '1' then return {'index', cur[2]} end
local v = tostring(tonumber(cur[1]) + 1)
redis.call('HSET', KEYS[1], 'b', ARGV[1], 'v', v, 'e', ARGV[3], 't', ARGV[4], 'u', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {'ok', cur[2]}
"""

# KEYS[1] record.  ARGV: expires_at, touched_at, ttl_ms.
# Returns 1 when touched, 0 when the record is gone (never recreates it).
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[1], 't', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] record.  Returns the old user_key ("" = anonymous), nil if absent.
_DELETE = """
local u = redis.call('HGET', KEYS[1], 'u')
if not u then return false end
redis.call('DEL', KEYS[1])
return u
"""

# KEYS[1] kv entry.  ARGV: now.  Returns {value, version} or nil (absent/expired).
_KV_GET = _LUA_LIVE + """
if not live(KEYS[1], ARGV[1]) then return false end
return redis.call('HMGET', KEYS[1], 'v', 'n')
"""

# KEYS[1] kv entry.  ARGV: value, expires_at, now, ttl_ms.
# Returns 1 when written (absent or expired before), 0 when a live entry exists.
_KV_CREATE = _LUA_LIVE + """
if live(KEYS[1], ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'n', '1', 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS[1] kv entry.  ARGV: value, expected_version, expires_at, now, ttl_ms.
# Returns 1 when written with version expected+1, 0 on mismatch/absent/expired.
_KV_CAS = _LUA_LIVE + """
if not live(KEYS[1], ARGV[4]) then return 0 end
if redis.call('HGET', KEYS[1], 'n') ~= ARGV[2] then return 0 end
local n = tostring(tonumber(ARGV[2]) + 1)
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'n', n, 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1] kv entry.  ARGV: now.  Returns the value and deletes the entry
# (consume-once), or nil when absent/expired (an expired entry is dropped).
_KV_TAKE = _LUA_LIVE + """
if not live(KEYS[1], ARGV[1]) then redis.call('DEL', KEYS[1]) return false end
local v = redis.call('HGET', KEYS[1], 'v')
redis.call('DEL', KEYS[1])
return v
"""

# KEYS[1] kv entry.  ARGV: now.  Deletes; returns 1 if a live entry existed.
_KV_DELETE = _LUA_LIVE + """
local was = live(KEYS[1], ARGV[1])
redis.call('DEL', KEYS[1])
if was then return 1 end
return 0
"""

# KEYS[1] lock.  ARGV: token, now, expires_at, ttl_ms.
# Returns 1 when taken (free, expired or already ours), 0 when another holds it.
_LOCK_ACQUIRE = """
local cur = redis.call('HMGET', KEYS[1], 't', 'e')
if cur[1] and cur[1] ~= ARGV[1] and tonumber(cur[2]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

_LUA_HOLDS = """
local function holds(key, token, now)
  local cur = redis.call('HMGET', key, 't', 'e')
  return cur[1] == token and tonumber(cur[2]) > tonumber(now)
end
"""

# KEYS[1] lock.  ARGV: token, now, expires_at, ttl_ms.
# Returns 1 when extended, 0 when the lock is not ours (or expired).
_LOCK_RENEW = _LUA_HOLDS + """
if not holds(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS[1] lock.  ARGV: token, now.  Returns 1 when released, 0 when not ours.
_LOCK_RELEASE = _LUA_HOLDS + """
if not holds(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

_SCRIPTS = {
    "create": _CREATE,
    "replace": _REPLACE,
    "touch": _TOUCH,
    "delete": _DELETE,
    "kv_get": _KV_GET,
    "kv_create": _KV_CREATE,
    "kv_cas": _KV_CAS,
    "kv_take": _KV_TAKE,
    "kv_delete": _KV_DELETE,
    "lock_acquire": _LOCK_ACQUIRE,
    "lock_renew": _LOCK_RENEW,
    "lock_release": _LOCK_RELEASE,
}


def _num(value: float) -> str:
    """A float as an exact decimal string for Lua's ``tonumber``."""
    return repr(float(value))


def _text(raw: bytes | str) -> str:
    return raw.decode("ascii") if isinstance(raw, bytes) else raw


# ------------------------------------------------------------------------ URLs

_QUERY_OPTIONS = frozenset(
    {"db", "username", "password", "socket_timeout", "socket_connect_timeout", "max_connections"}
)
_TLS_OPTIONS = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})
_SCHEMES = frozenset({"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"})


def _url_error(what: str) -> ConfigurationError:
    """A URL error that never repeats the URL (it may hold a password)."""
    return ConfigurationError(
        f"invalid redis store URL: {what}; expected redis://[user:pass@]host:port/db, "
        "rediss://…?ssl_ca_certs=…, unix:///path/redis.sock?db=N or "
        "redis+cluster://host:port[,host:port…]"
    )


def _parse_query(query: str, tls: bool) -> dict[str, str]:
    """Allowed query options only: a typo must fail, not be silently ignored.

    Raises:
        ConfigurationError: unknown, repeated or empty option.
    """
    allowed = _QUERY_OPTIONS | (_TLS_OPTIONS if tls else frozenset())
    options: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in allowed:
            shown = name if re.fullmatch(r"[a-z_]{1,30}", name) else "?"
            raise _url_error(f"unsupported query option {shown!r}")
        if len(values) != 1 or not values[0]:
            raise _url_error(f"option {name!r} needs exactly one non-empty value")
        options[name] = values[0]
    return options


def _conn_kwargs(
    options: dict[str, str], username: str | None, password: str | None, defaults: dict[str, float]
) -> dict[str, Any]:
    """redis-py connection keywords from URL parts and the constructor defaults.

    Raises:
        ConfigurationError: a numeric option is not a number.
    """
    try:
        kwargs: dict[str, Any] = {
            "username": options.get("username", username),
            "password": options.get("password", password),
            "socket_timeout": float(options.get("socket_timeout", defaults["socket_timeout"])),
            "socket_connect_timeout": float(
                options.get("socket_connect_timeout", defaults["socket_connect_timeout"])
            ),
            "max_connections": int(options.get("max_connections", defaults["max_connections"])),
        }
    except ValueError:
        raise _url_error("a timeout or max_connections option is not a number") from None
    if min(kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) <= 0:
        raise _url_error("timeouts must be positive (an unbounded wait is never the default)")
    if kwargs["max_connections"] < 1:
        raise _url_error("max_connections must be at least 1")
    kwargs.update({name: options[name] for name in _TLS_OPTIONS if name in options})
    # Scripts are not idempotent: never replay a command whose outcome is unknown.
    kwargs["retry"] = Retry(NoBackoff(), 0)
    return kwargs


def _parse_db(options: dict[str, str], path: str) -> int:
    raw = options.get("db") or path.strip("/") or "0"
    if not raw.isdigit():
        raise _url_error("the database must be a number")
    return int(raw)


def _single_client(
    scheme: str, parts: Any, kwargs: dict[str, Any], db: int
) -> redis.Redis[bytes]:
    """A ``redis.Redis`` over a blocking pool (waits for a free connection, bounded)."""
    pool_kwargs = dict(kwargs, db=db, timeout=kwargs["socket_connect_timeout"])
    if scheme == "unix":
        if not parts.path:
            raise _url_error("unix:// needs a socket path")
        pool_kwargs["path"] = unquote(parts.path)
        pool_kwargs["connection_class"] = redis.UnixDomainSocketConnection
    else:
        if not parts.hostname:
            raise _url_error("a host is required")
        pool_kwargs.update(host=parts.hostname, port=parts.port or 6379)
        if scheme == "rediss":
            pool_kwargs["connection_class"] = redis.SSLConnection
    return redis.Redis(connection_pool=redis.BlockingConnectionPool(**pool_kwargs))


def _cluster_nodes(netloc: str) -> list[ClusterNode]:
    hosts = netloc.rpartition("@")[2]
    nodes = []
    for item in hosts.split(","):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise _url_error("cluster nodes must be host:port[,host:port…]")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    return nodes


def _cluster_client(scheme: str, parts: Any, kwargs: dict[str, Any]) -> RedisCluster[bytes]:
    """A ``RedisCluster``; it contacts the startup nodes to learn the slot map.

    Raises:
        StoreUnavailableError: no startup node answered.
    """
    if scheme == "rediss+cluster":
        kwargs["ssl"] = True
    nodes = _cluster_nodes(parts.netloc)
    try:
        return RedisCluster(startup_nodes=nodes, **kwargs)
    except _REDIS_ERRORS as exc:
        raise _wrap(exc, "redis-cluster") from exc


_REDIS_ERRORS = (redis.RedisError, RedisClusterException)
"""Everything redis-py raises (its cluster exception is not a ``RedisError``)."""


def _wrap(exc: Exception, kind: str) -> StoreError:
    """Map a redis-py error to ours; the message names the store kind only.

    The redis-py message is left out on purpose: it can hold host names or
    command arguments.  It stays reachable as ``__cause__`` for debugging.
    """
    name = type(exc).__name__
    if isinstance(exc, redis.TimeoutError):
        return StoreTimeoutError(f"{kind} store did not answer in time ({name})", store=kind)
    if isinstance(exc, redis.AuthenticationError):
        return StoreUnavailableError(f"{kind} store refused the credentials ({name})", store=kind)
    if isinstance(exc, redis.ConnectionError | redis.exceptions.ClusterError):
        return StoreUnavailableError(f"{kind} store is unreachable ({name})", store=kind)
    if isinstance(exc, RedisClusterException | redis.BusyLoadingError):
        return StoreUnavailableError(f"{kind} store is unavailable ({name})", store=kind)
    return StoreError(f"{kind} store failed ({name})", store=kind)


def _record(fields: Sequence[bytes | None]) -> StoredRecord | None:
    """A record from ``HMGET b v e t u``; None when the hash is gone."""
    blob, version, expires, touched, user = fields
    if blob is None or version is None or expires is None or touched is None:
        return None
    return StoredRecord(
        blob, int(version), float(expires), float(touched), _text(user) if user else None
    )


def _check_prefix(prefix: str) -> None:
    """Refuse a prefix that could break the key layout or the SCAN pattern.

    Raises:
        ConfigurationError: not ``[a-z0-9_-]{1,32}``.
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ConfigurationError("redis store prefix must match [a-z0-9_-]{1,32}")


class RedisStore:
    """Sessions in Redis (one node or a Cluster); see the module docstring for the layout.

    Args:
        client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` created with
            ``decode_responses=False``.
        clock: the store clock (POSIX seconds); expiry is compared with it.
        prefix: the first part of every key name, ``[a-z0-9_-]{1,32}``; several
            apps or tests can share one Redis with different prefixes.
        owns_client: close the client in :meth:`close` (True from :meth:`from_url`).

    Raises:
        ConfigurationError: invalid prefix.
    """

    capabilities = frozenset(
        {Capability.NATIVE_TTL, Capability.CROSS_PROCESS, Capability.PERSISTENT, Capability.SCAN}
    )

    def __init__(
        self,
        client: Client,
        *,
        clock: Callable[[], float] = system_clock,
        prefix: str = "sw",
        owns_client: bool = False,
    ) -> None:
        _check_prefix(prefix)
        self.clock = clock
        self.prefix = prefix
        self.kind = "redis-cluster" if isinstance(client, RedisCluster) else "redis"
        self._client = client
        self._owns_client = owns_client
        self._scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Callable[[], float] = system_clock,
        prefix: str = "sw",
        socket_timeout: float = 3.0,
        socket_connect_timeout: float = 2.0,
        max_connections: int = 64,
    ) -> RedisStore:
        """Build a store from ``redis://``, ``rediss://``, ``unix://`` or ``redis+cluster://``.

        Query options: ``db``, ``username``, ``password``, ``socket_timeout``,
        ``socket_connect_timeout``, ``max_connections``; with TLS also
        ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile`` (certificates are
        always verified, host names always checked).

        Raises:
            ConfigurationError: malformed URL, option or prefix (the URL is never echoed).
            StoreUnavailableError: a Cluster's startup nodes did not answer.
        """
        _check_prefix(prefix)  # before any client exists, so nothing is left open
        try:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password) if parts.password is not None else None
            if not scheme.endswith("+cluster"):
                _ = parts.port  # validates the port early (ValueError)
        except ValueError:
            raise _url_error("it could not be parsed") from None
        if scheme not in _SCHEMES:
            raise _url_error("unsupported scheme")
        options = _parse_query(parts.query, tls=scheme.startswith("rediss"))
        defaults = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "max_connections": float(max_connections),
        }
        kwargs = _conn_kwargs(options, username, password, defaults)
        # unix:// paths name the socket; only redis(s):// paths carry the db number.
        db = _parse_db(options, parts.path if scheme in ("redis", "rediss") else "")
        client: Client
        if scheme.endswith("+cluster"):
            if db != 0:
                raise _url_error("Redis Cluster only has database 0")
            client = _cluster_client(scheme, parts, kwargs)
        else:
            client = _single_client(scheme, parts, kwargs, db)
        return cls(client, clock=clock, prefix=prefix, owns_client=True)

    # ---------------------------------------------------------------- plumbing

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn every redis-py failure into a StoreError (never None for an outage)."""
        try:
            yield
        except _REDIS_ERRORS as exc:
            raise _wrap(exc, self.kind) from exc

    def _run(self, script: str, keys: list[str], args: Sequence[bytes | str]) -> Any:
        with self._guard():
            return self._scripts[script](keys=keys, args=args)

    def _rec_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:rec"

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:lock"

    def _kv_key(self, key: str) -> str:
        return f"{self.prefix}:{{{key}}}:kv"

    def _user_key(self, user_key: str) -> str:
        return f"{self.prefix}:{{{user_key}}}:user"

    def _ttl_ms(self, expires_at: float) -> str:
        """Relative TTL for the native expiry; at least 1 ms (0 would be refused)."""
        return str(max(1, int((expires_at - self.clock()) * 1000)))

    # ----------------------------------------------------------------- records

    def create(
        self, key: str, blob: bytes, *, expires_at: float, user_key: str | None
    ) -> StoredRecord:
        """Insert version 1 if absent (script ``create``); see ``SessionStore.create``.

        Raises:
            SessionExistsError: a record (expired or not) exists under ``key``.
            StoreError: backend failure.
        """
        check_key(key)
        if user_key is not None:
            check_key(user_key)
            self._index_add(user_key, key)  # before: a crash leaves an extra entry only
        now = self.clock()
        args: list[bytes | str] = [
            blob, _num(expires_at), _num(now), user_key or "", self._ttl_ms(expires_at)
        ]  # fmt: skip
        if not self._run("create", [self._rec_key(key)], args):
            raise SessionExistsError("a record already exists under this key")
        if user_key is not None:
            self._index_add(user_key, key)  # after: repairs a concurrent lazy prune
        return StoredRecord(blob, 1, expires_at, now, user_key)

    def load(self, key: str) -> StoredRecord | None:
        """The record (expired or not) or None; one ``HMGET``.

        Raises:
            StoreError: backend failure (never None for an outage).
        """
        check_key(key)
        with self._guard():
            fields = self._client.hmget(self._rec_key(key), ["b", "v", "e", "t", "u"])
        return _record(fields)

    def replace(
        self,
        key: str,
        blob: bytes,
        *,
        expected_version: int,
        expires_at: float,
        user_key: str | None,
        fence: str | None = None,
    ) -> StoredRecord:
        """Compare-and-set by version, optionally fenced (script ``replace``).

        Raises:
            SessionGoneError: no record under ``key``.
            SessionConflictError: the version moved.
            LockLostError: ``fence`` given and the lock is not ours any more.
            StoreError: backend failure.
        """
        check_key(key)
        if user_key is not None:
            check_key(user_key)
        now = self.clock()
        args: list[bytes | str] = [
            blob, str(expected_version), _num(expires_at), _num(now), user_key or "",
            self._ttl_ms(expires_at), "0" if fence is None else "1" + fence, "0",
        ]  # fmt: skip
        keys = [self._rec_key(key), self._lock_key(key)]
        reply = self._run("replace", keys, args)
        if _text(reply[0]) == "index" and user_key is not None:
            # The user changes: index the new user before the write (crash-safe).
            self._index_add(user_key, key)
            args[-1] = "1"
            reply = self._run("replace", keys, args)
        old_user = self._check_replace(reply)
        if user_key is not None and old_user != user_key:
            self._index_add(user_key, key)
        if old_user and old_user != user_key:
            self._index_remove(old_user, key)
        return StoredRecord(blob, expected_version + 1, expires_at, now, user_key)

    @staticmethod
    def _check_replace(reply: list[bytes]) -> str:
        """The old user key ("" = none) from an ``ok`` reply, else the matching error.

        Raises:
            SessionGoneError, LockLostError, SessionConflictError: as ``replace``.
        """
        status = _text(reply[0])
        if status == "gone":
            raise SessionGoneError("the session was deleted by a concurrent request")
        if status == "lost":
            raise LockLostError("the session lock is no longer held by this request")
        if status != "ok":
            raise SessionConflictError("the session was changed by a concurrent request")
        return _text(reply[1])

    def touch(self, key: str, *, expires_at: float, touched_at: float) -> bool:
        """Update ``expires_at``/``touched_at`` and the native TTL only (script ``touch``).

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        args = [_num(expires_at), _num(touched_at), self._ttl_ms(expires_at)]
        return bool(self._run("touch", [self._rec_key(key)], args))

    def delete(self, key: str) -> bool:
        """Delete the record (script ``delete``), then its user-index entry.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        old_user = self._run("delete", [self._rec_key(key)], [])
        if old_user is None:
            return False
        if old_user:
            self._index_remove(_text(old_user), key)
        return True

    # -------------------------------------------------------------- user index

    def _index_add(self, user_key: str, key: str) -> None:
        with self._guard():
            self._client.sadd(self._user_key(user_key), key)

    def _index_remove(self, user_key: str, key: str) -> None:
        """Remove ``key`` from the index, then put it back if the record is
        (again) the user's: a writer that indexed it concurrently may have
        finished between our read and our SREM."""
        with self._guard():
            self._client.srem(self._user_key(user_key), key)
            current = self._client.hget(self._rec_key(key), "u")
            if current is not None and _text(current) == user_key:
                self._client.sadd(self._user_key(user_key), key)

    def by_user(self, user_key: str) -> list[tuple[str, StoredRecord]]:
        """The user's records: ``SMEMBERS`` plus one pipelined ``HMGET`` each.

        Entries whose record is gone or belongs to someone else are pruned.

        Raises:
            StoreError: backend failure.
        """
        check_key(user_key)
        with self._guard():
            members = sorted(_text(m) for m in self._client.smembers(self._user_key(user_key)))
        found = []
        for key, record in zip(members, self._fetch(members), strict=True):
            if record is None or record.user_key != user_key:
                self._index_remove(user_key, key)
            else:
                found.append((key, record))
        return found

    def _fetch(self, keys: Sequence[str]) -> list[StoredRecord | None]:
        """Records for ``keys`` in one pipeline (split per node on a Cluster)."""
        if not keys:
            return []
        with self._guard():
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self._rec_key(key), ["b", "v", "e", "t", "u"])
            return [_record(fields) for fields in pipe.execute()]

    # -------------------------------------------------------------------- scan

    def _nodes(self) -> list[tuple[str, redis.Redis[bytes]]]:
        """``(name, client)`` per primary, sorted by name; one entry on a single node."""
        if not isinstance(self._client, RedisCluster):
            return [("-", self._client)]
        with self._guard():
            primaries = sorted(self._client.get_primaries(), key=lambda n: n.name)
            return [(n.name, self._client.get_redis_connection(n)) for n in primaries]

    def scan(
        self, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, StoredRecord]], str | None]:
        """One page via ``SCAN MATCH <prefix>:{*}:rec`` (each primary in turn on a Cluster).

        The cursor is ``"<node>|<scan cursor>|<last key taken>"``: a SCAN batch
        is sorted and may be split across pages.  A record may appear twice if
        Redis rehashes meanwhile (SCAN's own guarantee), never be skipped if
        it lives through the whole iteration.

        Raises:
            ValueError: malformed cursor or ``limit`` < 1.
            StoreError: backend failure.
        """
        if limit < 1:
            raise ValueError("scan limit must be at least 1")
        node, position, after = self._parse_cursor(cursor)
        page: list[tuple[str, StoredRecord]] = []
        nodes = [n for n in self._nodes() if n[0] >= node]
        if nodes and nodes[0][0] != node:
            position, after = 0, ""  # that node left the cluster: start the next one
        for name, client in nodes:
            while len(page) < limit:
                keys, next_position = self._scan_batch(client, position, limit, after)
                taken = keys[: limit - len(page)]
                page.extend(
                    (k, r) for k, r in zip(taken, self._fetch(taken), strict=True) if r is not None
                )
                if len(taken) < len(keys):
                    return page, f"{name}|{position}|{taken[-1]}"
                position, after = next_position, ""
                if position == 0:
                    break
            if len(page) >= limit:
                return page, (f"{name}|{position}|" if position else self._after(name))
            position = 0
        return page, None

    def _after(self, name: str) -> str | None:
        """Cursor that starts the node after ``name`` (None when it was the last)."""
        later = [n for n, _ in self._nodes() if n > name]
        return f"{later[0]}|0|" if later else None

    def _scan_batch(
        self, client: redis.Redis[bytes], position: int, limit: int, after: str
    ) -> tuple[list[str], int]:
        """One SCAN call: sorted storage keys (those after ``after``) and the next position."""
        match = f"{self.prefix}:{{*}}:rec"
        with self._guard():
            next_position, raw = client.scan(position, match=match, count=max(100, limit))
        start, end = len(self.prefix) + 2, -len("}:rec")
        keys = sorted(_text(k)[start:end] for k in raw)
        return [k for k in keys if k > after], int(next_position)

    @staticmethod
    def _parse_cursor(cursor: str | None) -> tuple[str, int, str]:
        """Split a cursor from :meth:`scan`.

        Raises:
            ValueError: not a cursor this store produced.
        """
        if cursor is None:
            return "", 0, ""
        node, sep1, rest = cursor.partition("|")
        position, sep2, after = rest.partition("|")
        if not (sep1 and sep2 and position.isdigit()):
            raise ValueError("malformed scan cursor")
        if after:
            check_key(after)
        return node, int(position), after

    def purge_expired(self, now: float, limit: int) -> int:
        """Nothing to do: every key carries a native TTL (``NATIVE_TTL``)."""
        return 0

    def stats(self, now: float) -> StoreStats:
        """Exact key counts while the prefix holds under 10 000 keys, else -1.

        ``expired`` and ``bytes`` are always -1 (they would need every record).

        Raises:
            StoreError: backend failure.
        """
        counts = {"rec": 0, "kv": 0, "lock": 0}
        budget = _STATS_SCAN_BUDGET
        for _, client in self._nodes():
            with self._guard():
                for raw in client.scan_iter(match=f"{self.prefix}:{{*}}:*", count=1000):
                    budget -= 1
                    if budget < 0:
                        return StoreStats(-1, -1, -1, -1, -1)
                    kind = _text(raw).rpartition(":")[2]
                    if kind in counts:
                        counts[kind] += 1
        return StoreStats(counts["rec"], -1, counts["kv"], counts["lock"], -1)

    # ---------------------------------------------------------------------- kv

    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        """``(value, version)`` unless absent or expired by the store clock.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        reply = self._run("kv_get", [self._kv_key(key)], [_num(self.clock())])
        if reply is None or reply[0] is None or reply[1] is None:
            return None
        return bytes(reply[0]), int(reply[1])

    def kv_create(self, key: str, value: bytes, *, expires_at: float) -> bool:
        """Insert version 1 if absent or expired.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        now = self.clock()
        args: list[bytes | str] = [value, _num(expires_at), _num(now), self._ttl_ms(expires_at)]
        return bool(self._run("kv_create", [self._kv_key(key)], args))

    def kv_cas(self, key: str, value: bytes, *, expected_version: int, expires_at: float) -> bool:
        """Write version ``expected_version + 1`` if the live version matches.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        args: list[bytes | str] = [
            value, str(expected_version), _num(expires_at), _num(self.clock()),
            self._ttl_ms(expires_at),
        ]  # fmt: skip
        return bool(self._run("kv_cas", [self._kv_key(key)], args))

    def kv_take(self, key: str) -> bytes | None:
        """Read and delete in one script: of N concurrent callers exactly one wins.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        reply = self._run("kv_take", [self._kv_key(key)], [_num(self.clock())])
        return None if reply is None else bytes(reply)

    def kv_delete(self, key: str) -> bool:
        """Delete; True if a live entry existed.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        return bool(self._run("kv_delete", [self._kv_key(key)], [_num(self.clock())]))

    # ------------------------------------------------------------------- locks

    def lock_acquire(self, key: str, token: str, ttl: float) -> bool:
        """Take the lease if free, expired or already ours.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        now = self.clock()
        args = [token, _num(now), _num(now + ttl), str(max(1, int(ttl * 1000)))]
        return bool(self._run("lock_acquire", [self._lock_key(key)], args))

    def lock_renew(self, key: str, token: str, ttl: float) -> bool:
        """Extend our lease by ``ttl`` from now; False if not ours.

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        now = self.clock()
        args = [token, _num(now), _num(now + ttl), str(max(1, int(ttl * 1000)))]
        return bool(self._run("lock_renew", [self._lock_key(key)], args))

    def lock_release(self, key: str, token: str) -> bool:
        """Release if ours (never another's lock).

        Raises:
            StoreError: backend failure.
        """
        check_key(key)
        return bool(self._run("lock_release", [self._lock_key(key)], [token, _num(self.clock())]))

    # -------------------------------------------------------------- lifecycle

    def ping(self) -> None:
        """Round-trip to Redis (every primary on a Cluster).

        Raises:
            StoreUnavailableError: unreachable.
            StoreTimeoutError: no answer in time.
        """
        with self._guard():
            self._client.ping()

    def close(self) -> None:
        """Close the connection pool(s) if this store created the client."""
        if not self._owns_client:
            return
        with self._guard():
            self._client.close()
            if not isinstance(self._client, RedisCluster):
                # Redis.close() leaves a pool it did not create open.
                self._client.connection_pool.disconnect()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
