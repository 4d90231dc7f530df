"""Bad arguments to an operation are a typed error naming the argument, raised before
anything is sent; the seed SDK's spellings of a body are accepted as it wrote them."""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from clerk_sessions import AsyncClerk
from clerk_sessions.models import RefreshSessionRequestBody

from ._support import Script, make_client, ok, session_json

pytestmark = pytest.mark.anyio

REFRESH = {"expired_token": "a.b.c", "refresh_token": "r", "request_origin": "https://x"}

Call = Callable[[AsyncClerk], Awaitable[Any]]
BAD: list[tuple[str, Call, type[Exception], str]] = [
    (
        "expires as a bool",
        lambda c: c.sessions.create_token("sess_1", expires_in_seconds=True),  # type: ignore[arg-type]
        TypeError,
        "expires_in_seconds must be a number, got bool",
    ),
    (
        "expires as a string",
        lambda c: c.sessions.create_token("sess_1", expires_in_seconds="60"),  # type: ignore[arg-type]
        TypeError,
        "expires_in_seconds must be a number, got str",
    ),
    (
        "expires NaN",
        lambda c: c.sessions.create_token("sess_1", expires_in_seconds=float("nan")),
        ValueError,
        "expires_in_seconds must be finite, got nan",
    ),
    (
        "expires infinite",
        lambda c: c.sessions.create_token_from_template(
            "sess_1", "tmpl", expires_in_seconds=float("-inf")
        ),
        ValueError,
        "expires_in_seconds must be finite, got -inf",
    ),
    (
        "refresh with a body and keywords",
        lambda c: c.sessions.refresh("sess_1", REFRESH, format="cookie"),
        TypeError,
        "refresh() takes either request= or keywords, not both",
    ),
    (
        "refresh body of the wrong type",
        lambda c: c.sessions.refresh("sess_1", ["a.b.c"]),  # type: ignore[arg-type]
        TypeError,
        "request must be a RefreshSessionRequestBody or a dict, got list",
    ),
    (
        "refresh body missing a field",
        lambda c: c.sessions.refresh("sess_1", {"expired_token": "a.b.c"}),
        TypeError,
        "invalid request: required field missing @ request.refresh_token",
    ),
    (
        "refresh body with an unknown key",
        lambda c: c.sessions.refresh("sess_1", {**REFRESH, "formatt": "cookie"}),
        TypeError,
        "formatt",
    ),
    (
        "verify token not a string",
        lambda c: c.sessions.verify("sess_1", token=b"a.b.c"),  # type: ignore[arg-type]
        TypeError,
        "token must be a string, got bytes",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
async def test_a_bad_argument_is_a_typed_error_and_nothing_is_sent(
    call: Call, error: type[Exception], message: str
) -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # verify is deprecated
        with pytest.raises(error) as info:
            await call(clerk)
    assert message in str(info.value)
    assert script.requests == []


async def test_whole_seconds_are_sent_for_a_float_lifetime() -> None:
    script = Script([ok({"object": "token", "jwt": "a.b.c"})])
    clerk, _ = make_client(script)
    await clerk.sessions.create_token("sess_1", expires_in_seconds=6005.84)
    assert script.body() == {"expires_in_seconds": 6006}


@pytest.mark.parametrize(
    "request_body",
    [
        {**REFRESH, "format_": "cookie"},  # the seed SDK's keyword, as a dict key
        RefreshSessionRequestBody(**REFRESH, format="cookie"),
    ],
    ids=["seed spelling format_", "model"],
)
async def test_a_refresh_body_is_sent_with_the_api_field_names(request_body: Any) -> None:
    script = Script([ok({"object": "token", "jwt": "a.b.c"})])
    clerk, _ = make_client(script)
    await clerk.sessions.refresh("sess_1", request_body)
    assert script.body() == {**REFRESH, "format": "cookie"}
