"""A `RedisRateLimit` as the transport uses it (`Binding`: the quota's operations on
Redis, and the in-process fallback while Redis fails), and the way to Redis that a quota
and its shares have in common (`Connections`: one client per event loop, and whether
Redis is failing).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import secrets
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import anyio
import coredis
from coredis.commands import Script

from clerk_sessions import RateLimit
from clerk_sessions._redis import SAFE_POLICY, describe, eviction_policy, loop_clients
from clerk_sessions._urls import redact_url
from clerk_sessions.redis._script import SCRIPT

if TYPE_CHECKING:
    from clerk_sessions._ratelimit import SharedLimiter

__all__ = ["Binding", "Connections"]

logger = logging.getLogger("clerk_sessions")

# Each Redis operation gets this long before the limiter gives up on Redis for the call
# and falls back: a slow Redis must not stall the Clerk calls waiting on it. Loopback
# answers in well under a millisecond; 0.5 s was hit by processes starved of CPU (load
# 11 on 2 cores, benchmarks/bench_fleet.py), which then fell back for no fault of Redis.
_OP_TIMEOUT_S = 1.0
# While Redis is failing, one call in this many seconds tries it again; the others go
# straight to the in-process fallback.
_PROBE_EVERY_S = 2.0
# What the limiter runs, for a user whose ACL refuses one of them.
_NEEDS = "sorted sets, strings and Lua scripts (EVALSHA and SCRIPT LOAD)"


class Connections:
    """A quota's way to Redis: one client per event loop, and the shared health state."""

    def __init__(self, redis: str | Any) -> None:
        self._redis = redis
        self.lock = threading.Lock()
        # While Redis is failing: when the next call may try it again (monotonic).
        self.retry_at: float | None = None
        # Typed loosely: coredis's generic callback types say nothing useful here.
        self.script: Any = Script(script=SCRIPT)
        # A client of the user's own is used as it is, on the loop it belongs to.
        self._clients = (
            loop_clients(
                self._make,
                name="shared quota's Redis client",
                scripts=[SCRIPT],
                after_open=self._inspect,
            )
            if isinstance(redis, str)
            else None
        )
        _ALL_CONNECTIONS.add(self)

    def _make(self) -> Any:
        return coredis.Redis.from_url(
            self._redis,
            stream_timeout=_OP_TIMEOUT_S,
            connect_timeout=_OP_TIMEOUT_S,
        )

    async def _inspect(self, client: Any) -> None:
        """Warn (once per server and process) when Redis may evict the quota's keys: the
        quota then holds only as well as the loss detection does (see `SCRIPT`)."""
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
        if self._clients is None:
            return self._redis
        try:
            return await self._clients.get()
        except Exception as exc:
            raise ConnectionError("cannot reach Redis") from exc

    async def aclose(self) -> None:
        """Close the client of the running loop (the next call opens a new one)."""
        if self._clients is not None:
            await self._clients.aclose()

    def reset_after_fork(self) -> None:
        # The parent's state is not the child's (its clients forget themselves).
        self.lock = threading.Lock()
        self.retry_at = None


_ALL_CONNECTIONS: weakref.WeakSet[Connections] = weakref.WeakSet()
# The servers already warned about for an evicting policy (redacted URLs).
_EVICTION_WARNED: set[str] = set()


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


class Binding:
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
        self, keys: list[str], limits: list[int], numbers: RateLimit, connections: Connections
    ) -> None:
        self._keys = keys
        self._per_us = round(numbers.per_seconds * 1_000_000)
        self._args = [str(limit) for limit in limits]
        self._connections = connections
        self._fallback = RateLimit(numbers.requests, numbers.per_seconds)
        # Per level, the newest start (Redis's microseconds) this process has seen in
        # the log: what lets the script tell a log that lost starts (see `SCRIPT`).
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
    _binding_is_a_shared_limiter: type[SharedLimiter] = Binding
