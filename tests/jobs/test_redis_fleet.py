"""Fleets of real worker processes on one Redis job store, against a fake Clerk on a real
port: workers killed (SIGKILL), frozen past their lease (SIGSTOP), every process killed
mid-create and mid-work, the Redis server killed, faults from the fake.

The oracle is the fake's own state and request log: after the fleet finishes, every
session of the job is revoked in the fake, each id has exactly one recorded outcome, the
job's counters equal its records (nothing counted twice), and no id was revoked more
often than the chunks in flight at a crash allow.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import coredis
import pytest

from clerk_sessions import AsyncClerk
from clerk_sessions.jobs import RevocationJob
from clerk_sessions.jobs._redis_store import RedisStore
from clerk_sessions.models import ItemOutcome, JobStatus
from clerk_sessions.testing import FakeClerk, FaultConfig, Quota
from tests._redis import RedisServer
from tests.jobs._freeze import freeze_holding_a_chunk

pytestmark = pytest.mark.fleet

WORKER = Path(__file__).with_name("_fleet_worker.py")
CHUNK = 10
CONCURRENCY = 4
LEASE_S = 1.0
# Most a crashed worker can have in flight: the chunks its revoking tasks hold, plus the
# one its feeder has claimed and waits to hand out.
HELD_PER_WORKER = math.ceil(CONCURRENCY / CHUNK) + 1
WAIT_S = 60.0


class Fleet:
    """Worker processes on one job, and what the test needs to watch them."""

    def __init__(
        self, store_url: str, name: str, server_url: str, secret_key: str, directory: Path
    ) -> None:
        self.store_url = store_url
        self.name = name
        self.server_url = server_url
        self.secret_key = secret_key
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen[str]] = []
        self.stderr: dict[int, str] = {}

    def start(self, count: int = 1, lease_s: float = LEASE_S) -> list[subprocess.Popen[str]]:
        """Start ``count`` workers and let them work once all are ready, together."""
        started = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    self.store_url,
                    self.name,
                    self.server_url,
                    self.secret_key,
                    "--concurrency",
                    str(CONCURRENCY),
                    "--lease",
                    str(lease_s),
                    "--ready-dir",
                    str(self.directory),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]
        self.processes += started
        wait_for(
            lambda: (
                all((self.directory / f"ready-{p.pid}").exists() for p in started)
                or any(p.poll() is not None for p in started)
            ),
            "the workers to start",
        )
        (self.directory / "go").touch()
        return started

    def finished(self, process: subprocess.Popen[str]) -> dict[str, Any]:
        """What ``process`` printed last, once it exited (bounded wait)."""
        out, err = process.communicate(timeout=WAIT_S)
        self.stderr[process.pid] = err
        lines = out.strip().splitlines()
        assert lines, f"worker {process.pid} printed nothing (exit {process.returncode}): {err}"
        return dict(json.loads(lines[-1]), exit=process.returncode)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
            process.communicate(timeout=10)


@pytest.fixture
def fleet_parts(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    made: list[Fleet] = []

    def make(
        fake: FakeClerk, server_url: str, name: str = "incident", store_url: str = redis_url
    ) -> Fleet:
        fleet = Fleet(store_url, name, server_url, fake.secret_key, tmp_path / f"fleet{len(made)}")
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.stop_all()


def fake_with_sessions(count: int, **options: Any) -> tuple[FakeClerk, list[str]]:
    # Some ms per answer, so that a worker always has requests in flight when a test
    # strikes. Responses are checked against the spec elsewhere; here the fake must
    # keep up with several processes.
    fake = FakeClerk(
        faults=options.pop("faults", FaultConfig(latency_s=(0.02, 0.05))),
        validate_responses=False,
        **options,
    )
    return fake, [fake.add_session()["id"] for _ in range(count)]


def create(store_url: str, name: str, **ids: Sequence[str]) -> None:
    async def go() -> None:
        async with await RevocationJob.create(store_url, name, chunk_size=CHUNK, **ids):
            pass

    anyio.run(go)


def status(store_url: str, name: str) -> JobStatus:
    return anyio.run(RedisStore(store_url).status, name)


def outcomes(store_url: str, name: str) -> list[tuple[str, ItemOutcome]]:
    async def read() -> list[tuple[str, ItemOutcome]]:
        return [pair async for pair in RedisStore(store_url).outcomes(name)]

    return anyio.run(read)


@attrs.frozen
class Snapshot:
    """The job as the test's watcher saw it: counts, and chunks held per worker pid."""

    total: int
    revoked: int
    failed: int
    held: Counter[int]


def watch(store_url: str, name: str, condition: Callable[[Snapshot], bool], what: str) -> Snapshot:
    """Poll the job's counters and pending entries on one connection every few ms until
    ``condition`` holds (fast enough to strike while chunks are in flight)."""

    async def loop() -> Snapshot:
        last = None
        async with coredis.Redis.from_url(store_url, decode_responses=True) as client:
            with anyio.move_on_after(WAIT_S):
                while True:
                    base = f"clerk-sessions:job:{{{name}}}:"
                    total, revoked, failed = await client.hmget(
                        base + "meta", ["total", "revoked", "failed"]
                    )
                    pending = await client.xpending(base + "chunks", "workers", "-", "+", 1000)
                    # Consumers are named host:pid:random.
                    held = Counter(int(p.consumer.rsplit(":", 2)[1]) for p in pending)
                    last = Snapshot(int(total or 0), int(revoked or 0), int(failed or 0), held)
                    if condition(last):
                        return last
                    await anyio.sleep(0.002)
        raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}; last: {last}")

    return anyio.run(loop)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def revokes(fake: FakeClerk) -> Counter[str]:
    """Per session id, the revoke requests the fake answered 200 (it did the work)."""
    return Counter(
        record.raw_path.split("/")[-2]
        for record in fake.requests
        if record.method == "POST" and record.raw_path.endswith("/revoke") and record.status == 200
    )


def assert_exact_ledger(
    fake: FakeClerk, store_url: str, name: str, ids: Sequence[str], *, crashed_workers: int
) -> None:
    recorded = outcomes(store_url, name)
    listed = [item for item, _ in recorded]
    assert sorted(listed) == sorted(set(ids)), "not exactly one outcome per id"
    final = status(store_url, name)
    revoked = [item for item, outcome in recorded if outcome.ok]
    assert (final.total, final.revoked, final.failed) == (len(set(ids)), len(revoked), 0)
    assert final.done
    for session_id in ids:
        assert fake.get_session(session_id)["status"] == "revoked", session_id
    repeated = sum(count - 1 for count in revokes(fake).values() if count > 1)
    assert repeated <= crashed_workers * HELD_PER_WORKER * CHUNK


def test_sigkill_one_of_three_workers_at_30_percent_and_the_others_finish(
    fleet_parts: Callable[..., Fleet],
) -> None:
    fake, ids = fake_with_sessions(600)
    with fake.serve() as url:
        fleet = fleet_parts(fake, url)
        create(fleet.store_url, fleet.name, session_ids=ids)
        victim, *others = fleet.start(3)
        watch(
            fleet.store_url,
            fleet.name,
            lambda job: job.revoked >= 0.3 * job.total and job.held[victim.pid] > 0,
            "30% done with a chunk held by the victim",
        )
        victim.kill()
        results = [fleet.finished(process) for process in others]
        assert all(r == {"revoked": 600, "failed": 0, "done": True, "exit": 0} for r in results)
        assert_exact_ledger(fake, fleet.store_url, fleet.name, ids, crashed_workers=1)


def test_a_worker_frozen_past_its_lease_records_nothing_when_it_wakes(
    fleet_parts: Callable[..., Fleet],
) -> None:
    fake, ids = fake_with_sessions(400)
    with fake.serve() as url:
        fleet = fleet_parts(fake, url)
        create(fleet.store_url, fleet.name, session_ids=ids)
        frozen, other = fleet.start(2)
        freeze_holding_a_chunk(
            frozen.pid,
            holds=lambda: (
                watch(fleet.store_url, fleet.name, lambda job: True, "the job").held[frozen.pid] > 0
            ),
            wait_until_holding=lambda: watch(
                fleet.store_url,
                fleet.name,
                lambda job: job.revoked >= 20 and job.held[frozen.pid] > 0,
                "the worker to freeze holding a chunk",
            ),
        )
        # The other worker finishes everything, the frozen worker's chunks included once
        # their lease ran out.
        assert fleet.finished(other)["done"]
        before = watch(fleet.store_url, fleet.name, lambda job: True, "the job")
        assert before.held[frozen.pid] == 0 and before.revoked == 400
        os.kill(frozen.pid, signal.SIGCONT)
        assert fleet.finished(frozen) == {"revoked": 400, "failed": 0, "done": True, "exit": 0}
        # It found its chunk gone (heartbeat or complete refused) and recorded nothing.
        assert "lost the lease" in fleet.stderr[frozen.pid]
        assert watch(fleet.store_url, fleet.name, lambda job: True, "the job") == before
        assert_exact_ledger(fake, fleet.store_url, fleet.name, ids, crashed_workers=1)


def test_every_process_killed_mid_create_then_mid_work_and_rerun(
    fleet_parts: Callable[..., Fleet], redis_url: str
) -> None:
    fake, ids = fake_with_sessions(400)
    with fake.serve() as url:
        fleet = fleet_parts(fake, url)
        # A create that draws its ids slowly, killed while it stages them.
        creator = subprocess.Popen(
            [sys.executable, "-c", SLOW_CREATE, redis_url, fleet.name, *ids],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: staged_total(redis_url) >= 50, "the create to stage ids")
        creator.kill()
        creator.communicate(timeout=10)
        with pytest.raises(LookupError):
            status(redis_url, fleet.name)
        create(redis_url, fleet.name, session_ids=ids)
        assert status(redis_url, fleet.name).total == 400

        first = fleet.start(2)
        watch(
            redis_url,
            fleet.name,
            lambda job: job.revoked >= 100 and all(job.held[p.pid] for p in first),
            "both workers to hold chunks at 25%",
        )
        for process in first:
            process.kill()
            process.wait(10)
        assert not status(redis_url, fleet.name).done
        (rerun,) = fleet.start(1)
        assert fleet.finished(rerun) == {"revoked": 400, "failed": 0, "done": True, "exit": 0}
        assert_exact_ledger(fake, redis_url, fleet.name, ids, crashed_workers=2)


SLOW_CREATE = """
import sys, anyio
from clerk_sessions import AsyncClerk
from clerk_sessions.jobs import RevocationJob

async def ids():
    for i, item in enumerate(sys.argv[3:]):
        if i % 10 == 0:
            await anyio.sleep(0.05)
        yield item

async def main():
    await RevocationJob.create(sys.argv[1], sys.argv[2], session_ids=ids(), chunk_size=10)

anyio.run(main)
"""


def staged_total(redis_url: str) -> int:
    async def read() -> int:
        async with coredis.Redis.from_url(redis_url, decode_responses=True) as client:
            metas = [k for k in await client.keys("*:staging:*:meta")]
            totals = [await client.hget(key, "total") for key in metas]
        return sum(int(t or 0) for t in totals)

    return anyio.run(read)


def test_a_user_id_job_revokes_every_active_session_of_each_user(
    fleet_parts: Callable[..., Fleet],
) -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.002, 0.006)), validate_responses=False)
    users = [fake.add_user() for _ in range(24)]
    active: dict[str, list[str]] = {}
    for n, user in enumerate(users):
        active[user] = [fake.add_session(user_id=user)["id"] for _ in range(n % 4)]
        fake.add_session(user_id=user, status="ended")
    with fake.serve() as url:
        fleet = fleet_parts(fake, url, name="users")
        create(fleet.store_url, fleet.name, user_ids=users)
        results = [fleet.finished(p) for p in fleet.start(2)]
    assert all(r["done"] and r["exit"] == 0 for r in results)
    recorded = dict(outcomes(fleet.store_url, fleet.name))
    assert sorted(recorded) == sorted(users)
    for user, sessions in active.items():
        assert recorded[user] == ItemOutcome(ok=True, sessions_revoked=len(sessions)), user
        assert all(fake.get_session(s)["status"] == "revoked" for s in sessions)
    assert status(fleet.store_url, fleet.name).revoked == len(users)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_faults_of_the_fake_end_in_an_exact_ledger(
    fleet_parts: Callable[..., Fleet], seed: int
) -> None:
    faults = FaultConfig(
        latency_s=(0.001, 0.004),
        error_rate=0.15,
        drop_before_rate=0.05,
        drop_after_rate=0.05,
        seed=seed,
    )
    # A quota below what two workers ask for: 429s with Retry-After on top.
    fake, ids = fake_with_sessions(80, faults=faults, quota=Quota(requests=30, per_seconds=0.5))
    with fake.serve() as url:
        fleet = fleet_parts(fake, url, name=f"faults-{seed}")
        create(fleet.store_url, fleet.name, session_ids=ids)
        results = [fleet.finished(p) for p in fleet.start(2)]
        assert all(r["done"] and r["exit"] == 0 for r in results)
        assert {429, 500, None} <= {r.status for r in fake.requests}
        # Items whose retries ran out failed with a retryable error: put them back and
        # work again (here, in this process), until none is left.
        for _ in range(5):
            failed = [o for _, o in outcomes(fleet.store_url, fleet.name) if not o.ok]
            if not failed:
                break
            assert all(o.retryable for o in failed), failed
            assert anyio.run(_retry_failed_and_work, fleet, url) == len(failed)
        assert_exact_ledger(fake, fleet.store_url, fleet.name, ids, crashed_workers=0)


async def _retry_failed_and_work(fleet: Fleet, server_url: str) -> int:
    async with await RevocationJob.open(fleet.store_url, fleet.name) as job:
        requeued = await job.retry_failed()
        async with AsyncClerk(fleet.secret_key, server_url=server_url) as clerk:
            await job.work(clerk, concurrency=CONCURRENCY, lease_s=LEASE_S)
    return requeued


def test_workers_wait_out_a_redis_restart_and_finish(
    fleet_parts: Callable[..., Fleet], tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        fake, ids = fake_with_sessions(200)
        with fake.serve() as url:
            fleet = fleet_parts(fake, url, name="outage", store_url=server.url)
            create(server.url, fleet.name, session_ids=ids)
            workers = fleet.start(2)
            watch(
                server.url,
                fleet.name,
                lambda job: job.revoked >= 50 and sum(job.held.values()) > 0,
                "a quarter of the job, chunks in flight",
            )
            server.kill()
            time.sleep(LEASE_S * 1.5)  # the outage the workers sit through
            server.restart()
            results = [fleet.finished(p) for p in workers]
        assert all(r == {"revoked": 200, "failed": 0, "done": True, "exit": 0} for r in results)
        assert_exact_ledger(fake, server.url, fleet.name, ids, crashed_workers=2)
    finally:
        server.stop()


def test_workers_stop_with_a_clear_error_when_redis_lost_the_job(
    fleet_parts: Callable[..., Fleet], own_redis_server: RedisServer
) -> None:
    fake, ids = fake_with_sessions(200)
    with fake.serve() as url:
        fleet = fleet_parts(fake, url, name="lost", store_url=own_redis_server.url)
        create(own_redis_server.url, fleet.name, session_ids=ids)
        workers = fleet.start(2)
        struck = watch(
            own_redis_server.url,
            fleet.name,
            lambda job: job.revoked >= 30 and sum(job.held.values()) > 0,
            "some progress, chunks in flight",
        )
        own_redis_server.kill()
        own_redis_server.restart()  # without persistence: empty
        results = {p.pid: fleet.finished(p) for p in workers}
    for pid, result in results.items():
        assert result["exit"] == 1
        if pid in struck.held or result["error"] != "LookupError":
            # A worker that had the job open: a store that no longer has it lost it.
            assert result["error"] == "JobStoreError"
            assert "the data of job 'lost' was lost in the store" in result["message"]
            assert "200 of its 200 items are unaccounted for" in result["message"]
        else:
            # One that a loaded machine started late opened it only after the loss:
            # nothing tells it apart from a name never created.
            assert "no job named 'lost'" in result["message"]
            assert "lost its data" in result["message"]
