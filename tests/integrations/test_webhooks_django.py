"""clerk_sessions.django.webhook_view through Django's test clients: CSRF exempt, POST only,
400 with the reason for every bad delivery (and the view never runs), the secret from the
setting or the environment."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client
from django.test.utils import override_settings
from django.urls import path

from clerk_sessions.django import webhook_view
from clerk_sessions.errors import ConfigurationError
from clerk_sessions.webhooks import WebhookEvent, sign_webhook
from tests.webhooks._events import OTHER_SECRET, SECRET, body

calls: list[WebhookEvent] = []


@webhook_view
def clerk_events(request: HttpRequest, event: WebhookEvent) -> JsonResponse:
    calls.append(event)
    return JsonResponse({"id": event.id, "type": event.type, "session": event.session.id})


@webhook_view
async def async_clerk_events(request: HttpRequest, event: WebhookEvent) -> JsonResponse:
    calls.append(event)
    return JsonResponse({"id": event.id, "type": event.type})


@webhook_view
def with_route_argument(request: HttpRequest, event: WebhookEvent, tenant: str) -> JsonResponse:
    return JsonResponse({"tenant": tenant, "type": event.type})


urlpatterns = [
    path("hooks/clerk", clerk_events),
    path("hooks/clerk-async", async_clerk_events),
    path("hooks/<str:tenant>/clerk", with_route_argument),
]


@pytest.fixture(autouse=True)
def webhook_settings() -> Iterator[None]:
    calls.clear()
    with override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        CLERK_WEBHOOK_SIGNING_SECRET=SECRET,
    ):
        yield


def signed(data: bytes | None = None, **kwargs: Any) -> dict[str, str]:
    return sign_webhook(body() if data is None else data, secret=SECRET, **kwargs)


def post(data: bytes, headers: dict[str, str], url: str = "/hooks/clerk") -> Any:
    # Enforcing CSRF as a browser-facing site does: the decorator must exempt the view.
    client = Client(enforce_csrf_checks=True)
    return client.post(url, data=data, content_type="application/json", headers=headers)


def test_a_signed_delivery_reaches_the_view_with_its_event() -> None:
    headers = signed(msg_id="msg_1")
    response = post(body(), headers)
    assert response.status_code == 200
    assert response.json() == {"id": "msg_1", "type": "session.created", "session": "sess_1"}


def test_the_view_is_exempt_from_csrf_checks() -> None:
    assert post(body(), signed()).status_code == 200


def test_an_async_view_gets_the_event_too() -> None:
    response = post(body(), signed(msg_id="msg_2"), url="/hooks/clerk-async")
    assert response.json() == {"id": "msg_2", "type": "session.created"}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # Django's async is asyncio's
async def test_an_async_view_under_the_asgi_handler() -> None:
    response = await AsyncClient(enforce_csrf_checks=True).post(
        "/hooks/clerk-async", data=body(), content_type="application/json", headers=signed()
    )
    assert response.status_code == 200
    assert calls[0].type == "session.created"


def test_the_views_other_arguments_follow_the_event() -> None:
    response = post(body(), signed(), url="/hooks/acme/clerk")
    assert response.json() == {"tenant": "acme", "type": "session.created"}


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_than_post_get_405(method: str) -> None:
    response = getattr(Client(), method)("/hooks/clerk")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert calls == []


def bad_deliveries() -> dict[str, tuple[bytes, dict[str, str], str]]:
    not_json = b"<xml/>"
    return {
        "forged": (body(), sign_webhook(body(), secret=OTHER_SECRET), "signature"),
        "replayed": (body(), signed(timestamp=1_700_000_000), "timestamp"),
        "truncated": (body()[:40], signed(), "signature"),
        "not-json": (not_json, signed(not_json), "payload"),
        "header-less": (body(), {}, "missing_headers"),
        "5-mb": (b"{" + b" " * 5_000_000 + b"}", signed(), "payload"),
    }


@pytest.mark.parametrize("case", bad_deliveries())
def test_a_bad_delivery_gets_400_with_its_reason_and_the_view_never_runs(case: str) -> None:
    data, headers, reason = bad_deliveries()[case]
    response = post(data, headers)
    assert (response.status_code, response.json()) == (400, {"detail": reason})
    assert calls == []


def test_a_body_beyond_djangos_own_upload_limit_is_refused_as_payload() -> None:
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        response = post(body(), signed())
    assert (response.status_code, response.json()) == (400, {"detail": "payload"})


def test_the_secret_falls_back_on_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", SECRET)
    with override_settings(CLERK_WEBHOOK_SIGNING_SECRET=None):
        assert post(body(), signed()).status_code == 200


def test_the_setting_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", OTHER_SECRET)
    assert post(body(), signed()).status_code == 200


def test_no_secret_anywhere_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_WEBHOOK_SIGNING_SECRET", raising=False)
    with (
        override_settings(CLERK_WEBHOOK_SIGNING_SECRET=None),
        pytest.raises(ConfigurationError, match="CLERK_WEBHOOK_SIGNING_SECRET"),
    ):
        post(body(), signed())


def test_a_setting_of_the_wrong_type_is_a_configuration_error() -> None:
    with (
        override_settings(CLERK_WEBHOOK_SIGNING_SECRET=b"whsec_x"),
        pytest.raises(ConfigurationError, match="must be a string"),
    ):
        post(body(), signed())


def test_a_refusal_is_logged_with_its_reason_but_not_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="clerk_sessions")
    headers = sign_webhook(body(), secret=OTHER_SECRET)
    post(body(), headers)
    messages = [record.getMessage() for record in caplog.records]
    assert any("signature" in message for message in messages)
    for message in messages:
        for secret in (SECRET, OTHER_SECRET, headers["svix-signature"]):
            assert secret.removeprefix("whsec_").removeprefix("v1,") not in message
