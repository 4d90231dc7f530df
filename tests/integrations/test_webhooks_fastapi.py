"""clerk_sessions.fastapi.clerk_webhook through Starlette's TestClient: the event for a
good delivery, 400 with the reason (never 500) for a bad one, and the endpoint never runs."""

# No `from __future__ import annotations`: FastAPI must resolve the endpoints' annotations.
import logging
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clerk_sessions.errors import ConfigurationError
from clerk_sessions.fastapi import ClerkWebhook, clerk_webhook
from clerk_sessions.webhooks import WebhookEvent, sign_webhook
from tests.webhooks._events import OTHER_SECRET, SECRET, body


def receiver(dependency: Any = clerk_webhook) -> tuple[FastAPI, list[WebhookEvent]]:
    """An app whose ``/hooks/clerk`` records and answers each verified event."""
    app = FastAPI()
    seen: list[WebhookEvent] = []

    @app.post("/hooks/clerk")
    async def clerk_events(event: Annotated[WebhookEvent, Depends(dependency)]) -> dict[str, Any]:
        seen.append(event)
        session_id = event.session.id if event.session else None
        return {"id": event.id, "type": event.type, "session": session_id}

    return app, seen


@pytest.fixture
def secret_in_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", SECRET)
    yield


def signed(data: bytes | None = None, **kwargs: Any) -> dict[str, str]:
    return sign_webhook(body() if data is None else data, secret=SECRET, **kwargs)


@pytest.mark.usefixtures("secret_in_env")
def test_a_signed_delivery_gives_the_endpoint_its_event() -> None:
    app, _ = receiver()
    response = TestClient(app).post("/hooks/clerk", content=body(), headers=signed(msg_id="m1"))
    assert response.status_code == 200
    assert response.json() == {"id": "m1", "type": "session.created", "session": "sess_1"}


def test_a_dependency_may_carry_its_own_secret() -> None:
    app, _ = receiver(ClerkWebhook(secret=SECRET))
    assert TestClient(app).post("/hooks/clerk", content=body(), headers=signed()).status_code == 200


def test_a_dependency_may_widen_the_tolerance() -> None:
    app, _ = receiver(ClerkWebhook(secret=SECRET, tolerance_s=10**10))
    headers = signed(timestamp=1_700_000_000)
    assert TestClient(app).post("/hooks/clerk", content=body(), headers=headers).status_code == 200


def bad_deliveries() -> dict[str, tuple[Any, dict[str, str], str]]:
    not_json = b"<xml/>"

    def five_megabytes_in_chunks() -> Iterator[bytes]:
        yield b"{"
        for _ in range(50):
            yield b" " * 100_000
        yield b"}"

    return {
        "forged": (body(), sign_webhook(body(), secret=OTHER_SECRET), "signature"),
        "replayed": (body(), signed(timestamp=1_700_000_000), "timestamp"),
        "truncated": (body()[:40], signed(), "signature"),
        "not-json": (not_json, signed(not_json), "payload"),
        "header-less": (body(), {}, "missing_headers"),
        "5-mb": (b"{" + b" " * 5_000_000 + b"}", signed(), "payload"),
        "5-mb-chunked": (five_megabytes_in_chunks(), signed(), "payload"),
    }


@pytest.mark.usefixtures("secret_in_env")
@pytest.mark.parametrize("case", bad_deliveries())
def test_a_bad_delivery_gets_400_with_its_reason_and_the_endpoint_never_runs(case: str) -> None:
    data, headers, reason = bad_deliveries()[case]
    app, seen = receiver()
    response = TestClient(app).post("/hooks/clerk", content=data, headers=headers)
    assert (response.status_code, response.json()) == (400, {"detail": reason})
    assert seen == []


def test_no_secret_anywhere_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_WEBHOOK_SIGNING_SECRET", raising=False)
    app, seen = receiver()
    with pytest.raises(ConfigurationError, match="CLERK_WEBHOOK_SIGNING_SECRET"):
        TestClient(app).post("/hooks/clerk", content=body(), headers=signed())
    assert seen == []


@pytest.mark.usefixtures("secret_in_env")
def test_a_plain_starlette_endpoint_can_await_the_dependency() -> None:
    async def clerk_events(request: Request) -> JSONResponse:
        event = await clerk_webhook(request)
        return JSONResponse({"type": event.type})

    app = Starlette(routes=[Route("/hooks/clerk", clerk_events, methods=["POST"])])
    client = TestClient(app)
    assert client.post("/hooks/clerk", content=body(), headers=signed()).json() == {
        "type": "session.created"
    }
    refused = client.post("/hooks/clerk", content=body(), headers={})
    assert (refused.status_code, refused.text) == (400, "missing_headers")


def test_the_dependency_adds_nothing_to_the_openapi_schema() -> None:
    app, _ = receiver()
    operation = app.openapi()["paths"]["/hooks/clerk"]["post"]
    assert "parameters" not in operation and "requestBody" not in operation


def test_the_dependency_repr_shows_no_secret() -> None:
    assert SECRET.removeprefix("whsec_") not in repr(ClerkWebhook(secret=SECRET))
    assert "given" in repr(ClerkWebhook(secret=SECRET))


@pytest.mark.usefixtures("secret_in_env")
def test_a_refusal_is_logged_with_its_reason_but_not_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="clerk_sessions")
    app, _ = receiver()
    headers = sign_webhook(body(), secret=OTHER_SECRET)
    TestClient(app).post("/hooks/clerk", content=body(), headers=headers)
    messages = [record.getMessage() for record in caplog.records]
    assert any("signature" in message for message in messages)
    for message in messages:
        for secret in (SECRET, OTHER_SECRET, headers["svix-signature"]):
            assert secret.removeprefix("whsec_").removeprefix("v1,") not in message
