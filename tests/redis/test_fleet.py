"""Several real processes on one quota, against the fake Clerk on a real port with its
quota on. The oracle is the fake's own request log (arrival times and statuses).

Clerk's quota is scaled down to 20 requests per 2 s so that a run of a few windows
takes seconds; each process runs 4 concurrent callers that call again as soon as they
have an answer, so demand is always above the quota while the run lasts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clerk_sessions.testing import FakeClerk, Quota
from tests._redis import RedisServer
from tests.redis.conftest import max_in_window, redis_command

pytestmark = pytest.mark.fleet

WORKER = Path(__file__).with_name("_fleet_worker.py")
REQUESTS, PER = 20, 2.0
# Three windows of 2 s: the share of the quota used is measured over them.
WINDOWS = 3
RUN_S = WINDOWS * PER


class Process:
    """A fleet worker process (see _fleet_worker.py), started and waiting for ``go``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.result: dict[str, Any] = {}

    def wait_ready(self) -> None:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"worker failed to start: {line}{self.popen.communicate()[1]}")

    def go(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write("go\n")
        self.popen.stdin.flush()

    def finish(self, timeout: float = 60) -> dict[str, Any]:
        out, err = self.popen.communicate(timeout=timeout)
        assert self.popen.returncode == 0, err
        self.result = json.loads(out.strip().splitlines()[-1])
        return self.result


def config(
    fake: FakeClerk,
    url: str,
    session_id: str,
    limiter: dict[str, Any],
    *,
    backend: str = "asyncio",
    duration: float | None = RUN_S,
    calls: int | None = None,
    concurrency: int = 4,
    retries: bool = True,
) -> dict[str, Any]:
    return {
        "server_url": url,
        "secret_key": fake.secret_key,
        "session_id": session_id,
        "limiter": limiter,
        "backend": backend,
        "duration": duration,
        "calls": calls,
        "concurrency": concurrency,
        "retries": retries,
    }


def shared(
    redis_url: str, share: tuple[str, int] | None = None, probe_every: float | None = None
) -> dict[str, Any]:
    return {
        "kind": "redis",
        "redis_url": redis_url,
        "requests": REQUESTS,
        "per_seconds": PER,
        "share": share,
        "probe_every": probe_every,
    }


def run_fleet(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    processes = [Process(c) for c in configs]
    try:
        for process in processes:
            process.wait_ready()
        for process in processes:
            process.go()
        return [process.finish() for process in processes]
    finally:
        for process in processes:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait()


def used_share(times: list[float], requests: int = REQUESTS) -> float:
    """The share of the quota used in the run's first windows, while demand was above it.

    Callers that asked before the end of the run are still served after it, one by one,
    at less than the quota: those last windows say nothing about the limiter.
    """
    start = min(times)
    used = sum(t < start + WINDOWS * PER for t in times)
    return used / (requests * WINDOWS)


@pytest.fixture
def served() -> Iterator[tuple[FakeClerk, str]]:
    fake = FakeClerk(quota=Quota(REQUESTS, PER))
    with fake.serve() as url:
        yield fake, url


def sessions(fake: FakeClerk, count: int) -> list[str]:
    return [fake.add_session(user_id=f"user_{i}")["id"] for i in range(count)]


def test_control_three_processes_with_their_own_rate_limit_overspend(
    served: tuple[FakeClerk, str],
) -> None:
    fake, url = served
    (session_id,) = sessions(fake, 1)
    local = {"kind": "local", "requests": REQUESTS, "per_seconds": PER}
    each = config(fake, url, session_id, local, duration=1.0, retries=False)
    run_fleet([each] * 3)
    log = fake.requests
    assert max_in_window([r.time for r in log], PER) > REQUESTS
    assert sum(r.status == 429 for r in log) > 0


def test_three_processes_on_one_redis_quota_never_exceed_it_and_use_it(
    served: tuple[FakeClerk, str], redis_url: str
) -> None:
    fake, url = served
    (session_id,) = sessions(fake, 1)
    # asyncio, trio and the sync facade (threads) in one fleet.
    results = run_fleet(
        [
            config(fake, url, session_id, shared(redis_url), backend=backend)
            for backend in ("asyncio", "trio", "sync")
        ]
    )
    log = fake.requests
    times = [r.time for r in log]
    assert [r.status for r in log] == [200] * len(log)
    assert max_in_window(times, PER) <= REQUESTS
    assert used_share(times) >= 0.9, sorted(times)
    assert all(r["errors"] == [] and r["ok"] > 0 for r in results), results
    assert sum(r["ok"] for r in results) == len(log)


def test_a_429_seen_by_one_process_pauses_all_of_them(
    served: tuple[FakeClerk, str], redis_url: str, redis_server: RedisServer
) -> None:
    fake, url = served
    first_id, *other_ids = sessions(fake, 2)
    one = Process(config(fake, url, first_id, shared(redis_url), calls=3, concurrency=1))
    others = [
        Process(config(fake, url, sid, shared(redis_url), calls=3, concurrency=1))
        for sid in other_ids
    ]
    try:
        for process in (one, *others):
            process.wait_ready()
        # Someone outside the fleet spent the instance's whole quota just now.
        with fake.client() as outsider:
            for _ in range(REQUESTS):
                outsider.sessions.get(first_id)
        spent = len(fake.requests)
        one.go()
        # The others start only once the first has seen its 429 and paused the quota.
        deadline = time.monotonic() + 30
        while b"pause" not in redis_command(redis_server.port, "KEYS", "*"):
            assert time.monotonic() < deadline, "the quota was never paused"
            time.sleep(0.01)
        refused = next(r for r in fake.requests if r.status == 429)
        for process in others:
            process.go()
        results = [p.finish() for p in (one, *others)]
    finally:
        for process in (one, *others):
            if process.popen.poll() is None:
                process.popen.kill()
    fleet = fake.requests[spent:]
    # Retry-After (>= 1 s) covers the time the outsider's first request needs to leave
    # the window: the pause ends no sooner than both.
    paused_until = max(fake.requests[0].time + PER, refused.time + 1)
    later = [r for r in fleet if r.raw_path.endswith(tuple(other_ids))]
    assert [r.status for r in fleet].count(429) == 1
    assert len(later) == 3 and all(r.status == 200 for r in later)
    assert min(r.time for r in later) >= paused_until - 0.05
    assert all(r["errors"] == [] for r in results), results


def test_a_share_holds_its_limit_and_the_quota_holds_for_everyone(
    served: tuple[FakeClerk, str], redis_url: str
) -> None:
    fake, url = served
    bulk_id, web = sessions(fake, 2)
    run_fleet(
        [
            config(fake, url, bulk_id, shared(redis_url, share=("bulk", 12)), concurrency=8),
            config(fake, url, web, shared(redis_url), backend="trio"),
        ]
    )
    log = fake.requests
    bulk_times = [r.time for r in log if not r.raw_path.endswith(web)]
    web_times = [r.time for r in log if r.raw_path.endswith(web)]
    assert all(r.status == 200 for r in log)
    assert max_in_window(bulk_times, PER) <= 12
    assert max_in_window(bulk_times + web_times, PER) <= REQUESTS
    assert used_share(bulk_times + web_times) >= 0.9
    # The web app always had the headroom the share leaves: 8 of each window's 20.
    start = min(bulk_times + web_times)
    web_in_run = sum(t < start + WINDOWS * PER for t in web_times)
    assert web_in_run >= 0.9 * 8 * WINDOWS


def test_two_secret_keys_on_one_redis_never_throttle_each_other(redis_url: str) -> None:
    fakes = [FakeClerk(quota=Quota(REQUESTS, PER)) for _ in range(2)]
    with fakes[0].serve() as url_a, fakes[1].serve() as url_b:
        configs = [
            config(fake, url, sessions(fake, 1)[0], shared(redis_url), concurrency=8)
            for fake, url in ((fakes[0], url_a), (fakes[1], url_b))
        ]
        run_fleet(configs)
    for fake in fakes:
        times = [r.time for r in fake.requests]
        assert all(r.status == 200 for r in fake.requests)
        # Each instance got its whole quota: sharing one would have halved it.
        assert used_share(times) >= 0.9


def test_redis_killed_and_restarted_mid_run_loses_no_call(
    served: tuple[FakeClerk, str], own_redis_server: RedisServer
) -> None:
    fake, url = served
    (session_id,) = sessions(fake, 1)
    # While Redis is down each process holds the whole quota on its own, so the fleet
    # overspends it (documented) and meets 429s; a batch job's retry policy with room
    # for them (8 attempts, not the default 4) rides them out.
    limiter = shared(own_redis_server.url, probe_every=0.5)
    processes = [
        Process({**config(fake, url, session_id, limiter, backend=b), "max_attempts": 8})
        for b in ("asyncio", "trio", "sync")
    ]
    try:
        for process in processes:
            process.wait_ready()
        for process in processes:
            process.go()
        time.sleep(2.0)
        own_redis_server.kill()
        time.sleep(2.0)
        own_redis_server.restart()
        results = [process.finish() for process in processes]
    finally:
        for process in processes:
            if process.popen.poll() is None:
                process.popen.kill()
    assert [r["errors"] for r in results] == [[], [], []]
    assert all(r["ok"] > 0 for r in results)
    # Every call got its answer (429s met during the outage were retried).
    assert sum(r["ok"] for r in results) == sum(r.status == 200 for r in fake.requests)
    for result in results:
        # One WARNING per process for the whole outage, not one per call (and, if the
        # restarted server came back within a window of the last start, one saying the
        # quota pauses for a window: test_quota_baddays.py).
        outage = [m for m in result["warnings"] if "in-process RateLimit" in m]
        assert len(outage) == 1, result["warnings"]
        assert all("lost starts" in m for m in result["warnings"] if m not in outage)
        # And each was back on the shared quota once Redis answered again.
        rejoined = [m for m in result["infos"] if m.startswith("Redis answers again")]
        assert rejoined == ["Redis answers again: back on the shared quota"]
