"""One request quota for every process and host of a fleet, held on Redis (extra ``redis``).

`RedisRateLimit` gives the guarantee of `RateLimit` (never more than ``requests`` request
starts in any window of ``per_seconds``) to every client, in every process and on every
host, that uses the same Redis and key. Waiting is fair and cheap: each request books a
slot in one shared schedule and sleeps once until it; a request costs two Redis round
trips (three when it had to wait). When Redis is down, slow or restarted the clients
fall back to an in-process `RateLimit` with the same numbers, and rejoin the shared
quota as soon as Redis answers again: no Clerk call ever fails because of Redis.

The Redis client is `coredis <https://coredis.readthedocs.io>`_, which runs on anyio,
so the limiter works under asyncio, trio and the sync `Clerk` alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
import os
import secrets
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import anyio

from clerk_sessions._errors import ConfigurationError
from clerk_sessions._eventloop import current_library
from clerk_sessions._ratelimit import RateLimit, SharedLimiter
from clerk_sessions._urls import redact_url

try:
    import coredis
    from coredis.commands import Script

    from clerk_sessions._redis_checks import SAFE_POLICY, eviction_policy
    from clerk_sessions._redis_errors import describe
except ImportError as exc:  # pragma: no cover - the extra is installed in every test run
    raise ImportError(
        "clerk_sessions.redis needs the redis extra: pip install 'clerk-sessions[redis]'"
    ) from exc

__all__ = ["RedisRateLimit"]

logger = logging.getLogger("clerk_sessions")

# Each Redis operation gets this long before the limiter gives up on Redis for the call
# and falls back: a slow Redis must not stall the Clerk calls waiting on it. Loopback
# answers in well under a millisecond; 0.5 s was hit by processes starved of CPU (load
# 11 on 2 cores, benchmarks/bench_fleet.py), which then fell back for no fault of Redis.
_OP_TIMEOUT_S = 1.0
# While Redis is failing, one call in this many seconds tries it again; the others go
# straight to the in-process fallback.
_PROBE_EVERY_S = 2.0
_SCHEMES = ("redis", "rediss", "unix")
# What the limiter runs, for a user whose ACL refuses one of them.
_NEEDS = "sorted sets, strings and Lua scripts (EVALSHA and SCRIPT LOAD)"

# The whole algorithm, run atomically by Redis. Times are microseconds of Redis's own
# clock (TIME), so hosts with skewed clocks agree. KEYS: the quota's pause key, then a
# (started, planned) pair of sorted sets per level: the limiter's own, then its parents'
# (a share, then the quota it is carved from). ARGV: op, member, window, op argument,
# then each level's request limit, then the newest start the caller knows of per level.
#   started: the starts that count (score: start time, moved to the answer's time by
#            "finish"). The window guarantee rests on these alone: a start is counted
#            only when every level's last window holds fewer than its limit.
#   planned: the last `limit` slots handed out per level, so that waiters wake one by
#            one at distinct times, in the order they came, instead of all at once. A
#            request joins a level's queue only once the levels below it let it go, so
#            a share's waiters never hold up the rest of the quota.
#   lost:    a log that lacks a start the caller saw less than a window ago was lost
#            (Redis flushed, restarted without persistence, evicted the key, or failed
#            over to a replica that had not caught up). Starts it no longer counts may
#            still be in the window, so the whole quota pauses for one window: no window
#            then holds more than the limit.
# Every op answers {wait, booked, lost, newest start per level}. For reserve and start,
# wait 0 means the start was counted; else sleep `wait` microseconds, then call start
# with argument `booked` (the levels whose queue the request holds a slot in). lost is 1
# when this call found a lost log; the caller keeps the newest starts for its next call.
_SCRIPT = """
local op, member, per, arg = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local levels = (#KEYS - 1) / 2
local paused = tonumber(redis.call('GET', KEYS[1]) or 0)

local function keep(first, horizon)
  local ms = math.ceil((horizon - now + per) / 1000) + 1000
  for i = first, #KEYS, 2 do redis.call('PEXPIRE', KEYS[i], ms) end
end

local function start()
  local wait = 0
  for l = 1, levels do
    local started, limit = KEYS[2 * l], tonumber(ARGV[4 + l])
    redis.call('ZREMRANGEBYSCORE', started, '-inf', now - per)
    local count = redis.call('ZCARD', started)
    if count >= limit then
      local nth = redis.call('ZRANGE', started, count - limit, count - limit, 'WITHSCORES')
      wait = math.max(wait, tonumber(nth[2]) + per - now)
    end
  end
  if wait > 0 then return {wait, levels} end
  for l = 1, levels do redis.call('ZADD', KEYS[2 * l], now, member) end
  keep(2, now)
  return {0, levels}
end

local function book(from)
  local slot = math.max(now, paused)
  for l = from, levels do
    local planned, limit = KEYS[2 * l + 1], tonumber(ARGV[4 + l])
    local last = redis.call('ZRANGE', planned, -1, -1, 'WITHSCORES')[2]
    if last then slot = math.max(slot, tonumber(last)) end
    local count = redis.call('ZCARD', planned)
    if count >= limit then
      local nth = redis.call('ZRANGE', planned, count - limit, count - limit, 'WITHSCORES')
      slot = math.max(slot, tonumber(nth[2]) + per)
    end
    redis.call('ZADD', planned, slot, member)
    redis.call('ZREMRANGEBYRANK', planned, 0, -(limit + 1))
    redis.call('PEXPIRE', planned, math.ceil((slot - now + per) / 1000) + 1000)
    if slot > now then return {slot - now, l} end
  end
  return start()
end

local function newest(l)
  return tonumber(redis.call('ZRANGE', KEYS[2 * l], -1, -1, 'WITHSCORES')[2] or 0)
end

local function pause(micros)
  if now + micros > paused then
    paused = now + micros
    redis.call('SET', KEYS[1], paused, 'PX', math.ceil(micros / 1000) + 1)
  end
  -- Slots booked before the pause are void: rebuild the queues from what started, so
  -- that the waiters it holds are spread over the window again when it ends.
  for l = 1, levels do
    redis.call('DEL', KEYS[2 * l + 1])
    redis.call('ZUNIONSTORE', KEYS[2 * l + 1], 1, KEYS[2 * l])
  end
  keep(3, now)
end

-- A start is trimmed from a log only once a window old, and the log's key lives a
-- window past its newest start: a start seen less than a window ago is there, or lost.
local lost = 0
if op == 'reserve' or op == 'start' then
  for l = 1, levels do
    local known = tonumber(ARGV[4 + levels + l] or 0)
    if known > now - per and newest(l) < known then lost = 1 end
  end
  if lost == 1 then pause(per) end
end

local answer = {0, 0}
if op == 'reserve' then
  answer = book(1)
elseif op == 'start' then
  -- Paused after this request booked: book again, behind the pause.
  if paused > now then answer = book(1)
  elseif arg < levels then answer = book(arg + 1)
  else answer = start() end
elseif op == 'finish' then
  -- The queue moves too: slots booked from now on count from the answer, as the log
  -- does, so that their callers do not wake before the log lets them start.
  for i = 2, #KEYS do redis.call('ZADD', KEYS[i], 'XX', 'GT', now, member) end
  keep(2, now)
elseif op == 'pause' then
  pause(arg)
end
answer[3] = lost
for l = 1, levels do answer[3 + l] = newest(l) end
return answer
"""


def _loop_identity() -> Hashable:
    """The running event loop: a coredis client works only on the loop that made it."""
    if current_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    return asyncio.get_running_loop()


class _LoopClient:
    """One coredis client entered (``async with``) by a background task of one loop.

    coredis binds a connection pool to the task that enters it; the limiter is called
    from any task of the application, so a task of its own holds the pool open, and the
    callers use the client directly (commands need no particular task, only the pool).
    """

    def __init__(self, make: Callable[[], Any], inspect: Callable[[Any], Awaitable[None]]) -> None:
        self._make = make
        self._inspect = inspect
        self.ready = anyio.Event()
        self.stop = anyio.Event()
        self.done = anyio.Event()
        self.client: Any = None
        self.error: BaseException | None = None

    async def run(self, on_exit: Callable[[], None]) -> None:
        try:
            async with self._make() as client:
                # Loaded once per pool, rather than by every caller that would meet
                # NOSCRIPT at once on a fresh server (each paying two more round trips).
                await client.script_load(_SCRIPT)
                self.client = client
                self.ready.set()
                await self._inspect(client)
                await self.stop.wait()
        except Exception as exc:
            # A system task on trio must not raise; the callers see the error instead.
            self.error = exc
        finally:
            self.ready.set()
            on_exit()
            self.done.set()


class _Connections:
    """A quota's way to Redis: one client per event loop, and the shared health state."""

    def __init__(self, redis: str | Any) -> None:
        self._redis = redis
        self.lock = threading.Lock()
        self._clients: dict[Hashable, _LoopClient] = {}
        # While Redis is failing: when the next call may try it again (monotonic).
        self.retry_at: float | None = None
        # Typed loosely: coredis's generic callback types say nothing useful here.
        self.script: Any = Script(script=_SCRIPT)
        _ALL_CONNECTIONS.add(self)

    def _make(self) -> Any:
        return coredis.Redis.from_url(
            self._redis,
            stream_timeout=_OP_TIMEOUT_S,
            connect_timeout=_OP_TIMEOUT_S,
        )

    async def _inspect(self, client: Any) -> None:
        """Warn (once per server and process) when Redis may evict the quota's keys: the
        quota then holds only as well as the loss detection does (see _SCRIPT)."""
        shown = redact_url(self._redis)
        if shown in _EVICTION_WARNED:
            return
        try:
            policy = await eviction_policy(client)
        except Exception:
            return  # the calls themselves find out what is wrong with Redis
        if policy is None or policy == SAFE_POLICY or shown in _EVICTION_WARNED:
            return
        _EVICTION_WARNED.add(shown)
        logger.warning(
            "Redis at %s may evict the shared quota's keys (maxmemory-policy %s): after an "
            "eviction the quota can be exceeded for one window, until a process that saw "
            "it notices; run it with CONFIG SET maxmemory-policy noeviction",
            shown,
            policy,
        )

    async def client(self) -> Any:
        """The coredis client of the running loop, started on first use."""
        if not isinstance(self._redis, str):
            return self._redis
        loop = _loop_identity()
        with self.lock:
            holder = self._clients.get(loop)
            if holder is None:
                holder = self._clients[loop] = _LoopClient(self._make, self._inspect)
                self._spawn(holder, loop)
        if not holder.ready.is_set():  # waiting on a set Event is still a loop turn
            await holder.ready.wait()
        if holder.client is None:
            raise ConnectionError("cannot reach Redis") from holder.error
        return holder.client

    def _spawn(self, holder: _LoopClient, loop: Hashable) -> None:
        def forget() -> None:
            with self.lock:
                if self._clients.get(loop) is holder:
                    del self._clients[loop]

        if isinstance(loop, asyncio.AbstractEventLoop):
            task = loop.create_task(holder.run(forget))
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)
        else:
            import trio

            trio.lowlevel.spawn_system_task(holder.run, forget)

    async def aclose(self) -> None:
        """Close the client of the running loop (the next call opens a new one)."""
        if not isinstance(self._redis, str):
            return
        with self.lock:
            holder = self._clients.pop(_loop_identity(), None)
        if holder is not None:
            holder.stop.set()
            with anyio.CancelScope(shield=True):
                await holder.done.wait()

    def reset_after_fork(self) -> None:
        # The parent's connections and loops are not the child's to use.
        self.lock = threading.Lock()
        self._clients = {}
        self.retry_at = None


_ALL_CONNECTIONS: weakref.WeakSet[_Connections] = weakref.WeakSet()
# The servers already warned about for an evicting policy (redacted URLs).
_EVICTION_WARNED: set[str] = set()
# asyncio keeps only weak references to tasks: these must not vanish while they run.
_TASKS: set[asyncio.Task[None]] = set()


def _new_member_prefix() -> str:
    return secrets.token_hex(6)


_member_prefix = _new_member_prefix()
_member_counter = itertools.count()


def _after_fork_in_child() -> None:
    global _member_prefix
    _member_prefix = _new_member_prefix()
    for connections in list(_ALL_CONNECTIONS):
        connections.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_redis(redis: object) -> str | Any:
    if isinstance(redis, (coredis.Redis, coredis.RedisCluster)):
        return cast(Any, redis)
    if not isinstance(redis, str):
        raise ConfigurationError(
            "redis must be a URL (redis://, rediss:// or unix://) or a coredis client, "
            f"got {type(redis).__name__}"
        )
    # Messages show the URL without its password, and not the parsers' own words,
    # which may quote a part of a password that confused them.
    shown = redact_url(redis)
    malformed = (
        f"the Redis URL {shown!r} is malformed: give redis://[USER:PASSWORD@]HOST[:PORT][/DB], "
        "with special characters of the password percent-encoded"
    )
    try:
        parts = urlsplit(redis)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigurationError(malformed) from None
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            f"the Redis URL must start with redis://, rediss:// or unix://, got {shown!r}"
        )
    if (parts.scheme == "unix" and not parts.path) or (
        parts.scheme != "unix" and not parts.hostname
    ):
        raise ConfigurationError(f"the Redis URL {shown!r} names no server")
    database = parts.path.lstrip("/") if parts.scheme != "unix" else ""
    if database and not database.isdigit():
        raise ConfigurationError(
            f"the Redis URL {shown!r} is malformed: the path must be a database number"
        )
    try:
        coredis.Redis.from_url(redis)
    except Exception:
        raise ConfigurationError(malformed) from None
    return redis


class RedisRateLimit:
    """Never more than ``requests`` request starts in any window of ``per_seconds``,
    for every client in every process and host that uses the same Redis and key.

    Pass it as ``rate_limit=`` to `AsyncClerk` or `Clerk`, in every process. Clerk's
    quota belongs to the instance (1000 requests per 10 s in production, 100 in
    development), and every process holding the secret key spends it: with one
    `RedisRateLimit` they all stay under it together. Windows are timed by Redis's clock,
    never the hosts', and counted, as with `RateLimit`, from when each answer arrived. A
    429 seen by any participant pauses all of them until its ``Retry-After``. Waiters are
    served in the order they came, each sleeping once until its slot (no polling).

    If Redis is unreachable, slow (an operation takes more than a second) or
    restarted, no Clerk call fails: the limiter logs one WARNING on the
    ``clerk_sessions`` logger and holds each process to an in-process `RateLimit` with
    the same numbers, then rejoins the shared quota once Redis answers again (it tries
    at most every two seconds). If Redis loses the quota's keys (flushed, restarted
    empty, evicting, a stale replica), the first process that notices starts it saw less
    than a window ago missing pauses the quota for a window and logs one WARNING; a
    Redis that may evict keys is named in one WARNING at the first connection.
    Constructing one never connects.

    :param redis: a URL (``redis://``, ``rediss://`` or ``unix://``), or a
        ``coredis.Redis`` client you have entered (``async with``); a URL lets the
        limiter open one connection pool per event loop it is used on (the sync `Clerk`
        runs its own loop), a client is used only on the loop it belongs to.
    :param requests: how many requests may start per window (an integer >= 1).
    :param per_seconds: the window length in seconds.
    :param key: the name of the quota in Redis. By default it is derived from the
        secret key of each client that uses the limiter (a hash, never the key itself),
        so two Clerk instances on one Redis never share a quota.
    """

    __slots__ = (
        "__weakref__",
        "_bindings",
        "_connections",
        "_key",
        "_lock",
        "_name",
        "_numbers",
        "_parent",
    )

    def __init__(
        self,
        redis: str | Any,
        requests: int,
        per_seconds: float,
        *,
        key: str | None = None,
    ) -> None:
        # RateLimit checks the numbers and holds them.
        self._init(RateLimit(requests, per_seconds), None, "")
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(f"key must be a non-empty string or None, got {key!r}")
        self._key = key
        self._connections = _Connections(_check_redis(redis))

    def _init(self, numbers: RateLimit, parent: RedisRateLimit | None, name: str) -> None:
        self._numbers = numbers
        self._parent = parent
        self._name = name
        self._lock = threading.Lock()
        self._bindings: dict[str, _Binding] = {}

    @property
    def requests(self) -> int:
        """How many requests may start per window."""
        return self._numbers.requests

    @property
    def per_seconds(self) -> float:
        """The window length in seconds."""
        return self._numbers.per_seconds

    @property
    def name(self) -> str:
        """The share's name (``""`` for the quota itself)."""
        return self._name

    def __repr__(self) -> str:
        if self._parent is not None:
            return f"{self._parent!r}.share({self._name!r}, {self.requests})"
        return f"RedisRateLimit({self.requests}, {self.per_seconds:g})"

    def share(self, name: str, requests: int) -> RedisRateLimit:
        """A limiter whose users together start at most ``requests`` per window, while
        this limiter's own limit still holds for everyone.

        A bulk job on ``quota.share("bulk", 800)`` of a 1000 per 10 s quota leaves at
        least 200 per window to the clients on ``quota`` itself. Shares with the same
        name (in any process) are the same share.
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"a share needs a non-empty name, got {name!r}")
        numbers = RateLimit(requests, self.per_seconds)
        if requests > self.requests:
            raise ValueError(
                f"a share cannot allow more than its quota: {requests} > {self.requests}"
            )
        child = object.__new__(RedisRateLimit)
        child._init(numbers, self, name)
        child._key = self._key
        child._connections = self._connections
        return child

    def _path(self) -> list[RedisRateLimit]:
        """This limiter, then its parents up to the quota."""
        path: list[RedisRateLimit] = [self]
        while path[-1]._parent is not None:
            path.append(path[-1]._parent)
        return path

    def _bind(self, secret_key: str) -> _Binding:
        """The limiter as a client with this secret key uses it (one per quota key)."""
        if self._key is not None:
            base = self._key
        else:
            digest = hashlib.sha256(b"clerk-sessions quota\0" + secret_key.encode()).hexdigest()
            base = digest[:32]
        with self._lock:
            binding = self._bindings.get(base)
            if binding is None:
                # One hash tag for all keys of a quota: Redis Cluster keeps them in one slot.
                prefix = f"clerk-sessions:{{{base}}}"
                keys = [f"{prefix}:pause"]
                path = self._path()
                for level in path:
                    name = prefix if level._parent is None else f"{prefix}:share:{level._name}"
                    keys += [f"{name}:started", f"{name}:planned"]
                binding = self._bindings[base] = _Binding(
                    keys, [level.requests for level in path], self._numbers, self._connections
                )
            return binding


class _Binding:
    """A `RedisRateLimit` bound to one quota key: what the transport calls."""

    __slots__ = (
        "_args",
        "_connections",
        "_fallback",
        "_keys",
        "_lost_logged_at",
        "_newest",
        "_per_us",
    )

    asynchronous = True

    def __init__(
        self, keys: list[str], limits: list[int], numbers: RateLimit, connections: _Connections
    ) -> None:
        self._keys = keys
        self._per_us = round(numbers.per_seconds * 1_000_000)
        self._args = [str(limit) for limit in limits]
        self._connections = connections
        self._fallback = RateLimit(numbers.requests, numbers.per_seconds)
        # Per level, the newest start (Redis's microseconds) this process has seen in
        # the log: what lets the script tell a log that lost starts (see _SCRIPT).
        self._newest = [0] * len(limits)
        self._lost_logged_at = -math.inf

    async def _run(self, op: str, member: str, arg: int = 0) -> tuple[int, int]:
        with anyio.fail_after(_OP_TIMEOUT_S):
            client = await self._connections.client()
            reply: object = await self._connections.script(
                keys=self._keys,
                args=[
                    op,
                    member,
                    str(self._per_us),
                    str(arg),
                    *self._args,
                    *map(str, self._newest),
                ],
                client=client,
            )
        values = cast("list[object]", reply) if isinstance(reply, list) else []
        if len(values) != 3 + len(self._newest) or not all(isinstance(v, int) for v in values):
            raise TypeError(f"the quota script answered {reply!r}")
        wait, booked, lost, *seen = cast("list[int]", values)
        if lost:
            # Knowledge starts again from what Redis holds now: each process pauses the
            # quota once per loss.
            self._newest = seen
            self._lost()
        else:
            self._newest = [max(a, b) for a, b in zip(self._newest, seen, strict=True)]
        return wait, booked

    def _lost(self) -> None:
        # The calls in flight when the loss happened may each find it: one warning per
        # window is enough.
        now = time.monotonic()
        window_s = self._per_us / 1_000_000
        if now - self._lost_logged_at >= window_s:
            self._lost_logged_at = now
            logger.warning(
                "the shared quota's log in Redis lost starts made less than a window ago "
                "(Redis flushed, restarted without persistence, evicted its keys, or failed "
                "over to a replica that had not caught up): every participant waits one "
                "window (%g s) so that the quota holds",
                window_s,
            )

    def _redis_usable(self) -> bool:
        """Whether this call should use Redis; claims the probe while Redis is failing."""
        connections = self._connections
        retry_at = connections.retry_at
        if retry_at is None:
            return True
        now = time.monotonic()
        with connections.lock:
            if connections.retry_at is None:
                return True
            if now < connections.retry_at:
                return False
            # This call probes; the others stay on the fallback meanwhile.
            connections.retry_at = now + _PROBE_EVERY_S
            return True

    def _failed(self, exc: BaseException) -> None:
        connections = self._connections
        with connections.lock:
            first = connections.retry_at is None
            connections.retry_at = time.monotonic() + _PROBE_EVERY_S
        if first:
            logger.warning(
                "Redis is unreachable for the shared quota (%s); each process now holds "
                "an in-process RateLimit with the same numbers until Redis answers",
                describe(exc, _OP_TIMEOUT_S, needs=_NEEDS, keys="~clerk-sessions:*"),
            )

    def _answered(self) -> None:
        connections = self._connections
        with connections.lock:
            down_since_probe, connections.retry_at = connections.retry_at, None
        if down_since_probe is not None:
            logger.info("Redis answers again: back on the shared quota")

    async def acquire(self, sleep: Callable[[float], Awaitable[object]]) -> str | float:
        """Wait until a request may start, count it, and return its token for `finished`."""
        if self._redis_usable():
            member = f"{_member_prefix}-{next(_member_counter)}"
            try:
                wait, booked = await self._run("reserve", member)
                while wait > 0:
                    await sleep(wait / 1_000_000)
                    wait, booked = await self._run("start", member, booked)
            except Exception as exc:
                self._failed(exc)
            else:
                self._answered()
                # The fallback sees this process's starts too: if Redis fails, it takes
                # over from them instead of allowing a whole fresh window at once.
                self._fallback._count_start()  # pyright: ignore[reportPrivateUsage]
                return member
        return await self._fallback.acquire(sleep)

    async def finished(self, token: object) -> None:
        """Count the start ``token`` from its answer's time, like `RateLimit.finished`."""
        if not isinstance(token, str):
            self._fallback.finished(token)  # type: ignore[arg-type]
            return
        if self._connections.retry_at is not None:
            # Redis failed since this request started: its record ages out of the log by
            # itself; waiting for a failing Redis would only delay the answer.
            return
        # A call cancelled right after its answer still moves its record.
        with anyio.CancelScope(shield=True):
            try:
                await self._run("finish", token)
            except Exception as exc:
                self._failed(exc)

    async def pause(self, seconds: float) -> None:
        """Hold every participant of the quota for ``seconds`` (a 429's ``Retry-After``)."""
        self._fallback.pause(seconds)
        if self._redis_usable():
            micros = max(1, math.ceil(seconds * 1_000_000))
            with anyio.CancelScope(shield=True):
                try:
                    await self._run("pause", "", micros)
                except Exception as exc:
                    self._failed(exc)
                else:
                    self._answered()

    async def aclose(self) -> None:
        """Close this loop's Redis connections (another call opens them again)."""
        await self._connections.aclose()


if TYPE_CHECKING:
    _binding_is_a_shared_limiter: type[SharedLimiter] = _Binding
