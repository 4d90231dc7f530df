"""The Redis job store on a bad day, against real redis-servers configured as shared and
managed ones often are: an evicting ``maxmemory-policy``, a server that evicts a job's
keys under memory pressure or runs out of memory, ACL users that may not run CONFIG,
INFO or EVALSHA or touch the job's keys, and a password in the store URL.

Whatever happens, a caller gets a `JobStoreError` in the SDK's own words (never
Redis's text, never the password), and a job whose data vanished is reported as lost
with the count of its items unaccounted for.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import anyio
import coredis
import pytest

from clerk_sessions.jobs import JobStoreError, RevocationJob
from clerk_sessions.jobs._redis_scripts import Keys
from clerk_sessions.jobs._redis_store import RedisStore
from clerk_sessions.jobs._store import ItemKind
from clerk_sessions.models import ItemOutcome
from clerk_sessions.testing import FakeClerk
from tests._redis import RedisServer
from tests.jobs.conftest import FAST_RETRIES

pytestmark = pytest.mark.anyio

StartRedis = Callable[..., RedisServer]
EVICTING = ("--maxmemory-policy", "allkeys-lru")
# Redis's own words, which must never reach a caller.
RAW = ("NOPERM", "WRONGPASS", "OOM command", "No such key", "script:", "@user_script")


def assert_own_words(message: str, *secrets: str) -> None:
    assert "\n" not in message
    for text in (*RAW, *secrets):
        assert text not in message, message


async def redis_call(url: str, *command: str) -> object:
    async with coredis.Redis.from_url(url, decode_responses=True) as client:
        if command[0] == "CONFIG SET":
            return await client.config_set({command[1]: command[2]})
        if command[0] == "ACL SETUSER":
            return await client.acl_setuser(command[1], *command[2:])
        if command[0] == "DEL":
            return await client.delete(list(command[1:]))
        if command[0] == "SET":
            return await client.set(command[1], command[2])
        raise AssertionError(command)


def fake_with_sessions(count: int) -> tuple[FakeClerk, list[str]]:
    fake = FakeClerk()
    return fake, [fake.add_session()["id"] for _ in range(count)]


async def work(job: RevocationJob, fake: FakeClerk) -> object:
    async with fake.async_client(retry_config=FAST_RETRIES) as clerk:
        return await job.work(clerk, concurrency=4, lease_s=5)


async def settled_memory(client: coredis.Redis[bytes]) -> int:
    """The server's used memory once the keys a create unlinked are freed (UNLINK frees
    them on a background thread)."""
    with anyio.fail_after(10):
        while True:
            memory = await client.info("memory")
            if int(memory["lazyfree_pending_objects"]) == 0:
                return int(memory["used_memory"])
            await anyio.sleep(0.01)


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


# ------------------------------------------------------------------ maxmemory-policy


async def test_an_evicting_server_is_refused_at_create_naming_the_setting_and_the_fix(
    start_redis: StartRedis,
) -> None:
    server = start_redis(*EVICTING)
    with pytest.raises(JobStoreError) as caught:
        await RevocationJob.create(server.url, "j", session_ids=["sess_1"])
    message = str(caught.value)
    assert "maxmemory-policy is allkeys-lru" in message
    assert "CONFIG SET maxmemory-policy noeviction" in message
    assert "a Redis of their own" in message
    assert "?allow_eviction=true" in message
    assert_own_words(message)
    async with coredis.Redis.from_url(server.url) as client:
        assert await client.keys("*") == set()  # nothing was created


async def test_a_server_that_turned_evicting_is_refused_at_open_and_at_work(
    start_redis: StartRedis,
) -> None:
    server = start_redis()
    fake, ids = fake_with_sessions(3)
    job = await RevocationJob.create(server.url, "j", session_ids=ids)
    await redis_call(server.url, "CONFIG SET", "maxmemory-policy", "volatile-lru")
    with pytest.raises(JobStoreError, match="maxmemory-policy is volatile-lru"):
        await RevocationJob.open(server.url, "j")
    with pytest.raises(JobStoreError, match="maxmemory-policy is volatile-lru"):
        await work(job, fake)
    assert fake.requests == []  # refused before a single revoke
    await job.aclose()


async def test_allow_eviction_in_the_url_accepts_it_with_one_warning(
    start_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis(*EVICTING)
    url = f"{server.url}?allow_eviction=true"
    fake, ids = fake_with_sessions(3)
    caplog.set_level(logging.WARNING)
    job = await RevocationJob.create(url, "j", session_ids=ids)
    assert (await work(job, fake)).done  # type: ignore[attr-defined]
    await job.aclose()
    async with await RevocationJob.open(url, "j") as again:
        assert (await again.status()).revoked == 3
    warned = messages(caplog)
    assert len(warned) == 1
    assert "maxmemory-policy is allkeys-lru" in warned[0]
    assert "reported as lost" in warned[0]


@pytest.mark.parametrize("value", ["maybe", ""])
def test_allow_eviction_takes_true_or_false_only(value: str) -> None:
    with pytest.raises(ValueError, match=r"allow_eviction= .* must be true or false"):
        RedisStore(f"redis://127.0.0.1:1/0?allow_eviction={value}")


async def test_a_user_refused_config_get_is_checked_through_info_memory(
    start_redis: StartRedis,
) -> None:
    server = start_redis()
    await redis_call(server.url, "ACL SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-config")
    url = f"redis://app:pw@127.0.0.1:{server.port}/0"
    job = await RevocationJob.create(url, "j", session_ids=["sess_1"])  # noeviction: fine
    await job.aclose()
    await redis_call(server.url, "CONFIG SET", "maxmemory-policy", "allkeys-random")
    with pytest.raises(JobStoreError, match="maxmemory-policy is allkeys-random"):
        await RevocationJob.open(url, "j")


async def test_a_user_refused_config_and_info_cannot_use_the_store_unless_the_url_allows_it(
    start_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis()
    rules = ("on", ">pw", "~*", "&*", "+@all", "-@dangerous")
    await redis_call(server.url, "ACL SETUSER", "app", *rules)
    url = f"redis://app:pw@127.0.0.1:{server.port}/0"
    with pytest.raises(JobStoreError) as caught:
        await RevocationJob.create(url, "j", session_ids=["sess_1"])
    message = str(caught.value)
    assert "cannot tell whether the server evicts keys" in message
    assert "+info" in message and "?allow_eviction=true" in message
    assert_own_words(message, "pw@")
    caplog.set_level(logging.WARNING)
    job = await RevocationJob.create(f"{url}?allow_eviction=true", "j", session_ids=["sess_1"])
    assert (await job.status()).total == 1
    await job.aclose()
    assert len(messages(caplog)) == 1


# ------------------------------------------------------------------ ACL and passwords


async def test_a_user_that_may_not_run_evalsha_is_told_what_the_store_needs(
    start_redis: StartRedis,
) -> None:
    server = start_redis()
    await redis_call(server.url, "ACL SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-evalsha")
    url = f"redis://app:pw@127.0.0.1:{server.port}/0"
    with pytest.raises(JobStoreError) as caught:
        await RevocationJob.create(url, "j", session_ids=["sess_1"])
    message = str(caught.value)
    assert "the server's ACL does not let this user run EVALSHA" in message
    assert "Lua scripts (EVALSHA and SCRIPT LOAD)" in message
    assert "nothing was created" in message
    assert_own_words(message, ":pw@")


async def test_a_user_limited_to_other_keys_is_told_the_key_pattern(
    start_redis: StartRedis,
) -> None:
    server = start_redis()
    await redis_call(server.url, "ACL SETUSER", "app", "on", ">pw", "~app:*", "&*", "+@all")
    url = f"redis://app:pw@127.0.0.1:{server.port}/0"
    with pytest.raises(JobStoreError, match=r"allow the key pattern ~clerk-sessions:job:\*"):
        await RevocationJob.create(url, "j", session_ids=["sess_1"])


async def test_a_store_url_with_a_password_works_and_the_password_is_never_shown(
    start_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    password = "s3cret-Pa55"
    server = start_redis("--requirepass", password)
    url = f"redis://:{password}@127.0.0.1:{server.port}/0"
    caplog.set_level(logging.DEBUG)  # every logger, coredis's too
    fake, ids = fake_with_sessions(5)
    job = await RevocationJob.create(url, "j", session_ids=ids)
    assert password not in repr(job)
    assert (await work(job, fake)).revoked == 5  # type: ignore[attr-defined]
    await job.aclose()
    wrong = f"redis://:wrong-{password}@127.0.0.1:{server.port}/0"
    none = f"redis://127.0.0.1:{server.port}/0"
    for bad in (wrong, none):
        with pytest.raises(JobStoreError) as caught:
            await RevocationJob.open(bad, "j")
        message = str(caught.value)
        assert "refused the credentials of the store URL" in message
        assert_own_words(message, password)
    assert all(password not in record.getMessage() for record in caplog.records)


def test_a_malformed_url_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError) as caught:
        RedisStore("redis://user:Xy7/Zq@127.0.0.1:notaport/0")
    assert "Xy7" not in str(caught.value) and "Zq" not in str(caught.value)


# ------------------------------------------------------------------ data that vanished


async def test_a_job_evicted_under_memory_pressure_is_lost_for_status_outcomes_and_work(
    start_redis: StartRedis,
) -> None:
    server = start_redis(*EVICTING)
    url = f"{server.url}?allow_eviction=true"
    job = await RevocationJob.create(
        url, "evicted", session_ids=(f"sess_{i:020d}" for i in range(20_000))
    )
    async with coredis.Redis.from_url(server.url) as client:
        used = await settled_memory(client)
        # Half a megabyte less than the job takes: only evicting its keys makes room.
        await client.config_set({"maxmemory": str(used - 500_000)})
        await client.set("pressure", "x")
        # The stream of chunks is the one key big enough (its meta hash may go too).
        assert await client.exists([Keys("evicted").chunks]) == 0
    fake = FakeClerk()
    lost = "the data of job 'evicted' was lost in the store: 20000 of its 20000 items"
    with pytest.raises(JobStoreError, match=lost) as by_status:
        await job.status()
    with pytest.raises(JobStoreError, match=lost):
        [pair async for pair in job.outcomes()]
    with pytest.raises(JobStoreError, match=lost):
        await work(job, fake)
    assert_own_words(str(by_status.value))
    assert fake.requests == []
    await job.aclose()


async def test_a_job_whose_chunks_were_evicted_is_lost_for_any_process_with_the_pending_count(
    redis_url: str,
) -> None:
    fake, ids = fake_with_sessions(30)
    job = await RevocationJob.create(redis_url, "j", session_ids=ids, chunk_size=10)
    claim = await RedisStore(redis_url).claim("j", "w", 60)
    assert claim is not None
    await redis_call(redis_url, "DEL", Keys("j").chunks)  # what an eviction does
    # A process that never saw the job reads the loss from the store itself, no longer
    # "30 pending" nor Redis's "No such key ... or consumer group".
    async with await RevocationJob.open(redis_url, "j") as fresh:
        with pytest.raises(JobStoreError, match="30 of its 30 items are unaccounted for"):
            await fresh.status()
        with pytest.raises(JobStoreError, match="30 of its 30 items are unaccounted for") as c:
            await work(fresh, fake)
        assert_own_words(str(c.value))
    await job.aclose()


async def test_outcomes_evicted_after_they_were_recorded_are_counted_as_unaccounted(
    redis_url: str,
) -> None:
    fake, ids = fake_with_sessions(20)
    async with await RevocationJob.create(redis_url, "j", session_ids=ids) as job:
        await work(job, fake)
        await redis_call(redis_url, "DEL", Keys("j").revoked)
        with pytest.raises(JobStoreError, match="20 of its 20 items are unaccounted for"):
            await job.status()
        with pytest.raises(JobStoreError, match="20 of its 20 items"):
            [pair async for pair in job.outcomes("failed")]


async def test_the_stream_of_a_finished_job_may_go_and_retry_failed_makes_it_again(
    redis_url: str,
) -> None:
    fake, ids = fake_with_sessions(3)
    async with await RevocationJob.create(redis_url, "j", session_ids=[*ids, "sess_x"]) as job:
        await work(job, fake)  # sess_x fails with 404
        await redis_call(redis_url, "DEL", Keys("j").chunks)
        status = await job.status()  # nothing was pending in it: nothing is lost
        assert (status.revoked, status.failed, status.done) == (3, 1, True)
        assert await job.retry_failed() == 0  # 404 is final
        store = RedisStore(redis_url)
        assert await store.claim("j", "w", 60) is None
        await store.aclose()


async def test_a_server_restarted_without_its_data_loses_an_open_job(
    start_redis: StartRedis,
) -> None:
    server = start_redis()
    _, ids = fake_with_sessions(12)
    job = await RevocationJob.create(server.url, "j", session_ids=ids)
    server.kill()
    server.restart()  # no persistence: empty
    for read in (job.status, job.retry_failed):
        with pytest.raises(JobStoreError) as caught:
            await read()
        message = str(caught.value)
        assert "12 of its 12 items are unaccounted for" in message
        assert "no longer has it at all" in message
        assert "Create the job again under a new name" in message
    await job.aclose()


async def test_a_full_server_under_noeviction_stops_the_work_in_one_sentence_and_loses_nothing(
    start_redis: StartRedis,
) -> None:
    server = start_redis()
    fake, ids = fake_with_sessions(40)
    job = await RevocationJob.create(server.url, "j", session_ids=ids, chunk_size=10)
    async with coredis.Redis.from_url(server.url) as client:
        used = await settled_memory(client)
        await client.config_set({"maxmemory": str(used - 10_000)})
    with pytest.raises(JobStoreError) as caught:
        await work(job, fake)
    message = str(caught.value)
    assert "the server is out of memory" in message and "raise maxmemory" in message
    assert_own_words(message)
    status = await job.status()  # reads still work; nothing was recorded
    assert (status.revoked, status.failed) == (0, 0)
    await redis_call(server.url, "CONFIG SET", "maxmemory", "0")
    final = await work(job, fake)
    assert (final.revoked, final.failed, final.done) == (40, 0, True)  # type: ignore[attr-defined]
    assert {item async for item, _ in job.outcomes()} == set(ids)
    await job.aclose()


async def test_stale_claims_after_a_loss_record_nothing_and_raise_no_driver_error(
    redis_url: str,
) -> None:
    store = RedisStore(redis_url)
    await store.create("j", ItemKind.SESSION, _one_chunk(["a", "b"]))
    claim = await store.claim("j", "w", 60)
    assert claim is not None
    await redis_call(redis_url, "DEL", Keys("j").chunks)
    assert not await store.heartbeat("j", claim, 60)
    assert not await store.complete("j", claim, dict.fromkeys(claim.items, ItemOutcome(ok=True)))
    await store.release("j", claim)
    await store.aclose()


async def _one_chunk(ids: list[str]) -> AsyncIterator[list[str]]:
    yield ids
