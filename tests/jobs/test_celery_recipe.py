"""examples/celery_revocations.py for real: Celery worker processes on the suite's
redis-server (broker, results and the job store), a fake Clerk on a real port, and one
worker killed with SIGKILL while it holds a chunk; the other worker's task finishes it.

The oracle is the one of the Redis fleet tests (test_redis_fleet): every session of the
job revoked in the fake, one recorded outcome per id, counters equal to the records.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery.result import AsyncResult

from tests.integrations._support import EXAMPLES, load_example
from tests.jobs.test_redis_fleet import (
    CONCURRENCY,
    LEASE_S,
    WAIT_S,
    assert_exact_ledger,
    create,
    fake_with_sessions,
    wait_for,
    watch,
)

pytestmark = pytest.mark.fleet

NAME = "incident-celery"


@pytest.fixture
def recipe(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example module, sending to (and reading results from) the suite's Redis."""
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", redis_url)
    module = load_example("celery_revocations.py", "clerk_examples_celery_revocations")
    yield module
    module.app.close()


@pytest.fixture
def workers(redis_url: str) -> Iterator[Any]:
    """A starter of Celery worker processes (solo pool: the task runs in the process
    that a test kills); every one is stopped at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(count: int, secret_key: str, api_url: str) -> list[subprocess.Popen[str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "CELERY_"))}
        env.update(
            CELERY_BROKER_URL=redis_url,
            CELERY_RESULT_BACKEND=redis_url,
            CLERK_SECRET_KEY=secret_key,
            CLERK_API_URL=api_url,
        )
        for n in range(count):
            started.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        *("-m", "celery", "--workdir", str(EXAMPLES)),
                        *("-A", "celery_revocations", "worker"),
                        *("--pool", "solo", "--concurrency", "1"),
                        *("--hostname", f"worker{n}@%h", "--loglevel", "WARNING"),
                        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        return started[-count:]

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # Celery's warm shutdown
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)


def wait_for_workers(recipe: Any, processes: list[subprocess.Popen[str]]) -> None:
    """Until every worker answers a ping: then all of them get a task at once."""

    def all_up() -> bool:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"a worker exited: {process.communicate()[1]}")
        return len(recipe.app.control.ping(timeout=0.5)) == len(processes)

    wait_for(all_up, "the Celery workers to answer")


def first_result(results: list[AsyncResult]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for result in results:
            if result.ready():
                return result.get(timeout=5)
        time.sleep(0.05)
    raise AssertionError(f"no task finished within {WAIT_S} s")


def test_a_killed_workers_chunk_is_finished_by_the_other_workers_task(
    recipe: Any, workers: Any, redis_url: str
) -> None:
    fake, ids = fake_with_sessions(600)
    with fake.serve() as url:
        create(redis_url, NAME, session_ids=ids)
        processes = workers(2, fake.secret_key, url)
        wait_for_workers(recipe, processes)
        results = recipe.start(redis_url, NAME, workers=2, concurrency=CONCURRENCY, lease_s=LEASE_S)
        victim, survivor = processes
        watch(
            redis_url,
            NAME,
            lambda job: (
                job.revoked >= 0.3 * job.total
                and job.held[victim.pid] > 0
                and job.held[survivor.pid] > 0
            ),
            "both workers to hold chunks at 30%",
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        assert first_result(results) == {
            "total": 600,
            "revoked": 600,
            "failed": 0,
            "done": True,
        }
        assert_exact_ledger(fake, redis_url, NAME, ids, crashed_workers=1)
        assert survivor.poll() is None, "the surviving worker is still serving"


def test_a_task_run_in_process_works_the_job(
    recipe: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Celery task is a callable: without a worker, it runs here (what a test of an
    # application's own task does).
    fake, ids = fake_with_sessions(30)
    with fake.serve() as url:
        create(redis_url, NAME, session_ids=ids)
        monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
        monkeypatch.setenv("CLERK_API_URL", url)
        counts = recipe.work_revocation_job(redis_url, NAME, concurrency=4, lease_s=5.0)
    assert counts == {"total": 30, "revoked": 30, "failed": 0, "done": True}
    assert {fake.get_session(session_id)["status"] for session_id in ids} == {"revoked"}
