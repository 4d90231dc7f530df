"""clerk_sessions.django.aget_client: one AsyncClerk per event loop for async views and
ASGI consumers, closed with its loop: in Django's test clients (ASGI and WSGI handlers)
and under a real ASGI server (uvicorn on a loopback port) with concurrent requests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client
from django.test.utils import override_settings
from django.urls import path

from clerk_sessions import AsyncClerk
from clerk_sessions.django import aget_client, get_client, require_session
from clerk_sessions.errors import ConfigurationError
from clerk_sessions.testing import FakeClerk, FaultConfig
from tests.conftest import REPO_ROOT

from ._support import bearer, listening_socket, wait_until_up

handed_out: list[AsyncClerk] = []


@require_session
async def my_sessions(request: HttpRequest) -> JsonResponse:
    clerk = await aget_client()
    handed_out.append(clerk)
    sessions = await clerk.sessions.list(user_id=request.clerk_session.user_id)
    return JsonResponse({"sessions": sorted(session.id for session in sessions)})


urlpatterns = [path("my-sessions/", my_sessions)]


@pytest.fixture
def views(django_env: FakeClerk) -> Iterator[FakeClerk]:
    handed_out.clear()
    with override_settings(ROOT_URLCONF=__name__):
        yield django_env


def user_with_sessions(fake: FakeClerk, user_id: str) -> tuple[str, str, list[str]]:
    """A user with two sessions: a token of the first, its id, and both ids (sorted)."""
    ids = [fake.add_session(user_id=user_id)["id"] for _ in range(2)]
    return fake.mint_token(ids[0]), ids[0], sorted(ids)


async def state_of(client: AsyncClerk) -> str:
    try:
        await client.sessions.list(limit=1)
    except RuntimeError as exc:
        return str(exc)
    return "still open"


def assert_closed(client: AsyncClerk) -> None:
    # On a loop of its own: the client's loop has ended.
    assert "client has been closed" in asyncio.run(state_of(client))


# ---------------------------------------------------------------- in the running loop


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # Django's async stack is asyncio's
async def test_concurrent_async_views_of_one_loop_share_one_client(views: FakeClerk) -> None:
    users = [user_with_sessions(views, f"user_{n}") for n in range(4)]
    answers: list[tuple[Any, list[str]]] = []

    async def call(token: str, ids: list[str]) -> None:
        answers.append((await AsyncClient().get("/my-sessions/", headers=bearer(token)), ids))

    async with anyio.create_task_group() as tg:
        for token, _, ids in users * 3:
            tg.start_soon(call, token, ids)
    assert [(a.status_code, a.json()["sessions"]) for a, _ in answers] == [
        (200, ids) for _, ids in answers
    ]
    assert len(handed_out) == 12
    assert all(client is handed_out[0] for client in handed_out)
    assert await aget_client() is handed_out[0]


@pytest.mark.anyio
async def test_the_client_is_built_from_the_settings(views: FakeClerk) -> None:
    clerk = await aget_client()
    assert isinstance(clerk, AsyncClerk)
    assert clerk.server_url == get_client().server_url
    assert len(await clerk.sessions.list()) == 0


@pytest.mark.anyio
async def test_after_a_settings_change_the_next_call_builds_a_new_client(
    views: FakeClerk,
) -> None:
    before = await aget_client()
    with override_settings(CLERK_API_URL="http://127.0.0.1:9/v1"):
        during = await aget_client()
        assert during is not before
        assert during.server_url == "http://127.0.0.1:9/v1"
    after = await aget_client()
    assert after.server_url == before.server_url
    # The earlier clients stay usable until their loop ends: a task may hold one.
    assert await before.sessions.list() == []


@pytest.mark.anyio
async def test_a_missing_key_is_the_callers_error_and_the_next_call_tries_again(
    views: FakeClerk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLERK_SECRET_KEY", raising=False)
    with override_settings(CLERK_SECRET_KEY=None), pytest.raises(ConfigurationError):
        await aget_client()
    assert isinstance(await aget_client(), AsyncClerk)


# ---------------------------------------------------------------- a loop per request


def test_under_wsgi_each_async_view_gets_a_client_closed_after_its_request(
    views: FakeClerk,
) -> None:
    # Django runs an async view under WSGI on a loop of its own (async_to_sync).
    token, _, ids = user_with_sessions(views, "user_alice")
    client = Client()
    for _ in range(2):
        answer = client.get("/my-sessions/", headers=bearer(token))
        assert answer.json() == {"sessions": ids}
    first, second = handed_out
    assert first is not second
    assert_closed(first)
    assert_closed(second)


# ---------------------------------------------------------------- uvicorn


@pytest.fixture(scope="module")
def slow_fake() -> Iterator[tuple[FakeClerk, str]]:
    # A few ms per answer, so that the server's requests to Clerk overlap.
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.02, 0.04)))
    with fake.serve() as url:
        yield fake, url


@pytest.mark.slow
def test_under_uvicorn_concurrent_requests_share_one_client_closed_at_shutdown(
    slow_fake: tuple[FakeClerk, str],
) -> None:
    fake, fake_url = slow_fake
    users = [user_with_sessions(fake, f"user_{n}") for n in range(6)]
    sock = listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "DJANGO_"))}
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.integrations._django_uvicorn", str(sock.fileno())],
        cwd=REPO_ROOT,
        env={**env, "CLERK_SECRET_KEY": fake.secret_key, "CLERK_API_URL": fake_url},
        pass_fds=[sock.fileno()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sock.close()  # the server has its own copy
    try:
        wait_until_up(f"{url}/health/", process=server)
        answers = anyio.run(call_concurrently, url, users * 4)
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert answers == [
        (200, [{"id": one, "current": one == current} for one in ids])
        for _, current, ids in users * 4
    ]
    assert fake.peak_in_flight >= 2, "the requests to Clerk never overlapped"
    report = json.loads(out.strip().splitlines()[-1])
    assert report["clients"] == 1, report
    assert len(report["after"]) == 1
    assert "client has been closed" in report["after"][0]


async def call_concurrently(
    url: str, users: list[tuple[str, str, list[str]]]
) -> list[tuple[int, list[dict[str, Any]]]]:
    """``GET /sessions/`` for each user, all at once; the answers in the users' order."""
    results: dict[int, tuple[int, list[dict[str, Any]]]] = {}
    async with httpx2.AsyncClient(base_url=url, timeout=30) as http:

        async def call(n: int, token: str) -> None:
            answer = await http.get("/sessions/", headers=bearer(token))
            sessions = sorted(answer.json()["sessions"], key=lambda s: s["id"])
            results[n] = (answer.status_code, sessions)

        async with anyio.create_task_group() as tg:
            for n, (token, _, _) in enumerate(users):
                tg.start_soon(call, n, token)
    return [results[n] for n in range(len(users))]
