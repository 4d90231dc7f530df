"""Crash tests of the SQLite store with real processes: workers killed (SIGKILL), frozen
past their lease (SIGSTOP/SIGCONT), a create killed half-way, faults from the fake.

Workers are `tests/jobs/_fleet.py` processes sharing one SQLite file, against a FakeClerk
served by this process on a loopback port. The oracle is the fake: its sessions' statuses
and its request log; the ledger is read back with the public API.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import attrs
import pytest

from clerk_sessions.jobs import RevocationJob
from clerk_sessions.models import ItemOutcome, JobStatus
from clerk_sessions.testing import FakeClerk, FaultConfig, Quota
from tests.jobs._freeze import freeze_holding_a_chunk
from tests.jobs.conftest import revoke_counts, statuses

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
# Short enough to keep the takeovers quick, long enough that a loaded machine's late
# heartbeat does not lose a live worker's chunk.
LEASE_S = 2.0
CHUNK = 10


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@attrs.define
class Fleet:
    """Worker and creator processes on one job store, and what they printed."""

    fake: FakeClerk
    url: str
    tmp_path: Path
    name: str = "incident"
    processes: list[subprocess.Popen[str]] = attrs.field(factory=list)

    @property
    def path(self) -> str:
        return str(self.tmp_path / "jobs.db")

    def _start(self, *args: str) -> subprocess.Popen[str]:
        log = self.tmp_path / f"proc-{len(self.processes)}"
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.jobs._fleet", *args],
            cwd=REPO,
            stdout=open(f"{log}.out", "w"),  # noqa: SIM115 - closed by the process's exit
            stderr=open(f"{log}.err", "w"),  # noqa: SIM115
            text=True,
        )
        process.log = log  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def worker(self, *, concurrency: int = 2, retry: bool = False) -> subprocess.Popen[str]:
        return self._start(
            "work",
            self.path,
            self.name,
            self.url,
            self.fake.secret_key,
            "--concurrency",
            str(concurrency),
            "--lease",
            str(LEASE_S),
            *(["--retry-failed"] if retry else []),
        )

    def creator(self, ids: list[str], *, users: bool = False) -> subprocess.Popen[str]:
        file = self.tmp_path / f"ids-{len(self.processes)}.txt"
        file.write_text("\n".join(ids) + "\n")
        args = ["create", self.path, self.name, str(file), "--chunk-size", str(CHUNK)]
        return self._start(*args, *(["--users"] if users else []))

    def stderr(self, process: subprocess.Popen[str]) -> str:
        return Path(f"{process.log}.err").read_text()  # type: ignore[attr-defined]

    def finish(self, process: subprocess.Popen[str], timeout: float = 60) -> int:
        code = process.wait(timeout=timeout)
        assert code in (0, -signal.SIGKILL), self.stderr(process)
        return code

    def query(self, sql: str, *params: object) -> object:
        """One value from the store file, read as any other process would."""
        with sqlite3.connect(self.path, timeout=10) as conn:
            try:
                row = conn.execute(sql, params).fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # the first process has not made it yet
                    return None
                raise
        return None if row is None else row[0]

    def done(self) -> int:
        value = self.query("SELECT revoked + failed FROM jobs WHERE name = ?", self.name)
        return int(value) if isinstance(value, int) else 0

    def holds_a_chunk(self, process: subprocess.Popen[str]) -> bool:
        held = self.query(
            "SELECT count(*) FROM chunks WHERE lease_until IS NOT NULL AND worker LIKE ?",
            f"%:{process.pid}:%",
        )
        return bool(held)

    def create(self, ids: list[str], *, users: bool = False) -> None:
        """Create the job in this process (the creates that crash are processes)."""

        async def create() -> None:
            kind = {"user_ids": ids} if users else {"session_ids": ids}
            job = await RevocationJob.create(self.path, self.name, chunk_size=CHUNK, **kind)
            await job.aclose()

        anyio.run(create)

    def ledger(self) -> tuple[JobStatus, dict[str, ItemOutcome]]:
        async def read() -> tuple[JobStatus, dict[str, ItemOutcome]]:
            async with await RevocationJob.open(self.path, self.name) as job:
                return await job.status(), {i: o async for i, o in job.outcomes()}

        return anyio.run(read)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    # A little latency keeps a job of a few hundred ids running long enough to crash it
    # at 30%, on a loaded machine too.
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.004, 0.008), seed=7))
    with fake.serve() as url:
        fleet = Fleet(fake, url, tmp_path)
        try:
            yield fleet
        finally:
            for process in fleet.processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()


def session_ids(fleet: Fleet, count: int) -> tuple[list[str], list[str], list[str]]:
    """Active sessions to revoke, sessions already signed out, and unknown ids."""
    active = [fleet.fake.add_session()["id"] for _ in range(count)]
    signed_out = [fleet.fake.add_session(status=s)["id"] for s in ("revoked", "ended")]
    unknown = ["sess_unknown_1", "sess_unknown_2"]
    return active, signed_out, unknown


def assert_exact_ledger(
    fleet: Fleet, active: list[str], signed_out: list[str], unknown: list[str]
) -> Counter[str]:
    """Every item has its one right outcome, and the fake agrees; returns the requests."""
    status, outcomes = fleet.ledger()
    total = len(active) + len(signed_out) + len(unknown)
    assert status == JobStatus(
        name=fleet.name, total=total, revoked=total - len(unknown), failed=len(unknown)
    )
    assert set(outcomes) == {*active, *signed_out, *unknown}
    assert all(outcomes[i] == ItemOutcome(ok=True) for i in [*active, *signed_out])
    assert all(outcomes[i].status_code == 404 for i in unknown)
    now = statuses(fleet.fake)
    assert {now[i] for i in active} == {"revoked"}
    counts = revoke_counts(fleet.fake)
    assert set(counts) == {*active, *signed_out, *unknown}
    return counts


def repeated(counts: Counter[str]) -> int:
    return sum(counts.values()) - len(counts)


def test_sigkill_one_of_three_workers_at_30_percent(fleet: Fleet) -> None:
    active, signed_out, unknown = session_ids(fleet, 300)
    fleet.create([*active, *signed_out, *unknown, *active[:20]])
    workers = [fleet.worker() for _ in range(3)]
    victim = workers[0]
    wait_until(lambda: fleet.done() >= 90 and fleet.holds_a_chunk(victim), "30% and a held chunk")
    victim.send_signal(signal.SIGKILL)
    assert fleet.finish(victim) == -signal.SIGKILL
    for survivor in workers[1:]:
        fleet.finish(survivor)
    counts = assert_exact_ledger(fleet, active, signed_out, unknown)
    # At-least-once: only the requests of the chunks the victim held were repeated.
    assert repeated(counts) <= 3 * CHUNK


def test_sigstop_past_the_lease_then_sigcont_counts_nothing_twice(fleet: Fleet) -> None:
    active, signed_out, unknown = session_ids(fleet, 240)
    fleet.create([*active, *signed_out, *unknown])
    frozen, other = fleet.worker(), fleet.worker()
    freeze_holding_a_chunk(
        frozen.pid,
        holds=lambda: fleet.holds_a_chunk(frozen),
        wait_until_holding=lambda: wait_until(
            lambda: fleet.done() >= 70 and fleet.holds_a_chunk(frozen), "30% and a held chunk"
        ),
    )
    try:
        stopped_at = time.monotonic()
        fleet.finish(other)  # takes the frozen worker's chunks over once their lease ends
        assert time.monotonic() - stopped_at > LEASE_S
    finally:
        frozen.send_signal(signal.SIGCONT)
    fleet.finish(frozen)
    assert "lost the lease" in fleet.stderr(frozen)
    counts = assert_exact_ledger(fleet, active, signed_out, unknown)
    assert repeated(counts) <= 3 * CHUNK


def test_kill_everything_mid_create_and_mid_work_then_rerun(fleet: Fleet) -> None:
    active, signed_out, unknown = session_ids(fleet, 200)
    # Listed many times over: the create reads for a while, yet the job stays small.
    listed = [*active, *signed_out, *unknown] * 150
    creator = fleet.creator(listed)
    wait_until(lambda: bool(fleet.query("SELECT count(*) FROM items")), "the create to write items")
    creator.send_signal(signal.SIGKILL)
    assert fleet.finish(creator) == -signal.SIGKILL
    assert fleet.query("SELECT count(*) FROM jobs WHERE name = ?", fleet.name) == 0

    fleet.create(listed)  # run again, it works: the killed attempt left no job behind
    assert fleet.ledger()[0].total == 204

    first = [fleet.worker() for _ in range(3)]
    wait_until(lambda: fleet.done() >= 60, "30% of the job")
    for worker in first:
        worker.send_signal(signal.SIGKILL)
    for worker in first:
        fleet.finish(worker)
    assert fleet.done() < 204

    second = [fleet.worker() for _ in range(2)]
    for worker in second:
        fleet.finish(worker)
    counts = assert_exact_ledger(fleet, active, signed_out, unknown)
    assert repeated(counts) <= 3 * 3 * CHUNK


def test_a_user_job_survives_a_killed_worker(fleet: Fleet) -> None:
    users = [fleet.fake.add_user() for _ in range(60)]
    sessions = {u: [fleet.fake.add_session(user_id=u)["id"] for _ in range(3)] for u in users}
    bystander = fleet.fake.add_session()["id"]
    fleet.create(users, users=True)
    workers = [fleet.worker() for _ in range(3)]
    wait_until(lambda: fleet.done() >= 18 and fleet.holds_a_chunk(workers[0]), "30%")
    workers[0].send_signal(signal.SIGKILL)
    for worker in workers:
        fleet.finish(worker)
    status, outcomes = fleet.ledger()
    assert status == JobStatus(name=fleet.name, total=60, revoked=60, failed=0)
    assert set(outcomes) == set(users)
    now = statuses(fleet.fake)
    assert {now[s] for group in sessions.values() for s in group} == {"revoked"}
    assert now[bystander] == "active"
    # A user taken over after the kill may count fewer sessions: the killed worker had
    # revoked some of them already.
    revoked_counts = [o.sessions_revoked for o in outcomes.values()]
    assert all(count is not None and 0 <= count <= 3 for count in revoked_counts)
    assert sum(c or 0 for c in revoked_counts) >= 3 * 60 - 3 * CHUNK * 3


@pytest.mark.parametrize("seed", [11, 12])
def test_faults_from_the_fake_with_two_workers_then_retry_failed(tmp_path: Path, seed: int) -> None:
    fake = FakeClerk(
        faults=FaultConfig(
            latency_s=(0.002, 0.005),
            error_rate=0.1,
            html_error_rate=0.05,
            drop_before_rate=0.05,
            drop_after_rate=0.05,
            seed=seed,
        ),
        quota=Quota(requests=400, per_seconds=1),
    )
    with fake.serve() as url:
        fleet = Fleet(fake, url, tmp_path)
        active, signed_out, unknown = session_ids(fleet, 150)
        fleet.create([*active, *signed_out, *unknown])
        # Each worker works the job, re-queues the retryable failures and works it again,
        # until only failures that no retry can fix are left.
        workers = [fleet.worker(concurrency=4, retry=True) for _ in range(2)]
        for worker in workers:
            fleet.finish(worker)
        counts = assert_exact_ledger(fleet, active, signed_out, unknown)
    faults = Counter(record.fault for record in fake.requests if record.fault)
    assert faults["error_5xx"] and faults["drop_before"] and faults["drop_after"]
    # drop_after: the revoke happened, the answer was lost, the retry found it revoked.
    assert repeated(counts) >= faults["drop_after"]
