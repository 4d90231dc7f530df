"""examples/celery_revocations.py for real: Celery worker processes on the suite's
redis-server (broker, results and the job store), a fake Clerk on a real port, and one
worker killed with SIGKILL while it holds a chunk; the other worker's task finishes it.

The oracle is the one of the Redis fleet tests (test_redis_fleet): every session of the
job revoked in the fake, one recorded outcome per id, counters equal to the records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integrations._support import EXAMPLES, load_example
from tests.jobs.test_redis_fleet import (
    CONCURRENCY,
    WAIT_S,
    assert_exact_ledger,
    create,
    fake_with_sessions,
    watch,
)

pytestmark = pytest.mark.fleet

NAME = "incident-celery"


@pytest.fixture(scope="module")
def recipe() -> Any:
    """The example module, for calling its task in this process (no broker needed)."""
    return load_example("celery_revocations.py", "clerk_examples_celery_revocations")


def celery_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "CELERY_"))}
    return {**env, "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url, **extra}


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """A starter of Celery worker processes (solo pool: the task runs in the process
    that a test kills); every one is stopped at the end. Their output goes to files (a
    full pipe would block a worker), shown when a test fails."""
    started: list[subprocess.Popen[str]] = []

    def start(count: int, secret_key: str, api_url: str) -> list[subprocess.Popen[str]]:
        env = celery_env(redis_url, CLERK_SECRET_KEY=secret_key, CLERK_API_URL=api_url)
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
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        return started[-count:]

    with (tmp_path / "workers.log").open("w") as log:
        yield start
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # Celery's warm shutdown
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    print((tmp_path / "workers.log").read_text())


# The application's side, in a process of its own (its broker connections end with it):
# wait until both workers answer, enqueue the work with the recipe's start(), and print
# the counts of the first task that finishes.
PRODUCER = """
import json, sys, time
import celery_revocations as recipe

store, name, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + float(sys.argv[5])
while len(recipe.app.control.ping(timeout=0.5)) < workers:
    if time.monotonic() > deadline:
        sys.exit("the workers never answered")
results = recipe.start(store, name, workers=workers, concurrency=int(sys.argv[4]), lease_s=1.0)
print("enqueued", flush=True)
while not any(result.ready() for result in results):
    if time.monotonic() > deadline:
        sys.exit("no task finished")
    time.sleep(0.05)
print(json.dumps(next(r for r in results if r.ready()).get(timeout=10)))
"""


def test_a_killed_workers_chunk_is_finished_by_the_other_workers_task(
    workers: Any, redis_url: str
) -> None:
    fake, ids = fake_with_sessions(600)
    with fake.serve() as url:
        create(redis_url, NAME, session_ids=ids)
        victim, survivor = workers(2, fake.secret_key, url)
        producer = subprocess.Popen(
            [sys.executable, "-c", PRODUCER, redis_url, NAME, "2", str(CONCURRENCY), str(WAIT_S)],
            cwd=EXAMPLES,
            env=celery_env(redis_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
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
            out, err = producer.communicate(timeout=WAIT_S + 10)
        finally:
            if producer.poll() is None:
                producer.kill()
                producer.communicate(timeout=10)
        assert producer.returncode == 0, err
        assert json.loads(out.splitlines()[-1]) == {
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
