"""RedisRateLimit in one process: construction, binding to the client's key, the window,
shares, pauses, several event loops, and Redis failing (down, frozen, restarted).

The fleet tests (several real processes) are in test_fleet.py.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import anyio
import coredis
import pytest

from clerk_sessions import AsyncClerk
from clerk_sessions.errors import ConfigurationError, RateLimitError
from clerk_sessions.redis import RedisRateLimit, _binding
from clerk_sessions.testing import FakeClerk, Quota
from tests._redis import RedisServer
from tests.redis.conftest import accepted_times, max_in_window

pytestmark = pytest.mark.anyio


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    async with coredis.Redis.from_url(redis_url) as client:
        yield client


def fake_with_session(**kwargs: object) -> tuple[FakeClerk, str]:
    fake = FakeClerk(**kwargs)  # type: ignore[arg-type]
    return fake, fake.add_session(user_id="user_1")["id"]


async def quota_keys(redis: coredis.Redis[bytes]) -> list[str]:
    return sorted(key.decode() for key in await redis.keys("clerk-sessions:*"))


def loops_with_a_client(quota: RedisRateLimit) -> int:
    """How many event loops hold a Redis client of ``quota`` (its `PerLoop` says)."""
    found = re.search(r"loops=(\d+)", repr(quota._connections._clients))
    assert found is not None
    return int(found[1])


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("redis://h/0", 0, 1.0), ValueError, "requests must be an integer >= 1"),
        (("redis://h/0", 2.5, 1.0), ValueError, "requests must be an integer >= 1"),
        (("redis://h/0", True, 1.0), ValueError, "requests must be an integer >= 1"),
        (("redis://h/0", 5, 0), ValueError, "per_seconds must be a positive number"),
        (("redis://h/0", 5, -1.0), ValueError, "per_seconds must be a positive number"),
        (("redis://h/0", 5, math.nan), ValueError, "per_seconds must be a positive number"),
        (("redis://h/0", 5, math.inf), ValueError, "per_seconds must be a positive number"),
        ((6379, 5, 1.0), ConfigurationError, "redis must be a URL"),
        (("http://h:6379/0", 5, 1.0), ConfigurationError, "must start with redis://"),
        (("127.0.0.1:6379", 5, 1.0), ConfigurationError, "must start with redis://"),
        (("redis://", 5, 1.0), ConfigurationError, "names no server"),
        (("unix://", 5, 1.0), ConfigurationError, "names no server"),
        (("redis://h:port/0", 5, 1.0), ConfigurationError, "is malformed"),
        (("redis://h:99999/0", 5, 1.0), ConfigurationError, "is malformed"),
        (("redis://h/notanumber", 5, 1.0), ConfigurationError, "is malformed"),
        (("redis://h/0?db=x", 5, 1.0), ConfigurationError, "is malformed"),
        (("rediss://h/0?ssl_cert_reqs=bogus", 5, 1.0), ConfigurationError, "is malformed"),
    ],
)
def test_bad_arguments_are_typed_errors_that_say_what_is_wrong(
    args: tuple[object, ...], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RedisRateLimit(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", 7])
def test_a_key_must_be_a_non_empty_string(key: object) -> None:
    with pytest.raises(ConfigurationError, match="key must be a non-empty string"):
        RedisRateLimit("redis://h/0", 5, 1.0, key=key)  # type: ignore[arg-type]


def test_a_share_needs_a_name_and_at_most_its_quota() -> None:
    quota = RedisRateLimit("redis://h/0", 10, 1.0)
    with pytest.raises(ConfigurationError, match="non-empty name"):
        quota.share("", 5)
    with pytest.raises(ValueError, match="cannot allow more than its quota: 11 > 10"):
        quota.share("bulk", 11)
    with pytest.raises(ValueError, match="requests must be an integer >= 1"):
        quota.share("bulk", 0)
    share = quota.share("bulk", 8)
    assert (share.requests, share.per_seconds) == (8, 1.0)
    assert repr(share) == "RedisRateLimit(10, 1).share('bulk', 8)"


def test_construction_never_connects() -> None:
    started = time.monotonic()
    # Nothing listens on port 1; a URL is checked, not dialled.
    RedisRateLimit("redis://127.0.0.1:1/0", 5, 1.0)
    RedisRateLimit("unix:///nonexistent/redis.sock", 5, 1.0)
    assert time.monotonic() - started < 0.5


def test_the_client_accepts_it_and_names_it_when_refusing_something_else() -> None:
    AsyncClerk("sk_test_x", rate_limit=RedisRateLimit("redis://h/0", 5, 1.0))
    with pytest.raises(ConfigurationError, match=r"a RateLimit, a clerk_sessions\.redis"):
        AsyncClerk("sk_test_x", rate_limit=object())  # type: ignore[arg-type]


def test_importing_the_sdk_does_not_import_the_redis_client() -> None:
    code = (
        "import sys, clerk_sessions\n"
        "from clerk_sessions import AsyncClerk, RateLimit\n"
        "AsyncClerk('sk_test_x', rate_limit=RateLimit(1, 1))\n"
        "assert 'coredis' not in sys.modules and 'clerk_sessions.redis' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------- the quota


async def test_no_window_holds_more_than_the_limit_and_the_limit_is_used(
    redis_url: str,
) -> None:
    fake, session_id = fake_with_session(quota=Quota(5, 1))
    quota = RedisRateLimit(redis_url, 5, 1)
    async with fake.async_client(rate_limit=quota) as clerk:
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for _ in range(15):
                tg.start_soon(clerk.sessions.get, session_id)
        elapsed = time.monotonic() - started
    times = [r.time for r in fake.requests]
    assert [r.status for r in fake.requests] == [200] * 15
    assert max_in_window(times, 1.0) <= 5
    # 15 at 5 per second: two windows of waiting, not more (waiters sleep once, in order).
    assert 2.0 <= elapsed < 4.0


async def test_the_key_is_a_hash_of_the_secret_key_never_the_key(
    redis_url: str, redis: coredis.Redis[bytes]
) -> None:
    fake, session_id = fake_with_session()
    async with fake.async_client(rate_limit=RedisRateLimit(redis_url, 5, 1)) as clerk:
        await clerk.sessions.get(session_id)
    keys = await quota_keys(redis)
    assert keys and all(fake.secret_key not in key for key in keys)
    assert all(fake.secret_key[8:16] not in key for key in keys)


async def test_two_secret_keys_on_one_limiter_never_throttle_each_other(
    redis_url: str, redis: coredis.Redis[bytes]
) -> None:
    quota = RedisRateLimit(redis_url, 2, 60)  # a second call per key would wait a minute
    fake_a, session_a = fake_with_session()
    fake_b, session_b = fake_with_session()
    async with (
        fake_a.async_client(rate_limit=quota) as a,
        fake_b.async_client(rate_limit=quota) as b,
    ):
        with anyio.fail_after(10):
            for _ in range(2):
                await a.sessions.get(session_a)
                await b.sessions.get(session_b)
        with anyio.move_on_after(0.5) as waited:
            await a.sessions.get(session_a)
        assert waited.cancelled_caught  # key A's quota is spent, and only A's
    assert len({key.split("}")[0] for key in await quota_keys(redis)}) == 2


async def test_an_explicit_key_is_one_quota_whatever_the_secret_keys(
    redis_url: str, redis: coredis.Redis[bytes]
) -> None:
    quota = RedisRateLimit(redis_url, 2, 60, key="team-quota")
    fake_a, session_a = fake_with_session()
    fake_b, session_b = fake_with_session()
    async with (
        fake_a.async_client(rate_limit=quota) as a,
        fake_b.async_client(rate_limit=quota) as b,
    ):
        await a.sessions.get(session_a)
        await b.sessions.get(session_b)
        with anyio.move_on_after(0.5) as waited:
            await b.sessions.get(session_b)
        assert waited.cancelled_caught
    assert await quota_keys(redis) == [
        "clerk-sessions:{team-quota}:planned",
        "clerk-sessions:{team-quota}:started",
    ]


async def test_limiter_objects_in_different_processes_meet_on_the_same_key(
    redis_url: str,
) -> None:
    # Two objects stand for two processes: same Redis, same secret key, one quota.
    fake, session_id = fake_with_session()
    one, two = RedisRateLimit(redis_url, 2, 60), RedisRateLimit(redis_url, 2, 60)
    async with fake.async_client(rate_limit=one) as a, fake.async_client(rate_limit=two) as b:
        await a.sessions.get(session_id)
        await b.sessions.get(session_id)
        with anyio.move_on_after(0.5) as waited:
            await a.sessions.get(session_id)
        assert waited.cancelled_caught


async def test_a_share_holds_its_own_limit_and_its_quotas(redis_url: str) -> None:
    fake, session_id = fake_with_session()
    quota = RedisRateLimit(redis_url, 3, 60)
    bulk = quota.share("bulk", 2)
    async with (
        fake.async_client(rate_limit=quota) as web,
        fake.async_client(rate_limit=bulk) as job,
    ):
        await job.sessions.get(session_id)
        await job.sessions.get(session_id)
        with anyio.move_on_after(0.5) as waited:
            await job.sessions.get(session_id)
        assert waited.cancelled_caught  # the share is spent...
        with anyio.fail_after(5):
            await web.sessions.get(session_id)  # ...the rest of the quota is not
        with anyio.move_on_after(0.5) as waited:
            await web.sessions.get(session_id)
        assert waited.cancelled_caught  # and the share's starts count in the quota


async def test_a_429_pauses_every_participant_until_its_retry_after(redis_url: str) -> None:
    # The fake allows 2 per 2 s; the limiters think 10 per 2 s, so the third call gets
    # a 429 (Retry-After >= 1 s) and the pause must hold another "process" too.
    fake, session_id = fake_with_session(quota=Quota(2, 2))
    first, other = RedisRateLimit(redis_url, 10, 2), RedisRateLimit(redis_url, 10, 2)
    async with fake.async_client(rate_limit=first, retry_config=None) as a:
        await a.sessions.get(session_id)
        await a.sessions.get(session_id)
        with pytest.raises(RateLimitError) as info:
            await a.sessions.get(session_id)
    retry_after = info.value.retry_after
    assert retry_after is not None and retry_after >= 1
    refused_at = fake.requests[-1].time
    async with fake.async_client(rate_limit=other) as b:
        await b.sessions.get(session_id)
    assert fake.requests[-1].time >= refused_at + retry_after - 0.05
    assert fake.requests[-1].status == 200


async def test_the_limiter_counts_from_the_answer_like_rate_limit(
    redis_url: str, redis: coredis.Redis[bytes]
) -> None:
    fake, session_id = fake_with_session()
    async with fake.async_client(rate_limit=RedisRateLimit(redis_url, 5, 60)) as clerk:
        await clerk.sessions.get(session_id)
        (started_key,) = [k for k in await quota_keys(redis) if k.endswith(":started")]
        ((member, moved),) = await redis.zrange(started_key, 0, -1, withscores=True)
        planned_key = started_key.replace(":started", ":planned")
        (booked,) = await redis.zrange(planned_key, 0, -1, withscores=True)
    # The start record was moved from its slot (the booking) to the answer's time.
    assert booked[0] == member
    assert moved >= booked[1]


# ---------------------------------------------------------------- event loops


async def test_a_sync_clerk_and_an_async_clerk_share_one_limiter(
    redis_url: str, redis: coredis.Redis[bytes]
) -> None:
    fake, session_id = fake_with_session()
    quota = RedisRateLimit(redis_url, 3, 60)
    # The sync client runs its calls on a loop thread of its own: it gets its own
    # Redis connections there, on the same quota.
    sync = fake.client(rate_limit=quota)
    try:
        async with fake.async_client(rate_limit=quota) as clerk:
            await clerk.sessions.get(session_id)
            await anyio.to_thread.run_sync(sync.sessions.get, session_id)
            await clerk.sessions.get(session_id)
            with anyio.move_on_after(0.5) as waited:
                await clerk.sessions.get(session_id)
            assert waited.cancelled_caught
    finally:
        await anyio.to_thread.run_sync(sync.close)
    (started_key,) = [k for k in await quota_keys(redis) if k.endswith(":started")]
    assert await redis.zcard(started_key) == 3
    assert loops_with_a_client(quota) == 0  # both loops' connections were closed


async def test_closing_the_client_closes_its_loops_connections(redis_url: str) -> None:
    fake, session_id = fake_with_session()
    quota = RedisRateLimit(redis_url, 5, 1)
    async with fake.async_client(rate_limit=quota) as clerk:
        await clerk.sessions.get(session_id)
        assert loops_with_a_client(quota) == 1
    assert loops_with_a_client(quota) == 0
    # Used again afterwards, it opens new connections.
    async with fake.async_client(rate_limit=quota) as clerk:
        await clerk.sessions.get(session_id)


async def test_a_coredis_client_of_your_own_is_used_as_is(
    redis: coredis.Redis[bytes],
) -> None:
    fake, session_id = fake_with_session()
    async with fake.async_client(rate_limit=RedisRateLimit(redis, 1, 60)) as clerk:
        await clerk.sessions.get(session_id)
        with anyio.move_on_after(0.5) as waited:
            await clerk.sessions.get(session_id)
        assert waited.cancelled_caught
    assert await redis.ping()  # still open: it is the user's to close


FORK_SCRIPT = """
import os, sys
from clerk_sessions import Clerk
from clerk_sessions.redis import RedisRateLimit

redis_url, server_url, secret_key = sys.argv[1:4]
quota = RedisRateLimit(redis_url, 50, 1)
clerk = Clerk(secret_key, server_url=server_url, rate_limit=quota)
clerk.sessions.list(user_id="user_1")
assert "loops=1" in repr(quota._connections._clients)
pid = os.fork()
if pid == 0:
    # A gunicorn worker: the parent's connection (on the parent's loop) is not its own.
    inherited = "loops=0" in repr(quota._connections._clients)
    clerk.sessions.list(user_id="user_1")
    os._exit(0 if inherited else 3)
_, status = os.waitpid(pid, 0)
clerk.sessions.list(user_id="user_1")
clerk.close()
print("child", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_forked_worker_opens_its_own_connections(redis_url: str) -> None:
    fake, _ = fake_with_session()
    async with fake.serve_async() as url:
        result = await anyio.run_process(
            [sys.executable, "-c", FORK_SCRIPT, redis_url, url, fake.secret_key], check=False
        )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == ["child", "0"]
    assert [r.status for r in fake.requests] == [200, 200, 200]


# ---------------------------------------------------------------- Redis failing


async def test_an_unreachable_redis_falls_back_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="clerk_sessions")
    fake, session_id = fake_with_session(quota=Quota(3, 60))
    quota = RedisRateLimit("redis://127.0.0.1:1/0", 3, 60)
    async with fake.async_client(rate_limit=quota) as clerk:
        with anyio.fail_after(10):
            for _ in range(3):
                await clerk.sessions.get(session_id)
        # The in-process fallback has the same numbers: the fourth call waits.
        with anyio.move_on_after(0.5) as waited:
            await clerk.sessions.get(session_id)
        assert waited.cancelled_caught
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "in-process RateLimit with the same numbers" in warnings[0].getMessage()
    assert [r.status for r in fake.requests] == [200] * 3


async def test_a_frozen_redis_delays_one_call_by_the_operation_timeout_then_none(
    own_redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_binding, "_OP_TIMEOUT_S", 0.4)
    fake, session_id = fake_with_session()
    quota = RedisRateLimit(own_redis_server.url, 50, 1)
    async with fake.async_client(rate_limit=quota) as clerk:
        await clerk.sessions.get(session_id)
        own_redis_server.freeze()
        try:
            started = time.monotonic()
            for _ in range(5):
                await clerk.sessions.get(session_id)
            elapsed = time.monotonic() - started
        finally:
            own_redis_server.thaw()
    # The first call waits 0.4 s for Redis, then falls back; the next ones do not wait
    # for a Redis that failed (five waits would be 2 s).
    assert 0.4 <= elapsed < 1.2
    assert [r.status for r in fake.requests] == [200] * 6


async def test_a_restarted_redis_is_rejoined_and_no_call_fails(
    own_redis_server: RedisServer,
    fast_probe: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="clerk_sessions")
    fake, session_id = fake_with_session()
    quota = RedisRateLimit(own_redis_server.url, 100, 1)
    async with fake.async_client(rate_limit=quota) as clerk:
        await clerk.sessions.get(session_id)
        own_redis_server.kill()
        for _ in range(3):
            await clerk.sessions.get(session_id)
        own_redis_server.restart()
        await anyio.sleep(fast_probe * 2)
        for _ in range(3):
            await clerk.sessions.get(session_id)
        async with coredis.Redis.from_url(own_redis_server.url) as redis:
            # Back on the shared quota: the restarted (empty) server holds starts again.
            assert await quota_keys(redis)
    assert [r.status for r in fake.requests] == [200] * 7
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "clerk_sessions"]
    assert messages[0][0] == logging.WARNING and "unreachable" in messages[0][1]
    assert messages[-1][0] == logging.INFO and "back on the shared quota" in messages[-1][1]
    # A restart within a window of the first start also pauses the quota for a window
    # (test_quota_baddays.py): it says so, once.
    assert all("lost starts" in message for _, message in messages[1:-1])
    assert len(messages) <= 3


async def test_while_redis_is_down_it_is_tried_at_most_once_per_probe_interval(
    fast_probe: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, session_id = fake_with_session()
    quota = RedisRateLimit("redis://127.0.0.1:1/0", 1000, 1)
    attempts = 0
    real_client = quota._connections.client

    async def counting_client() -> object:
        nonlocal attempts
        attempts += 1
        return await real_client()

    monkeypatch.setattr(quota._connections, "client", counting_client)
    async with fake.async_client(rate_limit=quota) as clerk:
        await clerk.sessions.get(session_id)
        assert attempts == 1
        started = time.monotonic()
        for _ in range(30):
            await clerk.sessions.get(session_id)
        elapsed = time.monotonic() - started
    assert attempts - 1 <= 1 + elapsed / fast_probe
    assert attempts - 1 < 30
    assert len(accepted_times(fake.requests)) == 31


def test_every_public_name_of_the_module_has_a_docstring() -> None:
    import clerk_sessions.redis as module

    assert module.__all__ == ["RedisRateLimit"]
    names = [n for n in dir(RedisRateLimit) if not n.startswith("_")]
    assert set(names) == {"name", "per_seconds", "requests", "share"}
    for name in ["share", "requests", "per_seconds", "name"]:
        assert getattr(RedisRateLimit, name).__doc__, name
    assert RedisRateLimit.__doc__ and module.__doc__


async def test_a_429_while_redis_is_down_pauses_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, session_id = fake_with_session(quota=Quota(1, 60))
    quota = RedisRateLimit("redis://127.0.0.1:1/0", 10, 60)
    async with fake.async_client(rate_limit=quota, retry_config=None) as clerk:
        await clerk.sessions.get(session_id)
        with pytest.raises(RateLimitError):
            await clerk.sessions.get(session_id)
        # The in-process fallback holds the pause: the next call waits for Retry-After.
        with anyio.move_on_after(0.5) as waited:
            await clerk.sessions.get(session_id)
        assert waited.cancelled_caught
    assert [r.status for r in fake.requests] == [200, 429]


async def test_an_answer_after_redis_failed_does_not_wait_for_redis(
    own_redis_server: RedisServer,
) -> None:
    binding = RedisRateLimit(own_redis_server.url, 10, 60)._bind("sk_test_x")
    token = await binding.acquire(anyio.sleep)
    assert isinstance(token, str)  # counted in Redis
    own_redis_server.freeze()
    try:
        binding._failed(ConnectionError("seen by another call"))
        started = time.monotonic()
        await binding.finished(token)
        assert time.monotonic() - started < 0.2  # not the 1 s operation timeout
    finally:
        own_redis_server.thaw()
        await binding.aclose()


async def test_the_fallback_takes_over_from_the_starts_made_on_redis(
    own_redis_server: RedisServer,
) -> None:
    fake, session_id = fake_with_session()
    quota = RedisRateLimit(own_redis_server.url, 3, 60)
    async with fake.async_client(rate_limit=quota) as clerk:
        for _ in range(3):
            await clerk.sessions.get(session_id)
        own_redis_server.kill()
        # The in-process fallback knows the three starts of this window: no fresh quota.
        with anyio.move_on_after(1.5) as waited:
            await clerk.sessions.get(session_id)
        assert waited.cancelled_caught
    assert len(fake.requests) == 3
