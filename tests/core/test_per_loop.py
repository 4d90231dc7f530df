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
def test_an_error_exiting_is_logged_and_ends_the_loop_cleanly(
    run: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    per_loop = recorders([], fail_exit=True)

    async def main() -> None:
        await per_loop.get()

    with caplog.at_level(logging.WARNING, logger="clerk_sessions"):
        run(main)  # a trio system task that raised would crash the run
    [record] = caplog.records
    assert record.getMessage() == "closing the recorder of an event loop that ended failed"
    assert isinstance(record.exc_info and record.exc_info[1], OSError)


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
