"""``mock`` as a long-running process, and ``demo`` end to end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import anyio
import httpx2
import pytest

from clerk_sessions import AsyncClerk
from tests.cli.conftest import base_env, run_cli


def start_mock(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "clerk_sessions.cli", "mock", "--port", "0", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=base_env(),
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Started processes; any still running at the end (a failed test) is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def read_exports(process: subprocess.Popen[str]) -> dict[str, str]:
    """The ``export NAME=value`` lines mock prints first (readline blocks until flushed)."""
    assert process.stdout is not None
    exports: dict[str, str] = {}
    while len(exports) < 2:
        line = process.stdout.readline()
        assert line, "mock exited before printing its URL and key"
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value
    return exports


def test_mock_serves_the_sdk_until_ctrl_c_then_exits_130(
    processes: list[subprocess.Popen[str]],
) -> None:
    process = start_mock("--seed-users", "2", "--sessions-per-user", "3")
    processes.append(process)
    exports = read_exports(process)

    async def use_it() -> list[str]:
        async with AsyncClerk(
            exports["CLERK_SECRET_KEY"], server_url=exports["CLERK_API_URL"]
        ) as clerk:
            first = await clerk.sessions.list(limit=100)
            await clerk.sessions.revoke(first[0].id)
            return [s.id for s in await clerk.sessions.list(status="active", limit=100)]

    active = anyio.run(use_it)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)

    assert len(active) == 5  # 2 users x 3 seeded sessions, one revoked
    assert process.returncode == 130
    assert "stopped (Ctrl-C)" in stderr
    assert "POST /v1/sessions/" in stderr  # the request log
    assert "Traceback" not in stderr


def test_mock_json_rate_limit_and_sigterm_exits_0(
    processes: list[subprocess.Popen[str]],
) -> None:
    process = start_mock("--json", "--seed-users", "1", "--rate-limit", "2/60", "--quiet")
    processes.append(process)
    assert process.stdout is not None
    announced = json.loads(process.stdout.readline())
    headers = {"Authorization": f"Bearer {announced['secret_key']}"}

    with httpx2.Client(base_url=announced["url"], headers=headers) as client:
        statuses = [client.get("/sessions").status_code for _ in range(3)]
        jwks = client.get("/jwks").status_code  # never counted against the quota
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=15)

    assert len(announced["sessions"]) == 2
    assert statuses == [200, 200, 429]
    assert jwks == 200
    assert process.returncode == 0
    assert "stopped (SIGTERM)" in stderr
    assert "GET /v1/sessions" not in stderr  # --quiet


def test_mock_says_so_when_the_port_is_taken(processes: list[subprocess.Popen[str]]) -> None:
    first = start_mock("--quiet")
    processes.append(first)
    port = read_exports(first)["CLERK_API_URL"].split(":")[2].split("/")[0]

    second = run_cli("mock", "--port", port)

    assert second.returncode == 1
    [line] = second.stderr.splitlines()
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")


def test_demo_runs_the_whole_flow_without_key_or_network_and_exits_0() -> None:
    started = time.monotonic()
    result = run_cli("demo")
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "1. Start a fake Clerk on a loopback port",
        "user_alice: 4, user_bob: 2, user_carol: 1",
        "verified with the public key from GET /jwks",
        "revoked 4, failed 0; user_alice now has 0 active session(s)",
        "/sessions/{session_id}/revoke",
        "7. Stop the server",
    ):
        assert expected in out
    assert "4/4" in result.stderr  # the progress bar's last frame
    assert elapsed < 10  # ~1.5 s here; generous for slow CI machines
