"""The quota's Lua script, called directly on a real Redis with crafted state.

The script reads Redis's clock (TIME), so state is crafted relative to the server's own
``now``, read just before each call; an expected wait holds within the time a call
takes on a loaded loopback (``SLACK_US``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import coredis
import pytest
from coredis.commands import Script

from clerk_sessions.redis._script import SCRIPT as QUOTA_SCRIPT

pytestmark = pytest.mark.anyio

PER = 2_000_000  # a 2 s window, in microseconds
SLACK_US = 250_000
PAUSE = "q:pause"
STARTED, PLANNED = "q:started", "q:planned"
SHARE_STARTED, SHARE_PLANNED = "q:share:bulk:started", "q:share:bulk:planned"
SCRIPT: Script[bytes] = Script(script=QUOTA_SCRIPT)
TIME: Script[bytes] = Script(
    script="local t = redis.call('TIME') return tonumber(t[1]) * 1000000 + tonumber(t[2])"
)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    async with coredis.Redis.from_url(redis_url) as client:
        yield client


async def server_now(redis: coredis.Redis[bytes]) -> int:
    reply = await TIME(keys=[], args=[], client=redis)
    assert isinstance(reply, int)
    return reply


async def answer(
    redis: coredis.Redis[bytes],
    op: str,
    member: str = "m",
    *,
    arg: int = 0,
    limits: tuple[int, ...] = (3,),
    share: bool = False,
    known: tuple[int, ...] = (),
) -> list[int]:
    """The script's whole answer: [wait, booked, lost, newest start per level].
    ``known``: the newest start per level the caller saw (none by default)."""
    keys = [PAUSE]
    if share:
        keys += [SHARE_STARTED, SHARE_PLANNED]
    keys += [STARTED, PLANNED]
    args = [op, member, str(PER), str(arg), *map(str, limits), *map(str, known)]
    reply = await SCRIPT(keys=keys, args=args, client=redis)
    assert isinstance(reply, list) and len(reply) == 3 + len(limits)
    return reply


async def call(
    redis: coredis.Redis[bytes],
    op: str,
    member: str = "m",
    *,
    arg: int = 0,
    limits: tuple[int, ...] = (3,),
    share: bool = False,
) -> tuple[int, int]:
    """The script's answer: (microseconds to wait, levels booked)."""
    reply = await answer(redis, op, member, arg=arg, limits=limits, share=share)
    return reply[0], reply[1]


async def run(redis: coredis.Redis[bytes], op: str, member: str = "m", **kwargs: object) -> int:
    """The microseconds to wait (0: the start was counted)."""
    return (await call(redis, op, member, **kwargs))[0]  # type: ignore[arg-type]


async def scores(redis: coredis.Redis[bytes], key: str) -> dict[str, float]:
    pairs = await redis.zrange(key, 0, -1, withscores=True)
    return {pair[0].decode(): pair[1] for pair in pairs}  # type: ignore[union-attr]


async def fill(redis: coredis.Redis[bytes], key: str, times: list[int]) -> None:
    await redis.zadd(key, {f"old{i}": t for i, t in enumerate(times)})


async def test_reserve_on_an_empty_quota_starts_at_once_and_books_the_slot(
    redis: coredis.Redis[bytes],
) -> None:
    before = await server_now(redis)
    assert await run(redis, "reserve", "a") == 0
    started = await scores(redis, STARTED)
    planned = await scores(redis, PLANNED)
    assert set(started) == set(planned) == {"a"}
    assert before <= started["a"] <= before + SLACK_US


async def test_a_full_window_makes_reserve_wait_until_the_oldest_start_leaves_it(
    redis: coredis.Redis[bytes],
) -> None:
    now = await server_now(redis)
    oldest = now - 500_000
    await fill(redis, STARTED, [oldest, now - 400_000, now - 300_000])
    await fill(redis, PLANNED, [oldest, now - 400_000, now - 300_000])
    wait = await run(redis, "reserve", "late")
    expected = oldest + PER - now
    assert expected - SLACK_US <= wait <= expected
    # Booked, not started: the slot is the planned one, a window after the oldest.
    assert (await scores(redis, PLANNED))["late"] == oldest + PER
    assert "late" not in await scores(redis, STARTED)


async def test_starts_a_window_old_or_older_no_longer_count(
    redis: coredis.Redis[bytes],
) -> None:
    now = await server_now(redis)
    await fill(redis, STARTED, [now - PER - 1, now - PER - 50, now - 3 * PER])
    assert await run(redis, "start", "fresh") == 0
    assert set(await scores(redis, STARTED)) == {"fresh"}


async def test_start_counts_only_when_every_level_has_room(
    redis: coredis.Redis[bytes],
) -> None:
    now = await server_now(redis)
    # The parent (limit 3) is full though the share (limit 2) is empty.
    await fill(redis, STARTED, [now - 100_000, now - 90_000, now - 80_000])
    wait = await run(redis, "start", "s1", arg=2, limits=(2, 3), share=True)
    assert PER - 100_000 - SLACK_US <= wait <= PER - 100_000
    assert await scores(redis, SHARE_STARTED) == {}
    # The share full, the parent with room: still a wait.
    await redis.delete([STARTED])
    await fill(redis, SHARE_STARTED, [now - 200_000, now - 190_000])
    wait = await run(redis, "start", "s2", arg=2, limits=(2, 3), share=True)
    assert PER - 200_000 - SLACK_US <= wait <= PER - 200_000
    # Both with room: the start counts on both levels.
    await redis.delete([SHARE_STARTED])
    assert await run(redis, "start", "s3", arg=2, limits=(2, 3), share=True) == 0
    assert set(await scores(redis, SHARE_STARTED)) == {"s3"}
    assert set(await scores(redis, STARTED)) == {"s3"}


async def test_bookings_take_distinct_slots_a_window_after_the_limit_th_before(
    redis: coredis.Redis[bytes],
) -> None:
    for member in "abc":
        assert await run(redis, "reserve", member) == 0
    planned = await scores(redis, PLANNED)
    # Three more waiters: each is booked a window after the one three bookings before.
    for previous, member in zip("abc", "def", strict=True):
        assert await run(redis, "reserve", member) > 0
        assert (await scores(redis, PLANNED))[member] == planned[previous] + PER
    # The schedule keeps only the last `limit` bookings.
    assert set(await scores(redis, PLANNED)) == set("def")


async def test_a_limit_lowered_under_the_recorded_starts_waits_for_the_right_one(
    redis: coredis.Redis[bytes],
) -> None:
    now = await server_now(redis)
    # Five starts recorded (a fleet configured with 5), then a process with limit 3:
    # a start is allowed once only two remain, i.e. when the third newest leaves.
    times = [now - 500_000, now - 400_000, now - 300_000, now - 200_000, now - 100_000]
    await fill(redis, STARTED, times)
    wait = await run(redis, "start", "x", arg=1, limits=(3,))
    expected = times[2] + PER - now
    assert expected - SLACK_US <= wait <= expected


async def test_finish_moves_the_start_and_its_slot_to_the_answer_time_never_back(
    redis: coredis.Redis[bytes],
) -> None:
    now = await server_now(redis)
    for key in (STARTED, PLANNED):
        await redis.zadd(key, {"a": now - 1_000_000, "future": now + 10_000_000})
    assert await run(redis, "finish", "a") == 0
    assert await run(redis, "finish", "future") == 0
    assert await run(redis, "finish", "unknown") == 0
    for key in (STARTED, PLANNED):
        after = await scores(redis, key)
        assert now <= after["a"] <= now + SLACK_US
        assert after["future"] == now + 10_000_000
        assert "unknown" not in after  # an entry already trimmed is not brought back


async def test_pause_holds_new_starts_and_rebuilds_the_schedule_from_the_starts(
    redis: coredis.Redis[bytes],
) -> None:
    assert await run(redis, "reserve", "a") == 0
    now = await server_now(redis)
    await redis.zadd(PLANNED, {"booked-before-the-pause": now + 1_500_000})
    assert await run(redis, "pause", "", arg=3_000_000) == 0
    assert set(await scores(redis, PLANNED)) == {"a"}
    paused_until = int(await redis.get(PAUSE) or 0)
    assert now + 3_000_000 <= paused_until <= now + 3_000_000 + SLACK_US
    ttl = await redis.pttl(PAUSE)
    assert 2_000 < ttl <= 3_001
    # A reserve during the pause is booked at its end, not started.
    wait = await run(redis, "reserve", "b")
    assert 3_000_000 - SLACK_US <= wait <= 3_000_000
    assert (await scores(redis, PLANNED))["b"] == paused_until
    # A shorter pause never shortens a longer one.
    await run(redis, "pause", "", arg=1_000)
    assert int(await redis.get(PAUSE) or 0) == paused_until


async def test_start_during_a_pause_books_again_instead_of_starting(
    redis: coredis.Redis[bytes],
) -> None:
    now = await server_now(redis)
    await redis.set(PAUSE, str(now + 1_000_000))
    wait = await run(redis, "start", "w")
    assert 1_000_000 - SLACK_US <= wait <= 1_000_000
    assert "w" not in await scores(redis, STARTED)
    assert (await scores(redis, PLANNED))["w"] == now + 1_000_000


async def test_every_key_expires_so_an_idle_quota_leaves_nothing_behind(
    redis: coredis.Redis[bytes],
) -> None:
    assert await run(redis, "reserve", "a", limits=(1, 3), share=True) == 0
    for key in (STARTED, PLANNED, SHARE_STARTED, SHARE_PLANNED):
        ttl = await redis.pttl(key)
        assert 0 < ttl <= PER // 1000 + 1_000 + 1, key
    # A booking far ahead keeps its schedule until a window after that slot.
    wait = await run(redis, "reserve", "b", limits=(1, 3), share=True)
    assert wait > 0
    assert await redis.pttl(SHARE_PLANNED) > (wait + PER) // 1000


async def test_a_share_waiter_joins_the_quota_queue_only_when_its_share_lets_it_go(
    redis: coredis.Redis[bytes],
) -> None:
    for member in ("b1", "b2"):
        assert await call(redis, "reserve", member, limits=(2, 3), share=True) == (0, 2)
    # The share is spent: the third waits in the share's queue only...
    wait, booked = await call(redis, "reserve", "b3", limits=(2, 3), share=True)
    assert wait > 0 and booked == 1
    assert "b3" in await scores(redis, SHARE_PLANNED)
    assert "b3" not in await scores(redis, PLANNED)
    # ...so a user of the quota itself, coming later, is not queued behind it.
    assert await call(redis, "reserve", "web", limits=(3,)) == (0, 1)
    # When the share lets it go, it books in the quota's queue, behind "web".
    await redis.zadd(SHARE_PLANNED, {"b3": 0})  # as if its slot had come
    await redis.delete([SHARE_STARTED])
    wait, booked = await call(redis, "start", "b3", arg=1, limits=(2, 3), share=True)
    assert wait > 0 and booked == 2
    planned = await scores(redis, PLANNED)
    assert planned["b3"] > planned["web"]


async def test_a_request_that_slept_to_its_slot_starts_without_booking_again(
    redis: coredis.Redis[bytes],
) -> None:
    now = await server_now(redis)
    await redis.zadd(PLANNED, {"w": now - 10})
    assert await call(redis, "start", "w", arg=1) == (0, 1)
    assert (await scores(redis, PLANNED))["w"] == now - 10


# ---------------------------------------------------------------- a log that lost starts


async def test_every_op_answers_the_newest_start_of_each_level(
    redis: coredis.Redis[bytes],
) -> None:
    assert await run(redis, "reserve", "a", limits=(2, 3), share=True) == 0
    started = (await scores(redis, SHARE_STARTED))["a"]
    for op in ("reserve", "start", "finish"):
        reply = await answer(redis, op, "b", limits=(2, 3), share=True)
        assert reply[2] == 0  # nothing lost
        assert reply[3] >= started and reply[4] >= started  # the share, then the quota


async def test_a_log_without_a_start_seen_less_than_a_window_ago_pauses_the_quota_a_window(
    redis: coredis.Redis[bytes],
) -> None:
    await run(redis, "reserve", "a")
    seen = (await answer(redis, "finish", "a"))[3]
    await redis.flushdb()  # the log is gone; "a" started less than a window ago
    wait, _, lost, newest = await answer(redis, "reserve", "b", known=(seen,))
    assert lost == 1
    assert PER - SLACK_US <= wait <= PER  # everyone waits a whole window from now
    assert newest == 0  # nothing started: "b" is booked after the pause
    paused_until = int(await redis.get(PAUSE) or 0)
    assert paused_until - PER <= await server_now(redis) <= paused_until
    # Another caller without that knowledge waits for the same pause.
    assert await run(redis, "reserve", "c") >= PER - SLACK_US


async def test_a_start_seen_a_window_ago_or_more_is_no_loss(
    redis: coredis.Redis[bytes],
) -> None:
    now = await server_now(redis)
    reply = await answer(redis, "reserve", "a", known=(now - PER,))
    assert reply[:3] == [0, 1, 0]  # an idle quota whose keys expired: start at once


async def test_a_log_that_holds_the_start_seen_is_no_loss_and_a_later_one_neither(
    redis: coredis.Redis[bytes],
) -> None:
    first = (await answer(redis, "reserve", "a"))[3]
    assert (await answer(redis, "reserve", "b", known=(first,)))[2] == 0
    assert (await answer(redis, "reserve", "c", known=(first - 5,)))[2] == 0


async def test_a_share_whose_log_was_evicted_pauses_the_whole_quota(
    redis: coredis.Redis[bytes],
) -> None:
    reply = await answer(redis, "reserve", "a", limits=(2, 3), share=True)
    await redis.delete([SHARE_STARTED])  # what an eviction does to one key
    lost = await answer(redis, "reserve", "b", limits=(2, 3), share=True, known=tuple(reply[3:]))
    assert lost[2] == 1
    assert await run(redis, "reserve", "web") >= PER - SLACK_US  # the quota's users wait too


async def test_finish_and_pause_never_report_a_loss(redis: coredis.Redis[bytes]) -> None:
    seen = (await answer(redis, "reserve", "a"))[3]
    await redis.flushdb()
    assert (await answer(redis, "finish", "a", known=(seen,)))[2] == 0
    assert (await answer(redis, "pause", "", arg=1_000, known=(seen,)))[2] == 0
