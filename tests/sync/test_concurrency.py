"""The facade on a real loopback port: many threads, fork, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from clerk_sessions import Clerk
from clerk_sessions.testing import FakeClerk

from .conftest import portal_threads


@pytest.fixture
def quiet_fake() -> FakeClerk:
    # Checking thousands of answers against the spec would time the validator, not us.
    return FakeClerk(validate_responses=False)


def test_32_threads_share_one_portal_and_one_pool(quiet_fake: FakeClerk) -> None:
    ids = [quiet_fake.add_session(user_id=f"user_{i}")["id"] for i in range(32)]
    portal_counts: set[int] = set()

    with quiet_fake.serve() as url, Clerk(quiet_fake.secret_key, server_url=url) as clerk:
        pool = clerk._portal.client._transport.client

        def worker(i: int) -> list[str]:
            answers = []
            for _ in range(200):
                answers.append(clerk.sessions.get(ids[i]).user_id)
            portal_counts.add(len(portal_threads()))
            return answers

        with ThreadPoolExecutor(32) as pool_of_threads:
            results = list(pool_of_threads.map(worker, range(32)))

        assert clerk._portal.client._transport.client is pool

    assert results == [[f"user_{i}"] * 200 for i in range(32)]
    assert portal_counts == {1}


# Forking a process that runs threads (the portal's loop, a server's) is what this test
# is about: Python 3.12+ warns of it in general.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_client_used_before_fork_works_in_the_child(fake: FakeClerk, served_url: str) -> None:
    stored = fake.add_session(user_id="user_1")
    clerk = Clerk(fake.secret_key, server_url=served_url)
    clerk.sessions.get(stored["id"])  # the parent's portal and pool are running
    parent_pool = clerk._portal.client._transport.client
    read_end, write_end = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into pytest
        status = 1
        try:
            session = clerk.sessions.get(stored["id"])
            fresh = clerk._portal.client._transport.client is not parent_pool
            os.write(write_end, f"{session.user_id} fresh={fresh}".encode())
            clerk.close()
            status = 0
        finally:
            os._exit(status)

    os.close(write_end)
    try:
        answer = os.read(read_end, 1000).decode()
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(read_end)
        clerk.close()

    assert answer == "user_1 fresh=True"
    assert os.waitstatus_to_exitcode(status) == 0


class _SlowApp:
    """An ASGI app whose endpoint never answers; it records when the client goes away."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.disconnected = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()  # the request
        self.started.set()
        message = await receive()  # blocks until the client closes the connection
        if message["type"] == "http.disconnect":
            self.disconnected.set()


@pytest.fixture
def slow_server() -> Iterator[tuple[_SlowApp, str]]:
    from clerk_sessions.testing._server import BackgroundServer

    app = _SlowApp()
    server = BackgroundServer(app, host="127.0.0.1", port=0)  # type: ignore[arg-type]
    server.start()
    try:
        yield app, f"http://127.0.0.1:{server.port}/v1"
    finally:
        server.stop()


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need main"
)
def test_ctrl_c_cancels_the_request_in_flight(slow_server: tuple[_SlowApp, str]) -> None:
    app, slow_url = slow_server
    main = threading.main_thread().ident
    assert main is not None

    def interrupt_when_the_request_arrives() -> None:
        if app.started.wait(10):
            signal.pthread_kill(main, signal.SIGINT)

    with Clerk("sk_test_x", server_url=slow_url, retry_config=None) as clerk:
        before = clerk._portal.call(lambda c: _other_tasks())  # the portal's own
        interrupter = threading.Thread(target=interrupt_when_the_request_arrives)
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            clerk.sessions.get("sess_1")
        interrupter.join()

        assert app.disconnected.wait(5), "the server never saw the request go away"
        assert clerk._portal.call(lambda c: _other_tasks()) == before


def test_the_next_call_after_ctrl_c_works(
    slow_server: tuple[_SlowApp, str], fake: FakeClerk, served_url: str
) -> None:
    app, slow_url = slow_server
    stored = fake.add_session(user_id="user_1")
    main = threading.main_thread().ident
    assert main is not None

    def interrupt_when_the_request_arrives() -> None:
        if app.started.wait(10):
            signal.pthread_kill(main, signal.SIGINT)

    # One client whose first request hangs; the fake answers the second one.
    with Clerk(fake.secret_key, server_url=slow_url, retry_config=None) as clerk:
        interrupter = threading.Thread(target=interrupt_when_the_request_arrives)
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            clerk.sessions.get(stored["id"])
        interrupter.join()
        clerk._portal.client._transport.base_url = served_url

        assert clerk.sessions.get(stored["id"]).user_id == "user_1"


async def _other_tasks() -> set[asyncio.Task[Any]]:
    me = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not me}
