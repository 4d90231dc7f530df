"""Every sessions operation, called the same way on `AsyncClerk` and `Clerk`, against a
seeded `FakeClerk`; and a transport that records what each request carried."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import attrs
import httpx2

from clerk_sessions.testing import FakeClerk

SINGLE_REQUEST_OPS = [
    "list",
    "list_page",
    "create",
    "get",
    "revoke",
    "verify",
    "create_token",
    "create_token_from_template",
    "refresh",
]
MANY_REQUEST_OPS = ["iterate", "revoke_many", "revoke_all"]
ALL_OPS = SINGLE_REQUEST_OPS + MANY_REQUEST_OPS


@attrs.frozen
class Seeded:
    user_id: str
    session_id: str
    token: str
    refresh_token: str


def seed(fake: FakeClerk) -> Seeded:
    user_id = fake.add_user()
    session_id = fake.add_session(user_id=user_id)["id"]
    fake.add_template("custom_hasura")
    return Seeded(user_id, session_id, fake.mint_token(session_id), fake.refresh_token(session_id))


def arguments(op: str, seeded: Seeded) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments of a plausible call of ``op``."""
    sid = seeded.session_id
    return {
        "list": ((), {"user_id": seeded.user_id}),
        "list_page": ((), {"user_id": seeded.user_id}),
        "iterate": ((), {"user_id": seeded.user_id}),
        "create": ((), {"request": {"user_id": seeded.user_id}}),
        "get": ((sid,), {}),
        "revoke": ((sid,), {}),
        "verify": ((sid,), {"token": seeded.token}),
        "create_token": ((sid,), {"expires_in_seconds": 600}),
        "create_token_from_template": ((sid, "custom_hasura"), {}),
        "refresh": (
            (sid,),
            {
                "request": {
                    "expired_token": seeded.token,
                    "refresh_token": seeded.refresh_token,
                    "request_origin": "https://example.com",
                }
            },
        ),
        "revoke_many": (([sid],), {}),
        "revoke_all": ((), {"user_id": seeded.user_id}),
    }[op]


async def call_async(resource: Any, op: str, seeded: Seeded, **options: Any) -> Any:
    args, kwargs = arguments(op, seeded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # verify
        result = getattr(resource, op)(*args, **kwargs, **options)
        if op == "iterate":
            return [session async for session in result]
        return await result


def call_sync(resource: Any, op: str, seeded: Seeded, **options: Any) -> Any:
    args, kwargs = arguments(op, seeded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = getattr(resource, op)(*args, **kwargs, **options)
        return list(result) if op == "iterate" else result


class Recorder(httpx2.AsyncBaseTransport):
    """Passes requests on to ``inner`` and keeps each one (its timeout extension too)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx2.Request] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def timeouts(self) -> Iterator[Any]:
        return (request.extensions["timeout"]["read"] for request in self.requests)
