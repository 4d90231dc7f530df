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

Every key of a job carries the job's name as a hash tag, so a job lives in one slot; the
keys, the packing of a chunk's ids and the scripts are `_redis_scripts`. The store keeps
one connection pool per event loop (`clerk_sessions._redis.loop_clients`: a coredis pool
must be entered and left by one task, and the store's methods are called from any task).
Each method retries while the server is unreachable for up to ``outage_s``, then raises
`JobStoreError`.

A server that may evict keys is refused at ``create`` and ``open`` (`_check_policy`),
and every read checks that the job's keys agree with its counters: a chunk stream or an
outcome hash that vanished (evicted, or a server restored from an incomplete copy) is
`JobDataLost`, never Redis's "no such key" or a job that seems to wait forever.
"""

from __future__ import annotations

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
from typing import Literal, TypeAlias, TypeVar, cast

import anyio

from clerk_sessions._urls import redact_url
from clerk_sessions.errors import ConfigurationError
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
    from coredis.exceptions import RedisError
    from coredis.retry import NoRetryPolicy

    from clerk_sessions._redis import describe, eviction_policy, is_transient, loop_clients
    from clerk_sessions.jobs._redis_policy import judge_policy, without_allow_eviction
    from clerk_sessions.jobs._redis_scripts import (
        BEGIN,
        CLAIM,
        COMPLETE,
        GROUP,
        HEARTBEAT,
        PREFIX,
        PUBLISH,
        RELEASE,
        REQUEUE,
        STAGE,
        STATUS,
        Keys,
        decode,
        encode,
        evaluate,
        unpack,
    )
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
# What the store runs, for a user whose ACL refuses one of them.
_NEEDS = "streams, hashes, sets and Lua scripts (EVALSHA and SCRIPT LOAD)"


class RedisStore:
    """Durable jobs kept in Redis, for workers on many hosts (extra ``redis``).

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL as coredis reads it. The
    constructor does no I/O; the first method called on an event loop connects, and the
    loop's connections stay open until `aclose` or the loop's end. While the server
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
        # One pool per event loop, held open by a task of its own (see `loop_clients`).
        self._clients = loop_clients(self._client, name="Redis job store's connection pool")
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
        try:
            return await self._clients.get()
        except Exception:
            raise JobStoreError(
                f"Redis job store {self._shown}: could not open a connection pool"
            ) from None

    def _failed(self, action: str, exc: BaseException) -> JobStoreError:
        problem = describe(exc, _REPLY_TIMEOUT_S, needs=_NEEDS, keys=f"~{PREFIX}*")
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
        keys = Keys(name)
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
        keys: Keys,
        staging: tuple[str, str, str],
        chunks: AsyncIterable[Sequence[str]],
    ) -> int:
        """Write the job under the staging keys, then publish it; returns its total."""
        if not await evaluate(
            BEGIN,
            client,
            [keys.meta, staging[0], staging[1]],
            [kind.value, _STAGING_TTL_MS, GROUP],
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
                        await evaluate(
                            STAGE, client, list(staging), [_STAGING_TTL_MS, *map(encode, chunk)]
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
        published = await evaluate(
            PUBLISH,
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
        keys = Keys(name)

        async def read(client: _Redis) -> tuple[bytes | None, ...]:
            return await client.hmget(keys.meta, ["kind", "total"])

        kind, total = await self._run(f"opening job {name!r}", read)
        if kind is None or total is None:
            raise self._missing(name)
        return JobInfo(name=name, kind=ItemKind(kind.decode()), total=int(total))

    async def status(self, name: str) -> JobStatus:
        """Counts of job ``name``'s items by outcome, read in one script with what
        backs them: `JobDataLost` when a key the counts rely on is gone."""
        keys = Keys(name)

        async def read(client: _Redis) -> object:
            return await evaluate(
                STATUS, client, [keys.meta, keys.revoked, keys.failed, keys.chunks], []
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
        keys = Keys(name)
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
                yield decode(item), data
            if cursor == 0:
                return

    # ------------------------------------------------------------------ working

    async def claim(self, name: str, worker: str, lease_s: float) -> Claim | None:
        """Claim one chunk of job ``name`` for ``lease_s`` seconds, or return None."""
        keys = Keys(name)

        async def claim(client: _Redis) -> object:
            return await evaluate(
                CLAIM,
                client,
                [keys.meta, keys.chunks, keys.leases, keys.revoked, keys.failed],
                [GROUP, worker, _milliseconds(lease_s)],
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
        return Claim(chunk_id=entry_id.decode(), items=unpack(items), fence=int(fence))

    async def heartbeat(self, name: str, claim: Claim, lease_s: float) -> bool:
        """Extend ``claim``'s lease (its entry's idle time starts again), if it holds."""
        keys = Keys(name)

        async def beat(client: _Redis) -> object:
            return await evaluate(
                HEARTBEAT,
                client,
                [keys.meta, keys.chunks, keys.leases],
                [GROUP, claim.chunk_id, claim.fence, _milliseconds(lease_s)],
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
        keys = Keys(name)
        arguments: list[str | bytes | int] = [GROUP, claim.chunk_id, claim.fence]
        for item in claim.items:
            outcome = outcomes[item]
            arguments += [encode(item), "r" if outcome.ok else "f", outcome_to_json(outcome)]

        async def record(client: _Redis) -> object:
            return await evaluate(
                COMPLETE,
                client,
                [keys.meta, keys.chunks, keys.revoked, keys.failed, keys.completed],
                arguments,
            )

        return await self._run(f"recording outcomes of job {name!r}", record) == 1

    async def release(self, name: str, claim: Claim) -> None:
        """Give ``claim``'s chunk back claimable at once, if the claim still holds."""
        keys = Keys(name)

        async def give_back(client: _Redis) -> object:
            return await evaluate(
                RELEASE,
                client,
                [keys.meta, keys.chunks],
                [GROUP, claim.chunk_id, claim.fence, _RELEASED_IDLE_MS],
            )

        await self._run(f"releasing a chunk of job {name!r}", give_back)

    async def retry_failed(self, name: str) -> int:
        """Put the failed items whose outcome is retryable back to pending, as new
        chunks; returns how many."""
        keys = Keys(name)

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
            return await evaluate(
                REQUEUE, client, [keys.meta, keys.chunks, keys.failed], [GROUP, *batch]
            )

        action = f"re-queueing failed items of job {name!r}"
        async for item, data in self._scan(keys.failed, action):
            if outcome_from_json(data).retryable:
                batch += [encode(item), data]
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
        await self._clients.aclose()


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))
