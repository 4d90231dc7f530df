"""clerk_sessions._eventloop: one object per running event loop, closed when it ends.

The objects here are recorders: they note which task entered and exited them, and their
exit awaits (as closing a connection pool does). The loops are real ones, started the
ways an application's server starts them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
import trio
from asgiref.sync import async_to_sync

from clerk_sessions._eventloop import PerLoop, event_loop


class Recorder:
    """An async context manager that records its life."""

    def __init__(self, log: list[str], *, fail_enter: bool = False, fail_exit: bool = False):
        self.number = len([entry for entry in log if entry.startswith("open")])
        self.log = log
        self.fail_enter = fail_enter
        self.fail_exit = fail_exit
        self.tasks: list[object] = []
        log.append(f"open {self.number}")

    async def __aenter__(self) -> Recorder:
        self.tasks.append(anyio.get_current_task().id)
        if self.fail_enter:
            raise ConnectionError("cannot reach the server")
        self.log.append(f"enter {self.number}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Closing a pool awaits: the exit must not be cancelled by the loop's shutdown.
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        self.tasks.append(anyio.get_current_task().id)
        if self.fail_exit:
            raise OSError("the socket was already gone")
        self.log.append(f"exit {self.number}")


class PoolLike(Recorder):
    """A recorder whose enter opens a task group that its exit closes, as a coredis
    connection pool does: its exit must find that task group's cancel scope current."""

    async def __aenter__(self) -> PoolLike:
        self.group = anyio.create_task_group()
        await self.group.__aenter__()
        self.group.start_soon(self.read)
        await super().__aenter__()
        return self

    async def read(self) -> None:
        # A connection's reader: runs until the pool closes.
        try:
            await anyio.sleep_forever()
        finally:
            self.log.append(f"reader {self.number} stops")

    async def __aexit__(self, *exc_info: Any) -> None:
        # As a coredis pool closes: no await before its task group is closed (which
        # re-raises the loop's cancellation); the recorder's awaits come after.
        self.group.cancel_scope.cancel()
        try:
            await self.group.__aexit__(*exc_info)
        finally:
            await super().__aexit__(*exc_info)


def recorders(log: list[str], **options: bool) -> PerLoop[Recorder]:
    return PerLoop(lambda: Recorder(log, **options), name="recorder")


def run_asyncio(main: Callable[[], Awaitable[Any]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


def run_runner(main: Callable[[], Awaitable[Any]]) -> None:
    with asyncio.Runner() as runner:
        runner.run(main())  # type: ignore[arg-type]


def run_asgiref(main: Callable[[], Awaitable[Any]]) -> None:
    # What Django does for an async view under WSGI: a new loop for the call.
    async_to_sync(main)()


def run_trio(main: Callable[[], Awaitable[Any]]) -> None:
    trio.run(main)


def run_anyio_asyncio(main: Callable[[], Awaitable[Any]]) -> None:
    anyio.run(main, backend="asyncio")


def run_anyio_trio(main: Callable[[], Awaitable[Any]]) -> None:
    anyio.run(main, backend="trio")


RUNNERS = [
    pytest.param(run_asyncio, id="asyncio.run"),
    pytest.param(run_runner, id="asyncio.Runner"),
    pytest.param(run_asgiref, id="async_to_sync"),
    pytest.param(run_trio, id="trio.run"),
    pytest.param(run_anyio_asyncio, id="anyio.run-asyncio"),
    pytest.param(run_anyio_trio, id="anyio.run-trio"),
]


# ---------------------------------------------------------------- within one loop


@pytest.mark.anyio
async def test_every_call_and_task_of_a_loop_gets_the_same_object() -> None:
    log: list[str] = []
    per_loop = recorders(log)
    seen: list[Recorder] = []

    async def use() -> None:
        seen.append(await per_loop.get())

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(use)
    seen.append(await per_loop.get())
    assert len({id(item) for item in seen}) == 1
    assert log == ["open 0", "enter 0"]


@pytest.mark.anyio
async def test_the_object_is_entered_before_it_is_handed_out() -> None:
    log: list[str] = []
    recorder = await recorders(log).get()
    assert log == ["open 0", "enter 0"]
    # Entered by a task of its own, not the caller: that task also exits it.
    assert recorder.tasks != [anyio.get_current_task().id]


def test_running_loop_outside_a_loop_says_so() -> None:
    with pytest.raises(RuntimeError, match="not in a running asyncio or trio event loop"):
        event_loop()


# ---------------------------------------------------------------- the end of a loop


@pytest.mark.parametrize("run", RUNNERS)
def test_the_object_is_exited_when_its_loop_ends(run: Callable[..., None]) -> None:
    log: list[str] = []
    per_loop = recorders(log)

    async def main() -> None:
        await per_loop.get()
        log.append("main returns")

    run(main)
    assert log == ["open 0", "enter 0", "main returns", "exit 0"]


@pytest.mark.parametrize("run", RUNNERS)
def test_an_object_that_opens_a_task_group_is_exited_cleanly_when_its_loop_ends(
    run: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    per_loop = PerLoop(lambda: PoolLike(log), name="pool")

    async def main() -> None:
        await per_loop.get()

    with caplog.at_level(logging.WARNING, logger="clerk_sessions"):
        run(main)
    assert log == ["open 0", "enter 0", "reader 0 stops", "exit 0"]
    assert caplog.records == []


@pytest.mark.parametrize("run", RUNNERS)
def test_one_task_enters_and_exits_the_object(run: Callable[..., None]) -> None:
    # Objects that bind to the task entering them (coredis pools, anyio cancel scopes)
    # must be exited by that same task.
    found: list[Recorder] = []
    per_loop = recorders([])

    async def main() -> None:
        found.append(await per_loop.get())

    run(main)
    entered, exited = found[0].tasks
    assert entered == exited


@pytest.mark.parametrize("run", RUNNERS)
def test_each_loop_gets_its_own_object(run: Callable[..., None]) -> None:
    log: list[str] = []
    per_loop = recorders(log)
    seen: list[Recorder] = []

    async def main() -> None:
        seen.append(await per_loop.get())

    run(main)
    run(main)
    assert seen[0] is not seen[1]
    assert log == ["open 0", "enter 0", "exit 0", "open 1", "enter 1", "exit 1"]


def test_loops_of_many_threads_at_once_each_get_one_and_close_it() -> None:
    log: list[str] = []
    per_loop = recorders(log)
    seen: list[Recorder] = []
    both_open = threading.Barrier(4, timeout=30)

    async def main() -> None:
        seen.append(await per_loop.get())
        seen.append(await per_loop.get())
        await anyio.to_thread.run_sync(both_open.wait)

    threads = [threading.Thread(target=asyncio.run, args=(main(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len({id(item) for item in seen}) == 4
    assert sorted(entry.split()[0] for entry in log) == ["enter"] * 4 + ["exit"] * 4 + ["open"] * 4


def test_a_loop_closed_without_cancelling_its_tasks_is_forgotten_later() -> None:
    per_loop = recorders([])
    loop = asyncio.new_event_loop()
    loop.run_until_complete(per_loop.get())
    # Closed by hand, its waiting task never cancelled: nothing says the loop ended.
    loop.close()
    assert "loops=1" in repr(per_loop)

    async def main() -> None:
        await per_loop.get()

    asyncio.run(main())
    assert "loops=0" in repr(per_loop)


# ---------------------------------------------------------------- failures


@pytest.mark.anyio
async def test_an_error_of_open_is_the_callers_and_the_next_call_tries_again() -> None:
    attempts: list[int] = []

    def flaky() -> Recorder:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("no secret key")
        return Recorder([])

    per_loop = PerLoop(flaky, name="recorder")
    with pytest.raises(ValueError, match="no secret key"):
        await per_loop.get()
    assert isinstance(await per_loop.get(), Recorder)


@pytest.mark.anyio
async def test_an_error_entering_reaches_every_waiting_caller_then_is_retried() -> None:
    log: list[str] = []
    failing = {"enter": True}
    per_loop = PerLoop(lambda: Recorder(log, fail_enter=failing["enter"]), name="recorder")
    errors: list[BaseException] = []

    async def use() -> None:
        try:
            await per_loop.get()
        except ConnectionError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(use)
    assert len(errors) == 3
    failing["enter"] = False
    assert (await per_loop.get()).number == 1


@pytest.mark.parametrize("run", [run_asyncio, run_trio], ids=["asyncio", "trio"])
@pytest.mark.parametrize(
    ("closes", "message"),
    [
        (False, "closing the recorder of an event loop that ended failed"),
        (True, "closing the recorder of an event loop failed"),
    ],
    ids=["at-the-loops-end", "at-aclose"],
)
def test_an_error_exiting_is_logged_and_ends_the_loop_cleanly(
    run: Callable[..., None], closes: bool, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    per_loop = recorders([], fail_exit=True)

    async def main() -> None:
        await per_loop.get()
        if closes:
            await per_loop.aclose()  # returns: the error is logged, not raised

    with caplog.at_level(logging.WARNING, logger="clerk_sessions"):
        run(main)  # a trio system task that raised would crash the run
    [record] = caplog.records
    assert record.getMessage() == message
    assert isinstance(record.exc_info and record.exc_info[1], OSError)


# ---------------------------------------------------------------- aclose


@pytest.mark.anyio
async def test_aclose_exits_the_loops_object_now_and_the_next_get_opens_another() -> None:
    log: list[str] = []
    per_loop = recorders(log)
    first = await per_loop.get()
    await per_loop.aclose()
    assert log == ["open 0", "enter 0", "exit 0"]
    # Exited by the task that entered it, as at a loop's end.
    assert first.tasks[0] == first.tasks[1]
    second = await per_loop.get()
    assert second is not first
    assert log[3:] == ["open 1", "enter 1"]


@pytest.mark.anyio
async def test_aclose_exits_an_object_that_opens_a_task_group_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    per_loop = PerLoop(lambda: PoolLike(log), name="pool")
    with caplog.at_level(logging.WARNING, logger="clerk_sessions"):
        await per_loop.get()
        await per_loop.aclose()
    assert log == ["open 0", "enter 0", "reader 0 stops", "exit 0"]
    assert caplog.records == []


@pytest.mark.anyio
async def test_aclose_of_a_loop_without_an_object_does_nothing() -> None:
    log: list[str] = []
    per_loop = recorders(log)
    await per_loop.aclose()
    await per_loop.get()
    await per_loop.aclose()
    await per_loop.aclose()
    assert log == ["open 0", "enter 0", "exit 0"]


def test_aclose_leaves_the_objects_of_other_loops_open() -> None:
    log: list[str] = []
    per_loop = recorders(log)
    other_has_one = threading.Event()
    closed_here = threading.Event()

    async def other() -> None:
        await per_loop.get()
        other_has_one.set()
        await anyio.to_thread.run_sync(closed_here.wait, 30)
        log.append("other returns")

    async def here() -> None:
        await anyio.to_thread.run_sync(other_has_one.wait, 30)
        await per_loop.get()
        await per_loop.aclose()
        log.append("closed here")
        closed_here.set()

    thread = threading.Thread(target=asyncio.run, args=(other(),))
    thread.start()
    asyncio.run(here())
    thread.join(timeout=30)
    assert log == [
        *["open 0", "enter 0", "open 1", "enter 1", "exit 1", "closed here"],
        *["other returns", "exit 0"],
    ]


# ---------------------------------------------------------------- after_open


@pytest.mark.parametrize("run", [run_asyncio, run_trio], ids=["asyncio", "trio"])
def test_after_open_runs_in_the_holding_task_once_callers_have_the_object(
    run: Callable[..., None],
) -> None:
    log: list[str] = []
    seen: list[object] = []

    async def main() -> None:
        handed_out = anyio.Event()

        async def after_open(recorder: Recorder) -> None:
            # Waits for the caller: a caller that waited for this hook would hang.
            await handed_out.wait()
            seen.append(recorder)
            seen.append(anyio.get_current_task().id)

        per_loop = PerLoop(lambda: Recorder(log), name="recorder", after_open=after_open)
        recorder = await per_loop.get()
        handed_out.set()
        await per_loop.aclose()
        assert seen == [recorder, recorder.tasks[0]]

    run(main)
    assert log == ["open 0", "enter 0", "exit 0"]


@pytest.mark.anyio
async def test_an_error_of_after_open_is_logged_and_the_object_stays_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    ran = anyio.Event()

    async def after_open(recorder: Recorder) -> None:
        ran.set()
        raise OSError("the check failed")

    per_loop = PerLoop(lambda: Recorder(log), name="recorder", after_open=after_open)
    with caplog.at_level(logging.WARNING, logger="clerk_sessions"):
        first = await per_loop.get()
        await ran.wait()  # the holding task logs before it next waits
        assert await per_loop.get() is first
    [record] = caplog.records
    assert (
        record.getMessage() == "the work that follows opening the recorder of an event loop failed"
    )
    assert log == ["open 0", "enter 0"]


# ---------------------------------------------------------------- renew


@pytest.mark.parametrize("run", [run_asyncio, run_trio], ids=["asyncio", "trio"])
def test_after_renew_a_new_object_is_opened_and_both_are_closed_at_the_end(
    run: Callable[..., None],
) -> None:
    log: list[str] = []
    per_loop = recorders(log)

    async def main() -> None:
        first = await per_loop.get()
        per_loop.renew()
        second = await per_loop.get()
        assert second is not first
        assert await per_loop.get() is second
        log.append("main returns")

    run(main)
    assert log[:5] == ["open 0", "enter 0", "open 1", "enter 1", "main returns"]
    assert sorted(log[5:]) == ["exit 0", "exit 1"]


# ---------------------------------------------------------------- fork


# Forking a process that runs threads (the portal's loop, a server's) is what this test
# is about: Python 3.12+ warns of it in general.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_opens_its_own() -> None:
    log: list[str] = []
    per_loop = recorders(log)
    loop = asyncio.new_event_loop()
    try:
        parents = loop.run_until_complete(per_loop.get())
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave at once
            ok = False
            try:
                ok = "loops=0" in repr(per_loop)
                mine = asyncio.run(per_loop.get())
                ok = ok and mine is not parents
            finally:
                os.write(write, b"ok" if ok else b"no")
                os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        assert os.read(read, 2) == b"ok"
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        loop.run_until_complete(_cancel_all(loop))
        loop.close()
    assert log[-1] == "exit 0"


async def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    current = asyncio.current_task()
    waiting = [task for task in asyncio.all_tasks(loop) if task is not current]
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
