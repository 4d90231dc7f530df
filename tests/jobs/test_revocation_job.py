"""RevocationJob on the SQLite store, in one process, against the in-process fake.

The oracle is the fake: its sessions' statuses and its request log. The crash tests with
real processes are in test_sqlite_fleet.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from clerk_sessions import AsyncClerk, errors
from clerk_sessions.jobs import RevocationJob
from clerk_sessions.jobs._sqlite_store import SQLiteStore
from clerk_sessions.jobs._store import ItemKind
from clerk_sessions.models import CONNECTION_ERROR_CODE, ItemOutcome, JobStatus
from clerk_sessions.testing import FakeClerk, FaultConfig, ManualClock, Quota
from tests.jobs.conftest import FAST_RETRIES, gated_client, revoke_counts, statuses

pytestmark = pytest.mark.anyio


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/jobs.db"


def add_sessions(fake: FakeClerk, count: int, user_id: str | None = None) -> list[str]:
    return [fake.add_session(user_id=user_id)["id"] for _ in range(count)]


async def ledger(job: RevocationJob) -> dict[str, ItemOutcome]:
    return {item: outcome async for item, outcome in job.outcomes()}


# ---------------------------------------------------------------------- session jobs


async def test_a_session_job_revokes_every_id_once_and_keeps_every_outcome(
    store_path: str,
) -> None:
    fake = FakeClerk()
    active = add_sessions(fake, 45)
    revoked = fake.add_session(status="revoked")["id"]
    ended = fake.add_session(status="ended")["id"]
    ids = [*active, revoked, ended, "sess_unknown", *active[:5]]  # five listed twice
    job = await RevocationJob.create(store_path, "incident", session_ids=ids, chunk_size=7)
    assert (job.name, job.kind, job.total) == ("incident", "session", 48)
    async with fake.async_client(retry_config=FAST_RETRIES) as clerk:
        status = await job.work(clerk, concurrency=4)
    assert status == JobStatus(name="incident", total=48, revoked=47, failed=1)
    assert status.done
    outcomes = await ledger(job)
    assert set(outcomes) == {*active, revoked, ended, "sess_unknown"}
    assert all(outcomes[i] == ItemOutcome(ok=True) for i in [*active, revoked, ended])
    unknown = outcomes["sess_unknown"]
    assert (unknown.ok, unknown.status_code, unknown.error_code) == (
        False,
        404,
        "resource_not_found",
    )
    assert not unknown.retryable
    assert all(statuses(fake)[i] == "revoked" for i in [*active, revoked])
    assert statuses(fake)[ended] == "ended"
    # No crash: exactly one request per distinct id.
    assert revoke_counts(fake) == dict.fromkeys([*active, revoked, ended, "sess_unknown"], 1)
    await job.aclose()


async def test_work_on_a_done_job_sends_nothing(store_path: str) -> None:
    fake = FakeClerk()
    ids = add_sessions(fake, 3)
    async with fake.async_client() as clerk:
        job = await RevocationJob.create(store_path, "j", session_ids=ids)
        await job.work(clerk)
        sent = len(fake.requests)
        again = await RevocationJob.open(store_path, "j")
        assert (await again.work(clerk)).revoked == 3
    assert len(fake.requests) == sent
    await job.aclose()
    await again.aclose()


def refusing_server(status_on_get: str) -> httpx2.MockTransport:
    """Answers revoke with 400 (as the spec allows) and get with ``status_on_get``."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        session_id = request.url.path.split("/")[3]
        if request.url.path.endswith("/revoke"):
            body = {"errors": [{"message": "not active", "code": "session_not_active"}]}
            return httpx2.Response(400, json=body)
        session = {
            "object": "session",
            "id": session_id,
            "user_id": "user_1",
            "client_id": "client_1",
            "status": status_on_get,
            "last_active_at": 1,
            "expire_at": 2,
            "abandon_at": 3,
            "created_at": 0,
            "updated_at": 1,
        }
        return httpx2.Response(200, content=json.dumps(session).encode())

    return httpx2.MockTransport(handle)


@pytest.mark.parametrize(("status", "ok"), [("ended", True), ("revoked", True), ("active", False)])
async def test_a_refused_revoke_counts_as_revoked_when_the_session_is_signed_out(
    store_path: str, status: str, ok: bool
) -> None:
    job = await RevocationJob.create(store_path, "j", session_ids=["sess_1"])
    async with AsyncClerk("sk_test_x", transport=refusing_server(status)) as clerk:
        await job.work(clerk)
    outcome = (await ledger(job))["sess_1"]
    assert outcome.ok is ok
    if not ok:
        assert (outcome.status_code, outcome.error_code) == (400, "session_not_active")
    await job.aclose()


@pytest.mark.parametrize("bad_id", [".", ".."])
async def test_an_id_that_cannot_be_a_path_segment_fails_for_good(
    store_path: str, bad_id: str
) -> None:
    fake = FakeClerk()
    job = await RevocationJob.create(store_path, "j", session_ids=[bad_id])
    async with fake.async_client() as clerk:
        await job.work(clerk)
    outcome = (await ledger(job))[bad_id]
    assert (outcome.ok, outcome.error_code, outcome.retryable) == (False, "invalid_id", False)
    await job.aclose()


# ---------------------------------------------------------------------- user jobs


async def test_a_user_job_revokes_every_active_session_of_each_user(store_path: str) -> None:
    fake = FakeClerk()
    alice, bob, carol = fake.add_user(), fake.add_user(), fake.add_user()
    alice_sessions = add_sessions(fake, 3, alice)
    alice_old = fake.add_session(user_id=alice, status="ended")["id"]
    bob_sessions = add_sessions(fake, 1, bob)
    carol_sessions = add_sessions(fake, 2, carol)  # not in the job
    job = await RevocationJob.create(
        store_path, "users", user_ids=[alice, bob, "user_unknown", alice], chunk_size=2
    )
    assert (job.kind, job.total) == ("user", 3)
    async with fake.async_client(retry_config=FAST_RETRIES) as clerk:
        status = await job.work(clerk, concurrency=3)
    assert (status.revoked, status.failed) == (3, 0)
    outcomes = await ledger(job)
    assert outcomes[alice] == ItemOutcome(ok=True, sessions_revoked=3)
    assert outcomes[bob] == ItemOutcome(ok=True, sessions_revoked=1)
    assert outcomes["user_unknown"] == ItemOutcome(ok=True, sessions_revoked=0)
    now = statuses(fake)
    assert [now[i] for i in alice_sessions + bob_sessions] == ["revoked"] * 4
    assert now[alice_old] == "ended"
    assert [now[i] for i in carol_sessions] == ["active"] * 2
    await job.aclose()


async def test_a_user_whose_session_failed_is_failed_then_retried(store_path: str) -> None:
    fake = FakeClerk()
    user = fake.add_user()
    sessions = add_sessions(fake, 3, user)
    broken = {sessions[1]}

    async def gate(request: httpx2.Request) -> None:
        if request.url.path.endswith(f"{sessions[1]}/revoke") and broken:
            raise httpx2.ConnectError("refused", request=request)

    job = await RevocationJob.create(store_path, "users", user_ids=[user])
    async with gated_client(fake, gate, retry_config=None) as clerk:
        status = await job.work(clerk)
        assert (status.revoked, status.failed) == (0, 1)
        outcome = (await ledger(job))[user]
        assert (outcome.ok, outcome.error_code, outcome.sessions_revoked) == (
            False,
            CONNECTION_ERROR_CODE,
            2,
        )
        assert outcome.retryable
        broken.clear()
        assert await job.retry_failed() == 1
        status = await job.work(clerk)
    assert (status.revoked, status.failed) == (1, 0)
    assert (await ledger(job))[user] == ItemOutcome(ok=True, sessions_revoked=1)
    assert {statuses(fake)[i] for i in sessions} == {"revoked"}
    await job.aclose()


async def test_a_user_whose_listing_fails_is_failed_with_that_error(store_path: str) -> None:
    fake = FakeClerk()
    user = fake.add_user()
    add_sessions(fake, 2, user)

    async def gate(request: httpx2.Request) -> None:
        if request.method == "GET":
            raise httpx2.ReadTimeout("slow", request=request)

    job = await RevocationJob.create(store_path, "users", user_ids=[user])
    async with gated_client(fake, gate, retry_config=None) as clerk:
        await job.work(clerk)
    outcome = (await ledger(job))[user]
    assert (outcome.ok, outcome.error_code, outcome.sessions_revoked) == (
        False,
        CONNECTION_ERROR_CODE,
        0,
    )
    await job.aclose()


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_under_faults_the_ledger_matches_the_fake_and_retry_finishes_it(
    store_path: str, seed: int
) -> None:
    clock = ManualClock()
    fake = FakeClerk(
        clock=clock,
        faults=FaultConfig(
            error_rate=0.15,
            html_error_rate=0.05,
            drop_before_rate=0.1,
            drop_after_rate=0.1,
            seed=seed,
        ),
        quota=Quota(requests=60, per_seconds=10),
    )
    ids = add_sessions(fake, 120)
    job = await RevocationJob.create(store_path, "j", session_ids=[*ids, "sess_gone"], chunk_size=9)
    async with fake.async_client(retry_config=FAST_RETRIES) as clerk:
        status = await job.work(clerk, concurrency=6)
        assert status.done
        for _ in range(20):
            outcomes = await ledger(job)
            # Every recorded success is true at the server.
            now = statuses(fake)
            assert all(now[i] == "revoked" for i, o in outcomes.items() if o.ok)
            # Failures are what the fault said: retryable ones, and the unknown id.
            failed = {i for i, o in outcomes.items() if not o.ok}
            retryable = {i for i in failed if outcomes[i].retryable}
            assert failed - retryable <= {"sess_gone"}
            if not retryable:
                break
            clock.advance(10)  # the next quota window
            assert await job.retry_failed() == len(retryable)
            status = await job.work(clerk, concurrency=6)
    assert status == JobStatus(name="j", total=121, revoked=120, failed=1)
    assert outcomes["sess_gone"].status_code == 404
    assert {statuses(fake)[i] for i in ids} == {"revoked"}
    assert set(revoke_counts(fake)) == {*ids, "sess_gone"}
    await job.aclose()


async def test_a_429_beyond_the_wait_cap_is_a_retryable_failure(store_path: str) -> None:
    fake = FakeClerk(quota=Quota(requests=5, per_seconds=60))
    ids = add_sessions(fake, 8)
    job = await RevocationJob.create(store_path, "j", session_ids=ids)
    async with fake.async_client(retry_config=FAST_RETRIES) as clerk:
        status = await job.work(clerk, concurrency=1)
    assert (status.revoked, status.failed) == (5, 3)
    failed = [o async for _, o in job.outcomes("failed")]
    assert {(o.status_code, o.retryable) for o in failed} == {(429, True)}
    await job.aclose()


# ---------------------------------------------------------------------- stopping


async def test_a_wrong_key_stops_the_work_and_records_nothing(store_path: str) -> None:
    fake = FakeClerk()
    ids = add_sessions(fake, 10)
    job = await RevocationJob.create(store_path, "j", session_ids=ids, chunk_size=3)
    async with AsyncClerk(
        "sk_test_wrong", server_url="http://fake.clerk.test/v1", transport=fake.transport()
    ) as clerk:
        with pytest.raises(errors.AuthenticationError):
            await job.work(clerk)
    assert (await job.status()).pending == 10
    # The chunks were given back: claimable at once, no lease to wait for.
    store = SQLiteStore(store_path.removeprefix("sqlite://"))
    claimed = 0
    while await store.claim("j", "probe", 60) is not None:
        claimed += 1
    assert claimed == 4
    await store.aclose()
    await job.aclose()


async def test_a_user_job_with_a_wrong_key_stops_too(store_path: str) -> None:
    fake = FakeClerk()
    user = fake.add_user()
    add_sessions(fake, 2, user)

    async def gate(request: httpx2.Request) -> None:
        if request.method == "POST":
            request.headers["Authorization"] = "Bearer sk_test_wrong"

    job = await RevocationJob.create(store_path, "u", user_ids=[user])
    async with gated_client(fake, gate) as clerk:
        with pytest.raises(errors.AuthenticationError):
            await job.work(clerk)
    assert (await job.status()).pending == 1
    await job.aclose()


async def test_a_cancelled_worker_gives_its_chunks_back_and_the_next_one_finishes(
    store_path: str,
) -> None:
    fake = FakeClerk()
    ids = add_sessions(fake, 40)
    job = await RevocationJob.create(store_path, "j", session_ids=ids, chunk_size=5)
    seen = 0
    stop = anyio.Event()

    async def gate(request: httpx2.Request) -> None:
        nonlocal seen
        seen += 1
        if seen == 12:
            stop.set()
            await anyio.sleep_forever()

    async with gated_client(fake, gate) as clerk, anyio.create_task_group() as tg:
        tg.start_soon(job.work, clerk)
        await stop.wait()
        tg.cancel_scope.cancel()
    interrupted = await job.status()
    assert 0 < interrupted.revoked < 40
    start = anyio.current_time()
    async with fake.async_client() as clerk:
        status = await job.work(clerk, lease_s=60)
    assert anyio.current_time() - start < 30  # no wait for a 60 s lease
    assert (status.revoked, status.failed) == (40, 0)
    # At most the requests of the chunks in flight were repeated.
    counts = revoke_counts(fake)
    assert set(counts) == set(ids)
    assert sum(counts.values()) - len(ids) <= 2 * 5
    await job.aclose()


async def test_on_progress_reports_the_jobs_counts(store_path: str) -> None:
    fake = FakeClerk()
    ids = add_sessions(fake, 20)
    job = await RevocationJob.create(store_path, "j", session_ids=[*ids, "sess_x"], chunk_size=4)
    calls: list[tuple[int, int]] = []
    async with fake.async_client() as clerk:
        await job.work(clerk, on_progress=lambda done, total: calls.append((done, total)))
    assert len(calls) == 6
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert calls[-1] == (21, 21)
    assert {total for _, total in calls} == {21}
    await job.aclose()


async def test_an_exception_from_on_progress_stops_the_work(store_path: str) -> None:
    fake = FakeClerk()
    ids = add_sessions(fake, 20)
    job = await RevocationJob.create(store_path, "j", session_ids=ids, chunk_size=4)

    def explode(done: int, total: int) -> None:
        raise RuntimeError("the bar broke")

    async with fake.async_client() as clerk:
        with pytest.raises(RuntimeError, match="the bar broke"):
            await job.work(clerk, concurrency=1, on_progress=explode)
    assert (await job.status()).revoked == 4  # the first chunk, recorded before the call
    await job.aclose()


# ---------------------------------------------------------------------- concurrency and leases


async def test_two_workers_share_a_job_without_repeating_a_request(tmp_path: Path) -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.0, 0.002), seed=4))
    ids = add_sessions(fake, 150)
    path = str(tmp_path / "jobs.db")
    job = await RevocationJob.create(path, "j", session_ids=ids, chunk_size=10)
    other = await RevocationJob.open(path, "j")  # its own store connection
    async with (
        fake.async_client() as first,
        fake.async_client() as second,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(job.work, first)
        tg.start_soon(other.work, second)
    assert (await job.status()).revoked == 150
    assert revoke_counts(fake) == dict.fromkeys(ids, 1)
    await job.aclose()
    await other.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def worker_and_rival_stores(path: str) -> tuple[SQLiteStore, SQLiteStore]:
    """Two stores on one file; the rival's clock runs two minutes later: to it, the
    worker looks frozen past its lease."""
    rival_clock = Clock()
    rival_clock.now += 120
    return SQLiteStore(path, clock=Clock()), SQLiteStore(path, clock=rival_clock)


async def rival_takes_over(rival: SQLiteStore, items: list[str], outcome: ItemOutcome) -> None:
    """The rival claims the worker's chunk (``items``) and records ``outcome`` for each."""
    claim = await rival.claim("j", "rival", 60)
    assert claim is not None and claim.items == tuple(items)
    assert await rival.complete("j", claim, dict.fromkeys(claim.items, outcome))


async def test_a_worker_that_lost_its_lease_records_nothing_for_that_chunk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeClerk()
    ids = add_sessions(fake, 6)
    slow_store, rival_store = worker_and_rival_stores(str(tmp_path / "jobs.db"))
    job = await RevocationJob.create(slow_store, "j", session_ids=ids, chunk_size=3)
    rival_outcome = ItemOutcome(ok=False, status_code=503, error_code="rival", message="x")
    taken = False

    async def gate(request: httpx2.Request) -> None:
        nonlocal taken
        if not taken:
            # While the worker is on its first request, a rival takes that chunk over
            # and records its own outcomes for it.
            taken = True
            await rival_takes_over(rival_store, ids[:3], rival_outcome)

    with caplog.at_level(logging.WARNING, logger="clerk_sessions.jobs"):
        async with gated_client(fake, gate) as clerk:
            status = await job.work(clerk, concurrency=1, lease_s=60)
    assert (status.revoked, status.failed) == (3, 3)
    outcomes = await ledger(job)
    assert [outcomes[i] for i in ids[:3]] == [rival_outcome] * 3
    assert [outcomes[i].ok for i in ids[3:]] == [True] * 3
    assert "lost the lease" in caplog.text
    await slow_store.aclose()
    await rival_store.aclose()


async def test_a_chunk_lost_while_the_job_ends_elsewhere_is_reported_not_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker's feeder stops when the job is done; the chunk whose request is still
    # running was taken over and finished by a rival meanwhile. The worker must still try
    # to record it, be refused, and say so (a worker frozen past its lease, woken, did
    # neither: its requests ended after the recording task had stopped).
    fake = FakeClerk()
    ids = add_sessions(fake, 3)
    store, rival = worker_and_rival_stores(str(tmp_path / "jobs.db"))
    job = await RevocationJob.create(store, "j", session_ids=ids, chunk_size=3)
    done_seen = anyio.Event()
    status = store.status

    async def watched_status(name: str) -> JobStatus:
        answer = await status(name)
        if answer.done:
            done_seen.set()
        return answer

    monkeypatch.setattr(store, "status", watched_status)
    taken = False

    async def gate(request: httpx2.Request) -> None:
        nonlocal taken
        if not taken:
            taken = True
            await rival_takes_over(rival, ids, ItemOutcome(ok=True))
            # This request ends only after the feeder has seen the job done.
            with anyio.fail_after(10):
                await done_seen.wait()
            await anyio.sleep(0.1)

    with caplog.at_level(logging.WARNING, logger="clerk_sessions.jobs"):
        async with gated_client(fake, gate) as clerk:
            final = await job.work(clerk, concurrency=3, lease_s=60)
    assert (final.revoked, final.failed, final.done) == (3, 0, True)
    assert "lost the lease" in caplog.text
    await store.aclose()
    await rival.aclose()


async def test_a_worker_waits_for_a_chunk_held_elsewhere_and_takes_it_over(
    tmp_path: Path,
) -> None:
    fake = FakeClerk()
    ids = add_sessions(fake, 4)
    path = str(tmp_path / "jobs.db")
    job = await RevocationJob.create(path, "j", session_ids=ids, chunk_size=2)
    dead = SQLiteStore(path)
    claim = await dead.claim("j", "killed-worker", 0.3)  # never completed, never renewed
    assert claim is not None
    async with fake.async_client() as clerk:
        with anyio.fail_after(10):
            status = await job.work(clerk, lease_s=0.3)
    assert (status.revoked, status.failed) == (4, 0)
    assert not await dead.complete("j", claim, dict.fromkeys(claim.items, ItemOutcome(ok=True)))
    await dead.aclose()
    await job.aclose()


async def test_heartbeats_keep_a_slow_chunk_from_being_taken_over(tmp_path: Path) -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.3, 0.3)))
    ids = add_sessions(fake, 6)
    path = str(tmp_path / "jobs.db")
    job = await RevocationJob.create(path, "j", session_ids=ids, chunk_size=6)
    rival = SQLiteStore(path)
    stolen: list[object] = []

    async def steal() -> None:
        for _ in range(8):
            await anyio.sleep(0.2)
            stolen.append(await rival.claim("j", "rival", 1.0))

    async with fake.async_client() as clerk, anyio.create_task_group() as tg:
        tg.start_soon(steal)
        # One chunk of 6 requests of 0.3 s takes 1.8 s: almost two leases of 1 s.
        await job.work(clerk, concurrency=1, lease_s=1.0)
    assert stolen and all(claim is None for claim in stolen)
    assert revoke_counts(fake) == dict.fromkeys(ids, 1)
    await rival.aclose()
    await job.aclose()


async def test_a_failing_heartbeat_is_logged_and_the_work_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.05, 0.05)))
    ids = add_sessions(fake, 12)
    store = SQLiteStore(str(tmp_path / "jobs.db"))
    job = await RevocationJob.create(store, "j", session_ids=ids, chunk_size=12)
    heartbeat = store.heartbeat
    failures = 0

    async def hiccup(*args: Any) -> bool:
        nonlocal failures
        if not failures:
            failures += 1
            raise OSError("store hiccup")
        return await heartbeat(*args)

    monkeypatch.setattr(store, "heartbeat", hiccup)
    with caplog.at_level(logging.WARNING, logger="clerk_sessions.jobs"):
        async with fake.async_client() as clerk:
            # 12 requests of 0.05 s outlast the 0.45 s lease: the later heartbeats hold it.
            status = await job.work(clerk, concurrency=1, lease_s=0.45)
    assert status.revoked == 12
    assert failures == 1
    assert "heartbeat failed: store hiccup" in caplog.text
    assert revoke_counts(fake) == dict.fromkeys(ids, 1)
    await store.aclose()


async def test_a_failing_release_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeClerk()
    ids = add_sessions(fake, 3)
    store = SQLiteStore(str(tmp_path / "jobs.db"))
    job = await RevocationJob.create(store, "j", session_ids=ids)

    async def broken(*args: object) -> None:
        raise OSError("store gone")

    monkeypatch.setattr(store, "release", broken)
    with caplog.at_level(logging.WARNING, logger="clerk_sessions.jobs"):
        async with AsyncClerk(
            "sk_test_wrong", server_url="http://fake.clerk.test/v1", transport=fake.transport()
        ) as clerk:
            with pytest.raises(errors.AuthenticationError):
                await job.work(clerk)
    assert "could not give back chunk" in caplog.text
    await store.aclose()


# ---------------------------------------------------------------------- create and arguments


async def test_ids_may_come_from_an_async_iterable_or_a_generator(store_path: str) -> None:
    async def numbered() -> AsyncIterator[str]:
        for number in range(250):
            yield f"sess_{number % 200}"

    job = await RevocationJob.create(store_path, "a", session_ids=numbered(), chunk_size=30)
    assert job.total == 200
    gen = await RevocationJob.create(
        store_path, "g", user_ids=(f"user_{n}" for n in range(5)), chunk_size=2
    )
    assert (gen.kind, gen.total) == ("user", 5)
    await job.aclose()
    await gen.aclose()


@pytest.mark.parametrize(
    ("ids", "error", "match"),
    [
        (["sess_1", 7], TypeError, "must be strings, got int at item 1"),
        (["sess_1", ""], ValueError, "item 1 is not an id"),
        (["sess 1"], ValueError, "without spaces"),
        (["sess_\n1"], ValueError, "is not an id"),
        (["s" * 257], ValueError, "is not an id"),
        ("sess_1", TypeError, "not a single id"),
        (42, TypeError, "iterable or async iterable"),
    ],
)
async def test_bad_ids_fail_the_create_and_leave_no_job(
    store_path: str, ids: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await RevocationJob.create(store_path, "j", session_ids=ids)  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        await RevocationJob.open(store_path, "j")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, TypeError, "exactly one of session_ids= or user_ids="),
        ({"session_ids": [], "user_ids": []}, TypeError, "exactly one"),
        ({"session_ids": [], "chunk_size": 0}, ValueError, "chunk_size"),
        ({"session_ids": [], "chunk_size": 10_001}, ValueError, "chunk_size"),
        ({"session_ids": [], "chunk_size": 2.5}, TypeError, "chunk_size"),
        ({"session_ids": [], "chunk_size": True}, TypeError, "chunk_size"),
    ],
)
async def test_bad_create_arguments_are_refused(
    store_path: str, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await RevocationJob.create(store_path, "j", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "error"),
    [("", ValueError), ("x" * 201, ValueError), ("bad\nname", ValueError), (3, TypeError)],
)
async def test_bad_job_names_are_refused(store_path: str, name: object, error: type) -> None:
    with pytest.raises(error, match="job name"):
        await RevocationJob.create(store_path, name, session_ids=[])  # type: ignore[arg-type]
    with pytest.raises(error, match="job name"):
        await RevocationJob.open(store_path, name)  # type: ignore[arg-type]


async def test_a_duplicate_name_and_a_missing_one(store_path: str) -> None:
    job = await RevocationJob.create(store_path, "j", session_ids=["a"])
    with pytest.raises(ValueError, match="exists already"):
        await RevocationJob.create(store_path, "j", session_ids=["b"])
    with pytest.raises(LookupError, match="no job named 'k'"):
        await RevocationJob.open(store_path, "k")
    await job.aclose()


async def test_a_store_object_is_used_and_left_open(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "jobs.db"))
    async with await RevocationJob.create(store, "j", session_ids=["a"]) as job:
        assert repr(job) == f"RevocationJob('j', kind='session', store={store!r})"
    assert (await store.open("j")).kind is ItemKind.SESSION  # still open
    await store.aclose()


async def test_a_store_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="URL, a path or a job store"):
        await RevocationJob.open(object(), "j")  # type: ignore[arg-type]


async def test_an_unusable_store_url_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match="unknown job store"):
        await RevocationJob.create("postgres://db/x", "j", session_ids=[])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"lease_s": 0}, ValueError, "lease_s"),
        ({"lease_s": float("inf")}, ValueError, "lease_s"),
        ({"lease_s": "60"}, TypeError, "lease_s"),
        ({"lease_s": True}, TypeError, "lease_s"),
        ({"on_progress": 3}, TypeError, "on_progress"),
    ],
)
async def test_bad_work_arguments_are_refused(
    store_path: str, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    fake = FakeClerk()
    job = await RevocationJob.create(store_path, "j", session_ids=["a"])
    async with fake.async_client() as clerk:
        with pytest.raises(error, match=match):
            await job.work(clerk, **kwargs)  # type: ignore[arg-type]
    await job.aclose()


async def test_work_needs_the_async_client(store_path: str) -> None:
    job = await RevocationJob.create(store_path, "j", session_ids=["a"])
    with pytest.raises(TypeError, match="needs an AsyncClerk"):
        await job.work(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind must be"):
        job.outcomes("ok")  # type: ignore[arg-type]
    await job.aclose()
