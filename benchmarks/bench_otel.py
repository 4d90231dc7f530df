"""What the SDK's own OpenTelemetry costs an async ``get`` when nobody listens.

One client, one event loop, two contenders in alternating rounds (`interleave_async`):

- ours: ``AsyncClerk.sessions.get`` in a process that has loaded OpenTelemetry's API
  (``opentelemetry.trace`` and ``opentelemetry.metrics`` imported) with no tracer or
  meter provider set: every call starts a no-op span and makes four no-op metric calls;
- the floor: the same calls with the SDK's telemetry as in a process that never loaded
  OpenTelemetry (installed or not, the same code path: `clerk_sessions._telemetry`
  looks for it in ``sys.modules`` only).

The SDK decides once per process whether OpenTelemetry is there, so one process can
hold both states only by setting that decision before each call: each contender sets
the telemetry module's two globals (its view of ``sys.modules`` and the instruments it
made), which costs both alike. The API.md goal: ours / floor below 1.03.

It runs last (`benchmarks.run.BENCHMARKS`) and puts the module's state back as it
found it, OpenTelemetry loaded.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from benchmarks._common import SECRET_KEY, SESSION_ID, ServerHandle, interleave_async, row
from clerk_sessions import AsyncClerk, _telemetry

__all__ = ["run"]

FLOOR = "ours, OpenTelemetry not loaded"


async def _measure(server: ServerHandle, quick: bool) -> list[dict[str, Any]]:
    # Loaded as an application that uses OpenTelemetry has it; no provider is set.
    import opentelemetry.metrics
    import opentelemetry.trace

    rounds, inner = (3, 5) if quick else (60, 40)
    loaded = _telemetry.instruments()
    assert loaded is not None, "OpenTelemetry's API is imported, so the SDK must see it"
    async with AsyncClerk(SECRET_KEY, server_url=server.base_url) as ours:

        async def with_api() -> Any:
            _telemetry.loaded_in = sys.modules
            _telemetry._instruments = loaded
            return await ours.sessions.get(SESSION_ID)

        async def without() -> Any:
            _telemetry.loaded_in = {}
            _telemetry._instruments = None
            return await ours.sessions.get(SESSION_ID)

        try:
            for fn in (with_api, without):
                for _ in range(3):  # connections open, caches hot
                    await fn()
            with server.cpu_meter() as cpu:
                seconds = await interleave_async(
                    {"ours": with_api, "floor": without}, rounds, inner=inner
                )
        finally:
            _telemetry.loaded_in = sys.modules
            _telemetry._instruments = loaded
    provider = opentelemetry.trace.get_tracer_provider()
    return [
        row(
            "async get, OpenTelemetry API loaded, no provider",
            seconds["ours"] * 1e6,
            seconds["floor"] * 1e6,
            None,
            "us/call",
            floor=FLOOR,
            target="raw <= 1.03",
            notes=(
                f"one client, {rounds} alternating rounds of {inner} calls each; tracer "
                f"provider {type(provider).__name__} (none set), meter provider "
                f"{type(opentelemetry.metrics.get_meter_provider()).__name__}; server CPU "
                f"{cpu['cpu_pct']:.0f}% of one core"
            ),
            server_cpu_pct=cpu["cpu_pct"],
        )
    ]


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """The row; starts its own server when given none."""
    if server is not None:
        return asyncio.run(_measure(server, quick))
    from benchmarks._common import running_server

    with running_server(50 if quick else 500) as own:
        return asyncio.run(_measure(own, quick))
