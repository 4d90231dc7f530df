"""examples/fastapi_app: in process against the fake's transport, and once for real,
served by uvicorn in a subprocess configured by environment, with the fake on another
port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx2
import pytest
from fastapi.testclient import TestClient

from clerk_sessions.testing import FakeClerk

from ._support import EXAMPLES, bearer, listening_socket, load_example, wait_until_up

example = load_example("fastapi_app/app.py", "clerk_examples_fastapi_app")


@pytest.fixture
def client(fake: FakeClerk) -> Iterator[TestClient]:
    app = example.create_app(
        bearer_auth=fake.secret_key,
        server_url="http://fake.clerk.test/v1",
        transport=fake.transport(),
    )
    with TestClient(app) as client:
        yield client


def devices(fake: FakeClerk, user_id: str, count: int) -> list[str]:
    return [fake.add_session(user_id=user_id)["id"] for _ in range(count)]


def statuses(fake: FakeClerk, session_ids: list[str]) -> set[str]:
    return {fake.get_session(session_id)["status"] for session_id in session_ids}


def test_me_answers_from_the_token(fake: FakeClerk, client: TestClient) -> None:
    [current] = devices(fake, "user_alice", 1)
    answer = client.get("/me", headers=bearer(fake.mint_token(current)))
    assert answer.status_code == 200
    assert answer.json()["user_id"] == "user_alice"
    assert answer.json()["session_id"] == current


def test_sessions_lists_the_callers_active_sessions(fake: FakeClerk, client: TestClient) -> None:
    current, other = devices(fake, "user_alice", 2)
    devices(fake, "user_bob", 1)
    fake.add_session(user_id="user_alice", status="ended")
    answer = client.get("/sessions", headers=bearer(fake.mint_token(current)))
    assert sorted((s["id"], s["current"]) for s in answer.json()) == sorted(
        [(current, True), (other, False)]
    )


def test_sign_out_others_revokes_every_other_device_of_the_caller_only(
    fake: FakeClerk, client: TestClient
) -> None:
    # More than one page of sessions (the API's default page is 10).
    current, *others = devices(fake, "user_alice", 15)
    bobs = devices(fake, "user_bob", 2)
    answer = client.post("/sessions/sign-out-others", headers=bearer(fake.mint_token(current)))
    assert answer.status_code == 200
    assert answer.json() == {"revoked": sorted(others), "failed": {}}
    assert statuses(fake, others) == {"revoked"}
    assert statuses(fake, [current, *bobs]) == {"active"}


def test_sign_out_others_with_no_other_device_revokes_nothing(
    fake: FakeClerk, client: TestClient
) -> None:
    [current] = devices(fake, "user_alice", 1)
    answer = client.post("/sessions/sign-out-others", headers=bearer(fake.mint_token(current)))
    assert answer.json() == {"revoked": [], "failed": {}}
    assert not any(record.raw_path.endswith("/revoke") for record in fake.requests)


@pytest.mark.parametrize("path", ["/me", "/sessions"])
def test_signed_out_callers_get_401(fake: FakeClerk, client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    answer = client.post("/sessions/sign-out-others", headers=bearer("garbage"))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].endswith('error_description="token_malformed"')


def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


# ---------------------------------------------------------------- on real ports


@pytest.fixture
def served_example(fake: FakeClerk) -> Iterator[str]:
    """The example app under uvicorn in a subprocess, configured by environment only."""
    with fake.serve() as fake_url:
        sock = listening_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {
            **os.environ,
            "CLERK_SECRET_KEY": fake.secret_key,
            "CLERK_API_URL": fake_url,
        }
        env.pop("CLERK_JWT_KEY", None)
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "uvicorn", "app:app"),
                *("--app-dir", str(EXAMPLES / "fastapi_app")),
                *("--fd", str(sock.fileno())),
                *("--log-level", "warning"),
            ],
            env=env,
            pass_fds=[sock.fileno()],
        )
        sock.close()  # the child has its own copy
        try:
            wait_until_up(f"{url}/health", process=process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.mark.slow
def test_the_example_served_by_uvicorn_signs_out_other_devices(
    fake: FakeClerk, served_example: str
) -> None:
    current, *others = devices(fake, "user_alice", 4)
    token = fake.mint_token(current)
    with httpx2.Client(base_url=served_example, timeout=10) as http:
        assert http.get("/me", headers=bearer(token)).json()["session_id"] == current
        assert http.get("/me").status_code == 401
        answer = http.post("/sessions/sign-out-others", headers=bearer(token))
    assert answer.status_code == 200
    assert answer.json() == {"revoked": sorted(others), "failed": {}}
    assert statuses(fake, others) == {"revoked"}
    assert statuses(fake, [current]) == {"active"}
    # The app's verification fetched the JWKS once, over the network.
    assert [r.raw_path for r in fake.requests].count("/v1/jwks") == 1
