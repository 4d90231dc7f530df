"""The Redis job store's data in Redis: the keys of a job (`Keys`), how a chunk's ids
are packed, and the Lua scripts that change a job in one atomic step (`evaluate` runs
one). `clerk_sessions.jobs._redis_store` says what each step guarantees.

Every key of a job carries the job's name as a hash tag, so a job lives in one slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import coredis
from coredis.commands.script import Script

__all__ = [
    "BEGIN",
    "CLAIM",
    "COMPLETE",
    "GROUP",
    "HEARTBEAT",
    "PREFIX",
    "PUBLISH",
    "RELEASE",
    "REQUEUE",
    "STAGE",
    "STATUS",
    "Keys",
    "decode",
    "encode",
    "evaluate",
    "unpack",
]

_Redis: TypeAlias = "coredis.Redis[bytes]"

#: The consumer group that the workers of every job read its chunks in.
GROUP = "workers"
#: What the name of every key of a job starts with.
PREFIX = "clerk-sessions:job:"


class Keys:
    """The Redis keys of one job (and of its staging copies while it is created)."""

    def __init__(self, name: str) -> None:
        # The name in braces is the hash tag: every key of the job maps to one slot, as
        # the scripts (and RENAME) need on a cluster.
        self._base = f"{PREFIX}{{{name}}}:"
        self.meta = self._base + "meta"  # hash: kind, total, revoked, failed, chunk_size
        self.chunks = self._base + "chunks"  # stream, one entry per pending chunk
        self.revoked = self._base + "revoked"  # hash: item -> outcome JSON
        self.failed = self._base + "failed"  # hash: item -> outcome JSON
        self.leases = self._base + "leases"  # hash: consumer -> its lease in ms
        self.completed = self._base + "completed"  # hash: entry id -> fence recorded

    def staging(self, token: str) -> tuple[str, str, str]:
        """The staging meta, chunks and id set of one create attempt."""
        base = f"{self._base}staging:{token}:"
        return base + "meta", base + "chunks", base + "ids"


# Lua. Chunks hold their ids length-prefixed ("5:abcde3:xyz"), which is binary safe and
# cheap to build and split on both sides.

_PACK = """
local function pack(parts, id) parts[#parts + 1] = #id .. ':' .. id end
"""

# The fence: the entry is pending (claimed, not completed) with the claim's delivery
# count. Sets `owner` to the consumer holding it.
_FENCE = """
local owner = nil
if redis.call('EXISTS', KEYS[2]) == 1 then
  local p = redis.call('XPENDING', KEYS[2], ARGV[1], ARGV[2], ARGV[2], 1)
  if #p == 1 and p[1][4] == tonumber(ARGV[3]) then owner = p[1][2] end
end
"""

# KEYS: meta (final), staging meta, staging chunks. ARGV: kind, ttl ms, group.
BEGIN = Script[bytes](
    script="""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'kind', ARGV[1], 'total', 0, 'revoked', 0, 'failed', 0,
           'chunk_size', 0)
redis.call('XGROUP', 'CREATE', KEYS[3], ARGV[3], '0', 'MKSTREAM')
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1
"""
)

# KEYS: staging meta, chunks, ids. ARGV: ttl ms, then the ids of one chunk.
STAGE = Script[bytes](
    script=_PACK
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local parts = {}
for i = 2, #ARGV do
  if redis.call('SADD', KEYS[3], ARGV[i]) == 1 then pack(parts, ARGV[i]) end
end
if #parts > 0 then
  redis.call('XADD', KEYS[2], '*', 'items', table.concat(parts))
  redis.call('HINCRBY', KEYS[1], 'total', #parts)
  if #parts > tonumber(redis.call('HGET', KEYS[1], 'chunk_size')) then
    redis.call('HSET', KEYS[1], 'chunk_size', #parts)
  end
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return #parts
"""
)

# KEYS: staging meta, chunks, ids; then meta, chunks, revoked, failed, leases, completed.
PUBLISH = Script[bytes](
    script="""
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3])
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('UNLINK', KEYS[6], KEYS[7], KEYS[8], KEYS[9])
redis.call('RENAME', KEYS[2], KEYS[5])
redis.call('PERSIST', KEYS[5])
redis.call('RENAME', KEYS[1], KEYS[4])
redis.call('PERSIST', KEYS[4])
redis.call('UNLINK', KEYS[3])
return 1
"""
)

# KEYS: meta, chunks, leases, revoked, failed. ARGV: group, consumer, lease ms.
# Returns 0 for no job, -1 when the job's keys disagree with its counters (a key is gone),
# {} for nothing claimable, else {entry id, items, fence}.
CLAIM = Script[bytes](
    script="""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local counts = redis.call('HMGET', KEYS[1], 'revoked', 'failed')
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('HLEN', KEYS[4]) < tonumber(counts[1])
   or redis.call('HLEN', KEYS[5]) < tonumber(counts[2]) then
  return -1
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
-- Take an entry over only once it is idle longer than the lease of every worker that
-- holds entries now, so a short lease never steals from a longer one.
local idle = tonumber(ARGV[3])
local holders = redis.call('XPENDING', KEYS[2], ARGV[1])[4]
if holders then
  for _, h in ipairs(holders) do
    local lease = tonumber(redis.call('HGET', KEYS[3], h[1]) or 0)
    if lease > idle then idle = lease end
  end
end
local entry, cursor = nil, '0-0'
repeat
  local found = redis.call('XAUTOCLAIM', KEYS[2], ARGV[1], ARGV[2], idle, cursor, 'COUNT', 1)
  cursor, entry = found[1], found[2][1]
until entry or cursor == '0-0'
if not entry then
  local new = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1,
                         'STREAMS', KEYS[2], '>')
  if not new then return {} end
  entry = new[1][2][1]
end
local p = redis.call('XPENDING', KEYS[2], ARGV[1], entry[1], entry[1], 1)
return {entry[1], entry[2][2], p[1][4]}
"""
)

# KEYS: meta, chunks, leases. ARGV: group, entry id, fence, lease ms.
HEARTBEAT = Script[bytes](
    script=_FENCE
    + """
if not owner then return 0 end
redis.call('XCLAIM', KEYS[2], ARGV[1], owner, 0, ARGV[2], 'JUSTID')
redis.call('HSET', KEYS[3], owner, ARGV[4])
return 1
"""
)

# KEYS: meta, revoked, failed, chunks. Returns 0 for no job, else {total, revoked,
# failed, fields of revoked, fields of failed, whether the stream exists}: one snapshot.
# Read-only, so a full server (noeviction at maxmemory) still answers it, where it
# refuses a MULTI.
STATUS = Script[bytes](
    script="""
local m = redis.call('HMGET', KEYS[1], 'total', 'revoked', 'failed')
if not m[1] then return 0 end
return {tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), redis.call('HLEN', KEYS[2]),
        redis.call('HLEN', KEYS[3]), redis.call('EXISTS', KEYS[4])}
"""
)

# KEYS: meta, chunks, revoked, failed, completed. ARGV: group, entry id, fence, then
# (item, 'r' or 'f', outcome JSON) for every item of the chunk.
COMPLETE = Script[bytes](
    script=_FENCE
    + """
if not owner then
  -- The same complete again (its first reply was lost): it was recorded.
  if redis.call('HGET', KEYS[5], ARGV[2]) == ARGV[3] then return 1 end
  return 0
end
local revoked, failed = 0, 0
for i = 4, #ARGV, 3 do
  if ARGV[i + 1] == 'r' then
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
    revoked = revoked + 1
  else
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 2])
    failed = failed + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'revoked', revoked)
redis.call('HINCRBY', KEYS[1], 'failed', failed)
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[5], ARGV[2], ARGV[3])
return 1
"""
)

# KEYS: meta, chunks. ARGV: group, entry id, fence, released idle ms.
RELEASE = Script[bytes](
    script=_FENCE
    + """
if not owner then return 0 end
-- Idle for ages (claimable by anyone at once), and the count moved on (the released
-- claim is void, and the next claim's fence is larger still).
redis.call('XCLAIM', KEYS[2], ARGV[1], owner, 0, ARGV[2], 'IDLE', ARGV[4],
           'RETRYCOUNT', tonumber(ARGV[3]) + 1, 'JUSTID')
return 1
"""
)

# KEYS: meta, chunks, failed. ARGV: group, then (item, outcome JSON) pairs read from the
# failed hash. Returns -1 for no job, -2 when the stream is gone with items pending in it.
REQUEUE = Script[bytes](
    script=_PACK
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- Gone once the job was done (nothing was pending in it): make it again, empty.
  local m = redis.call('HMGET', KEYS[1], 'total', 'revoked', 'failed')
  if tonumber(m[1]) > tonumber(m[2]) + tonumber(m[3]) then return -2 end
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[1], '0', 'MKSTREAM')
end
local parts = {}
for i = 2, #ARGV, 2 do
  -- Only if its outcome is still the one the caller judged retryable.
  if redis.call('HGET', KEYS[3], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[3], ARGV[i])
    pack(parts, ARGV[i])
  end
end
if #parts > 0 then
  redis.call('XADD', KEYS[2], '*', 'items', table.concat(parts))
  redis.call('HINCRBY', KEYS[1], 'failed', -#parts)
end
return #parts
"""
)


def encode(item: str) -> bytes:
    # surrogatepass: any str the caller gave comes back equal.
    return item.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def unpack(data: bytes) -> tuple[str, ...]:
    """The ids of a chunk, from the length-prefixed form the scripts build."""
    items: list[str] = []
    position = 0
    while position < len(data):
        colon = data.index(b":", position)
        start = colon + 1
        end = start + int(data[position:colon])
        items.append(decode(data[start:end]))
        position = end
    return tuple(items)


async def evaluate(
    script: Script[bytes],
    client: _Redis,
    keys: Sequence[str],
    arguments: Sequence[str | bytes | int],
) -> object:
    """Run ``script`` (EVALSHA, loading it on the server the first time); the reply as
    the server sent it (coredis's default for scripts)."""
    # Typed loosely: coredis's default callback is generic in what the script returns.
    run: Any = script
    reply: object = await run(list(keys), list(arguments), client=client)
    return reply
