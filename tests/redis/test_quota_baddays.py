"""The shared quota when Redis loses its data: flushed, evicting the quota's keys,
restarted without persistence, or configured to evict. Real processes on a real
redis-server, against the fake Clerk with its quota on (20 requests per 2 s): the fake's
own log of arrivals is the oracle, and a 429 from it is an overspent quota.

Measured before the loss detection (these tests, on the previous script): a flush, an
eviction of the log's key or a restart in the middle of a run let the processes start a
fresh window's worth at once, on top of the starts of the window before, and the fake
answered 429. Now the first call that finds the log without a start it saw less than a
window ago pauses everyone for a window, so no window holds more than the quota.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import coredis
import pytest

from clerk_sessions.redis import RedisRateLimit
from clerk_sessions.testing import FakeClerk, Quota
from tests._redis import RedisServer
from tests.redis.conftest import max_in_window, redis_command
from tests.redis.test_fleet import PER, REQUESTS, Process, config, sessions, shared

pytestmark = pytest.mark.fleet

LOST = "lost starts made less than a window ago"


@pytest.fixture
def served() -> Iterator[tuple[FakeClerk, str]]:
    fake = FakeClerk(quota=Quota(REQUESTS, PER))
    with fake.serve() as url:
        yield fake, url


def run_and_strike(processes: list[Process], strike: Callable[[], None]) -> list[dict[str, object]]:
    """Start the processes together, strike Redis a window and a half into the run (the
    quota is saturated by then), and collect what each reported."""
    try:
        for process in processes:
            process.wait_ready()
        for process in processes:
            process.go()
        timer = threading.Timer(1.5 * PER, strike)
        timer.start()
        try:
            return [process.finish() for process in processes]
        finally:
            timer.join()
    finally:
        for process in processes:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait()


def quota_log_keys(port: int) -> list[str]:
    reply = redis_command(port, "KEYS", "clerk-sessions:*:started").decode()
    return [line for line in reply.split("\r\n") if line.startswith("clerk-sessions:")]


@pytest.mark.parametrize("loss", ["flushed", "evicted"])
def test_a_redis_that_loses_the_quota_mid_run_pauses_it_and_never_overspends(
    served: tuple[FakeClerk, str], own_redis_server: RedisServer, loss: str
) -> None:
    fake, url = served
    (session_id,) = sessions(fake, 1)
    port = own_redis_server.port

    def strike() -> None:
        if loss == "flushed":
            own_redis_server.flush()
        else:  # what an eviction does: the log's key is gone, the rest stays
            for key in quota_log_keys(port):
                redis_command(port, "DEL", key)

    processes = [
        Process(config(fake, url, session_id, shared(own_redis_server.url), backend=backend))
        for backend in ("asyncio", "trio")
    ]
    results = run_and_strike(processes, strike)
    log = fake.requests
    assert [r.status for r in log] == [200] * len(log)  # no 429: the quota held
    assert max_in_window([r.time for r in log], PER) <= REQUESTS
    assert all(r["errors"] == [] for r in results), results
    # At least one process saw the loss and said so, once.
    noticed = [r for r in results if any(LOST in m for m in r["warnings"])]  # type: ignore[attr-defined]
    assert noticed
    assert all(sum(LOST in m for m in r["warnings"]) == 1 for r in noticed)  # type: ignore[attr-defined]


def test_a_redis_restarted_empty_mid_run_is_rejoined_without_overspending(
    served: tuple[FakeClerk, str], own_redis_server: RedisServer
) -> None:
    fake, url = served
    (session_id,) = sessions(fake, 1)
    # One process: coredis reconnects to the restarted server by itself, or, while it
    # is down, the in-process fallback holds the whole quota (a fleet would overspend
    # then, as documented). Either way, the empty log it finds must not grant a fresh
    # window on top of the starts of the last one (measured: it did, and 429s came).
    limiter = shared(own_redis_server.url, probe_every=0.2)
    process = Process(config(fake, url, session_id, limiter, duration=4 * PER))

    def strike() -> None:
        own_redis_server.kill()
        own_redis_server.restart()

    (result,) = run_and_strike([process], strike)
    log = fake.requests
    assert [r.status for r in log] == [200] * len(log)
    assert max_in_window([r.time for r in log], PER) <= REQUESTS
    assert result["errors"] == []


@pytest.mark.anyio
async def test_an_evicting_redis_is_named_in_one_warning_per_server(
    start_redis: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis("--maxmemory-policy", "volatile-lru")
    caplog.set_level(logging.WARNING, logger="clerk_sessions")
    fake = FakeClerk()
    session_id = fake.add_session()["id"]
    for _ in range(2):  # two limiters, two clients: one warning
        quota = RedisRateLimit(server.url, 100, 1)
        async with fake.async_client(rate_limit=quota) as clerk:
            await clerk.sessions.get(session_id)
            await clerk.sessions.get(session_id)
    warnings = [r.getMessage() for r in caplog.records if r.name == "clerk_sessions"]
    assert len(warnings) == 1
    assert "maxmemory-policy volatile-lru" in warnings[0]
    assert "CONFIG SET maxmemory-policy noeviction" in warnings[0]


@pytest.mark.anyio
async def test_a_redis_that_will_not_tell_its_policy_costs_nothing_and_says_nothing(
    start_redis: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis()
    async with coredis.Redis.from_url(server.url) as admin:
        await admin.acl_setuser("app", "on", ">pw", "~*", "&*", "+@all", "-@dangerous")
    caplog.set_level(logging.DEBUG, logger="clerk_sessions")
    fake = FakeClerk()
    session_id = fake.add_session()["id"]
    quota = RedisRateLimit(f"redis://app:pw@127.0.0.1:{server.port}/0", 100, 1)
    async with fake.async_client(rate_limit=quota) as clerk:
        await clerk.sessions.get(session_id)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    async with coredis.Redis.from_url(server.url) as admin:
        assert await admin.keys("clerk-sessions:*")  # counted on the shared quota


@pytest.mark.anyio
async def test_a_quota_url_with_a_password_never_shows_it(
    start_redis: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    password = "q-s3cret"
    server = start_redis("--requirepass", password)
    caplog.set_level(logging.DEBUG)
    fake = FakeClerk()
    session_id = fake.add_session()["id"]
    wrong = RedisRateLimit(f"redis://:not-{password}@127.0.0.1:{server.port}/0", 100, 1)
    async with fake.async_client(rate_limit=wrong) as clerk:
        await clerk.sessions.get(session_id)  # falls back, never fails
    with pytest.raises(ValueError) as malformed:
        RedisRateLimit(f"redis://:{password}@127.0.0.1:port/0", 100, 1)
    assert password not in str(malformed.value)
    assert any("unreachable" in r.getMessage() for r in caplog.records)
    assert all(password not in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_a_quota_user_refused_scripts_falls_back_saying_why_in_words_of_its_own(
    start_redis: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = start_redis()
    async with coredis.Redis.from_url(server.url) as admin:
        await admin.acl_setuser("app", "on", ">pw", "~*", "&*", "+@all", "-evalsha")
    caplog.set_level(logging.WARNING, logger="clerk_sessions")
    fake = FakeClerk()
    session_id = fake.add_session()["id"]
    quota = RedisRateLimit(f"redis://app:pw@127.0.0.1:{server.port}/0", 100, 1)
    async with fake.async_client(rate_limit=quota) as clerk:
        await clerk.sessions.get(session_id)  # no call fails because of Redis
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "the server's ACL does not let this user run EVALSHA" in warning
    assert "in-process RateLimit" in warning
    assert "NOPERM" not in warning and "pw@" not in warning
