"""The per-call speed of this checkout against an earlier one, side by side in one run.

    git worktree add /tmp/before <commit>
    python -m benchmarks.compare_calls /tmp/before              # 12 rounds
    python -m benchmarks.compare_calls /tmp/before --rounds 4

Why: the rows of `benchmarks.bench_async` and `benchmarks.bench_sync` measure this
checkout against raw clients in one process, but a change to the SDK itself (the move to
httpx2, say) is the difference between two SDKs, which cannot be imported into one
process. Here each contender runs in processes of its own against one local server, in
rounds that rotate the order, and each process reports the median of its calls: the
earlier checkout's SDK (its package first on ``PYTHONPATH``, on the distributions
installed here: an SDK on httpx needs ``httpx`` installed), this checkout's, raw httpx2
and raw httpx. It prints async get, async list and sync get in microseconds, with the
ratios to raw httpx2; it writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from benchmarks._common import LIST_SIZE, SECRET_KEY, SESSION_ID, running_server

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]

# One process: warm up, then time `calls` calls of each kind; print the medians (us).
_PROCESS = textwrap.dedent(
    """
    import asyncio, json, statistics, sys, time
    who, base, key, session_id, list_size, calls = sys.argv[1:7]
    calls = int(calls)
    HEADERS = {"Authorization": f"Bearer {key}", "Accept": "application/json",
               "Clerk-API-Version": "2026-05-12"}
    get_url = f"{base}/sessions/{session_id}"
    list_url = f"{base}/sessions?user_id=user_1&limit={list_size}"

    def timed(fn, n):
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1e6

    async def atimed(fn, n):
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            await fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1e6

    async def run_async():
        if who in ("after", "before"):
            from clerk_sessions import AsyncClerk
            async with AsyncClerk(key, server_url=base) as clerk:
                get = lambda: clerk.sessions.get(session_id)
                listing = lambda: clerk.sessions.list(user_id="user_1", limit=int(list_size))
                for _ in range(50):
                    await get()
                    await listing()
                return await atimed(get, calls), await atimed(listing, calls // 10)
        library = __import__("httpx2" if who == "raw" else "httpx")
        async with library.AsyncClient(headers=HEADERS) as http:
            async def get():
                return json.loads((await http.get(get_url)).content)
            async def listing():
                return json.loads((await http.get(list_url)).content)
            for _ in range(50):
                await get()
                await listing()
            return await atimed(get, calls), await atimed(listing, calls // 10)

    def run_sync():
        if who in ("after", "before"):
            from clerk_sessions import Clerk
            with Clerk(key, server_url=base) as clerk:
                get = lambda: clerk.sessions.get(session_id)
                for _ in range(50):
                    get()
                return timed(get, calls)
        library = __import__("httpx2" if who == "raw" else "httpx")
        with library.Client(headers=HEADERS) as http:
            get = lambda: json.loads(http.get(get_url).content)
            for _ in range(50):
                get()
            return timed(get, calls)

    async_get, async_list = asyncio.run(run_async())
    print(json.dumps({"async get": async_get, "async list": async_list, "sync get": run_sync()}))
    """
)

_WHO = ("after", "before", "raw", "raw_httpx")
_LABELS = {"after": "after", "before": "before", "raw": "raw httpx2", "raw_httpx": "raw httpx"}


def _one(who: str, base: str, before: Path, calls: int, list_size: int) -> dict[str, float]:
    env = dict(os.environ)
    path = [str(before)] if who == "before" else []
    env["PYTHONPATH"] = os.pathsep.join([*path, str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _PROCESS,
            who,
            base,
            SECRET_KEY,
            SESSION_ID,
            str(list_size),
            str(calls),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT if who != "before" else before,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{_LABELS[who]} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="a checkout of the earlier SDK")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--calls", type=int, default=400, help="gets per process")
    options = parser.parse_args(argv)
    if not (options.before / "clerk_sessions" / "__init__.py").is_file():
        parser.error(f"{options.before} holds no clerk_sessions package")
    samples: dict[str, dict[str, list[float]]] = {who: {} for who in _WHO}
    with running_server(LIST_SIZE) as server:
        for round_number in range(options.rounds):
            order = _WHO[round_number % len(_WHO) :] + _WHO[: round_number % len(_WHO)]
            for who in order:
                result = _one(who, server.base_url, options.before, options.calls, LIST_SIZE)
                for row, value in result.items():
                    samples[who].setdefault(row, []).append(value)
    for row in ("async get", "async list", "sync get"):
        us = {who: statistics.median(samples[who][row]) for who in _WHO}
        times = ", ".join(f"{_LABELS[who]} {us[who]:,.0f} us" for who in _WHO)
        ratios = ", ".join(
            f"{_LABELS[who]}/raw httpx2 {us[who] / us['raw']:.2f}x" for who in _WHO if who != "raw"
        )
        print(f"{row} ({options.rounds} rounds, medians): {times} | {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
