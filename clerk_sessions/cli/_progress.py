"""The progress bar of bulk work (``revoke``, ``revoke-all``, ``job work``, ``job status
--watch``): done of total, the rate (items a second, over the last half minute), the time
left at that rate, and the failures so far, on stderr.

``on_progress(done, total)`` cannot say failures: a bulk call reports them to
`counting_failures` (through `clerk_sessions._revocation.failure_listener`), a job's
from its status (`Bar.update`).
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["Bar", "counting_failures", "progress_bar"]


class _Rate(ProgressColumn):
    """Items a second, estimated over rich's recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text("-/s" if not speed else f"{speed:,.1f}/s", style="progress.data.speed")


class _Failures(ProgressColumn):
    """The failures so far: red once there is one."""

    def render(self, task: Task) -> Text:
        failed = int(task.fields.get("failed", 0))
        return Text(f"{failed:,} failed", style="red" if failed else "dim")


class Bar:
    """One bar: call it as ``on_progress(done, total)``; `failure` and `update` say the
    failures."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self.failed = 0

    def __call__(self, done: int, total: int | None) -> None:
        # rich's rate leaves out its first sample: a job resumed part done starts there.
        self._progress.update(self._task, completed=done, total=total)

    def failure(self, *_: object) -> None:
        """One more failure."""
        self.failed += 1
        self._progress.update(self._task, failed=self.failed)

    def update(self, done: int, total: int, failed: int) -> None:
        """All three counts at once (a job's status)."""
        self.failed = failed
        self(done, total)
        self._progress.update(self._task, failed=failed)


@contextmanager
def progress_bar(console: Console, description: str) -> Generator[Bar, None, None]:
    """A live bar on ``console`` while the block runs."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        _Failures(),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task(description, total=None, failed=0)
    with progress:
        yield Bar(progress, task)


@contextmanager
def counting_failures(bar: Bar | None) -> Generator[None, None, None]:
    """Within the block, the bulk calls count their failures on ``bar`` (if any)."""
    if bar is None:
        yield
        return
    from clerk_sessions._revocation import failure_listener

    token: Any = failure_listener.set(bar.failure)
    try:
        yield
    finally:
        failure_listener.reset(token)
