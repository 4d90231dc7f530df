"""The example Django project for real: ``manage.py check`` and gunicorn (2 pre-forked
workers x 4 threads, gthread) configured by environment, with the fake on another
loopback port, under concurrent requests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from clerk_sessions.testing import FakeClerk

from ._support import EXAMPLES, bearer, listening_socket, wait_until_up

pytestmark = pytest.mark.slow

PROJECT = EXAMPLES / "django_project"
WORKERS = 2


def project_env(**values: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CLERK_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return {**env, **values}


@pytest.mark.parametrize("with_key", [False, True])
def test_manage_py_check_reports_a_missing_key(with_key: bool) -> None:
    env = project_env(CLERK_SECRET_KEY="sk_test_check") if with_key else project_env()
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    if with_key:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert "clerk_sessions.E001" in result.stderr
        assert "HINT: Set CLERK_SECRET_KEY" in result.stderr


@pytest.fixture(scope="module")
def fake() -> FakeClerk:
    return FakeClerk()


@pytest.fixture(scope="module")
def gunicorn(fake: FakeClerk) -> Iterator[str]:
    with fake.serve() as fake_url:
        sock = listening_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        process = subprocess.Popen(
            [
                sys.executable,
                *("-m", "gunicorn", "clerk_example.wsgi:application"),
                *("--chdir", str(PROJECT)),
                *("--bind", f"fd://{sock.fileno()}"),
                *("--worker-class", "gthread", "--workers", str(WORKERS), "--threads", "4"),
                *("--graceful-timeout", "2", "--log-level", "warning"),
            ],
            env=project_env(CLERK_SECRET_KEY=fake.secret_key, CLERK_API_URL=fake_url),
            pass_fds=[sock.fileno()],
        )
        sock.close()  # gunicorn has its own copy
        try:
            wait_until_up(f"{url}/health/", process=process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=15)


def test_concurrent_requests_to_gunicorn(fake: FakeClerk, gunicorn: str) -> None:
    threads, requests_each = 8, 10
    users = []
    for n in range(threads):
        current = fake.add_session(user_id=f"user_{n}")
        phone = fake.add_session(user_id=f"user_{n}")
        users.append((current["id"], phone["id"], fake.mint_token(current["id"])))

    def signed_in(user: tuple[str, str, str]) -> list[int]:
        current, phone, token = user
        with httpx2.Client(base_url=gunicorn, headers=bearer(token), timeout=15) as http:
            statuses = []
            for _ in range(requests_each - 1):
                answer = http.get("/me/")
                assert answer.json()["session_id"] == current
                statuses.append(answer.status_code)
            statuses.append(http.post(f"/sessions/{phone}/revoke/").status_code)
            return statuses

    def signed_out(n: int) -> int:
        headers = bearer("garbage") if n % 2 else {}
        return httpx2.post(
            f"{gunicorn}/sessions/x/revoke/", headers=headers, timeout=15
        ).status_code

    with ThreadPoolExecutor(threads + 4) as pool:
        # Both kinds are submitted before any result is awaited, so they interleave.
        good_futures = [pool.submit(signed_in, user) for user in users]
        bad_futures = [pool.submit(signed_out, n) for n in range(8)]
        good = [future.result() for future in good_futures]
        bad = [future.result() for future in bad_futures]

    assert good == [[200] * requests_each] * threads
    assert bad == [401] * 8
    for current, phone, _ in users:
        assert fake.get_session(phone)["status"] == "revoked"
        assert fake.get_session(current)["status"] == "active"
    # One JWKS fetch per worker process at most: each has one client, one key cache.
    jwks_fetches = [r for r in fake.requests if r.raw_path == "/v1/jwks"]
    assert 1 <= len(jwks_fetches) <= WORKERS
