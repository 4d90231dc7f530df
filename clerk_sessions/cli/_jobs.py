"""``clerk-sessions job ...``: durable revocation jobs from the command line.

Exit codes of these commands (API.md): 0 the job is done with no failure; 1 done with
failures, or not done; 2 usage (bad option, a job name that exists or does not, a bad
line in the file of ids); 3 configuration (the store or Redis cannot be used or lost the
job's data, no or a wrong secret key); 130 interrupted. Every failure is one line of the
SDK's own, never a driver's text, and never a store URL's password. Like the rest of
the command line, this module imports only click at load time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import click

from clerk_sessions.cli._exits import (
    EXIT_CONFIGURATION,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
)
from clerk_sessions.cli._root import RATE_LIMIT, State, cli, make_client, output_options

if TYPE_CHECKING:
    from clerk_sessions import AsyncClerk, RateLimit
    from clerk_sessions.cli._output import Output
    from clerk_sessions.jobs import RevocationJob
    from clerk_sessions.models import ItemOutcome, JobStatus
    from clerk_sessions.redis import RedisRateLimit

__all__ = ["default_quota", "job_group"]

_T = TypeVar("_T")

# Lines of an id file read per trip to a worker thread.
_READ_LINES = 2_000
# The share of the quota that `--share` gives to the job workers (one for all jobs: they
# compete with the rest of the instance's traffic, not with each other).
_SHARE_NAME = "revocation-jobs"
# Failed items listed in the table for people (--json lists them all).
_MAX_FAILED_ROWS = 50

_EPILOG = """\b
Exit codes: 0 the job is done with no failure, 1 done with failures or not done,
2 usage (bad option, unknown or existing job name, a bad line in the file of ids),
3 configuration (store, Redis or secret key unusable; the store lost the job's data),
130 interrupted.
"""


def default_quota(secret_key: str) -> tuple[int, float]:
    """Clerk's quota for the instance of ``secret_key``: 1000/10 s for production keys
    (``sk_live_``), 100/10 s for development ones."""
    return (1000, 10.0) if secret_key.startswith("sk_live_") else (100, 10.0)


def _store_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--store",
        required=True,
        envvar="CLERK_SESSIONS_JOB_STORE",
        show_envvar=True,
        metavar="URL",
        help="Where the job is kept: sqlite:///ABSOLUTE/PATH, a file path (one host), or "
        "redis://HOST:PORT/DB (many hosts; extra redis).",
    )(function)


class _InOrder(click.Group):
    """Lists the commands in the order of the work: create, work, status, failed..."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group("job", cls=_InOrder, epilog=_EPILOG)
def job_group() -> None:
    """Durable bulk revocation: a job kept in a store, worked by any number of processes.

    \b
    The incident, from a file of user ids (one a line):
      clerk-sessions job create incident-42 --store sqlite:///var/tmp/jobs.db --user-ids ids.txt
      clerk-sessions job work incident-42 --store sqlite:///var/tmp/jobs.db   # 1..N processes
      clerk-sessions job status incident-42 --store sqlite:///var/tmp/jobs.db
    A killed or interrupted worker loses nothing: run `job work` again.
    """


# ---------------------------------------------------------------------- helpers


def _run(body: Callable[[], Awaitable[_T]]) -> _T:
    import anyio

    from clerk_sessions.jobs import JobStoreError

    try:
        return anyio.run(body)
    except JobStoreError as exc:
        raise CommandError(str(exc), EXIT_CONFIGURATION) from None


def _shown_store(store: str) -> str:
    """``store`` as messages show it: not at all when it holds a password (the error
    messages of the SDK name the store without it)."""
    return "URL" if "@" in store or "password=" in store.lower() else store


async def _open(store: str, name: str) -> RevocationJob:
    from clerk_sessions.errors import ConfigurationError
    from clerk_sessions.jobs import RevocationJob

    try:
        return await RevocationJob.open(store, name)
    except LookupError as exc:
        raise CommandError(f"{exc} (job create makes it)", EXIT_USAGE) from None
    except ValueError as exc:
        # An unusable name (usage) or store (configuration).
        code = EXIT_CONFIGURATION if isinstance(exc, ConfigurationError) else EXIT_USAGE
        raise CommandError(str(exc), code) from None
    except OSError as exc:
        raise CommandError(
            f"--store {_shown_store(store)}: {exc.strerror or type(exc).__name__}",
            EXIT_CONFIGURATION,
        ) from None


def _status_json(job: RevocationJob, status: JobStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "kind": job.kind,
        "total": status.total,
        "revoked": status.revoked,
        "failed": status.failed,
        "pending": status.pending,
        "done": status.done,
    }


def _status_exit_code(status: JobStatus) -> int:
    return EXIT_OK if status.done and not status.failed else EXIT_FAILURE


def _say_status(out: Output, job: RevocationJob, status: JobStatus) -> int:
    if out.json:
        out.document(_status_json(job, status))
    else:
        what = "sessions" if job.kind == "session" else "users"
        line = (
            f"job {status.name}: {status.total} {what}: {status.revoked} revoked, "
            f"{status.failed} failed, {status.pending} pending"
        )
        if not status.done:
            out.note(line + " (not done: run `job work`)")
        elif status.failed:
            out.error(line + " (see `job failed`; `job retry-failed` re-queues 429/5XX/no answer)")
        else:
            out.success(line + " (done)")
    return _status_exit_code(status)


async def _lines(file: BinaryIO, option: str) -> AsyncIterator[str]:
    """The ids of a file, one a line (`read_ids`'s rules), read off the event loop. A bad
    line is an `IdFileError` (a ValueError) naming ``option``, the file and the line."""
    import anyio.to_thread

    from clerk_sessions.cli._idfile import read_ids

    name = getattr(file, "name", "-")
    ids = read_ids(file, f"{option} {'-' if name == '<stdin>' else name}")

    def read() -> list[str]:
        batch: list[str] = []
        for item in ids:
            batch.append(item)
            if len(batch) == _READ_LINES:
                break
        return batch

    while True:
        batch = await anyio.to_thread.run_sync(read)
        if not batch:
            return
        for item in batch:
            yield item


def _outcome_json(item: str, outcome: ItemOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item,
        "ok": outcome.ok,
        "status_code": outcome.status_code,
        "error_code": outcome.error_code,
        "message": outcome.message,
        "retryable": outcome.retryable,
    }
    if outcome.sessions_revoked is not None:
        data["sessions_revoked"] = outcome.sessions_revoked
    return data


def _client(
    state: State, quota: tuple[int, float] | None, redis_quota: str | None, share: int | None
) -> AsyncClerk:
    """The client a worker revokes with, on the quota the options ask for."""
    from clerk_sessions import RateLimit

    if not state.secret_key:  # said first, as for every command
        return make_client(state, config_exit=EXIT_CONFIGURATION)
    if share is not None and redis_quota is None:
        raise CommandError("--share takes a part of a --redis-quota: pass both", EXIT_USAGE)
    numbers = quota or default_quota(state.secret_key)
    limiter: RateLimit | RedisRateLimit | None = None
    if redis_quota is not None:
        limiter = _redis_quota(redis_quota, numbers, share)
    elif quota is not None:
        limiter = RateLimit(*numbers)
    return make_client(state, config_exit=EXIT_CONFIGURATION, rate_limit=limiter)


def _redis_quota(url: str, numbers: tuple[int, float], share: int | None) -> RedisRateLimit:
    try:
        from clerk_sessions.redis import RedisRateLimit
    except ImportError as exc:
        raise CommandError(
            f'--redis-quota needs the redis extra: pip install "clerk-sessions[redis]" ({exc})',
            EXIT_CONFIGURATION,
        ) from None
    try:
        quota = RedisRateLimit(url, requests=numbers[0], per_seconds=numbers[1])
    except ValueError as exc:
        # The message names the URL, without its password.
        raise CommandError(f"--redis-quota: {exc}", EXIT_CONFIGURATION) from None
    if share is None:
        return quota
    try:
        return quota.share(_SHARE_NAME, share)
    except ValueError as exc:
        raise CommandError(f"--share {share}: {exc}", EXIT_USAGE) from None


# ---------------------------------------------------------------------- commands


@job_group.command("create")
@click.argument("name")
@_store_option
@click.option(
    "--session-ids",
    type=click.File("rb", lazy=True),
    metavar="FILE",
    help="Session ids to revoke, one a line (- for stdin).",
)
@click.option(
    "--user-ids",
    type=click.File("rb", lazy=True),
    metavar="FILE",
    help="User ids, one a line (- for stdin): every active session of each is revoked.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Items a worker claims at a time (a crash repeats at most these requests).",
)
@output_options
@click.pass_obj
def create_command(
    state: State,
    name: str,
    store: str,
    session_ids: BinaryIO | None,
    user_ids: BinaryIO | None,
    chunk_size: int,
) -> int:
    """Create job NAME from a file of ids (read once, never held whole).

    One id a line, UTF-8; a byte-order mark, CRLF line ends, blank lines and spaces
    around an id are fine, any other bad line stops the create (exit 2, naming the line).
    An id listed twice is one item. All or nothing: an interrupted create leaves no job,
    and running it again works. Nothing is revoked until `job work`.
    """
    if (session_ids is None) == (user_ids is None):
        raise click.UsageError("pass exactly one of --session-ids or --user-ids")
    from clerk_sessions.jobs import RevocationJob

    out = state.output
    file = session_ids if session_ids is not None else user_ids
    assert file is not None
    option = "--session-ids" if session_ids is not None else "--user-ids"
    ids = {option[2:].replace("-", "_"): _lines(file, option)}

    async def body() -> int:
        from clerk_sessions.errors import ConfigurationError

        state.interrupt_note = (
            f"no job named {name} was created (a create is all or nothing): run the same "
            "command again"
        )
        try:
            job = await RevocationJob.create(store, name, chunk_size=chunk_size, **ids)
        except ConfigurationError as exc:
            raise CommandError(str(exc), EXIT_CONFIGURATION) from None
        except OSError as exc:
            raise CommandError(
                f"--store {_shown_store(store)}: {exc.strerror or type(exc).__name__}",
                EXIT_CONFIGURATION,
            ) from None
        except (ValueError, TypeError) as exc:
            # An existing name, or a bad line in the file of ids.
            raise CommandError(str(exc), EXIT_USAGE) from None
        state.interrupt_note = None
        async with job:
            if out.json:
                out.document({"name": job.name, "kind": job.kind, "total": job.total})
            else:
                what = "session" if job.kind == "session" else "user"
                out.success(f"created job {job.name}: {job.total} {what} id(s)")
                out.note(f"next: clerk-sessions job work {job.name} --store {_shown_store(store)}")
        return EXIT_OK

    return _run(body)


@job_group.command("work")
@click.argument("name")
@_store_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Requests in flight at once in this process.",
)
@click.option(
    "--lease",
    type=click.FloatRange(0.5, 3600),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="A chunk held by a worker that stopped is taken over after this long.",
)
@click.option(
    "--redis-quota",
    metavar="URL",
    help="Share Clerk's quota with every process on this Redis (extra redis): the workers "
    "together stay under it.",
)
@click.option(
    "--share",
    type=click.IntRange(min=1),
    metavar="REQUESTS",
    help="With --redis-quota: the job workers together start at most REQUESTS per window, "
    "leaving the rest of the quota to the other clients on it (your app).",
)
@click.option(
    "--quota",
    type=RATE_LIMIT,
    metavar="REQ/SECONDS",
    help="The quota to stay under, e.g. 1000/10. Default with --redis-quota: Clerk's, "
    "from the key (sk_live_: 1000/10, else 100/10). Without --redis-quota it limits "
    "this process only.",
)
@output_options
@click.pass_obj
def work_command(
    state: State,
    name: str,
    store: str,
    concurrency: int,
    lease: float,
    redis_quota: str | None,
    share: int | None,
    quota: tuple[int, float] | None,
) -> int:
    """Work job NAME until every item has an outcome (run it in 1..N processes).

    Exit 0 when the job is done with no failure, 1 when items failed (`job failed`
    lists them). Interrupted, it gives its chunks back: run it again to resume.
    """
    from clerk_sessions.cli import _watch
    from clerk_sessions.errors import AuthenticationError, PermissionDeniedError

    out = state.output
    clerk = _client(state, quota, redis_quota, share)

    async def body() -> int:
        async with clerk, await _open(store, name) as job:
            status = await job.status()

            def remember(done: int, total: int) -> None:
                state.interrupt_note = (
                    f"job {name}: {done} of {total} item(s) have an outcome; the chunks in "
                    f"flight were given back: run `job work {name}` again to resume"
                )

            remember(status.revoked + status.failed, status.total)
            with out.progress(f"job {name}", enabled=out.err.is_terminal) as bar:

                def on_progress(done: int, total: int) -> None:
                    remember(done, total)
                    if bar is not None:
                        bar(done, total)

                async def work() -> JobStatus:
                    return await job.work(
                        clerk, concurrency=concurrency, lease_s=lease, on_progress=on_progress
                    )

                try:
                    if bar is None:
                        status = await work()
                    else:
                        # The failures so far, from the job's counts (every worker's).
                        _watch.show(bar, status)
                        status = await _watch.alongside(work, lambda: _watch.follow(job, bar))
                        _watch.show(bar, status)
                except (AuthenticationError, PermissionDeniedError) as exc:
                    raise CommandError(
                        f"{exc} (check CLERK_SECRET_KEY: nothing was recorded for the "
                        "chunks in flight)",
                        EXIT_CONFIGURATION,
                    ) from None
            state.interrupt_note = None
            return _say_status(out, job, status)

    return _run(body)


@job_group.command("status")
@click.argument("name")
@_store_option
@click.option(
    "--watch",
    is_flag=True,
    help="Refresh until the job is done: a progress bar on a terminal, else a line (--json: "
    "a JSON line) whenever the counts change. Ctrl-C stops watching, not the job.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="With --watch: how often to read the job's counts.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=86_400.0,
    show_default=True,
    metavar="SECONDS",
    help="With --watch: stop watching after this long, done or not (exit 1 when not).",
)
@output_options
@click.pass_obj
def status_command(
    state: State, name: str, store: str, watch: bool, interval: float, timeout: float
) -> int:
    """How far job NAME is: revoked, failed, pending.

    Exit 0 when done with no failure, 1 otherwise (failures, or not done).
    """
    out = state.output

    async def body() -> int:
        async with await _open(store, name) as job:
            if not watch:
                return _say_status(out, job, await job.status())
            from clerk_sessions.cli._watch import watch_status

            state.interrupt_note = f"stopped watching job {name}; the job itself goes on"
            status = await watch_status(out, job, _status_json, interval, timeout_s=timeout)
            state.interrupt_note = None
            if out.json:  # its last JSON line was this status
                return _status_exit_code(status)
            return _say_status(out, job, status)

    return _run(body)


@job_group.command("failed")
@click.argument("name")
@_store_option
@output_options
@click.pass_obj
def failed_command(state: State, name: str, store: str) -> int:
    """List the failed items of job NAME with their errors (--json: all, as JSON lines).

    Retryable failures (429, 5XX, no answer) go back to pending with `job retry-failed`.
    """
    out = state.output

    async def body() -> int:
        async with await _open(store, name) as job:
            if out.json:
                async for item, outcome in job.outcomes("failed"):
                    out.line(_outcome_json(item, outcome))
            else:
                await _failed_table(out, job)
            return _status_exit_code(await job.status())

    return _run(body)


async def _failed_table(out: Output, job: RevocationJob) -> None:
    from rich.table import Table

    table = Table(title=f"failed items of job {job.name}", title_justify="left")
    for column in ("id", "status", "error code", "retryable"):
        table.add_column(column, no_wrap=True)
    table.add_column("message", overflow="fold")
    count = 0
    async for item, outcome in job.outcomes("failed"):
        count += 1
        if count <= _MAX_FAILED_ROWS:
            table.add_row(
                item,
                "-" if outcome.status_code is None else str(outcome.status_code),
                outcome.error_code or "-",
                "yes" if outcome.retryable else "no",
                outcome.message,
            )
    if not count:
        out.note(f"job {job.name}: no failed item")
        return
    out.table(table)
    if count > _MAX_FAILED_ROWS:
        out.note(f"... and {count - _MAX_FAILED_ROWS} more (use --json for all)")


@job_group.command("retry-failed")
@click.argument("name")
@_store_option
@output_options
@click.pass_obj
def retry_failed_command(state: State, name: str, store: str) -> int:
    """Put the retryable failures of job NAME (429, 5XX, no answer) back to pending.

    Then run `job work` again. Other failures (404: no such session, ...) stay failed.
    """
    out = state.output

    async def body() -> int:
        async with await _open(store, name) as job:
            count = await job.retry_failed()
            if out.json:
                out.document({"name": job.name, "requeued": count})
            elif count:
                out.success(f"job {job.name}: {count} item(s) back to pending; run `job work`")
            else:
                out.note(f"job {job.name}: no retryable failure")
        return EXIT_OK

    return _run(body)


cli.add_command(job_group)
