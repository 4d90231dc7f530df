"""Errors: one class per status, Clerk's details kept, one readable line, no secrets."""

from __future__ import annotations

import logging

import pytest

from clerk_sessions import AsyncClerk, errors
from tests._engine import hx

from ._support import Script, clerk_error_json, make_client, ok

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ClerkErrors),
        (410, errors.GoneError),
        (422, errors.UnprocessableEntityError),
        (429, errors.RateLimitError),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (503, errors.ServerError),
    ],
)
async def test_clerk_error_json_maps_to_the_class_for_its_status(
    status: int, cls: type[errors.ClerkErrors]
) -> None:
    script = Script([ok(clerk_error_json("some_code", "Something failed"), status=status)])
    clerk, _ = make_client(script, retry_config=None)
    with pytest.raises(cls) as info:
        await clerk.sessions.get("sess_1")
    error = info.value
    assert type(error) is cls
    assert isinstance(error, errors.ClerkErrors)
    assert error.status_code == status
    assert error.clerk_trace_id == "trace_abc"
    assert error.errors == [
        errors.ClerkError(
            code="some_code", message="Something failed", long_message="Something failed (long)"
        )
    ]
    assert error.body.startswith(b"{")
    assert error.headers["content-type"] == "application/json"


async def test_the_message_is_one_line_with_status_code_message_and_trace() -> None:
    body = clerk_error_json("resource_not_found", "Resource\nnot found")
    script = Script([ok(body, status=404)])
    clerk, _ = make_client(script)
    with pytest.raises(errors.NotFoundError) as info:
        await clerk.sessions.get("sess_1")
    assert str(info.value) == (
        "404 Not Found - resource_not_found: Resource not found (long) [clerk_trace_id=trace_abc]"
    )


async def test_a_non_json_error_page_is_an_sdk_error_with_a_capped_excerpt() -> None:
    page = "<html><body>" + "Bad gateway " * 200 + "</body></html>"
    script = Script([hx.Response(502, text=page, headers={"content-type": "text/html"})])
    clerk, _ = make_client(script, retry_config=None)
    with pytest.raises(errors.SDKError) as info:
        await clerk.sessions.get("sess_1")
    assert info.value.status_code == 502
    assert info.value.body == page.encode()
    message = str(info.value)
    assert message.startswith("502 Bad Gateway - unexpected response")
    assert len(message) < 320 and "\n" not in message


async def test_a_success_with_the_wrong_content_type_is_an_sdk_error() -> None:
    script = Script(
        [hx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"})]
    )
    clerk, _ = make_client(script)
    with pytest.raises(errors.SDKError, match="expected a JSON answer"):
        await clerk.sessions.get("sess_1")


async def test_a_429_without_clerk_json_is_still_a_rate_limit_error() -> None:
    script = Script([hx.Response(429, text="slow down", headers={"retry-after": "7"})])
    clerk, _ = make_client(script, retry_config=None)
    with pytest.raises(errors.RateLimitError) as info:
        await clerk.sessions.get("sess_1")
    assert info.value.retry_after == 7
    assert info.value.errors == []


@pytest.mark.parametrize(
    ("exc", "cls", "sent"),
    [
        (hx.ConnectError("refused"), errors.APIConnectionError, False),
        (hx.ReadError("reset by peer"), errors.APIConnectionError, True),
        (hx.RemoteProtocolError("truncated"), errors.APIConnectionError, True),
        (hx.ConnectTimeout("slow"), errors.APITimeoutError, False),
        (hx.ReadTimeout("slow"), errors.APITimeoutError, True),
        (hx.PoolTimeout("busy"), errors.APITimeoutError, False),
    ],
)
async def test_no_answer_is_a_connection_or_timeout_error(
    exc: Exception, cls: type[errors.APIConnectionError], sent: bool
) -> None:
    script = Script([exc])
    clerk, _ = make_client(script, retry_config=None)
    with pytest.raises(cls) as info:
        await clerk.sessions.get("sess_1")
    assert type(info.value) is cls
    assert info.value.request_sent is sent
    assert info.value.__cause__ is exc
    assert "\n" not in str(info.value)


async def test_every_error_is_a_clerk_sessions_error() -> None:
    for cls in (
        errors.ClerkErrors,
        errors.SDKError,
        errors.APIConnectionError,
        errors.ResponseValidationError,
        errors.TokenVerificationError,
        errors.ConfigurationError,
    ):
        assert issubclass(cls, errors.ClerkSessionsError)


CANARY = "sk_test_CANARY_d0n0tl34k_7f3a9"


@pytest.mark.parametrize(
    "answer",
    [
        ok(clerk_error_json("authentication_invalid", "Invalid key"), status=401),
        ok(clerk_error_json("x", "x"), status=500),
        hx.Response(502, text="<html>oops</html>"),
        hx.Response(
            429, json=clerk_error_json("too_many_requests", "slow"), headers={"retry-after": "999"}
        ),
        hx.ConnectError("refused"),
        hx.ReadTimeout("slow"),
        ok({"object": "session"}),
    ],
)
async def test_the_secret_key_never_appears_in_errors_or_logs(
    answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clerk = AsyncClerk(
        CANARY, server_url="https://api.test/v1", transport=hx.MockTransport(Script([answer]))
    )  # type: ignore[list-item]

    async def no_sleep(_: float) -> None:
        return None

    clerk._transport.sleep = no_sleep
    with pytest.raises(errors.ClerkSessionsError) as info:
        await clerk.sessions.get("sess_1")
    texts = [str(info.value), repr(info.value), repr(clerk), caplog.text]
    texts += [repr(vars(info.value))]
    cause = info.value.__cause__
    if cause is not None:
        texts += [str(cause), repr(cause)]
    for text in texts:
        assert CANARY not in text
        assert "CANARY" not in text
