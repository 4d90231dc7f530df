"""Bulk revocation: ``revoke_many`` vs raw httpx2 (the floor), raw httpx and the official
SDK, same concurrency.

Each contender revokes N sessions at concurrency 64 against the shared precomputed server
(its own process), in a subprocess of its own, so its peak RSS (``ru_maxrss``) is its
own. Rows: throughput (ids/s, higher is better) and peak RSS at 500 and 5,000 ids
(flat is the goal: memory in flight is bounded by the concurrency; what grows is only
the result map, one `Session` per id, which the API promises).

    python -m benchmarks.bench_bulk            # full: 5,000 ids, 3 rounds
    python -m benchmarks.bench_bulk --quick    # 300 ids, 1 round (a smoke run)
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from benchmarks._common import SECRET_KEY, ServerHandle, row, running_server

CONCURRENCY = 64
CONTENDERS = ("ours", "raw", "raw_httpx", "official")
# The raw contenders' libraries: the floor, and the legacy library beside it.
LIBRARIES = {"raw": "httpx2", "raw_httpx": "httpx"}
# Pool shapes measured for our client (max_connections, max_keepalive_connections).
POOLS = {"100/64": (100, 64), "64/64": (64, 64), "100/20": (100, 20)}


def _ids(n: int) -> Iterator[str]:
    # A generator, as a batch job would pass: nothing about the ids is held up front.
    return (f"sess_2bBnmXaAaMHPOXoCaKQd{i:07d}" for i in range(n))


async def _ours(base_url: str, n: int, pool: str | None) -> int:
    import httpx2

    from clerk_sessions import AsyncClerk

    http_client = None
    if pool is not None:
        connections, keepalive = map(int, pool.split("/"))
        http_client = httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=connections, max_keepalive_connections=keepalive)
        )
    async with AsyncClerk(SECRET_KEY, server_url=base_url, http_client=http_client) as clerk:
        result = await clerk.sessions.revoke_many(_ids(n), concurrency=CONCURRENCY)
    if http_client is not None:
        await http_client.aclose()
    return len(result.revoked)


async def _raw(library: str, base_url: str, n: int) -> int:
    """64 workers revoking with one ``AsyncClient`` of ``library`` (httpx2 or httpx)."""
    import importlib

    http = importlib.import_module(library)
    headers = {"Authorization": f"Bearer {SECRET_KEY}", "Accept": "application/json"}
    ids = _ids(n)
    done = 0

    async def worker(client: Any) -> None:
        nonlocal done
        for session_id in ids:
            response = await client.post(f"{base_url}/sessions/{session_id}/revoke")
            response.raise_for_status()
            response.json()
            done += 1

    # The library's default pool (100 connections, 20 kept alive), as a raw user would
    # have it, and as ours is: a 64/64 pool measured several times slower here, which
    # would flatter us.
    async with http.AsyncClient(headers=headers) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return done


async def _official(base_url: str, n: int) -> int:
    from clerk_backend_api import Clerk

    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(clerk: Clerk, session_id: str) -> None:
        async with semaphore:
            await clerk.sessions.revoke_async(session_id=session_id)

    async with Clerk(bearer_auth=SECRET_KEY, server_url=base_url) as clerk:
        # The idiom its docs suggest: one task per id, a semaphore for the concurrency.
        await asyncio.gather(*(one(clerk, i) for i in _ids(n)))
    return n


def _contender_main(name: str, base_url: str, n: int, pool: str | None) -> None:
    """In the child: run one contender once, print seconds and peak RSS as JSON."""
    t0 = time.perf_counter()
    if name == "ours":
        done = asyncio.run(_ours(base_url, n, pool))
    elif name in LIBRARIES:
        done = asyncio.run(_raw(LIBRARIES[name], base_url, n))
    else:
        done = asyncio.run(_official(base_url, n))
    seconds = time.perf_counter() - t0
    assert done == n, (name, done, n)
    print(json.dumps({"seconds": seconds, "rss_mb": _peak_rss_kb() / 1024}))


def _peak_rss_kb() -> float:
    """This process's peak resident set size in KiB.

    ``VmHWM`` rather than ``getrusage(...).ru_maxrss``: on Linux a child's ru_maxrss
    starts from its parent's peak (it is kept across fork and exec), so every
    contender would report the runner's own peak. VmHWM belongs to the new image.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _measure(name: str, server: ServerHandle, n: int, pool: str | None = None) -> dict[str, float]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "benchmarks.bench_bulk", "--contender", name, server.base_url]
    args += [str(n), pool or "-"]
    out = subprocess.run(args, capture_output=True, check=True, cwd=root, env=env, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """The benchmark runner's entry point: the rows of this benchmark."""
    if server is None:
        with running_server() as own:
            return run(quick, own)
    # Quick mode only proves the module works (the suite's smoke test): a few hundred
    # ids, one round, no pool-shape comparison.
    n = 300 if quick else 5_000
    rounds = 1 if quick else 3
    pools = {} if quick else POOLS
    seconds: dict[str, list[float]] = {name: [] for name in (*CONTENDERS, *pools)}
    rss: dict[str, float] = {}
    for r in range(rounds):
        # Rotate the order so that noise from other processes hits everyone alike.
        order = [*CONTENDERS, *pools]
        order = order[r % len(order) :] + order[: r % len(order)]
        for name in order:
            if name in pools:
                sample = _measure("ours", server, n, name)
            else:
                sample = _measure(name, server, n)
            seconds[name].append(sample["seconds"])
            rss[name] = max(rss.get(name, 0.0), sample["rss_mb"])
    rate = {name: n / statistics.median(values) for name, values in seconds.items()}
    small_n = 100 if quick else 500
    small = {name: _measure(name, server, small_n)["rss_mb"] for name in CONTENDERS}
    rows = [
        row(
            f"revoke {n} ids, concurrency {CONCURRENCY}",
            rate["ours"],
            rate["raw"],
            rate["official"],
            "ids/s",
            raw_httpx=rate["raw_httpx"],
            target="raw >= 0.85; official > 1",
            better="higher",
            notes="pool shapes (ours, ids/s): "
            + ", ".join(f"{pool} {rate[pool]:.0f}" for pool in pools),
            pools={pool: rate[pool] for pool in pools},
        ),
        row(
            f"peak RSS at {n} ids / at {small_n} ids",
            rss["ours"] / small["ours"],
            rss["raw"] / small["raw"],
            rss["official"] / small["official"],
            "ratio",
            raw_httpx=rss["raw_httpx"] / small["raw_httpx"],
            notes=f"RSS MB at {small_n} -> {n}: "
            + ", ".join(f"{name} {small[name]:.1f} -> {rss[name]:.1f}" for name in CONTENDERS),
            rss_small_mb=small,
            rss_large_mb={name: rss[name] for name in CONTENDERS},
        ),
    ]
    return rows


def main(argv: list[str]) -> None:
    if argv[:1] == ["--contender"]:
        name, base_url, n, pool = argv[1:5]
        _contender_main(name, base_url, int(n), None if pool == "-" else pool)
        return
    for result in run(quick="--quick" in argv):
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
