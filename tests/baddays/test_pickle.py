"""Errors cross process boundaries: every public exception type survives pickle and
copy.copy with its attributes (Celery, multiprocessing, job stores)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import httpx2
import pytest

from clerk_sessions import AsyncClerk, errors, jobs, models
from tests.core._support import session_json

from ._hostile import SECRET, Conn, HostileServer, send_json

pytestmark = pytest.mark.timeout(30)

HEADERS = httpx2.Headers({"content-type": "application/json", "retry-after": "3"})
ENTRY = errors.ClerkError(
    message="m", long_message="long m", code="resource_not_found", meta={"param_name": "x"}
)


def clerk_errors(cls: type[errors.ClerkErrors], status: int) -> errors.ClerkErrors:
    return cls(
        status_code=status,
        errors=[ENTRY],
        clerk_trace_id="trace_1",
        headers=HEADERS,
        body=b'{"errors": []}',
        retry_after=3.0,
        hint="a hint",
    )


SAMPLES: dict[type[BaseException], BaseException] = {
    errors.ClerkSessionsError: errors.ClerkSessionsError("base"),
    errors.ConfigurationError: errors.ConfigurationError("no key"),
    errors.ClerkErrors: clerk_errors(errors.ClerkErrors, 409),
    errors.BadRequestError: clerk_errors(errors.BadRequestError, 400),
    errors.AuthenticationError: clerk_errors(errors.AuthenticationError, 401),
    errors.PermissionDeniedError: clerk_errors(errors.PermissionDeniedError, 403),
    errors.NotFoundError: clerk_errors(errors.NotFoundError, 404),
    errors.GoneError: clerk_errors(errors.GoneError, 410),
    errors.UnprocessableEntityError: clerk_errors(errors.UnprocessableEntityError, 422),
    errors.RateLimitError: clerk_errors(errors.RateLimitError, 429),
    errors.ServerError: clerk_errors(errors.ServerError, 503),
    errors.SDKError: errors.SDKError("odd", status_code=502, headers=HEADERS, body=b"<html>"),
    errors.APIConnectionError: errors.APIConnectionError(
        "refused", request_sent=False, retryable=False
    ),
    errors.APITimeoutError: errors.APITimeoutError("slow", request_sent=True),
    errors.ResponseValidationError: errors.ResponseValidationError(
        ["expected int @ $.created_at"], body=b"{}", status_code=201
    ),
    errors.TokenVerificationError: errors.TokenVerificationError("expired", reason="token_expired"),
    errors.WebhookVerificationError: errors.WebhookVerificationError("too old", reason="timestamp"),
    errors.AsyncContextError: errors.AsyncContextError("on a loop"),
    errors.ClientClosedError: errors.ClientClosedError("closed"),
    jobs.JobStoreError: jobs.JobStoreError("the store is gone"),
}


def public_exception_types() -> set[type[BaseException]]:
    found = [getattr(module, name) for module in (errors, jobs) for name in module.__all__]
    return {t for t in found if isinstance(t, type) and issubclass(t, BaseException)}


def test_every_public_exception_type_has_a_sample() -> None:
    assert set(SAMPLES) == public_exception_types()


def same(a: BaseException, b: BaseException) -> None:
    assert type(a) is type(b)
    assert a.args == b.args and str(a) == str(b)
    assert vars(a) == vars(b)


@pytest.mark.parametrize("exc", list(SAMPLES.values()), ids=lambda e: type(e).__name__)
def test_pickle_round_trip(exc: BaseException) -> None:
    same(exc, pickle.loads(pickle.dumps(exc)))


@pytest.mark.parametrize("exc", list(SAMPLES.values()), ids=lambda e: type(e).__name__)
def test_copy_round_trip(exc: BaseException) -> None:
    same(exc, copy.copy(exc))
    same(exc, copy.deepcopy(exc))


def test_the_clerk_error_entries_survive_too() -> None:
    assert pickle.loads(pickle.dumps(ENTRY)) == ENTRY


@pytest.mark.anyio
async def test_an_error_raised_by_a_call_pickles_with_what_it_carries(
    server: HostileServer,
) -> None:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            if not send_json(conn, b"<html>bad gateway</html>", 502):
                return

    server.handler = handler
    async with AsyncClerk(SECRET, server_url=server.url, retry_config=None) as clerk:
        with pytest.raises(errors.SDKError) as info:
            await clerk.sessions.get("sess_1")
    clone = pickle.loads(pickle.dumps(info.value))
    assert clone.status_code == 502 and clone.body == b"<html>bad gateway</html>"
    assert clone.headers["content-type"] == "application/json"


@pytest.mark.anyio
async def test_the_partial_result_attached_to_a_bulk_error_pickles() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=session_json(request.url.path.split("/")[3]))

    def progress(done: int, total: int | None) -> None:
        raise ValueError("stop")

    async with AsyncClerk(SECRET, transport=httpx2.MockTransport(handler)) as clerk:
        with pytest.raises(ValueError) as info:
            await clerk.sessions.revoke_many(["sess_1"], on_progress=progress)
    partial: Any = pickle.loads(pickle.dumps(info.value.bulk_result))  # type: ignore[attr-defined]
    assert isinstance(partial, models.BulkRevokeResult)
    assert list(partial.revoked) == ["sess_1"]
