"""``mock --webhook-url``: the fake as a process, delivering session events to an app's
receiver on a loopback port, with the signing secret printed for the app."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import anyio
import pytest

from clerk_sessions import AsyncClerk
from tests.cli.conftest import base_env, run_cli
from tests.webhooks._receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

SECRET = "whsec_bW9jayAtLXdlYmhvb2stdXJs"


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
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def read_exports(process: subprocess.Popen[str], count: int) -> dict[str, str]:
    assert process.stdout is not None
    exports: dict[str, str] = {}
    while len(exports) < count:
        line = process.stdout.readline()
        assert line, "mock exited before printing its exports"
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value
    return exports


def wait_for_events(receiver: Receiver, count: int) -> None:
    """Until the receiver accepted ``count`` events (deliveries come from another process)."""
    arrived = threading.Event()
    for _ in range(200):
        if len(receiver.events) >= count:
            return
        arrived.wait(0.05)
    raise AssertionError(f"{len(receiver.events)} events arrived, expected {count}")


def test_mock_delivers_session_events_to_the_url_and_prints_the_secret(
    processes: list[subprocess.Popen[str]],
) -> None:
    receiver = Receiver(SECRET)
    with receiver.serve() as hook_url:
        process = start_mock(
            "--seed-users", "1", "--sessions-per-user", "1",
            "--webhook-url", hook_url, "--webhook-secret", SECRET,
        )  # fmt: skip
        processes.append(process)
        exports = read_exports(process, 3)
        wait_for_events(receiver, 1)  # the seeded session's session.created

        async def revoke_the_seeded_session() -> str:
            async with AsyncClerk(
                exports["CLERK_SECRET_KEY"], server_url=exports["CLERK_API_URL"]
            ) as clerk:
                [session] = await clerk.sessions.list()
                await clerk.sessions.revoke(session.id)
                return session.id

        session_id = anyio.run(revoke_the_seeded_session)
        wait_for_events(receiver, 2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)

    assert exports["CLERK_WEBHOOK_SIGNING_SECRET"] == SECRET
    assert [(e.type, e.session.id if e.session else None) for e in receiver.events] == [
        ("session.created", session_id),
        ("session.revoked", session_id),
    ]
    assert f"webhook session.revoked {session_id} -> 200" in stderr
    assert process.returncode == 130
    assert "Traceback" not in stderr


def test_mock_json_announces_the_webhook_url_and_secret(
    processes: list[subprocess.Popen[str]],
) -> None:
    with socket.socket() as sock:  # a port nobody listens on: deliveries are refused
        sock.bind(("127.0.0.1", 0))
        hook_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    process = start_mock("--json", "--seed-users", "0", "--webhook-url", hook_url)
    processes.append(process)
    assert process.stdout is not None
    announced = json.loads(process.stdout.readline())
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=15)

    assert announced["webhook_url"] == hook_url
    assert announced["webhook_secret"].startswith("whsec_")
    assert process.returncode == 0


def test_mock_refuses_an_unusable_webhook_secret_without_echoing_it() -> None:
    result = run_cli("mock", "--webhook-url", "http://127.0.0.1:9/h", "--webhook-secret", "s3cr3t!")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --webhook-secret: secret is not a webhook signing secret")
    assert "s3cr3t" not in result.stderr


def test_mock_refuses_a_webhook_url_that_is_not_http() -> None:
    result = run_cli("mock", "--webhook-url", "localhost:8000/hooks")
    assert result.returncode == 2
    assert "--webhook-url: webhook_url must be an http:// or https:// URL" in result.stderr
