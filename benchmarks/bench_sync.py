"""The sync facade's cost: ``Clerk.sessions.get`` per call, and 8 threads sharing it.

Contenders, measured in one run against the shared local server (its own process):

- ours: ``clerk_sessions.Clerk`` (the portal hop plus the async core);
- raw httpx: ``httpx.Client.get(...).json()`` with the same headers, the floor for any
  sync SDK built on httpx;
- official: ``clerk_backend_api.Clerk(...).sessions.get(session_id=...)`` (sync).

Targets (the issue's): per call, faster than the official SDK and within 1.7x of raw
httpx; with 8 threads, one shared ``Clerk`` reaches at least half the throughput of 8
threads that each own an ``httpx.Client``.

    python benchmarks/bench_sync.py [--quick]
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import httpx

from benchmarks._common import (
    SECRET_KEY,
    SESSION_ID,
    ServerHandle,
    environment,
    interleave,
    row,
    running_server,
)
from clerk_sessions import Clerk

__all__ = ["run"]

THREADS = 8


def _official(url: str) -> Callable[[], Any] | None:
    try:
        import clerk_backend_api
    except ImportError:
        return None
    sdk = clerk_backend_api.Clerk(bearer_auth=SECRET_KEY, server_url=url)
    return lambda: sdk.sessions.get(session_id=SESSION_ID)


def _raw_client() -> httpx.Client:
    return httpx.Client(
        headers={"Authorization": f"Bearer {SECRET_KEY}", "Accept": "application/json"}
    )


def per_call(url: str, quick: bool) -> dict[str, Any]:
    """Median microseconds per sync ``get``, the three contenders interleaved."""
    raw = _raw_client()
    get_url = f"{url}/sessions/{SESSION_ID}"
    with Clerk(SECRET_KEY, server_url=url) as clerk:
        contenders: dict[str, Callable[[], Any]] = {
            "ours": lambda: clerk.sessions.get(SESSION_ID),
            "raw": lambda: raw.get(get_url).json(),
        }
        official = _official(url)
        if official is not None:
            contenders["official"] = official
        for fn in contenders.values():  # warm up: connections, imports, caches
            for _ in range(50):
                fn()
        rounds, inner = (10, 50) if quick else (30, 200)
        medians = interleave(contenders, rounds, inner=inner)
    raw.close()
    return {name: seconds * 1e6 for name, seconds in medians.items()}


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
    """Calls per second: 8 threads on one shared `Clerk` vs 8 own ``httpx.Client``s."""
    get_url = f"{url}/sessions/{SESSION_ID}"
    raws = [_raw_client() for _ in range(THREADS)]
    seconds = 1.0 if quick else 3.0
    results: dict[str, list[float]] = {"ours": [], "raw": []}
    with Clerk(SECRET_KEY, server_url=url) as clerk:
        for _ in range(1 if quick else 3):  # alternate, so noise hits both alike
            results["ours"].append(
                _throughput(lambda i: lambda: clerk.sessions.get(SESSION_ID), seconds)
            )
            results["raw"].append(
                _throughput(lambda i: lambda: raws[i].get(get_url).json(), seconds)
            )
    for raw in raws:
        raw.close()
    return {name: max(values) for name, values in results.items()}


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """Both measurements as rows of the common format."""
    if server is None:
        with running_server() as own:
            return run(quick, own)
    url = server.base_url
    with server.cpu_meter() as meter:
        single = per_call(url, quick)
    rows = [
        row(
            "sync get (per call)",
            single["ours"],
            single["raw"],
            single.get("official"),
            "us/call",
            target="raw <= 1.7; official < 1",
            notes=f"server CPU {meter['cpu_pct']:.0f}%",
        )
    ]
    with server.cpu_meter() as meter:
        shared = threaded(url, quick)
    rows.append(
        row(
            f"sync get, {THREADS} threads: one Clerk vs own httpx.Client each",
            shared["ours"],
            shared["raw"],
            None,
            "calls/s",
            target="raw >= 0.5",
            better="higher",
            notes=f"server CPU {meter['cpu_pct']:.0f}%",
        )
    )
    return rows


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    env = environment()
    print(f"{env['python']}, {env['event_loop']}, sniffio importable: {env['sniffio_importable']}")
    for result in run(quick):
        ratios = f"vs raw {result['ratio_vs_raw']:.2f}x"
        if result["ratio_vs_official"] is not None:
            ratios += f", vs official {result['ratio_vs_official']:.2f}x"
        official = "" if result["official"] is None else f", official {result['official']:.0f}"
        print(
            f"{result['name']}: ours {result['ours']:.0f}, raw {result['raw_httpx']:.0f}"
            f"{official} {result['unit']} ({ratios}; target {result['target']}: "
            f"{'met' if result['met'] else 'NOT met'}; {result['notes']})"
        )


if __name__ == "__main__":
    main()
