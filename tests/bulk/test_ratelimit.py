"""RateLimit: no window of ``per_seconds`` holds more than ``requests`` starts.

Time is virtual everywhere: trio's MockClock (autojump) for single-loop tests, and a
shared jump-ahead clock for the threads test. Nothing here really sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.lowlevel
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from clerk_sessions import RateLimit

EPS = 1e-9


def max_starts_in_window(starts: Sequence[float], per_seconds: float) -> int:
    """The most starts any half-open window ``[t, t + per_seconds)`` holds."""
    ordered = sorted(starts)
    best = 0
    lo = 0
    for hi, t in enumerate(ordered):
        while ordered[lo] + per_seconds <= t:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def run_virtual(main: Callable[[], Awaitable[None]]) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def greedy_schedule(arrivals: Sequence[float], requests: int, per_seconds: float) -> list[float]:
    """The earliest starts a first-come-first-served limiter can give."""
    starts: list[float] = []
    for k, arrival in enumerate(sorted(arrivals)):
        start = arrival
        if starts:
            start = max(start, starts[-1])
        if k >= requests:
            start = max(start, starts[k - requests] + per_seconds)
        starts.append(start)
    return starts


@pytest.mark.parametrize(
    ("requests", "per_seconds"),
    [
        (0, 1.0),
        (-1, 1.0),
        (1.5, 1.0),
        (True, 1.0),
        ("10", 1.0),
        (10, 0),
        (10, -1.0),
        (10, float("inf")),
        (10, float("nan")),
        (10, True),
        (10, "1"),
    ],
)
def test_invalid_arguments_are_rejected(requests: object, per_seconds: object) -> None:
    with pytest.raises(ValueError):
        RateLimit(requests, per_seconds)  # type: ignore[arg-type]


def test_repr_shows_the_quota() -> None:
    assert repr(RateLimit(100, 10)) == "RateLimit(100, 10)"


@pytest.mark.anyio
async def test_a_request_within_the_quota_starts_without_sleeping() -> None:
    sleeps: list[float] = []

    async def record(delay: float) -> None:
        sleeps.append(delay)

    limiter = RateLimit(3, 10, clock=lambda: 5.0)
    for _ in range(3):
        assert await limiter.acquire(record) == 5.0
    assert sleeps == []


def test_the_limiter_does_not_start_full() -> None:
    """3 per 1 s: starts at 0, 0, 0, then 1, 1, 1 - never 6 across a window boundary."""
    starts: list[float] = []

    async def main() -> None:
        limiter = RateLimit(3, 1, clock=trio.current_time)
        async with trio.open_nursery() as nursery:
            for _ in range(9):
                nursery.start_soon(lambda: record(limiter))

    async def record(limiter: RateLimit) -> None:
        starts.append(await limiter.acquire(trio.sleep))

    run_virtual(main)
    assert sorted(starts) == pytest.approx([0, 0, 0, 1, 1, 1, 2, 2, 2])


@settings(max_examples=150, deadline=None)
@given(
    requests=st.integers(1, 8),
    per_seconds=st.floats(0.05, 5.0),
    arrivals=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=60),
)
def test_no_window_holds_more_than_the_quota_and_no_start_waits_longer_than_needed(
    requests: int, per_seconds: float, arrivals: list[float]
) -> None:
    starts: list[float] = []

    async def arrive(limiter: RateLimit, at: float) -> None:
        await trio.sleep(at)
        starts.append(await limiter.acquire(trio.sleep))

    async def main() -> None:
        limiter = RateLimit(requests, per_seconds, clock=trio.current_time)
        async with trio.open_nursery() as nursery:
            for at in arrivals:
                nursery.start_soon(arrive, limiter, at)

    run_virtual(main)
    assert max_starts_in_window(starts, per_seconds) <= requests
    assert sorted(starts) == pytest.approx(greedy_schedule(arrivals, requests, per_seconds))


@settings(max_examples=100, deadline=None)
@given(
    requests=st.integers(1, 8),
    per_seconds=st.floats(0.05, 5.0),
    arrivals=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=60),
    pauses=st.lists(st.tuples(st.floats(0.0, 20.0), st.floats(0.01, 5.0)), max_size=4),
)
def test_no_request_starts_during_a_pause_and_the_window_still_holds(
    requests: int,
    per_seconds: float,
    arrivals: list[float],
    pauses: list[tuple[float, float]],
) -> None:
    starts: list[float] = []

    async def arrive(limiter: RateLimit, at: float) -> None:
        await trio.sleep(at)
        starts.append(await limiter.acquire(trio.sleep))

    async def pause(limiter: RateLimit, at: float, seconds: float) -> None:
        await trio.sleep(at)
        limiter.pause(seconds)

    async def main() -> None:
        limiter = RateLimit(requests, per_seconds, clock=trio.current_time)
        async with trio.open_nursery() as nursery:
            for at in arrivals:
                nursery.start_soon(arrive, limiter, at)
            for at, seconds in pauses:
                nursery.start_soon(pause, limiter, at, seconds)

    run_virtual(main)
    assert len(starts) == len(arrivals)
    assert max_starts_in_window(starts, per_seconds) <= requests
    for at, seconds in pauses:
        # A start at the very instant of the pause may have come first.
        assert not [t for t in starts if at + EPS < t < at + seconds - EPS]


def test_a_pause_holds_every_caller_not_only_the_one_that_got_the_429() -> None:
    starts: list[tuple[int, float]] = []

    async def worker(limiter: RateLimit, n: int) -> None:
        for _ in range(20):
            starts.append((n, await limiter.acquire(trio.sleep)))
            await trio.sleep(0.1)  # the request itself

    async def one_429(limiter: RateLimit) -> None:
        await trio.sleep(1.05)
        limiter.pause(3)

    async def main() -> None:
        limiter = RateLimit(1000, 1, clock=trio.current_time)
        async with trio.open_nursery() as nursery:
            for n in range(4):
                nursery.start_soon(worker, limiter, n)
            nursery.start_soon(one_429, limiter)

    run_virtual(main)
    assert not [t for _, t in starts if 1.05 < t < 4.05 - EPS]
    # Every worker was held, and every one resumed after the pause.
    assert {n for n, t in starts if t >= 4.05 - EPS} == {0, 1, 2, 3}


def test_callers_released_by_a_pause_are_spread_over_the_window() -> None:
    starts: list[float] = []

    async def arrive(limiter: RateLimit) -> None:
        starts.append(await limiter.acquire(trio.sleep))

    async def main() -> None:
        limiter = RateLimit(5, 1, clock=trio.current_time)
        limiter.pause(2)
        async with trio.open_nursery() as nursery:
            for _ in range(15):
                nursery.start_soon(arrive, limiter)

    run_virtual(main)
    assert sorted(starts) == pytest.approx([2] * 5 + [3] * 5 + [4] * 5)


def test_a_caller_that_wakes_late_does_not_let_the_next_one_start_too_soon() -> None:
    """1 per 1 s. A's slot is t=1 but its loop was busy and it starts at t=1.9; B, booked
    for t=2, must then wait until 2.9, or the server sees two requests 0.1 s apart."""
    starts: dict[str, float] = {}

    async def late_sleep(delay: float) -> None:
        await trio.sleep(delay + 0.9)

    async def main() -> None:
        limiter = RateLimit(1, 1, clock=trio.current_time)
        starts["x"] = await limiter.acquire(trio.sleep)

        async def a() -> None:
            starts["a"] = await limiter.acquire(late_sleep)

        async def b() -> None:
            await trio.lowlevel.checkpoint()  # book after A
            starts["b"] = await limiter.acquire(trio.sleep)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(a)
            nursery.start_soon(b)

    run_virtual(main)
    assert starts["a"] == pytest.approx(1.9)
    assert starts["b"] >= starts["a"] + 1 - EPS


def test_a_cancelled_waiter_does_not_block_the_others() -> None:
    starts: list[float] = []

    async def main() -> None:
        limiter = RateLimit(1, 1, clock=trio.current_time)
        await limiter.acquire(trio.sleep)
        with trio.move_on_after(0.5):
            await limiter.acquire(trio.sleep)  # booked for t=1, cancelled at t=0.5
        starts.append(await limiter.acquire(trio.sleep))

    run_virtual(main)
    # Its unused slot makes the schedule conservative (t=2, not t=1), never stuck.
    assert starts == pytest.approx([2.0])


class JumpClock:
    """A clock shared by threads: sleeping moves it forward to the sleeper's deadline.

    Another thread then sees time jump, as it would if it had been descheduled; that is
    the contention the limiter's thread lock and start check must survive.
    """

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    async def sleep(self, delay: float) -> None:
        with self._lock:
            deadline = self._now + delay
            self._now = max(self._now, deadline)
        await anyio.lowlevel.checkpoint()  # let the other tasks of this thread's loop run


def test_threads_sharing_one_limiter_never_exceed_the_quota() -> None:
    clock = JumpClock()
    limiter = RateLimit(10, 1, clock=clock)
    starts: list[float] = []
    starts_lock = threading.Lock()

    async def worker() -> None:
        for _ in range(25):
            started = await limiter.acquire(clock.sleep)
            with starts_lock:
                starts.append(started)

    async def thread_main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(worker)

    threads = [threading.Thread(target=anyio.run, args=(thread_main,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(starts) == 8 * 4 * 25
    assert max_starts_in_window(starts, 1.0) <= 10
