"""The Redis job store against a real redis-server: the JobStore contract, its scripts
and what it does when the server goes away.

Lease expiry is the server's clock: instead of sleeping through a lease, a test ages an
entry with ``XCLAIM ... IDLE`` (what the server would report after that long) for the
consumer that holds it, which changes neither its holder nor its fence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import anyio
import coredis
import pytest

from clerk_sessions.errors import ConfigurationError
from clerk_sessions.jobs import JobStoreError, _redis_scripts, _redis_store
from clerk_sessions.jobs._redis_store import RedisStore
from clerk_sessions.jobs._store import Claim, ItemKind
from clerk_sessions.models import CONNECTION_ERROR_CODE, ItemOutcome
from tests._redis import RedisServer

pytestmark = pytest.mark.anyio

OK = ItemOutcome(ok=True)
GONE = ItemOutcome(ok=False, status_code=404, error_code="resource_not_found", message="nope")
BUSY = ItemOutcome(ok=False, status_code=503, error_code="server_error", message="later")
LIMITED = ItemOutcome(ok=False, status_code=429, error_code="too_many_requests", message="slow")
NO_ANSWER = ItemOutcome(ok=False, error_code=CONNECTION_ERROR_CODE, message="reset")


async def chunks(*lists: Sequence[str]) -> AsyncIterator[Sequence[str]]:
    for chunk in lists:
        yield chunk


def numbered(count: int, size: int, prefix: str = "sess_") -> list[list[str]]:
    ids = [f"{prefix}{i:05d}" for i in range(count)]
    return [ids[i : i + size] for i in range(0, count, size)]


async def redis_keys(url: str) -> set[str]:
    async with coredis.Redis.from_url(url, decode_responses=True) as client:
        return set(await client.keys("*"))


async def age(url: str, claim: Claim, seconds: float) -> None:
    """Make ``claim``'s entry look idle for ``seconds`` to the server (same holder, same
    delivery count)."""
    async with coredis.Redis.from_url(url, decode_responses=True) as client:
        key = next(k for k in await client.keys("*:chunks") if "staging" not in k)
        pending = await client.xpending(key, "workers", claim.chunk_id, claim.chunk_id, 1)
        assert pending, "the entry is not pending"
        await client.xclaim(
            key,
            "workers",
            pending[0].consumer,
            0,
            [claim.chunk_id],
            idle=int(seconds * 1000),
            justid=True,
        )


def every(claim: Claim, outcome: ItemOutcome) -> dict[str, ItemOutcome]:
    return dict.fromkeys(claim.items, outcome)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = RedisStore(redis_url)
    yield opened
    await opened.aclose()


# ---------------------------------------------------------------------------- create


async def test_create_dedups_ids_across_the_whole_job(store: RedisStore) -> None:
    info = await store.create(
        "job", ItemKind.SESSION, chunks(["a", "b", "a"], ["c", "b"], [], ["a"], ["d"])
    )
    assert (info.name, info.kind, info.total) == ("job", ItemKind.SESSION, 4)
    claimed = []
    while (claim := await store.claim("job", "w", 60)) is not None:
        claimed.append(claim.items)
    # Each list is one chunk minus what the job held already; emptied lists make none.
    assert claimed == [("a", "b"), ("c",), ("d",)]


async def test_a_job_of_no_ids_is_done_at_once(store: RedisStore) -> None:
    assert (await store.create("empty", ItemKind.USER, chunks())).total == 0
    status = await store.status("empty")
    assert (status.total, status.done) == (0, True)
    assert await store.claim("empty", "w", 60) is None


async def test_ids_of_any_characters_come_back_equal(store: RedisStore) -> None:
    odd = ["5:abc", "", "x" * 300, "é☃", "new\nline", "\ud800", "12", ":", "{job}"]
    await store.create("odd", ItemKind.SESSION, chunks(odd))
    claim = await store.claim("odd", "w", 60)
    assert claim is not None and claim.items == tuple(odd)
    assert await store.complete("odd", claim, every(claim, OK))
    assert {item async for item, _ in store.outcomes("odd")} == set(odd)


async def test_create_of_an_existing_name_is_a_value_error_before_drawing_ids(
    store: RedisStore,
) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    drawn = []

    async def watched() -> AsyncIterator[Sequence[str]]:
        drawn.append(True)
        yield ["b"]

    with pytest.raises(ValueError, match="exists already"):
        await store.create("job", ItemKind.SESSION, watched())
    assert drawn == []
    assert (await store.open("job")).total == 1


async def test_of_two_concurrent_creates_of_one_name_exactly_one_wins(
    store: RedisStore, redis_url: str
) -> None:
    both_started = anyio.Event()
    started = 0
    results: list[object] = []

    async def ids(tag: str) -> AsyncIterator[Sequence[str]]:
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        await both_started.wait()  # both passed the existence check before publishing
        yield [tag]

    async def create(tag: str) -> None:
        try:
            results.append(await store.create("job", ItemKind.SESSION, ids(tag)))
        except ValueError as exc:
            results.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(create, "a")
        tg.start_soon(create, "b")
    assert sorted(type(r).__name__ for r in results) == ["JobInfo", "ValueError"]
    assert (await store.status("job")).total == 1
    assert not any("staging" in key for key in await redis_keys(redis_url))


async def test_a_create_whose_ids_raise_leaves_no_job_and_can_run_again(
    store: RedisStore, redis_url: str
) -> None:
    class Boom(Exception):
        pass

    async def failing() -> AsyncIterator[Sequence[str]]:
        yield ["a", "b"]
        raise Boom

    with pytest.raises(Boom):
        await store.create("job", ItemKind.SESSION, failing())
    with pytest.raises(LookupError):
        await store.open("job")
    assert await redis_keys(redis_url) == set()
    assert (await store.create("job", ItemKind.SESSION, chunks(["a", "b", "c"]))).total == 3


async def test_a_cancelled_create_leaves_no_job(store: RedisStore, redis_url: str) -> None:
    staged = anyio.Event()

    async def endless() -> AsyncIterator[Sequence[str]]:
        yield ["a"]
        staged.set()
        await anyio.sleep_forever()
        yield ["never"]  # pragma: no cover

    async with anyio.create_task_group() as tg:
        tg.start_soon(store.create, "job", ItemKind.SESSION, endless())
        await staged.wait()
        keys = await redis_keys(redis_url)
        assert keys and all(":staging:" in key for key in keys)
        tg.cancel_scope.cancel()
    with pytest.raises(LookupError):
        await store.status("job")
    assert await redis_keys(redis_url) == set()


async def test_staging_keys_expire_unless_the_create_keeps_them(
    store: RedisStore, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A killed create stops refreshing its staging keys: they expire. A live one keeps
    # them however slowly its ids come.
    monkeypatch.setattr(_redis_store, "_STAGING_TTL_MS", 300)
    monkeypatch.setattr(_redis_store, "_STAGING_REFRESH_S", 0.05)
    ttls: list[int] = []

    async def slow() -> AsyncIterator[Sequence[str]]:
        yield ["a"]
        async with coredis.Redis.from_url(redis_url) as client:
            ttls.extend([await client.pttl(key) for key in await client.keys("*staging*")])
        await anyio.sleep(0.6)  # twice the TTL
        yield ["b"]

    assert (await store.create("slow", ItemKind.SESSION, slow())).total == 2
    assert len(ttls) == 3 and all(0 < ttl <= 300 for ttl in ttls)


async def test_a_create_whose_staging_vanished_fails_and_creates_nothing(
    store: RedisStore, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted() -> AsyncIterator[Sequence[str]]:
        yield ["a"]
        async with coredis.Redis.from_url(redis_url) as client:
            await client.flushall()  # as a server restarted without its data
        yield ["b"]

    with pytest.raises(JobStoreError, match=r"vanished.*run it again"):
        await store.create("job", ItemKind.SESSION, interrupted())
    with pytest.raises(LookupError):
        await store.open("job")


async def test_a_create_finds_its_staging_expired_at_publish(
    store: RedisStore, redis_url: str
) -> None:
    async def interrupted() -> AsyncIterator[Sequence[str]]:
        yield ["a"]
        async with coredis.Redis.from_url(redis_url) as client:
            await client.delete(await client.keys("*staging*meta"))

    with pytest.raises(JobStoreError, match="expired before it was published"):
        await store.create("job", ItemKind.SESSION, interrupted())
    with pytest.raises(LookupError):
        await store.open("job")


async def test_every_key_of_a_job_is_namespaced_and_tagged_with_its_name(
    store: RedisStore, redis_url: str
) -> None:
    await store.create("incident-42", ItemKind.USER, chunks(["u1", "u2"]))
    claim = await store.claim("incident-42", "w", 60)
    assert claim is not None
    await store.complete("incident-42", claim, {"u1": OK, "u2": GONE})
    keys = await redis_keys(redis_url)
    assert keys == {
        f"clerk-sessions:job:{{incident-42}}:{suffix}"
        for suffix in ("meta", "chunks", "revoked", "failed", "leases", "completed")
    }


# ---------------------------------------------------------------------------- reading


async def test_a_missing_job_is_a_lookup_error_everywhere(store: RedisStore) -> None:
    claim = Claim(chunk_id="1-0", items=("a",), fence=1)
    for call in (
        store.open("nope"),
        store.status("nope"),
        store.claim("nope", "w", 60),
        store.retry_failed("nope"),
    ):
        with pytest.raises(LookupError, match="no job named 'nope'"):
            await call
    with pytest.raises(LookupError):
        await anext(store.outcomes("nope"))
    # A claim on a job that is gone is simply lost.
    assert not await store.heartbeat("nope", claim, 60)
    assert not await store.complete("nope", claim, {"a": OK})
    await store.release("nope", claim)


async def test_open_and_status_read_what_create_wrote(store: RedisStore) -> None:
    await store.create("users", ItemKind.USER, chunks(["u1", "u2", "u3"]))
    info = await store.open("users")
    assert (info.kind, info.total) == (ItemKind.USER, 3)
    status = await store.status("users")
    assert (status.total, status.revoked, status.failed, status.pending) == (3, 0, 0, 3)


async def test_outcomes_stream_in_batches_by_kind(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_redis_store, "_SCAN_COUNT", 7)
    await store.create("job", ItemKind.SESSION, chunks(*numbered(600, 100)))
    while (claim := await store.claim("job", "w", 60)) is not None:
        outcomes = {item: GONE if item.endswith("7") else OK for item in claim.items}
        assert await store.complete("job", claim, outcomes)
    failed = {item: outcome async for item, outcome in store.outcomes("job", "failed")}
    revoked = [item async for item, _ in store.outcomes("job", "revoked")]
    everything = [item async for item, _ in store.outcomes("job")]
    assert len(failed) == 60 and set(failed.values()) == {GONE}
    assert len(revoked) == len(set(revoked)) == 540
    assert sorted(everything) == sorted([*failed, *revoked])


# ---------------------------------------------------------------------------- claims


async def test_claims_hand_out_chunks_in_order_each_to_one_worker(store: RedisStore) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a", "b"], ["c"], ["d"]))
    first = await store.claim("job", "w1", 60)
    second = await store.claim("job", "w2", 60)
    third = await store.claim("job", "w1", 60)
    assert first is not None and second is not None and third is not None
    assert [first.items, second.items, third.items] == [("a", "b"), ("c",), ("d",)]
    assert {first.fence, second.fence, third.fence} == {1}
    assert await store.claim("job", "w3", 60) is None  # all held under live leases


async def test_complete_records_every_outcome_once_and_ends_the_claim(store: RedisStore) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a", "b", "c"]))
    claim = await store.claim("job", "w", 60)
    assert claim is not None
    assert await store.complete("job", claim, {"a": OK, "b": GONE, "c": BUSY})
    status = await store.status("job")
    assert (status.revoked, status.failed, status.done) == (1, 2, True)
    # The same call again (as after a lost reply) reports it recorded, counts nothing.
    assert await store.complete("job", claim, {"a": OK, "b": GONE, "c": BUSY})
    assert await store.status("job") == status
    assert not await store.heartbeat("job", claim, 60)
    assert dict([x async for x in store.outcomes("job")]) == {"a": OK, "b": GONE, "c": BUSY}


async def test_complete_needs_exactly_the_claims_items(store: RedisStore) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a", "b"]))
    claim = await store.claim("job", "w", 60)
    assert claim is not None
    for wrong in ({"a": OK}, {"a": OK, "b": OK, "z": OK}, {"a": OK, "z": OK}):
        with pytest.raises(ValueError, match="exactly one outcome per item"):
            await store.complete("job", claim, wrong)
    assert (await store.status("job")).pending == 2
    assert await store.heartbeat("job", claim, 60)


async def test_an_idle_chunk_is_taken_over_and_its_old_holder_records_nothing(
    store: RedisStore, redis_url: str
) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a", "b"]))
    old = await store.claim("job", "frozen", 2)
    assert old is not None
    assert await store.claim("job", "other", 2) is None
    await age(redis_url, old, 2.5)
    new = await store.claim("job", "other", 2)
    assert new is not None
    assert (new.chunk_id, new.items) == (old.chunk_id, old.items)
    assert new.fence > old.fence
    # The frozen worker wakes up: its heartbeat and its results are refused.
    assert not await store.heartbeat("job", old, 2)
    assert not await store.complete("job", old, every(old, GONE))
    assert (await store.status("job")).pending == 2
    assert await store.complete("job", new, every(new, OK))
    status = await store.status("job")
    assert (status.revoked, status.failed) == (2, 0)


async def test_a_claim_taken_over_by_its_own_worker_is_fenced_too(
    store: RedisStore, redis_url: str
) -> None:
    # One process, two tasks: the consumer name is the same, the fence tells them apart.
    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    old = await store.claim("job", "w", 1)
    assert old is not None
    await age(redis_url, old, 5)
    new = await store.claim("job", "w", 1)
    assert new is not None and new.fence == old.fence + 1
    assert not await store.complete("job", old, every(old, OK))
    assert await store.complete("job", new, every(new, OK))


async def test_a_heartbeat_keeps_the_chunk(store: RedisStore, redis_url: str) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    claim = await store.claim("job", "slow", 2)
    assert claim is not None
    await age(redis_url, claim, 1.5)
    assert await store.heartbeat("job", claim, 2)  # idle from zero again
    assert await store.claim("job", "other", 2) is None


async def test_an_expired_lease_nobody_took_over_still_holds(
    store: RedisStore, redis_url: str
) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    claim = await store.claim("job", "late", 1)
    assert claim is not None
    await age(redis_url, claim, 30)
    assert await store.heartbeat("job", claim, 1)
    await age(redis_url, claim, 30)
    assert await store.complete("job", claim, every(claim, OK))
    assert (await store.status("job")).revoked == 1


async def test_a_short_lease_never_takes_over_a_longer_one_early(
    store: RedisStore, redis_url: str
) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    held = await store.claim("job", "patient", 10)
    assert held is not None
    await age(redis_url, held, 3)
    assert await store.claim("job", "hasty", 1) is None
    await age(redis_url, held, 11)
    taken = await store.claim("job", "hasty", 1)
    assert taken is not None and taken.fence == held.fence + 1


async def test_release_makes_the_chunk_claimable_at_once_and_voids_the_claim(
    store: RedisStore,
) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["a", "b"]))
    claim = await store.claim("job", "stopping", 600)
    assert claim is not None
    await store.release("job", claim)
    await store.release("job", claim)  # a lost claim: nothing happens
    again = await store.claim("job", "next", 600)
    assert again is not None
    assert again.items == claim.items and again.fence > claim.fence
    assert not await store.heartbeat("job", claim, 600)
    assert not await store.complete("job", claim, every(claim, OK))
    assert await store.complete("job", again, every(again, OK))


# ---------------------------------------------------------------------------- retries


async def test_retry_failed_requeues_only_retryable_failures(store: RedisStore) -> None:
    await store.create("job", ItemKind.SESSION, chunks(["ok", "gone", "busy"], ["slow", "cut"]))
    given = {"ok": OK, "gone": GONE, "busy": BUSY, "slow": LIMITED, "cut": NO_ANSWER}
    while (claim := await store.claim("job", "w", 60)) is not None:
        assert await store.complete("job", claim, {i: given[i] for i in claim.items})
    assert await store.retry_failed("job") == 3
    status = await store.status("job")
    assert (status.revoked, status.failed, status.pending) == (1, 1, 3)
    assert [item async for item, _ in store.outcomes("job", "failed")] == ["gone"]
    requeued: list[str] = []
    while (claim := await store.claim("job", "w", 60)) is not None:
        requeued += claim.items
        assert await store.complete("job", claim, every(claim, OK))
    assert sorted(requeued) == ["busy", "cut", "slow"]
    assert await store.retry_failed("job") == 0
    status = await store.status("job")
    assert (status.revoked, status.failed, status.done) == (4, 1, True)


async def test_retry_failed_requeues_in_chunks_of_the_jobs_size(store: RedisStore) -> None:
    await store.create("job", ItemKind.SESSION, chunks(*numbered(25, 10)))
    while (claim := await store.claim("job", "w", 60)) is not None:
        assert await store.complete("job", claim, every(claim, BUSY))
    assert await store.retry_failed("job") == 25
    sizes = []
    while (claim := await store.claim("job", "w", 60)) is not None:
        sizes.append(len(claim.items))
        assert await store.complete("job", claim, every(claim, OK))
    assert sorted(sizes) == [5, 10, 10]
    assert (await store.status("job")).revoked == 25


# ---------------------------------------------------------------------------- scripts


async def test_the_complete_script_writes_nothing_without_the_fence(redis_url: str) -> None:
    store = RedisStore(redis_url)
    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    claim = await store.claim("job", "w", 60)
    assert claim is not None
    keys = _redis_scripts.Keys("job")
    async with coredis.Redis.from_url(redis_url) as client:
        written = await _redis_scripts.evaluate(
            _redis_scripts.COMPLETE,
            client,
            [keys.meta, keys.chunks, keys.revoked, keys.failed, keys.completed],
            ["workers", claim.chunk_id, claim.fence + 1, "a", "r", "{}"],
        )
        assert written == 0
        assert await client.exists([keys.revoked, keys.failed, keys.completed]) == 0
        assert await client.hmget(keys.meta, ["revoked", "failed"]) == (b"0", b"0")


async def test_the_stage_script_packs_new_ids_length_prefixed(redis_url: str) -> None:
    keys = _redis_scripts.Keys("job").staging("t")
    async with coredis.Redis.from_url(redis_url) as client:
        await client.hset(keys[0], {"total": 0, "chunk_size": 0})
        added = await _redis_scripts.evaluate(
            _redis_scripts.STAGE, client, keys, [60_000, "ab", "c:d", "ab", "é"]
        )
        assert added == 3
        (entry,) = await client.xrange(keys[1])
        assert entry.field_values[b"items"] == "2:ab3:c:d2:é".encode()
        assert _redis_scripts.unpack(entry.field_values[b"items"]) == ("ab", "c:d", "é")
        assert await client.hmget(keys[0], ["total", "chunk_size"]) == (b"3", b"3")


# ---------------------------------------------------------------------------- outages


def test_a_url_coredis_cannot_read_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="invalid Redis URL"):
        RedisStore("redis://127.0.0.1:notaport/0")


async def test_an_unreachable_server_is_retried_then_a_clear_error_without_the_password(
    own_redis_server: RedisServer,
) -> None:
    own_redis_server.kill()
    url = f"redis://user:s3cret@127.0.0.1:{own_redis_server.port}/0"
    store = RedisStore(url, outage_s=0.3)
    assert "s3cret" not in repr(store)
    started = anyio.current_time()
    with pytest.raises(JobStoreError, match=r"unreachable for 0\.3 s") as caught:
        await store.status("job")
    assert 0.3 <= anyio.current_time() - started < 5
    assert "s3cret" not in str(caught.value) and "user:***@" in str(caught.value)
    with pytest.raises(JobStoreError, match="nothing was created"):
        await store.create("job", ItemKind.SESSION, chunks(["a"]))


async def test_a_server_that_comes_back_in_time_lets_the_call_finish(
    own_redis_server: RedisServer,
) -> None:
    store = RedisStore(own_redis_server.url, outage_s=30)
    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    own_redis_server.freeze()

    async def thaw_soon() -> None:
        await anyio.sleep(0.3)
        own_redis_server.thaw()

    async with anyio.create_task_group() as tg:
        tg.start_soon(thaw_soon)
        assert (await store.status("job")).total == 1


async def test_a_server_that_lost_its_data_loses_the_job(own_redis_server: RedisServer) -> None:
    store = RedisStore(own_redis_server.url, outage_s=30)
    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    claim = await store.claim("job", "w", 60)
    assert claim is not None
    own_redis_server.kill()
    own_redis_server.restart()  # no persistence: empty
    assert not await store.complete("job", claim, every(claim, OK))
    with pytest.raises(LookupError, match="lost its data"):
        await store.claim("job", "w", 60)


async def test_a_refusal_that_is_no_outage_is_a_job_store_error_in_words_of_its_own(
    redis_url: str,
) -> None:
    async with coredis.Redis.from_url(redis_url) as client:
        await client.set(_redis_scripts.Keys("job").meta, "not a hash")
    with pytest.raises(JobStoreError) as caught:
        await RedisStore(redis_url).status("job")
    assert str(caught.value) == (
        f"Redis job store {redis_url}: reading job 'job' failed: a key holds data that "
        "clerk-sessions did not write (does another program use the keys "
        "~clerk-sessions:job:*?)"
    )


async def test_aclose_closes_the_connections_and_a_later_call_opens_new_ones(
    store: RedisStore, redis_url: str
) -> None:
    async def clients() -> int:
        async with coredis.Redis.from_url(redis_url) as client:
            listed = await client.client_list()
            return len(listed) - 1  # this one

    await store.create("job", ItemKind.SESSION, chunks(["a"]))
    assert await clients() >= 1
    await store.aclose()
    await store.aclose()
    assert await clients() == 0
    assert (await store.status("job")).total == 1
