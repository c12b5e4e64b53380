"""The Lua scripts of the Redis store, as data, each under its KEYS/ARGV contract.

Every script touches only keys that share one ``{K}`` hash tag, so it runs on
one Cluster node (the layout is in :mod:`sessionward.stores.redis.conn`).  A
script's contract comment changes together with the script and with the
``RedisStore`` method that calls it (by its name in ``_SCRIPTS``).
"""

from __future__ import annotations

# Conventions: numbers travel as decimal strings (Lua would truncate floats in
# replies); "" stands for "no user"; ``now`` is the store clock.

# live(): a kv entry whose expiry field is missing or not a number is an
# error reply "CORRUPT ..." (mapped to CorruptEntryError), never "absent":
# absent would reset a throttle (fail open).
_LUA_LIVE = """
local function live(key, now)
  local e = redis.call('HGET', key, 'e')
  if not e then
    if redis.call('EXISTS', key) == 1 then error({err = 'CORRUPT kv entry without expiry'}) end
    return false
  end
  local n = tonumber(e)
  if not n then error({err = 'CORRUPT kv entry with a malformed expiry'}) end
  return n > tonumber(now)
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

# KEYS[1] record.  ARGV: prefix, storage key.  Returns {b, v, e, t, u, indexed}:
# the record's fields (false when absent) and whether it is in its user's
# index: 1 when u is absent or "", else SISMEMBER P:{u}:user K.  Why in the
# script: a record a store writer removed from the index ("sign out
# everywhere" would miss it) must not load, and this costs no extra round
# trip.  P:{u}:user is not in KEYS (it is unknown until the record is read),
# so this script runs on a single node only; a Cluster client issues HMGET
# and SISMEMBER itself (:func:`.records.load`).
_LOAD = """
local r = redis.call('HMGET', KEYS[1], 'b', 'v', 'e', 't', 'u')
local indexed = 1
if r[5] and r[5] ~= '' then
  indexed = redis.call('SISMEMBER', ARGV[1] .. ':{' .. r[5] .. '}:user', ARGV[2])
end
return {r[1], r[2], r[3], r[4], r[5], indexed}
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

# KEYS[1] kv entry.  ARGV: now.  Deletes; returns 1 if a live (or corrupt:
# no numeric expiry, or not a hash) entry existed.  Never an error: deleting
# is how a corrupt entry is cleared.
_KV_DELETE = """
local e = redis.pcall('HGET', KEYS[1], 'e')
local n = type(e) == 'string' and tonumber(e) or nil
if redis.call('DEL', KEYS[1]) == 1 and (n == nil or n > tonumber(ARGV[1])) then return 1 end
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
    "load": _LOAD,
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
