"""clerk_sessions.django in async (ASGI) mode: the middleware on Django's ASGI handler and
require_session on async views. asyncio only: Django's async support is asyncio's."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import AsyncClient, AsyncRequestFactory
from django.test.utils import override_settings
from django.urls import path

from clerk_sessions.django import ClerkMiddleware, require_session
from clerk_sessions.testing import FakeClerk

from ._support import bearer, expired_token

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("django_env")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@require_session
async def async_me(request: HttpRequest) -> JsonResponse:
    claims = request.clerk_session
    return JsonResponse({"user_id": claims.user_id})


urlpatterns = [path("async-me/", async_me)]


async def test_the_middleware_runs_in_async_mode_under_an_async_handler(
    django_env: FakeClerk,
) -> None:
    session = django_env.add_session(user_id="user_alice")
    seen: list[HttpRequest] = []

    async def view(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse()

    middleware = ClerkMiddleware(view)
    assert iscoroutinefunction(middleware)
    request = AsyncRequestFactory().get("/", headers=bearer(django_env.mint_token(session["id"])))
    await middleware(request)
    assert seen[0].clerk_session.user_id == "user_alice"


async def test_the_example_views_through_the_asgi_handler(django_env: FakeClerk) -> None:
    session = django_env.add_session(user_id="user_alice")
    client = AsyncClient()
    good = await client.get("/me/", headers=bearer(django_env.mint_token(session["id"])))
    bad = await client.get("/me/", headers=bearer(expired_token(django_env, session["id"])))
    assert good.status_code == 200
    assert good.json()["user_id"] == "user_alice"
    assert bad.status_code == 401
    assert bad["WWW-Authenticate"].endswith('error_description="token_expired"')


async def test_require_session_on_an_async_view(django_env: FakeClerk) -> None:
    session = django_env.add_session(user_id="user_alice")
    client = AsyncClient()
    with override_settings(ROOT_URLCONF=__name__):
        good = await client.get("/async-me/", headers=bearer(django_env.mint_token(session["id"])))
        anonymous = await client.get("/async-me/")
    assert good.json() == {"user_id": "user_alice"}
    assert anonymous.status_code == 401


async def test_concurrent_async_requests_share_one_client_and_one_jwks_fetch(
    django_env: FakeClerk,
) -> None:
    tokens = [django_env.mint_token(django_env.add_session()["id"]) for _ in range(5)]
    statuses: list[int] = []

    async def call(token: str) -> None:
        answer: Any = await AsyncClient().get("/me/", headers=bearer(token))
        statuses.append(answer.status_code)

    async with anyio.create_task_group() as tg:
        for token in tokens * 4:
            tg.start_soon(call, token)
    assert statuses == [200] * 20
    assert [record.raw_path for record in django_env.requests] == ["/v1/jwks"]
