"""The background server's failure paths, the lazy ``clerk_sessions.testing`` package,
and ``ManualClock``."""

from __future__ import annotations

import sys
import time

import pytest

import clerk_sessions.testing as testing
from clerk_sessions.testing import FakeClerk, ManualClock
from clerk_sessions.testing._server import BackgroundServer


@pytest.mark.skipif(
    sys.platform != "linux", reason="Linux lets two SO_REUSEADDR sockets bind one idle port"
)
def test_a_server_whose_port_is_taken_by_the_time_it_starts_says_why() -> None:
    fake = FakeClerk()
    first = BackgroundServer(fake.app, host="127.0.0.1", port=0)
    # Bound but not yet listening, so the second bind succeeds; its listen() cannot.
    second = BackgroundServer(fake.app, host="127.0.0.1", port=first.port)
    first.start()
    try:
        with pytest.raises(RuntimeError, match=r"did not start: OSError\(.*in use"):
            second.start()
    finally:
        first.stop()


def test_a_server_that_cannot_start_in_time_is_stopped_and_says_so() -> None:
    server = BackgroundServer(FakeClerk().app, host="127.0.0.1", port=0)

    class NeverStarts:
        """A uvicorn server stand-in whose startup never finishes (until told to exit)."""

        started = False
        should_exit = False

        def run(self, sockets: object) -> None:
            while not self.should_exit:
                time.sleep(0.001)

    server._server = NeverStarts()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="did not start in time"):
        server.start(timeout=0.05)

    assert not server._thread.is_alive()
    server.stop()  # stopping again is harmless


def test_server_repr_says_port_and_whether_it_started() -> None:
    server = BackgroundServer(FakeClerk().app, host="127.0.0.1", port=0)
    assert repr(server) == f"BackgroundServer({{'port': {server.port}, 'started': False}})"
    server.start()
    try:
        assert repr(server) == f"BackgroundServer({{'port': {server.port}, 'started': True}})"
    finally:
        server.stop()


def test_the_testing_package_lists_its_names_and_refuses_unknown_ones() -> None:
    assert dir(testing) == sorted(testing.__all__)
    assert "FakeClerk" in dir(testing)
    with pytest.raises(AttributeError, match="has no attribute 'FakeClark'"):
        testing.FakeClark  # type: ignore[attr-defined]  # noqa: B018


def test_manual_clock_jumps_with_set_and_refuses_to_go_back() -> None:
    clock = ManualClock(start=100.0)

    clock.set(50.0)  # set may jump anywhere, backwards too
    clock.advance(2.5)

    assert clock() == 52.5
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    assert clock() == 52.5
