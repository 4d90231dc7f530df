"""Example: bulk revocation jobs worked by Celery workers.

The job itself is a `clerk_sessions.jobs.RevocationJob` in a store every worker reaches
(Redis for workers on several hosts, SQLite on one). Celery only starts the work: each
task opens the job by name and works it until every item has an outcome. Enqueue one task
per worker you want on the job; the tasks share it chunk by chunk, under leases. A worker
that dies (OOM, ``kill -9``, a lost host) holds its chunks until their lease runs out,
then another worker's task takes them over; nothing is lost and nothing is recorded
twice.

Configured by environment (Celery reads its own variables):

- ``CELERY_BROKER_URL``: e.g. ``redis://127.0.0.1:6379/0``;
- ``CLERK_SECRET_KEY`` (required by the task) and ``CLERK_API_URL`` (optional).

Run workers, then start a job (it must exist: ``clerk-sessions job create`` or
``RevocationJob.create``)::

    celery --workdir examples -A celery_revocations worker --concurrency 1
    python -c "import celery_revocations as r; r.start('redis://...', 'incident-42', workers=4)"
"""

from __future__ import annotations

import anyio
from celery import Celery
from celery.result import AsyncResult

from clerk_sessions import AsyncClerk
from clerk_sessions.jobs import RevocationJob
from clerk_sessions.models import JobStatus

app = Celery("clerk_revocations")
app.conf.update(
    # A job task runs for minutes or hours: acknowledge it when it returns, so that a
    # task whose worker died is delivered again (working a finished job returns at once).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Each worker reserves one task at a time: a busy worker must not sit on a second
    # task that an idle worker could run.
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)


@app.task(name="clerk_sessions.work_revocation_job")
def work_revocation_job(
    store: str, name: str, concurrency: int = 8, lease_s: float = 60.0
) -> dict[str, int | bool]:
    """Work job ``name`` of ``store`` until every item has an outcome; its final counts.

    The jobs are async: the task runs them on an event loop of its own (``anyio.run``),
    with a client of its own, so it works in any Celery pool (prefork, threads, solo).
    """

    async def work() -> JobStatus:
        # CLERK_SECRET_KEY and CLERK_API_URL from the environment. On a fleet, give every
        # worker one shared quota: AsyncClerk(rate_limit=RedisRateLimit(url, 1000, 10)).
        async with AsyncClerk() as clerk, await RevocationJob.open(store, name) as job:
            return await job.work(clerk, concurrency=concurrency, lease_s=lease_s)

    status = anyio.run(work)
    return {
        "total": status.total,
        "revoked": status.revoked,
        "failed": status.failed,
        "done": status.done,
    }


def start(
    store: str, name: str, *, workers: int, concurrency: int = 8, lease_s: float = 60.0
) -> list[AsyncResult]:
    """Enqueue ``workers`` tasks on the job: that many workers will share it."""
    return [
        work_revocation_job.delay(store, name, concurrency=concurrency, lease_s=lease_s)
        for _ in range(workers)
    ]
