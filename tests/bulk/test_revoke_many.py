"""revoke_many: every id once, bounded concurrency and memory, clear early stops."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx2
import pytest

from clerk_sessions import AsyncClerk, errors, models
from clerk_sessions.testing import FakeClerk, FaultConfig

from .conftest import FAST_RETRIES, revoke_requests

pytestmark = pytest.mark.anyio


def add_sessions(fake: FakeClerk, count: int, user_id: str = "user_1") -> list[str]:
    return [fake.add_session(user_id=user_id)["id"] for _ in range(count)]


async def test_every_id_of_a_list_is_revoked(fake: FakeClerk) -> None:
    ids = add_sessions(fake, 20)
    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_many(ids)
    assert set(result.revoked) == set(ids)
    assert result.failed == {}
    assert all(s.status == models.SessionStatus.REVOKED for s in result.revoked.values())
    assert {fake.get_session(i)["status"] for i in ids} == {"revoked"}


async def test_a_generator_of_ids_works(fake: FakeClerk) -> None:
    ids = add_sessions(fake, 15)
    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_many(i for i in ids)
    assert set(result.revoked) == set(ids)


async def test_an_async_iterable_of_ids_works(fake: FakeClerk) -> None:
    ids = add_sessions(fake, 15)

    async def produce() -> AsyncIterator[str]:
        for session_id in ids:
            await anyio.lowlevel.checkpoint()
            yield session_id

    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_many(produce(), concurrency=4)
    assert set(result.revoked) == set(ids)


@pytest.mark.parametrize("as_iterator", [False, True], ids=["list", "iterator"])
async def test_a_duplicate_id_is_sent_once(fake: FakeClerk, as_iterator: bool) -> None:
    ids = add_sessions(fake, 5)
    given = ids + ids[::-1] + ids
    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_many(iter(given) if as_iterator else given)
    assert set(result.revoked) == set(ids)
    assert [revoke_requests(fake, i) for i in ids] == [1] * 5


async def test_an_already_revoked_session_counts_as_revoked(fake: FakeClerk) -> None:
    ids = add_sessions(fake, 3)
    fake.set_session_status(ids[0], "revoked")
    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_many(ids)
    assert set(result.revoked) == set(ids)
    assert result.revoked[ids[0]].status == models.SessionStatus.REVOKED


def refusing_server(status_on_get: str) -> httpx2.MockTransport:
    """Answers revoke with 400 (as the spec allows) and get with ``status_on_get``."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        session_id = request.url.path.split("/")[3]
        if request.url.path.endswith("/revoke"):
            body = {"errors": [{"message": "not active", "code": "session_not_active"}]}
            return httpx2.Response(400, json=body)
        session = {
            "object": "session",
            "id": session_id,
            "user_id": "user_1",
            "client_id": "client_1",
            "status": status_on_get,
            "last_active_at": 1,
            "expire_at": 2,
            "abandon_at": 3,
            "created_at": 0,
            "updated_at": 1,
        }
        return httpx2.Response(
            200, content=json.dumps(session).encode(), headers={"content-type": "application/json"}
        )

    return httpx2.MockTransport(handle)


async def test_a_refused_revoke_of_a_revoked_session_counts_as_revoked() -> None:
    async with AsyncClerk("sk_test_x", transport=refusing_server("revoked")) as clerk:
        result = await clerk.sessions.revoke_many(["sess_1"])
    assert list(result.revoked) == ["sess_1"]
    assert result.failed == {}


async def test_a_refused_revoke_of_a_session_still_active_fails() -> None:
    async with AsyncClerk("sk_test_x", transport=refusing_server("active")) as clerk:
        result = await clerk.sessions.revoke_many(["sess_1"])
    assert isinstance(result.failed["sess_1"], errors.BadRequestError)


async def test_an_unknown_id_fails_with_not_found(fake: FakeClerk) -> None:
    ids = add_sessions(fake, 2)
    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_many([*ids, "sess_unknown"])
    assert set(result.revoked) == set(ids)
    assert isinstance(result.failed["sess_unknown"], errors.NotFoundError)


@pytest.mark.parametrize("bad_id", ["", ".", ".."])
async def test_an_id_that_cannot_be_a_path_segment_fails_with_value_error(
    fake: FakeClerk, bad_id: str
) -> None:
    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_many([bad_id])
    assert isinstance(result.failed[bad_id], ValueError)
    assert fake.requests == []


async def test_an_id_fails_with_its_typed_error_only_after_its_retries() -> None:
    fake = FakeClerk(faults=FaultConfig(error_rate=1.0))
    ids = add_sessions(fake, 2)
    async with fake.async_client(retry_config=FAST_RETRIES) as clerk:
        result = await clerk.sessions.revoke_many(ids)
    assert all(isinstance(e, errors.ServerError) for e in result.failed.values())
    assert [revoke_requests(fake, i) for i in ids] == [3, 3]


async def test_retries_none_sends_each_id_once() -> None:
    fake = FakeClerk(faults=FaultConfig(error_rate=1.0))
    ids = add_sessions(fake, 2)
    async with fake.async_client(retry_config=FAST_RETRIES) as clerk:
        result = await clerk.sessions.revoke_many(ids, retries=None)
    assert set(result.failed) == set(ids)
    assert [revoke_requests(fake, i) for i in ids] == [1, 1]


async def test_no_more_than_concurrency_requests_are_in_flight() -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.001, 0.003)))
    ids = add_sessions(fake, 40)
    async with fake.async_client() as clerk:
        await clerk.sessions.revoke_many(iter(ids), concurrency=5)
    assert fake.peak_in_flight == 5


async def test_ids_are_drawn_only_as_workers_free_up(fake: FakeClerk) -> None:
    """Memory is bounded by the concurrency: never more than ``concurrency`` ids are
    drawn from the input beyond those already finished."""
    ids = add_sessions(fake, 60)
    drawn = 0
    finished = 0
    most_ahead = 0

    def produce() -> Iterator[str]:
        nonlocal drawn, most_ahead
        for session_id in ids:
            drawn += 1
            most_ahead = max(most_ahead, drawn - finished)
            yield session_id

    def progress(done: int, total: int | None) -> None:
        nonlocal finished
        finished = done

    async with fake.async_client() as clerk:
        await clerk.sessions.revoke_many(produce(), concurrency=4, on_progress=progress)
    assert finished == 60
    assert most_ahead <= 4


async def test_progress_counts_up_to_the_distinct_total_of_a_collection(
    fake: FakeClerk,
) -> None:
    ids = add_sessions(fake, 6)
    calls: list[tuple[int, int | None]] = []
    async with fake.async_client() as clerk:
        await clerk.sessions.revoke_many(
            ids + ids, concurrency=2, on_progress=lambda d, t: calls.append((d, t))
        )
    assert calls == [(n, 6) for n in range(1, 7)]


async def test_progress_total_is_none_for_an_iterator(fake: FakeClerk) -> None:
    ids = add_sessions(fake, 3)
    calls: list[tuple[int, int | None]] = []
    async with fake.async_client() as clerk:
        await clerk.sessions.revoke_many(iter(ids), on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, None), (2, None), (3, None)]


@pytest.mark.parametrize(
    ("concurrency", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("8", TypeError)],
)
async def test_a_bad_concurrency_raises_before_any_request(
    fake: FakeClerk, concurrency: object, error: type[Exception]
) -> None:
    ids = add_sessions(fake, 1)
    async with fake.async_client() as clerk:
        with pytest.raises(error):
            await clerk.sessions.revoke_many(ids, concurrency=concurrency)  # type: ignore[arg-type]
    assert fake.requests == []


async def test_a_single_string_is_rejected(fake: FakeClerk) -> None:
    async with fake.async_client() as clerk:
        with pytest.raises(TypeError, match="not a single id"):
            await clerk.sessions.revoke_many("sess_abc")
    assert fake.requests == []


async def test_a_non_callable_on_progress_is_rejected(fake: FakeClerk) -> None:
    async with fake.async_client() as clerk:
        with pytest.raises(TypeError, match="on_progress"):
            await clerk.sessions.revoke_many(["sess_1"], on_progress=42)  # type: ignore[arg-type]


async def test_a_non_string_id_in_a_collection_raises_before_any_request(
    fake: FakeClerk,
) -> None:
    ids = add_sessions(fake, 3)
    async with fake.async_client() as clerk:
        with pytest.raises(TypeError, match="position 2"):
            await clerk.sessions.revoke_many([ids[0], ids[1], 42, ids[2]])  # type: ignore[list-item]
    assert fake.requests == []


async def test_a_non_string_id_from_an_iterator_stops_with_the_partial_result(
    fake: FakeClerk,
) -> None:
    ids = add_sessions(fake, 3)
    async with fake.async_client() as clerk:
        with pytest.raises(TypeError) as caught:
            await clerk.sessions.revoke_many(iter([ids[0], ids[1], None, ids[2]]), concurrency=1)  # type: ignore[list-item]
    result: models.BulkRevokeResult = caught.value.bulk_result  # type: ignore[attr-defined]
    assert set(result.revoked) == {ids[0], ids[1]}
    assert revoke_requests(fake, ids[2]) == 0


async def test_an_error_from_the_input_propagates_with_the_partial_result(
    fake: FakeClerk,
) -> None:
    ids = add_sessions(fake, 4)

    def produce() -> Iterator[str]:
        yield from ids[:2]
        raise ConnectionResetError("the database went away")

    async with fake.async_client() as clerk:
        with pytest.raises(ConnectionResetError) as caught:
            await clerk.sessions.revoke_many(produce(), concurrency=2)
    result: models.BulkRevokeResult = caught.value.bulk_result  # type: ignore[attr-defined]
    assert set(result.revoked) == set(ids[:2])


async def test_an_error_from_on_progress_lets_requests_in_flight_finish_then_propagates() -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.002, 0.002)))
    ids = add_sessions(fake, 50)

    def progress(done: int, total: int | None) -> None:
        if done == 3:
            raise RuntimeError("the progress bar broke")

    async with fake.async_client() as clerk:
        with pytest.raises(RuntimeError) as caught:
            await clerk.sessions.revoke_many(ids, concurrency=4, on_progress=progress)
    result: models.BulkRevokeResult = caught.value.bulk_result  # type: ignore[attr-defined]
    attempted = {i for i in ids if revoke_requests(fake, i)}
    # Nothing sent is unaccounted for, and the run stopped early.
    assert set(result.revoked) | set(result.failed) == attempted
    assert 3 <= len(attempted) < 10


async def test_cancelling_stops_promptly_and_attaches_what_was_done() -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.005, 0.005)))
    ids = add_sessions(fake, 200)
    caught: BaseException | None = None
    async with fake.async_client() as clerk:
        with anyio.move_on_after(0.05) as scope:
            try:
                await clerk.sessions.revoke_many(ids, concurrency=4)
            except anyio.get_cancelled_exc_class() as exc:
                caught = exc
                raise
    assert scope.cancelled_caught
    assert caught is not None
    result: models.BulkRevokeResult = caught.bulk_result  # type: ignore[attr-defined]
    sent = {i for i in ids if revoke_requests(fake, i)}
    assert 0 < len(result.revoked) < 100
    # Finished ids are reported; only those in flight (at most `concurrency`) are not.
    assert set(result.revoked) <= sent
    assert len(sent - set(result.revoked)) <= 4
    await anyio.sleep(0.02)
    assert fake.in_flight == 0
