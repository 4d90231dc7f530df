"""The telemetry module's small parts: the retry causes, attribute mappings built once
per operation and status (never per call), and Clerk's trace id read from an error's
body when the answer had no header."""

from __future__ import annotations

import json

import httpx2
import pytest

from clerk_sessions import AsyncClerk, errors
from clerk_sessions._errors import error_from_response
from clerk_sessions._resources.operations import GET
from clerk_sessions._telemetry import retry_cause

from .conftest import Telemetry

CLERK_ERROR = json.dumps(
    {"errors": [{"code": "x", "message": "x"}], "clerk_trace_id": "trace_in_the_body"}
).encode()


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (error_from_response(429, {}, CLERK_ERROR), "rate_limited"),
        (error_from_response(503, {}, CLERK_ERROR), "server_error"),
        (error_from_response(502, {}, b"<html>bad gateway</html>"), "server_error"),
        (errors.APITimeoutError("slow"), "timeout"),
        (errors.APIConnectionError("refused"), "connection_error"),
        (ValueError("anything else"), "ValueError"),
    ],
)
def test_a_retry_is_named_for_its_cause(failure: BaseException, cause: str) -> None:
    assert retry_cause(failure) == cause


def test_an_operations_metric_attributes_are_built_once_per_status_and_error() -> None:
    assert GET.status_attributes(200) is GET.status_attributes(200)
    assert GET.error_attributes("NotFoundError") is GET.error_attributes("NotFoundError")
    assert dict(GET.status_attributes(404)) == {
        "clerk.operation": "get",
        "http.response.status_code": 404,
    }
    assert repr(GET) == "Operation('get')"


@pytest.mark.anyio
async def test_clerks_trace_id_comes_from_the_error_body_when_the_answer_has_no_header(
    otel: Telemetry,
) -> None:
    def not_found(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            404, content=CLERK_ERROR, headers={"content-type": "application/json"}
        )

    transport = httpx2.MockTransport(not_found)
    async with AsyncClerk("sk_test_x", server_url="https://api.test/v1", transport=transport) as c:
        with pytest.raises(errors.NotFoundError):
            await c.sessions.get("sess_1")

    assert otel.span("clerk.sessions.get").attributes["clerk.trace_id"] == "trace_in_the_body"  # type: ignore[index]
