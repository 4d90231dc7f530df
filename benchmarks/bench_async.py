"""The 500-session ``list`` and async ``get`` per call, against the local server.

Four contenders on one event loop, in alternating rounds (`interleave_async`):

- ours: ``AsyncClerk.sessions.get`` / ``.list`` (default settings: retries on, which
  cost nothing on success; the list parsed with orjson when the ``fast`` extra is
  installed, as it is in the dev environment);
- raw httpx2: ``httpx2.AsyncClient.get`` + ``json.loads``, the floor for any SDK on
  httpx2, ours included;
- raw httpx: the same with ``httpx.AsyncClient``, the legacy library, beside it;
- official: ``clerk_backend_api.Clerk.sessions.get_async`` / ``list_async`` (defaults).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import httpx2

from benchmarks._common import SECRET_KEY, SESSION_ID, ServerHandle, interleave_async, row
from clerk_sessions import AsyncClerk
from clerk_sessions._codec import decode as _decode

__all__ = ["run"]

HEADERS = {
    "Authorization": f"Bearer {SECRET_KEY}",
    "Accept": "application/json",
    "Clerk-API-Version": "2026-05-12",
}


def _official_client(server: ServerHandle) -> Any | None:
    try:
        from clerk_backend_api import Clerk
    except ImportError:
        return None
    return Clerk(bearer_auth=SECRET_KEY, server_url=server.base_url)


async def _measure(server: ServerHandle, quick: bool) -> list[dict[str, Any]]:
    rounds, inner = (3, 5) if quick else (40, 40)
    list_rounds, list_inner = (2, 1) if quick else (25, 4)
    base = server.base_url
    get_url = f"{base}/sessions/{SESSION_ID}"
    list_url = f"{base}/sessions?user_id=user_1&limit={server.list_size}"
    official = _official_client(server)
    async with (
        AsyncClerk(SECRET_KEY, server_url=base) as ours,
        httpx2.AsyncClient(headers=HEADERS) as raw,
        httpx.AsyncClient(headers=HEADERS) as legacy,
    ):

        async def ours_get() -> Any:
            return await ours.sessions.get(SESSION_ID)

        async def raw_get() -> Any:
            return json.loads((await raw.get(get_url)).content)

        async def legacy_get() -> Any:
            return json.loads((await legacy.get(get_url)).content)

        async def ours_list() -> Any:
            return await ours.sessions.list(user_id="user_1", limit=server.list_size)

        async def raw_list() -> Any:
            return json.loads((await raw.get(list_url)).content)

        async def legacy_list() -> Any:
            return json.loads((await legacy.get(list_url)).content)

        gets = {"ours": ours_get, "raw": raw_get, "raw_httpx": legacy_get}
        lists = {"ours": ours_list, "raw": raw_list, "raw_httpx": legacy_list}
        if official is not None:

            async def official_get() -> Any:
                return await official.sessions.get_async(session_id=SESSION_ID)

            async def official_list() -> Any:
                return await official.sessions.list_async(user_id="user_1", limit=server.list_size)

            gets["official"] = official_get
            lists["official"] = official_list
        # Warm up: connections open, lazy imports and generated code done, caches hot.
        for fn in (*gets.values(), *lists.values()):
            for _ in range(3):
                await fn()
        assert (await ours_get()).id == SESSION_ID
        assert len(await ours_list()) == server.list_size
        with server.cpu_meter() as get_cpu:
            get_t = await interleave_async(gets, rounds, inner=inner)
        with server.cpu_meter() as list_cpu:
            list_t = await interleave_async(lists, list_rounds, inner=list_inner)
        if official is not None:
            await official.sdk_configuration.async_client.aclose()
    missing = (
        "" if official is not None else "official column skipped: clerk_backend_api not importable"
    )
    parser = (
        "orjson (the fast extra, installed here)"
        if _decode._fast_loads is not None
        else "json (orjson not installed, or the fast paths off)"
    )
    return [
        row(
            f"async list ({server.list_size} sessions)",
            *_columns(list_t, 1e3),
            "ms/call",
            raw_httpx=list_t["raw_httpx"] * 1e3,
            target="raw <= 1.1",
            notes=(
                f"ours parses with {parser}; raw httpx2 and raw httpx with json.loads; "
                f"server CPU {list_cpu['cpu_pct']:.0f}% of one core. {missing}"
            ).strip(),
            server_cpu_pct=list_cpu["cpu_pct"],
        ),
        row(
            "async get",
            *_columns(get_t, 1e6),
            "us/call",
            raw_httpx=get_t["raw_httpx"] * 1e6,
            target="raw <= 1.0",
            notes=(
                f"ours parses with {parser}; server CPU {get_cpu['cpu_pct']:.0f}% of one core. "
                f"{missing}"
            ).strip(),
            server_cpu_pct=get_cpu["cpu_pct"],
        ),
    ]


def _columns(seconds: dict[str, float], scale: float) -> tuple[float, float, float | None]:
    """Ours, raw httpx2 and the official SDK's time, in the row's unit."""
    official = seconds.get("official")
    return (
        seconds["ours"] * scale,
        seconds["raw"] * scale,
        None if official is None else official * scale,
    )


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """Rows for async ``get`` and ``list``; starts its own server when given none."""
    if server is not None:
        return asyncio.run(_measure(server, quick))
    from benchmarks._common import running_server

    with running_server(50 if quick else 500) as own:
        return asyncio.run(_measure(own, quick))
