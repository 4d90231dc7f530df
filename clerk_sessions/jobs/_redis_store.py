"""The Redis job store: a job is a stream of chunks read by one consumer group.

Redis's own queue does the work (https://redis.io/docs/latest/develop/data-types/streams/):

- ``create`` writes the job under a staging name that expires unless kept alive, each
  chunk one stream entry (its ids, minus those the job's set already holds: the set
  dedups across the whole job), then publishes it with one script that renames the
  staging keys to the job's. A create that dies leaves only staging keys, which expire.
- ``claim`` is ``XAUTOCLAIM`` of an entry idle longer than the lease (its holder was
  killed, frozen or cut off), else ``XREADGROUP`` of a new one. Idle times are the
  server's clock, so hosts with skewed clocks agree.
- The fence token is the entry's delivery count: 1 at ``XREADGROUP``, one more at every
  ``XAUTOCLAIM`` (and at ``release``). ``heartbeat`` (``XCLAIM ... JUSTID``, which resets
  the idle time and keeps the count), ``complete`` and ``release`` are scripts that first
  check the entry is still pending with the claim's count, so a worker that wakes after
  losing its chunk changes nothing.
- ``complete`` writes the outcomes (one hash per kind, item -> outcome JSON), the
  counters and the ``XACK`` in one script: all of it or none of it.

Every key of a job carries the job's name as a hash tag, so a job lives in one slot.
Each method connects for its own duration (a coredis pool must be entered and left by
one task, and the store's methods are called from any task), retries while the server is
unreachable for up to ``outage_s``, then raises `JobStoreError`.

A server that may evict keys is refused at ``create`` and ``open`` (`_check_policy`),
and every read checks that the job's keys agree with its counters: a chunk stream or an
outcome hash that vanished (evicted, or a server restored from an incomplete copy) is
`JobDataLost`, never Redis's "no such key" or a job that seems to wait forever.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from contextlib import suppress
from typing import Any, Literal, TypeAlias, TypeVar, cast

import anyio

from clerk_sessions._errors import ConfigurationError
from clerk_sessions._eventloop import current_library
from clerk_sessions._urls import redact_url
from clerk_sessions.jobs._store import (
    Claim,
    ItemKind,
    JobDataLost,
    JobInfo,
    JobStoreError,
    outcome_from_json,
    outcome_to_json,
)
from clerk_sessions.models import ItemOutcome, JobStatus

try:
    import coredis
    from coredis.commands.script import Script
    from coredis.exceptions import RedisError
    from coredis.retry import NoRetryPolicy

    from clerk_sessions._redis_checks import eviction_policy
    from clerk_sessions._redis_errors import describe, is_transient
    from clerk_sessions.jobs._redis_policy import judge_policy, without_allow_eviction
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ConfigurationError(
        'the Redis job store needs the redis extra: pip install "clerk-sessions[redis]"'
    ) from exc

__all__ = ["RedisStore"]

_T = TypeVar("_T")
_Redis: TypeAlias = "coredis.Redis[bytes]"


# How long every method keeps retrying while the server is unreachable (killed,
# restarting, frozen) before it gives up: long enough for a restart or a failover.
OUTAGE_S = 60.0
# A reply slower than this means a frozen or lost server: the method retries.
_REPLY_TIMEOUT_S = 5.0
_CONNECT_TIMEOUT_S = 2.0
# Staging keys of a create expire this long after the creating process stopped
# refreshing them, so a killed create leaves nothing behind for long.
_STAGING_TTL_MS = 30_000
_STAGING_REFRESH_S = 10.0
# What release sets an entry's idle time to: any claimer's lease is shorter (and it must
# stay below the server's clock in ms, or Redis reads it as "now").
_RELEASED_IDLE_MS = 100_000_000_000
# Outcomes are read back this many at a time.
_SCAN_COUNT = 500
_GROUP = "workers"
_PREFIX = "clerk-sessions:job:"
# What the store runs, for a user whose ACL refuses one of them.
_NEEDS = "streams, hashes, sets and Lua scripts (EVALSHA and SCRIPT LOAD)"


class _Keys:
    """The Redis keys of one job (and of its staging copies while it is created)."""

    def __init__(self, name: str) -> None:
        # The name in braces is the hash tag: every key of the job maps to one slot, as
        # the scripts (and RENAME) need on a cluster.
        self._base = f"{_PREFIX}{{{name}}}:"
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
_BEGIN = Script[bytes](
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
_STAGE = Script[bytes](
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
_PUBLISH = Script[bytes](
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
_CLAIM = Script[bytes](
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
_HEARTBEAT = Script[bytes](
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
_STATUS = Script[bytes](
    script="""
local m = redis.call('HMGET', KEYS[1], 'total', 'revoked', 'failed')
if not m[1] then return 0 end
return {tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), redis.call('HLEN', KEYS[2]),
        redis.call('HLEN', KEYS[3]), redis.call('EXISTS', KEYS[4])}
"""
)

# KEYS: meta, chunks, revoked, failed, completed. ARGV: group, entry id, fence, then
# (item, 'r' or 'f', outcome JSON) for every item of the chunk.
_COMPLETE = Script[bytes](
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
_RELEASE = Script[bytes](
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
_REQUEUE = Script[bytes](
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


def _encode(item: str) -> bytes:
    # surrogatepass: any str the caller gave comes back equal.
    return item.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _unpack(data: bytes) -> tuple[str, ...]:
    """The ids of a chunk, from the length-prefixed form the scripts build."""
    items: list[str] = []
    position = 0
    while position < len(data):
        colon = data.index(b":", position)
        start = colon + 1
        end = start + int(data[position:colon])
        items.append(_decode(data[start:end]))
        position = end
    return tuple(items)


def _current_loop() -> object:
    """What identifies the running event loop (asyncio's loop, trio's run)."""
    if current_library() == "trio":
        import trio

        return trio.lowlevel.current_root_task()
    return asyncio.get_running_loop()


class _Keeper:
    """Keeps one coredis client open on one event loop, for tasks of any parent.

    A coredis pool is entered and left by one task, which owns its connections' tasks;
    the store's methods are called from any task, with no context of the store's to
    enter. So a task of the store's own, not a child of any caller (a system task on
    trio, a plain task on asyncio), enters the pool and holds it until `RedisStore.aclose`
    or the loop's end, when the loop cancels it.
    """

    def __init__(self, client: _Redis) -> None:
        self.client = client
        self.ready = anyio.Event()
        self.stop = anyio.Event()
        self.finished = anyio.Event()

    def spawn(self) -> None:
        if current_library() == "trio":
            import trio

            trio.lowlevel.spawn_system_task(self.hold)
        else:
            task = asyncio.get_running_loop().create_task(self.hold())
            # The loop keeps only a weak reference to its tasks.
            _holding.add(task)
            task.add_done_callback(_holding.discard)

    async def hold(self) -> None:
        try:
            await self.client.__aenter__()
            try:
                self.ready.set()
                await self.stop.wait()
            finally:
                await self.client.__aexit__(None, None, None)
        except Exception:
            # The pool itself failed: nobody is waiting to hear it; the next call starts
            # a new keeper. (Cancellation, at the loop's end, propagates.)
            pass
        finally:
            self.ready.set()
            self.finished.set()


_holding: set[asyncio.Task[None]] = set()


class RedisStore:
    """Durable jobs kept in Redis, for workers on many hosts (extra ``redis``).

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL as coredis reads it. The
    constructor does no I/O; every method connects for its own duration. While the server
    is unreachable a method retries for up to ``outage_s`` seconds (a restarted server
    that kept its data lets the workers carry on), then raises `JobStoreError`.

    Run Redis with persistence (AOF) and ``maxmemory-policy noeviction`` for jobs:
    ``create`` and ``open`` refuse a server with any other policy (`JobStoreError`),
    unless the URL says ``?allow_eviction=true`` (then they log one warning). A server
    that loses a job's data anyway (a restart without persistence, a failover to a
    stale replica) makes the reads raise `JobDataLost` or `LookupError`.
    """

    def __init__(self, url: str, *, outage_s: float = OUTAGE_S) -> None:
        self._shown = redact_url(url)
        self._url, self._allow_eviction = without_allow_eviction(url)
        self._outage_s = outage_s
        self._keepers: dict[object, _Keeper] = {}
        try:
            self._client()  # only parses the URL
        except (ValueError, TypeError, RedisError) as exc:
            # Not the parser's text: it may quote part of a password that confused it.
            raise ConfigurationError(
                f"invalid Redis URL {self._shown!r}: coredis cannot read it "
                "(redis://[USER:PASSWORD@]HOST[:PORT][/DB], with special characters of "
                "the password percent-encoded)"
            ) from exc

    def __repr__(self) -> str:
        return f"RedisStore({self._shown!r})"

    def _client(self) -> _Redis:
        return coredis.Redis.from_url(
            self._url,
            decode_responses=False,
            verify_version=False,
            stream_timeout=_REPLY_TIMEOUT_S,
            connect_timeout=_CONNECT_TIMEOUT_S,
            # Scripts are not all idempotent: retries are this store's, around whole
            # operations that it knows to be safe to repeat.
            retry_policy=NoRetryPolicy(),
        )

    async def _connection(self) -> _Redis:
        """The client of the running event loop: one pool per loop, kept open by a task
        of its own until `aclose` (or the loop's end)."""
        loop = _current_loop()
        keeper = self._keepers.get(loop)
        if keeper is None or keeper.finished.is_set():
            keeper = self._keepers[loop] = _Keeper(self._client())
            keeper.spawn()
        await keeper.ready.wait()
        if keeper.finished.is_set():
            raise JobStoreError(f"Redis job store {self._shown}: could not open a connection pool")
        return keeper.client

    def _failed(self, action: str, exc: BaseException) -> JobStoreError:
        problem = describe(exc, _REPLY_TIMEOUT_S, needs=_NEEDS, keys=f"~{_PREFIX}*")
        return JobStoreError(f"Redis job store {self._shown}: {action} failed: {problem}")

    def _missing(self, name: str) -> LookupError:
        return LookupError(
            f"no job named {name!r} in the Redis store {self._shown} "
            "(never created, or the server lost its data)"
        )

    def _lost(self, name: str, unaccounted: int) -> JobDataLost:
        return JobDataLost(
            f"Redis job store {self._shown}: the server no longer holds all of job "
            f"{name!r} (keys evicted, or the server restored an incomplete copy)",
            unaccounted=unaccounted,
        )

    async def _check_policy(self) -> None:
        """Refuse a server that may evict the job's keys (see `judge_policy`)."""

        async def read(client: _Redis) -> str | None:
            return await eviction_policy(client)

        judge_policy(
            await self._run("reading the server's maxmemory-policy", read),
            self._shown,
            allow=self._allow_eviction,
        )

    async def _run(self, action: str, operation: Callable[[_Redis], Awaitable[_T]]) -> _T:
        """``operation`` on a fresh connection, retried while the server is unreachable.

        Only operations that are safe to repeat come here: a script whose reply was lost
        may have run.
        """
        deadline: float | None = None
        delay = 0.05
        while True:
            try:
                return await operation(await self._connection())
            except (RedisError, TimeoutError) as exc:
                if not is_transient(exc):
                    raise self._failed(action, exc) from exc
                now = anyio.current_time()
                if deadline is None:
                    deadline = now + self._outage_s
                if now >= deadline:
                    raise self._failed(
                        f"{action} (unreachable for {self._outage_s:g} s)", exc
                    ) from exc
                await anyio.sleep(min(delay, deadline - now))
                delay = min(delay * 2, 1.0)

    # ------------------------------------------------------------------ create

    async def create(
        self, name: str, kind: ItemKind, chunks: AsyncIterable[Sequence[str]]
    ) -> JobInfo:
        """Create job ``name`` from ``chunks``, all or nothing (see `JobStore.create`).

        Not retried: on an unreachable server it raises `JobStoreError` at once, having
        created nothing, and can be run again.
        """
        keys = _Keys(name)
        staging = keys.staging(secrets.token_hex(8))
        try:
            client = await self._connection()
            judge_policy(await eviction_policy(client), self._shown, allow=self._allow_eviction)
            total = await self._stage(client, name, kind, keys, staging, chunks)
        except BaseException as exc:
            await self._discard(staging)
            if isinstance(exc, (RedisError, TimeoutError)):
                raise self._failed(f"creating job {name!r} (nothing was created)", exc) from exc
            raise
        return JobInfo(name=name, kind=kind, total=total)

    async def _discard(self, staging: tuple[str, str, str]) -> None:
        """Delete what a failed create staged, if the server can be reached soon (what is
        left expires in _STAGING_TTL_MS anyway).

        Under a shield: the create may be failing because its caller was cancelled.
        """
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + _CONNECT_TIMEOUT_S
            with suppress(RedisError, TimeoutError):
                await (await self._connection()).unlink(list(staging))

    async def _stage(
        self,
        client: _Redis,
        name: str,
        kind: ItemKind,
        keys: _Keys,
        staging: tuple[str, str, str],
        chunks: AsyncIterable[Sequence[str]],
    ) -> int:
        """Write the job under the staging keys, then publish it; returns its total."""
        if not await _evaluate(
            _BEGIN,
            client,
            [keys.meta, staging[0], staging[1]],
            [kind.value, _STAGING_TTL_MS, _GROUP],
        ):
            raise ValueError(f"a job named {name!r} exists already in {self._shown}")
        total = 0
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_alive, client, staging)
            try:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    added = cast(
                        int,
                        await _evaluate(
                            _STAGE, client, list(staging), [_STAGING_TTL_MS, *map(_encode, chunk)]
                        ),
                    )
                    if added < 0:
                        raise JobStoreError(
                            f"Redis job store {self._shown}: the staging copy of job "
                            f"{name!r} vanished while it was created (server restarted "
                            "or out of memory?); nothing was created, run it again"
                        )
                    total += added
            except Exception as exc:
                # Raised after the task group, unwrapped: the caller's own exception
                # must come out as it went in.
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        published = await _evaluate(
            _PUBLISH,
            client,
            [
                *staging,
                keys.meta,
                keys.chunks,
                keys.revoked,
                keys.failed,
                keys.leases,
                keys.completed,
            ],
            [],
        )
        if published == 0:
            raise ValueError(f"a job named {name!r} exists already in {self._shown}")
        if published != 1:
            raise JobStoreError(
                f"Redis job store {self._shown}: the staging copy of job {name!r} expired "
                "before it was published; nothing was created, run it again"
            )
        return total

    async def _keep_alive(self, client: _Redis, staging: tuple[str, str, str]) -> None:
        """Keep the staging keys from expiring while this create runs, however slowly
        its ids come."""
        while True:
            await anyio.sleep(_STAGING_REFRESH_S)
            try:
                for key in staging:
                    await client.pexpire(key, _STAGING_TTL_MS)
            except (RedisError, TimeoutError):
                # The next chunk written finds out what went wrong, and says so.
                continue

    # ------------------------------------------------------------------ reading

    async def open(self, name: str) -> JobInfo:
        """The info of job ``name``; `LookupError` if there is none. Refuses a server that
        may evict keys first (`JobStoreError`)."""
        await self._check_policy()
        keys = _Keys(name)

        async def read(client: _Redis) -> tuple[bytes | None, ...]:
            return await client.hmget(keys.meta, ["kind", "total"])

        kind, total = await self._run(f"opening job {name!r}", read)
        if kind is None or total is None:
            raise self._missing(name)
        return JobInfo(name=name, kind=ItemKind(kind.decode()), total=int(total))

    async def status(self, name: str) -> JobStatus:
        """Counts of job ``name``'s items by outcome, read in one script with what
        backs them: `JobDataLost` when a key the counts rely on is gone."""
        keys = _Keys(name)

        async def read(client: _Redis) -> object:
            return await _evaluate(
                _STATUS, client, [keys.meta, keys.revoked, keys.failed, keys.chunks], []
            )

        found = await self._run(f"reading job {name!r}", read)
        if found == 0:
            raise self._missing(name)
        total, revoked, failed, revoked_kept, failed_kept, chunks = cast("list[int]", found)
        # Each recorded outcome is one field of its hash, written with its counter in one
        # script; the chunk stream lives as long as the job (empty once it is done).
        unaccounted = max(0, revoked - revoked_kept) + max(0, failed - failed_kept)
        if not chunks:
            unaccounted += total - revoked - failed
        if unaccounted:
            raise self._lost(name, unaccounted)
        return JobStatus(name=name, total=total, revoked=revoked, failed=failed)

    async def outcomes(
        self, name: str, kind: Literal["revoked", "failed"] | None = None
    ) -> AsyncIterator[tuple[str, ItemOutcome]]:
        """Every recorded ``(item_id, outcome)`` of job ``name``, ``kind`` only if given.

        Checked against the job's counters before and after: a listing that a loss of
        data made incomplete ends with `JobDataLost`, never quietly short.
        """
        keys = _Keys(name)
        await self.status(name)
        hashes = {"revoked": keys.revoked, "failed": keys.failed}
        for key in [hashes[kind]] if kind is not None else hashes.values():
            async for item, data in self._scan(key, f"reading outcomes of job {name!r}"):
                yield item, outcome_from_json(data)
        await self.status(name)

    async def _scan(self, key: str, action: str) -> AsyncIterator[tuple[str, bytes]]:
        """The fields of hash ``key``, one connection per batch (none held across a
        yield: the caller may stop iterating anywhere, from any task)."""
        cursor = 0
        while True:

            async def page(client: _Redis, at: int = cursor) -> tuple[int, dict[bytes, bytes]]:
                return await client.hscan(key, at, count=_SCAN_COUNT)

            cursor, fields = await self._run(action, page)
            for item, data in fields.items():
                yield _decode(item), data
            if cursor == 0:
                return

    # ------------------------------------------------------------------ working

    async def claim(self, name: str, worker: str, lease_s: float) -> Claim | None:
        """Claim one chunk of job ``name`` for ``lease_s`` seconds, or return None."""
        keys = _Keys(name)

        async def claim(client: _Redis) -> object:
            return await _evaluate(
                _CLAIM,
                client,
                [keys.meta, keys.chunks, keys.leases, keys.revoked, keys.failed],
                [_GROUP, worker, _milliseconds(lease_s)],
            )

        found = await self._run(f"claiming a chunk of job {name!r}", claim)
        if found == 0:
            raise self._missing(name)
        if found == -1:
            # A key is gone: status says how many items that leaves unaccounted for
            # (none when only the stream of a finished job went).
            await self.status(name)
            return None
        entry = cast("list[bytes | int]", found)
        if not entry:
            return None
        entry_id, items, fence = entry
        assert isinstance(entry_id, bytes) and isinstance(items, bytes)
        return Claim(chunk_id=entry_id.decode(), items=_unpack(items), fence=int(fence))

    async def heartbeat(self, name: str, claim: Claim, lease_s: float) -> bool:
        """Extend ``claim``'s lease (its entry's idle time starts again), if it holds."""
        keys = _Keys(name)

        async def beat(client: _Redis) -> object:
            return await _evaluate(
                _HEARTBEAT,
                client,
                [keys.meta, keys.chunks, keys.leases],
                [_GROUP, claim.chunk_id, claim.fence, _milliseconds(lease_s)],
            )

        return await self._run(f"extending a lease of job {name!r}", beat) == 1

    async def complete(self, name: str, claim: Claim, outcomes: Mapping[str, ItemOutcome]) -> bool:
        """Record the outcomes of ``claim``'s chunk in one script, iff the claim holds."""
        if len(outcomes) != len(claim.items) or not all(i in outcomes for i in claim.items):
            missing = sorted(set(claim.items) - set(outcomes))
            extra = sorted(set(outcomes) - set(claim.items))
            raise ValueError(
                "complete() needs exactly one outcome per item of the claim: "
                f"missing {missing[:5]}, not in the chunk {extra[:5]}"
            )
        keys = _Keys(name)
        arguments: list[str | bytes | int] = [_GROUP, claim.chunk_id, claim.fence]
        for item in claim.items:
            outcome = outcomes[item]
            arguments += [_encode(item), "r" if outcome.ok else "f", outcome_to_json(outcome)]

        async def record(client: _Redis) -> object:
            return await _evaluate(
                _COMPLETE,
                client,
                [keys.meta, keys.chunks, keys.revoked, keys.failed, keys.completed],
                arguments,
            )

        return await self._run(f"recording outcomes of job {name!r}", record) == 1

    async def release(self, name: str, claim: Claim) -> None:
        """Give ``claim``'s chunk back claimable at once, if the claim still holds."""
        keys = _Keys(name)

        async def give_back(client: _Redis) -> object:
            return await _evaluate(
                _RELEASE,
                client,
                [keys.meta, keys.chunks],
                [_GROUP, claim.chunk_id, claim.fence, _RELEASED_IDLE_MS],
            )

        await self._run(f"releasing a chunk of job {name!r}", give_back)

    async def retry_failed(self, name: str) -> int:
        """Put the failed items whose outcome is retryable back to pending, as new
        chunks; returns how many."""
        keys = _Keys(name)

        async def read_chunk_size(client: _Redis) -> bytes | None:
            return await client.hget(keys.meta, "chunk_size")

        await self.status(name)
        size = await self._run(f"reading job {name!r}", read_chunk_size)
        if size is None:
            raise self._missing(name)
        chunk_size = max(int(size), 1)
        batch: list[bytes] = []
        requeued = 0

        async def requeue(client: _Redis) -> object:
            return await _evaluate(
                _REQUEUE, client, [keys.meta, keys.chunks, keys.failed], [_GROUP, *batch]
            )

        action = f"re-queueing failed items of job {name!r}"
        async for item, data in self._scan(keys.failed, action):
            if outcome_from_json(data).retryable:
                batch += [_encode(item), data]
                if len(batch) >= 2 * chunk_size:
                    requeued += await self._requeued(name, action, requeue)
                    batch.clear()
        if batch:
            requeued += await self._requeued(name, action, requeue)
        return requeued

    async def _requeued(
        self, name: str, action: str, requeue: Callable[[_Redis], Awaitable[object]]
    ) -> int:
        # Safe to repeat: an item is moved only while its failed outcome is still there.
        count = cast(int, await self._run(action, requeue))
        if count == -1:
            raise self._missing(name)
        if count < 0:
            await self.status(name)  # raises JobDataLost: the stream went, items pending
        return max(count, 0)

    async def aclose(self) -> None:
        """Close the connections of the running event loop. Idempotent.

        Call it on the loop that used the store; pools of loops that have ended were
        closed with them.
        """
        keepers, self._keepers = self._keepers, {}
        keeper = keepers.get(_current_loop())
        if keeper is not None:
            keeper.stop.set()
            await keeper.finished.wait()


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


async def _evaluate(
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
