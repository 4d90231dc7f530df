"""Fault injection, the quota and the attempt log (in-process)."""

from __future__ import annotations

import anyio
import httpx2
import pytest

from clerk_sessions.testing import FakeClerk, FaultConfig, ManualClock, Quota

from .conftest import raw_client

pytestmark = pytest.mark.anyio


async def statuses(fake: FakeClerk, n: int) -> list[int | str]:
    seen: list[int | str] = []
    async with raw_client(fake) as client:
        for _ in range(n):
            try:
                seen.append((await client.get("/sessions")).status_code)
            except httpx2.RemoteProtocolError:
                seen.append("dropped")
    return seen


async def test_faults_are_reproducible_from_the_seed() -> None:
    config = FaultConfig(error_rate=0.2, drop_before_rate=0.2, truncate_rate=0.2, seed=3)
    first = await statuses(FakeClerk(faults=config), 30)
    second = await statuses(FakeClerk(faults=config), 30)
    assert first == second
    assert {200, "dropped"} <= set(first)


async def test_error_5xx_answers_clerk_error_json() -> None:
    fake = FakeClerk(faults=FaultConfig(error_rate=1.0))
    async with raw_client(fake) as client:
        response = await client.get("/sessions")
    assert response.status_code in (500, 502, 503, 504)
    assert response.json()["errors"][0]["code"] == "internal_clerk_error"
    assert fake.requests[0].fault == "error_5xx"


async def test_html_5xx_answers_an_html_page_exempt_from_validation() -> None:
    fake = FakeClerk(faults=FaultConfig(html_error_rate=1.0))
    async with raw_client(fake) as client:
        response = await client.get("/sessions")
    assert response.status_code >= 500
    assert response.headers["content-type"].startswith("text/html")
    record = fake.requests[0]
    assert (record.fault, record.validation) == ("html_5xx", "exempt")


async def test_drop_before_raises_remote_protocol_error_without_state_change() -> None:
    fake = FakeClerk(faults=FaultConfig(drop_before_rate=1.0))
    session = fake.add_session()
    async with raw_client(fake) as client:
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            await client.post(f"/sessions/{session['id']}/revoke")
    assert fake.get_session(session["id"])["status"] == "active"
    record = fake.requests[0]
    assert (record.fault, record.status, record.state_changed) == ("drop_before", None, False)


async def test_drop_after_changes_state_then_drops() -> None:
    fake = FakeClerk(faults=FaultConfig(drop_after_rate=1.0))
    session = fake.add_session()
    async with raw_client(fake) as client:
        with pytest.raises(httpx2.RemoteProtocolError):
            await client.post(f"/sessions/{session['id']}/revoke")
    assert fake.get_session(session["id"])["status"] == "revoked"
    record = fake.requests[0]
    assert (record.fault, record.state_changed, record.validation) == (
        "drop_after",
        True,
        "exempt",
    )


async def test_truncated_body_raises_and_is_marked() -> None:
    fake = FakeClerk(faults=FaultConfig(truncate_rate=1.0))
    session = fake.add_session()
    async with raw_client(fake) as client:
        with pytest.raises(httpx2.RemoteProtocolError, match="complete message body"):
            await client.get(f"/sessions/{session['id']}")
    record = fake.requests[0]
    assert (record.fault, record.truncated_status, record.validation) == (
        "truncate",
        200,
        "exempt",
    )


async def test_latency_is_applied_and_recorded() -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.01, 0.02)))
    started = anyio.current_time()
    await statuses(fake, 2)
    assert anyio.current_time() - started >= 0.02
    assert all(0.01 <= r.latency_s <= 0.02 for r in fake.requests)


def test_fault_rates_above_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        FaultConfig(error_rate=0.6, drop_before_rate=0.6)


# --- quota ------------------------------------------------------------------------


async def test_quota_answers_429_with_retry_after(clock: ManualClock) -> None:
    fake = FakeClerk(clock=clock, quota=Quota(3, 10.0))
    async with raw_client(fake) as client:
        for _ in range(3):
            assert (await client.get("/sessions")).status_code == 200
            clock.advance(1)
        response = await client.get("/sessions")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["errors"][0]["code"] == "too_many_requests"
    assert fake.requests[-1].fault == "quota"


async def test_quota_window_slides(clock: ManualClock) -> None:
    fake = FakeClerk(clock=clock, quota=Quota(2, 10.0))
    async with raw_client(fake) as client:
        await client.get("/sessions")
        clock.advance(5)
        await client.get("/sessions")
        clock.advance(5)
        assert (await client.get("/sessions")).status_code == 200
        assert (await client.get("/sessions")).status_code == 429


async def test_jwks_is_not_quota_limited(clock: ManualClock) -> None:
    fake = FakeClerk(clock=clock, quota=Quota(1, 10.0))
    async with raw_client(fake) as client:
        assert (await client.get("/sessions")).status_code == 200
        for _ in range(3):
            assert (await client.get("/jwks")).status_code == 200
        assert (await client.get("/sessions")).status_code == 429


# --- attempt log ------------------------------------------------------------------


async def test_attempts_are_logged_with_what_the_server_saw(
    fake: FakeClerk, clock: ManualClock
) -> None:
    async with raw_client(fake) as client:
        await client.post("/sessions?x=1", json={"user_id": "user_nope"})
    record = fake.requests[0]
    assert record.time == clock()
    assert (record.method, record.raw_path, record.query) == ("POST", "/v1/sessions", "x=1")
    assert record.headers["clerk-api-version"] == "2026-05-12"
    assert "authorization" not in record.headers
    assert record.authenticated
    assert record.body == b'{"user_id":"user_nope"}'
    assert (record.status, record.fault, record.state_changed) == (404, None, False)
    assert record.operation == "/sessions"
    assert record.validation == "ok"


async def test_peak_in_flight_counts_concurrent_attempts() -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.02, 0.02)))
    async with raw_client(fake) as client, anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(client.get, "/sessions")
    assert fake.peak_in_flight == 5
    assert sorted(r.in_flight for r in fake.requests) == [1, 2, 3, 4, 5]
    assert fake.in_flight == 0
