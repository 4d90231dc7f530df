"""Cold start: a fresh process that imports the SDK, builds a client and completes one
``get`` against the benchmark server, wall time of the whole process.

This is what a CLI command or a serverless function pays on every start, so it counts
everything: the interpreter, the imports, building the client (httpx's SSL context
included, though the server speaks plain HTTP), connecting, the first request and
whatever is built on first use (our decoder is generated then). Each contender runs the
same steps under ``asyncio.run``:

- ours: ``AsyncClerk(...)`` then ``await clerk.sessions.get(id)``;
- raw httpx: ``httpx.AsyncClient(headers=...)``, ``get`` and ``json.loads``;
- official: ``clerk_backend_api.Clerk(...)`` then ``await sdk.sessions.get_async(...)``.

Every contender runs in ``rounds`` fresh processes, interleaved (`fresh_processes`);
the row has the medians and the notes the interquartile ranges, since the machine these
run on is shared.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks._common import (
    SECRET_KEY,
    SESSION_ID,
    ServerHandle,
    fresh_processes,
    importable,
    row,
)

__all__ = ["run"]

_OURS = """
import asyncio
from clerk_sessions import AsyncClerk

async def main():
    async with AsyncClerk({key!r}, server_url={base!r}) as clerk:
        session = await clerk.sessions.get({sid!r})
    assert session.id == {sid!r}

asyncio.run(main())
"""

_RAW = """
import asyncio
import json
import httpx

async def main():
    headers = {{"Authorization": "Bearer " + {key!r}, "Accept": "application/json"}}
    async with httpx.AsyncClient(headers=headers) as client:
        response = await client.get({base!r} + "/sessions/" + {sid!r})
    assert json.loads(response.content)["id"] == {sid!r}

asyncio.run(main())
"""

_OFFICIAL = """
import asyncio
from clerk_backend_api import Clerk

async def main():
    async with Clerk(bearer_auth={key!r}, server_url={base!r}) as sdk:
        session = await sdk.sessions.get_async(session_id={sid!r})
    assert session.id == {sid!r}

asyncio.run(main())
"""


def _quartiles(values: list[float]) -> str:
    q1, _median, q3 = statistics.quantiles(values, n=4)
    return f"{q1 * 1e3:.0f}-{q3 * 1e3:.0f}"


def _measure(server: ServerHandle, quick: bool) -> list[dict[str, Any]]:
    fields = {"key": SECRET_KEY, "base": server.base_url, "sid": SESSION_ID}
    scripts = {"ours": _OURS.format(**fields), "raw_httpx": _RAW.format(**fields)}
    missing = "official column skipped: clerk_backend_api not importable"
    if importable("clerk_backend_api"):
        scripts["official"] = _OFFICIAL.format(**fields)
        missing = ""
    rounds = 2 if quick else 25
    samples = fresh_processes(scripts, rounds)
    ms = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    spread = ", ".join(f"{name} {_quartiles(values)}" for name, values in samples.items())
    return [
        row(
            "cold start: import, client, one get",
            ms["ours"],
            ms["raw_httpx"],
            ms.get("official"),
            "ms",
            target="official <= 0.5; raw <= 1.3",
            notes=(
                f"median of {rounds} fresh processes each, interleaved; interquartile "
                f"ranges (ms): {spread}. {missing}"
            ).strip(),
            rounds=rounds,
            samples_ms={name: [v * 1e3 for v in values] for name, values in samples.items()},
        )
    ]


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """The cold-start row; starts its own server when given none."""
    if server is not None:
        return _measure(server, quick)
    from benchmarks._common import running_server

    with running_server(50 if quick else 500) as own:
        return _measure(own, quick)
