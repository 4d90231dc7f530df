"""revoke_all: every active session of a user or client, even while pages shift."""

from __future__ import annotations

import httpx2
import pytest

from clerk_sessions import _revocation as bulk
from clerk_sessions import errors, models
from clerk_sessions.testing import FakeClerk

from .conftest import hooked_client, revoke_requests

pytestmark = pytest.mark.anyio


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many pages from few sessions, so page shifts are cheap to provoke.
    monkeypatch.setattr(bulk, "_PAGE_SIZE", 10)


def is_list(request: httpx2.Request) -> bool:
    return request.method == "GET" and request.url.path == "/v1/sessions"


@pytest.mark.parametrize("kwargs", [{}, {"user_id": "user_1", "client_id": "client_1"}])
async def test_exactly_one_of_user_id_and_client_id_is_required(
    fake: FakeClerk, kwargs: dict[str, str]
) -> None:
    async with fake.async_client() as clerk:
        with pytest.raises(TypeError, match="exactly one"):
            await clerk.sessions.revoke_all(**kwargs)
    assert fake.requests == []


async def test_every_active_session_of_the_user_is_revoked_and_nothing_else(
    fake: FakeClerk, small_pages: None
) -> None:
    mine = [fake.add_session(user_id="user_1")["id"] for _ in range(35)]
    ended = fake.add_session(user_id="user_1", status="ended")["id"]
    other = fake.add_session(user_id="user_2")["id"]
    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_all(user_id="user_1")
    assert set(result.revoked) == set(mine)
    assert result.failed == {}
    assert fake.get_session(ended)["status"] == "ended"
    assert fake.get_session(other)["status"] == "active"


async def test_every_active_session_of_the_client_is_revoked(fake: FakeClerk) -> None:
    client = fake.add_client("user_1")
    on_client = [fake.add_session(user_id="user_1", client_id=client)["id"] for _ in range(3)]
    elsewhere = fake.add_session(user_id="user_1")["id"]
    async with fake.async_client() as clerk:
        result = await clerk.sessions.revoke_all(client_id=client)
    assert set(result.revoked) == set(on_client)
    assert fake.get_session(elsewhere)["status"] == "active"


async def test_a_session_hidden_by_a_page_shift_is_still_revoked(
    fake: FakeClerk, small_pages: None
) -> None:
    """A session on page 1 ends while page 2 is fetched: everything after it moves up
    one place, so the session that was first on page 2 is on page 1 now and a single
    walk of the pages never sees it."""
    ids = [fake.add_session(user_id="user_1")["id"] for _ in range(25)]  # newest last
    newest_first = ids[::-1]
    lists = 0

    def end_one_during_the_second_page(request: httpx2.Request) -> None:
        nonlocal lists
        if is_list(request):
            lists += 1
            if lists == 2:
                fake.set_session_status(newest_first[0], "ended")

    async with hooked_client(fake, end_one_during_the_second_page) as clerk:
        result = await clerk.sessions.revoke_all(user_id="user_1")
    assert set(result.revoked) == set(ids)
    assert all(fake.get_session(i)["status"] == "revoked" for i in newest_first[1:])
    assert [revoke_requests(fake, i) for i in ids] == [1] * 25
    # It was listed before it ended; revoking a session that has ended is a no-op.
    assert result.revoked[newest_first[0]].status == models.SessionStatus.ENDED


async def test_a_session_created_while_it_runs_is_revoked(
    fake: FakeClerk, small_pages: None
) -> None:
    ids = [fake.add_session(user_id="user_1")["id"] for _ in range(15)]
    created: list[str] = []

    def sign_in_during_the_revokes(request: httpx2.Request) -> None:
        if request.url.path.endswith("/revoke") and not created:
            created.append(fake.add_session(user_id="user_1")["id"])

    async with hooked_client(fake, sign_in_during_the_revokes) as clerk:
        result = await clerk.sessions.revoke_all(user_id="user_1")
    assert set(result.revoked) == {*ids, *created}


async def test_a_session_that_failed_is_not_tried_again(fake: FakeClerk) -> None:
    ids = [fake.add_session(user_id="user_1")["id"] for _ in range(4)]
    stubborn = ids[0]

    def refuse_one(request: httpx2.Request) -> None:
        if request.url.path == f"/v1/sessions/{stubborn}/revoke":
            # Take it off the books for this request only: the fake answers 404.
            raise httpx2.ConnectError("refused", request=request)

    async with hooked_client(fake, refuse_one, retry_config=None) as clerk:
        result = await clerk.sessions.revoke_all(user_id="user_1")
    assert set(result.revoked) == set(ids[1:])
    assert isinstance(result.failed[stubborn], errors.APIConnectionError)
    assert fake.get_session(stubborn)["status"] == "active"
    assert revoke_requests(fake, stubborn) == 0  # the one attempt never reached it


async def test_progress_counts_across_listings(fake: FakeClerk, small_pages: None) -> None:
    for _ in range(12):
        fake.add_session(user_id="user_1")
    calls: list[tuple[int, int | None]] = []
    async with fake.async_client() as clerk:
        await clerk.sessions.revoke_all(
            user_id="user_1", concurrency=3, on_progress=lambda d, t: calls.append((d, t))
        )
    assert [d for d, _ in calls] == list(range(1, 13))
    assert calls[-1] == (12, 12)


async def test_a_listing_error_propagates_with_what_was_revoked(
    fake: FakeClerk, small_pages: None
) -> None:
    ids = [fake.add_session(user_id="user_1")["id"] for _ in range(5)]
    lists = 0

    def fail_the_second_listing(request: httpx2.Request) -> None:
        nonlocal lists
        if is_list(request):
            lists += 1
            if lists == 2:
                raise httpx2.ConnectError("down", request=request)

    async with hooked_client(fake, fail_the_second_listing, retry_config=None) as clerk:
        with pytest.raises(errors.APIConnectionError) as caught:
            await clerk.sessions.revoke_all(user_id="user_1")
    result: models.BulkRevokeResult = caught.value.bulk_result  # type: ignore[attr-defined]
    assert set(result.revoked) == set(ids)
