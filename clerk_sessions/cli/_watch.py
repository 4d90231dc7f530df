"""Following a durable job from the command line: its counts on the progress bar while
``job work`` runs (the failures, which ``on_progress(done, total)`` cannot say), and
``job status --watch``, which refreshes until the job is done.

Like the rest of the command line, the SDK and anyio are imported when a command runs.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from clerk_sessions.cli._output import Output
    from clerk_sessions.cli._progress import Bar
    from clerk_sessions.jobs import RevocationJob
    from clerk_sessions.models import JobStatus

__all__ = ["FOLLOW_S", "alongside", "follow", "show", "watch", "watch_status"]

_T = TypeVar("_T")

#: How often ``job work`` reads the job's counts for its bar (a read of counters).
FOLLOW_S = 1.0


def show(bar: Bar, status: JobStatus) -> None:
    """``status`` on ``bar``."""
    bar.update(status.revoked + status.failed, status.total, status.failed)


async def follow(job: RevocationJob, bar: Bar, interval_s: float = FOLLOW_S) -> None:
    """Show the job's counts on ``bar`` every ``interval_s``, until cancelled."""
    import anyio

    while True:
        await anyio.sleep(interval_s)
        show(bar, await job.status())


async def alongside(
    main: Callable[[], Awaitable[_T]], side: Callable[[], Coroutine[Any, Any, None]]
) -> _T:
    """``main()``, with ``side()`` running beside it until ``main`` ends; ``main``'s
    exception is raised as it came (not in an exception group)."""
    import anyio

    results: list[_T] = []
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(side)
        try:
            results.append(await main())
        except Exception as exc:  # raised below, outside the task group
            failure = exc
        finally:
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return results[0]


async def watch(
    job: RevocationJob,
    on_status: Callable[[JobStatus], object],
    *,
    interval_s: float,
    timeout_s: float | None,
) -> JobStatus:
    """Read the job's status every ``interval_s`` and hand each one that differs from
    the last to ``on_status``, until the job is done or ``timeout_s`` passed; the last
    status read."""
    import anyio

    deadline = math.inf if timeout_s is None else anyio.current_time() + timeout_s
    status = await job.status()
    on_status(status)
    while not status.done and anyio.current_time() < deadline:
        await anyio.sleep(min(interval_s, max(0.0, deadline - anyio.current_time())))
        latest = await job.status()
        if latest != status:
            on_status(latest)
        status = latest
    return status


async def watch_status(
    out: Output,
    job: RevocationJob,
    as_json: Callable[[RevocationJob, JobStatus], dict[str, Any]],
    interval_s: float,
    *,
    timeout_s: float,
) -> JobStatus:
    """``job status --watch``: the job's counts as they change, until it is done (or
    ``timeout_s``): a bar on a terminal, else a line each (``--json``: ``as_json``'s
    document as a JSON line); the last status read."""

    def line(status: JobStatus) -> None:
        if out.json:
            out.line(as_json(job, status))
        else:
            out.note(
                f"job {status.name}: {status.revoked} revoked, {status.failed} failed, "
                f"{status.pending} pending"
            )

    if out.json or not out.err.is_terminal:
        return await watch(job, line, interval_s=interval_s, timeout_s=timeout_s)
    with out.progress(f"job {job.name}", enabled=True) as bar:
        assert bar is not None
        return await watch(
            job, lambda status: show(bar, status), interval_s=interval_s, timeout_s=timeout_s
        )
