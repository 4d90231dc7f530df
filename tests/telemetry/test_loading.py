"""What OpenTelemetry costs when nobody listens: without ``opentelemetry-api`` nothing of
it is imported; installed but never loaded by the application, still nothing; loaded,
the first call after that is traced; and a span nobody records costs no attribute work
and is never made current. Fresh processes where what is imported matters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import httpx2
import pytest
from opentelemetry import trace

from clerk_sessions import AsyncClerk, _telemetry
from clerk_sessions.testing import FakeClerk
from tests.conftest import REPO_ROOT

from . import conftest
from .conftest import SERVER_URL, Telemetry

# Calls on both faces of the SDK, then what of OpenTelemetry the process imported.
CALLS = """
import sys, anyio
from clerk_sessions import AsyncClerk, Clerk

url, key, session_id = sys.argv[1:4]

async def main():
    async with AsyncClerk(key, server_url=url) as clerk:
        assert (await clerk.sessions.get(session_id)).id == session_id
        await clerk.sessions.revoke_many([session_id])

anyio.run(main)
with Clerk(key, server_url=url) as clerk:
    assert clerk.sessions.get(session_id).id == session_id
print(sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry"))
"""

# The package cannot be imported, as in an environment without opentelemetry-api.
UNINSTALLED = """
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""

# OpenTelemetry set up after the client's first call: the next call is traced.
LOADED_LATER = """
import sys, anyio
from clerk_sessions import AsyncClerk

url, key, session_id = sys.argv[1:4]

async def main():
    async with AsyncClerk(key, server_url=url) as clerk:
        await clerk.sessions.get(session_id)
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        await clerk.sessions.get(session_id)
        return [span.name for span in exporter.get_finished_spans()]

print(anyio.run(main))
"""


def run(script: str, served: tuple[FakeClerk, str, str]) -> str:
    fake, url, session_id = served
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), url, fake.secret_key, session_id],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_without_opentelemetry_installed_nothing_of_it_is_imported(
    served_session: tuple[FakeClerk, str, str],
) -> None:
    assert run(UNINSTALLED + CALLS, served_session) == "[]"
    assert len(served_session[0].requests) == 3


def test_installed_but_never_loaded_by_the_application_it_stays_unimported(
    served_session: tuple[FakeClerk, str, str],
) -> None:
    assert run(CALLS, served_session) == "[]"


def test_opentelemetry_set_up_after_the_first_call_traces_the_next_one(
    served_session: tuple[FakeClerk, str, str],
) -> None:
    assert json.loads(run(LOADED_LATER, served_session).replace("'", '"')) == ["clerk.sessions.get"]


@pytest.mark.anyio
async def test_a_span_nobody_records_gets_no_attributes_and_is_not_made_current(
    fake: FakeClerk, otel: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(base_url: str) -> str:
        raise AssertionError("an attribute was computed for a span nobody records")

    class Spy(httpx2.AsyncBaseTransport):
        """What the request sees as the current span while it is sent."""

        def __init__(self) -> None:
            self.inner = fake.transport()
            self.current: list[trace.Span] = []

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            self.current.append(trace.get_current_span())
            return await self.inner.handle_async_request(request)

    monkeypatch.setattr(_telemetry, "_server_address", refuse)
    monkeypatch.setattr(conftest._SAMPLER, "active", False)
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    spy = Spy()
    async with AsyncClerk(fake.secret_key, server_url=SERVER_URL, transport=spy) as clerk:
        await clerk.sessions.get(session_id)

    assert otel.spans() == []
    assert [span.get_span_context().is_valid for span in spy.current] == [False]
    # The metrics still count: they have their own provider.
    assert sum(otel.counter("clerk.client.requests").values()) == 1
