"""Helpers for core tests: a scripted httpx transport that records every request."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from clerk_sessions import AsyncClerk, RetryConfig
from tests._engine import hx

SECRET = "sk_test_core_0123456789"


def session_json(session_id: str = "sess_1", **overrides: Any) -> dict[str, Any]:
    """A session as the API sends it, with every documented field."""
    data: dict[str, Any] = {
        "object": "session",
        "id": session_id,
        "user_id": "user_123",
        "client_id": "client_123",
        "actor": None,
        "status": "active",
        "last_active_organization_id": None,
        "last_active_at": 1_700_000_000_000,
        "latest_activity": {
            "object": "session_activity",
            "id": "sess_activity_1",
            "device_type": "Macintosh",
            "is_mobile": False,
            "browser_name": "Chrome",
            "browser_version": "131.0",
            "ip_address": "192.0.2.1",
            "city": "Berlin",
            "country": "DE",
        },
        "expire_at": 1_700_604_800_000,
        "abandon_at": 1_702_592_000_000,
        "updated_at": 1_700_000_000_000,
        "created_at": 1_699_000_000_000,
        "tasks": [],
    }
    data.update(overrides)
    return data


def clerk_error_json(code: str, message: str, trace: str | None = "trace_abc") -> dict[str, Any]:
    body: dict[str, Any] = {
        "errors": [{"code": code, "message": message, "long_message": message + " (long)"}]
    }
    if trace is not None:
        body["clerk_trace_id"] = trace
    return body


Responder = Callable[[hx.Request], hx.Response]


class Script:
    """An httpx transport handler answering from a list (the last answer repeats)."""

    def __init__(self, answers: Iterable[hx.Response | Exception | Responder]) -> None:
        self.answers = list(answers)
        self.requests: list[hx.Request] = []

    def __call__(self, request: hx.Request) -> hx.Response:
        request.read()
        self.requests.append(request)
        index = min(len(self.requests), len(self.answers)) - 1
        answer = self.answers[index]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, hx.Response):
            return answer
        return answer(request)

    def body(self, index: int = -1) -> Any:
        content = self.requests[index].content
        return json.loads(content) if content else None


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> hx.Response:
    return hx.Response(status, json=data, headers=headers)


class RecordedSleeps(list[float]):
    """Stands in for the client's sleep: records each delay, never sleeps."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


FAST_RETRIES = RetryConfig(max_attempts=4)


def make_client(
    script: Script, *, retry_config: RetryConfig | None = FAST_RETRIES, **kwargs: Any
) -> tuple[AsyncClerk, RecordedSleeps]:
    clerk = AsyncClerk(
        SECRET,
        server_url="https://api.test/v1",
        transport=hx.MockTransport(script),
        retry_config=retry_config,
        **kwargs,
    )
    sleeps = RecordedSleeps()
    clerk._transport.sleep = sleeps
    return clerk, sleeps
