"""The kv family (throttles, one-time tokens, remember-me, replay caches) and the
lease locks of the Redis store, each one script under its KEYS/ARGV contract
(:mod:`.scripts`).  Expiry is compared with the store clock passed in ARGV."""

from __future__ import annotations

from ..base import check_key
from ..values import corrupt
from .conn import RedisConn
from .decode import parse_kv
from .records import lease_args
from .scripts import _num


def kv_get(conn: RedisConn, key: str) -> tuple[bytes, int] | None:
    """``(value, version)`` unless absent or expired by the store clock."""
    check_key(key)
    reply = conn.run("kv_get", [conn.kv_key(key)], [_num(conn.clock())])
    if reply is None:
        return None
    if not isinstance(reply, list) or len(reply) != 2:
        raise corrupt(conn.kind, "kv entry")
    return parse_kv(reply[0], reply[1], conn.kind)  # CorruptEntryError: a field missing/wrong


def kv_create(conn: RedisConn, key: str, value: bytes, *, expires_at: float) -> bool:
    """Insert version 1 if absent or expired."""
    check_key(key)
    now = conn.clock()
    args: list[bytes | str] = [value, _num(expires_at), _num(now), conn.ttl_ms(expires_at)]
    return bool(conn.run("kv_create", [conn.kv_key(key)], args))


def kv_cas(conn: RedisConn, key: str, value: bytes, *, expected_version: int,
           expires_at: float) -> bool:
    """Write version ``expected_version + 1`` if the live version matches."""
    check_key(key)
    args: list[bytes | str] = [
        value, str(expected_version), _num(expires_at), _num(conn.clock()),
        conn.ttl_ms(expires_at),
    ]  # fmt: skip
    return bool(conn.run("kv_cas", [conn.kv_key(key)], args))


def kv_take(conn: RedisConn, key: str) -> bytes | None:
    """Read and delete in one script: of N concurrent callers exactly one wins."""
    check_key(key)
    reply = conn.run("kv_take", [conn.kv_key(key)], [_num(conn.clock())])
    if reply is None:
        return None
    if type(reply) is not bytes:
        raise corrupt(conn.kind, "kv value")
    return reply


def kv_delete(conn: RedisConn, key: str) -> bool:
    """Delete; True if a live entry existed."""
    check_key(key)
    return bool(conn.run("kv_delete", [conn.kv_key(key)], [_num(conn.clock())]))


def lock_renew(conn: RedisConn, key: str, token: str, ttl: float) -> bool:
    """Extend our lease by ``ttl`` from now; False if not ours."""
    check_key(key)
    return bool(conn.run("lock_renew", [conn.lock_key(key)], lease_args(conn, token, ttl)))
