"""The sync facade's cost: ``Clerk.sessions.get`` per call, and 8 threads sharing it.

Contenders, measured in one run against the shared local server (its own process):

- ours: ``clerk_sessions.Clerk`` (the portal hop plus the async core);
- raw httpx2: ``httpx2.Client.get(...).json()`` with the same headers, the floor for any
  sync SDK built on httpx2;
- raw httpx: the same with ``httpx.Client``, the legacy library, beside it;
- official: ``clerk_backend_api.Clerk(...).sessions.get(session_id=...)`` (sync);
- portal floors: ``httpx2.AsyncClient.get`` + ``json.loads`` run from this thread on a
  portal's event loop thread, no SDK code in the call: by anyio's
  ``BlockingPortal.call``, and by the SDK's own portal hop (`clerk_sessions._portal`,
  one ``call_soon_threadsafe`` and one lock per call). That is the floor of any sync
  facade that runs async code on a portal, as API.md says `Clerk` does. The row's notes
  (and its ``portal_floor_us``) give the lower of the two, so the sync facade's cost
  splits into what the design costs (the floor against raw ``httpx2.Client``) and what
  the SDK adds to it.

Targets (the issues'): per call, within 1.3x of raw ``httpx2.Client``; with 8 threads,
one shared ``Clerk`` reaches at least half the throughput of 8 threads that each own an
``httpx2.Client`` (8 threads that each own an ``httpx.Client`` reported beside).

    python benchmarks/bench_sync.py [--quick]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import anyio.from_thread
import httpx
import httpx2

from benchmarks._common import (
    SECRET_KEY,
    SESSION_ID,
    ServerHandle,
    environment,
    interleave,
    row,
    running_server,
)
from clerk_sessions import AsyncClerk, Clerk
from clerk_sessions._portal import Portal

__all__ = ["run"]

THREADS = 8


def _official(url: str) -> Callable[[], Any] | None:
    try:
        import clerk_backend_api
    except ImportError:
        return None
    sdk = clerk_backend_api.Clerk(bearer_auth=SECRET_KEY, server_url=url)
    return lambda: sdk.sessions.get(session_id=SESSION_ID)


HEADERS = {"Authorization": f"Bearer {SECRET_KEY}", "Accept": "application/json"}
#: The raw contenders: the floor (httpx2) and the legacy library beside it.
LIBRARIES = {"raw": httpx2, "raw_httpx": httpx}


def per_call(url: str, quick: bool) -> dict[str, Any]:
    """Median microseconds per sync ``get``, the contenders interleaved."""
    raws = {name: library.Client(headers=HEADERS) for name, library in LIBRARIES.items()}
    get_url = f"{url}/sessions/{SESSION_ID}"
    with (
        Clerk(SECRET_KEY, server_url=url) as clerk,
        anyio.from_thread.start_blocking_portal("asyncio") as portal,
        # The SDK's hop with a raw client on its loop: the AsyncClerk a Portal is built
        # with is never called here.
        contextlib.closing(Portal(lambda: AsyncClerk(SECRET_KEY, server_url=url))) as hop,
    ):
        on_portal = portal.call(_async_client)
        on_hop = hop.call(lambda _: _async_client())
        contenders: dict[str, Callable[[], Any]] = {
            "ours": lambda: clerk.sessions.get(SESSION_ID),
            **{name: _raw_get(client, get_url) for name, client in raws.items()},
            "anyio_portal": lambda: portal.call(_async_get, on_portal, get_url),
            "sdk_hop": lambda: hop.call(lambda _: _async_get(on_hop, get_url)),
        }
        official = _official(url)
        if official is not None:
            contenders["official"] = official
        for fn in contenders.values():  # warm up: connections, imports, caches
            for _ in range(50):
                fn()
        rounds, inner = (10, 50) if quick else (30, 200)
        medians = interleave(contenders, rounds, inner=inner)
        portal.call(on_portal.aclose)
        hop.call(lambda _: on_hop.aclose())
    for client in raws.values():
        client.close()
    return {name: seconds * 1e6 for name, seconds in medians.items()}


async def _async_client() -> httpx2.AsyncClient:
    # Built on the portal's loop, the one it will be used on.
    return httpx2.AsyncClient(headers=HEADERS)


async def _async_get(client: httpx2.AsyncClient, url: str) -> Any:
    return json.loads((await client.get(url)).content)


def _raw_get(client: Any, url: str) -> Callable[[], Any]:
    return lambda: client.get(url).json()


def _each_own(clients: list[Any], url: str) -> Callable[[int], Callable[[], Any]]:
    """For `_throughput`: thread i gets with ``clients[i]``, a client of its own."""
    return lambda i: _raw_get(clients[i], url)


def _throughput(call: Callable[[int], Callable[[], Any]], seconds: float) -> float:
    """Calls per second of ``THREADS`` threads, each calling its own ``call(i)``."""
    fns = [call(i) for i in range(THREADS)]
    for fn in fns:
        fn()
    counts = [0] * THREADS
    start = threading.Barrier(THREADS + 1)
    deadline = 0.0

    def worker(i: int) -> None:
        fn = fns[i]
        start.wait()
        n = 0
        while time.perf_counter() < deadline:
            fn()
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - t0)


def threaded(url: str, quick: bool) -> dict[str, float]:
    """Calls per second: 8 threads on one shared `Clerk` vs 8 threads that each own an
    ``httpx2.Client`` (and an ``httpx.Client``)."""
    get_url = f"{url}/sessions/{SESSION_ID}"
    raws = {
        name: [library.Client(headers=HEADERS) for _ in range(THREADS)]
        for name, library in LIBRARIES.items()
    }
    seconds = 1.0 if quick else 3.0
    results: dict[str, list[float]] = {"ours": [], **{name: [] for name in raws}}
    with Clerk(SECRET_KEY, server_url=url) as clerk:
        for _ in range(1 if quick else 3):  # alternate, so noise hits all alike
            results["ours"].append(
                _throughput(lambda i: lambda: clerk.sessions.get(SESSION_ID), seconds)
            )
            for name, clients in raws.items():
                results[name].append(_throughput(_each_own(clients, get_url), seconds))
    for clients in raws.values():
        for client in clients:
            client.close()
    return {name: max(values) for name, values in results.items()}


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """Both measurements as rows of the common format."""
    if server is None:
        with running_server() as own:
            return run(quick, own)
    url = server.base_url
    with server.cpu_meter() as meter:
        single = per_call(url, quick)
    floor = min(single["anyio_portal"], single["sdk_hop"])
    rows = [
        row(
            "sync get (per call)",
            single["ours"],
            single["raw"],
            single.get("official"),
            "us/call",
            raw_httpx=single["raw_httpx"],
            target="raw <= 1.3",
            notes=(
                f"server CPU {meter['cpu_pct']:.0f}%; the portal floor (raw "
                f"httpx2.AsyncClient on a portal's loop, no SDK code) is {floor:.0f} us/call, "
                f"{floor / single['raw']:.2f}x raw httpx2.Client, and ours is "
                f"{single['ours'] / floor:.2f}x it (SDK's own hop {single['sdk_hop']:.0f} us, "
                f"anyio's BlockingPortal.call {single['anyio_portal']:.0f} us)"
            ),
            portal_floor_us=floor,
            sdk_hop_us=single["sdk_hop"],
            anyio_portal_us=single["anyio_portal"],
        ),
    ]
    with server.cpu_meter() as meter:
        shared = threaded(url, quick)
    rows.append(
        row(
            f"sync get, {THREADS} threads: one Clerk vs own httpx2.Client each",
            shared["ours"],
            shared["raw"],
            None,
            "calls/s",
            raw_httpx=shared["raw_httpx"],
            target="raw >= 0.5",
            better="higher",
            notes=f"server CPU {meter['cpu_pct']:.0f}%",
        )
    )
    return rows


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    env = environment()
    print(f"{env['python']}, {env['event_loop']}, importable here: {env['importable']}")
    for result in run(quick):
        ratios = (
            f"vs raw httpx2 {result['ratio_vs_raw']:.2f}x, "
            f"vs raw httpx {result['ratio_vs_raw_httpx']:.2f}x"
        )
        if result["ratio_vs_official"] is not None:
            ratios += f", vs official {result['ratio_vs_official']:.2f}x"
        official = "" if result["official"] is None else f", official {result['official']:.0f}"
        print(
            f"{result['name']}: ours {result['ours']:.0f}, raw httpx2 {result['raw']:.0f}, "
            f"raw httpx {result['raw_httpx']:.0f}{official} {result['unit']} ({ratios}; "
            f"target {result['target']}: {'met' if result['met'] else 'NOT met'}; "
            f"{result['notes']})"
        )


if __name__ == "__main__":
    main()
