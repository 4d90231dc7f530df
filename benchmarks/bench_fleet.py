"""A fleet on one quota: 4 processes on one ``RedisRateLimit`` against the fake's quota.

Clerk's production quota (1000 requests per 10 s) is scaled to 200 per 2 s: the same
100 requests/s, in windows short enough that a run of four windows takes seconds. The
fake Clerk enforces it (a sliding window; 429 with ``Retry-After`` past it) on a real
loopback port, with a real ``redis-server`` beside it. Each process runs 16 callers
that call again as soon as they have an answer, so demand is always above the quota.

Rows (each compared with the same fleet of raw httpx2 processes, no limiter, full speed;
the fleet measures the limiter against the quota, not an HTTP library, so raw httpx has
no column here):

- the share of the quota used over the run's full windows (target >= 0.95) and the
  share of requests answered without a 429 (target: all; 429s counted in the notes);
- the limiter's own cost per request on loopback (its Redis round trips and bookkeeping,
  not the waiting it imposes), p99 (target < 5 ms), measured in one process with one
  caller under a quota far above it, against a whole raw httpx2 GET to the fake made the
  same way; the notes give the same cost inside the loaded fleet, and the Redis round
  trips per request in the fleet (target <= 3), counted from the server's
  ``INFO commandstats`` (the commands the script runs inside Redis excluded).

    python -m benchmarks.bench_fleet            # full: 4 processes, 4 windows of 2 s
    python -m benchmarks.bench_fleet --quick    # 1 process, 1 window of 1 s (smoke)
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import row

FULL = {
    "processes": 4, "requests": 200, "per_seconds": 2.0, "windows": 4, "callers": 16,
    "solo_calls": 1000,
}  # fmt: skip
QUICK = {
    "processes": 1, "requests": 20, "per_seconds": 1.0, "windows": 1, "callers": 4,
    "solo_calls": 50,
}  # fmt: skip


# ------------------------------------------------------------------ worker processes


async def _worker(config: dict[str, Any]) -> dict[str, Any]:
    """One process: ``callers`` tasks calling until the deadline; timings of each call."""
    import anyio
    import httpx2

    costs: list[float] = []
    gets: list[float] = []
    statuses: dict[str, int] = {}
    url = f"{config['server_url']}/sessions/{config['session_id']}"

    if config["kind"] == "raw":
        headers = {"Authorization": f"Bearer {config['secret_key']}"}
        async with httpx2.AsyncClient(headers=headers) as client:
            deadline = time.monotonic() + config["duration"]
            left = [config.get("calls") or math.inf]

            async def raw_loop() -> None:
                while time.monotonic() < deadline and left[0] > 0:
                    left[0] -= 1
                    t0 = time.perf_counter()
                    response = await client.get(url)
                    gets.append(time.perf_counter() - t0)
                    key = str(response.status_code)
                    statuses[key] = statuses.get(key, 0) + 1

            async with anyio.create_task_group() as tg:
                for _ in range(config["callers"]):
                    tg.start_soon(raw_loop)
        return {"gets": gets, "statuses": statuses}

    from clerk_sessions import AsyncClerk
    from clerk_sessions.errors import ClerkErrors
    from clerk_sessions.redis import RedisRateLimit
    from clerk_sessions.redis._binding import Binding

    # The limiter's own cost: the time in acquire (less the sleeps it asks for, which
    # are the quota working, not overhead) plus the time in finished.
    acquire, finished = Binding.acquire, Binding.finished

    async def timed_acquire(self: Any, sleep: Any) -> object:
        slept = 0.0

        async def timed_sleep(seconds: float) -> None:
            nonlocal slept
            t = time.perf_counter()
            await sleep(seconds)
            slept += time.perf_counter() - t

        t0 = time.perf_counter()
        token = await acquire(self, timed_sleep)
        costs.append(time.perf_counter() - t0 - slept)
        return token

    async def timed_finished(self: Any, token: object) -> None:
        t0 = time.perf_counter()
        await finished(self, token)
        costs[-1] += time.perf_counter() - t0  # one sample per request, close enough

    Binding.acquire = timed_acquire  # type: ignore[method-assign]
    Binding.finished = timed_finished  # type: ignore[method-assign]
    quota = RedisRateLimit(config["redis_url"], config["requests"], config["per_seconds"])
    async with AsyncClerk(
        config["secret_key"], server_url=config["server_url"], rate_limit=quota
    ) as clerk:
        deadline = time.monotonic() + config["duration"]
        left = [config.get("calls") or math.inf]

        async def loop() -> None:
            while time.monotonic() < deadline and left[0] > 0:
                left[0] -= 1
                try:
                    await clerk.sessions.get(config["session_id"])
                    key = "200"
                except ClerkErrors as exc:
                    key = str(exc.status_code)
                statuses[key] = statuses.get(key, 0) + 1

        async with anyio.create_task_group() as tg:
            for _ in range(config["callers"]):
                tg.start_soon(loop)
    return {"costs": costs, "statuses": statuses}


def _worker_main(config_json: str) -> None:
    import anyio
    import httpx2  # noqa: F401 - imported before "ready": the run's clock starts at "go"

    import clerk_sessions.redis  # noqa: F401

    config = json.loads(config_json)
    print("ready", flush=True)
    sys.stdin.readline()
    result = anyio.run(_worker, config)
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ the orchestrator


def _fleet(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_fleet", "worker", json.dumps(c)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        for c in configs
    ]
    try:
        for p in processes:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in processes:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in processes:
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                raise RuntimeError(f"a fleet worker failed with exit code {p.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


def _used_share(times: list[float], size: dict[str, Any]) -> float:
    """Starts in the run's full windows over what the quota allows in them."""
    start = min(times)
    windows = size["windows"]
    used = sum(t < start + windows * size["per_seconds"] for t in times)
    return used / (size["requests"] * windows)


# What the quota's script runs inside Redis: counted in the server's statistics, but
# no round trip of a client.
_INSIDE_THE_SCRIPT = {
    "time", "get", "set", "del", "pexpire", "zadd", "zcard", "zrange",
    "zremrangebyrank", "zremrangebyscore", "zunionstore",
}  # fmt: skip


def _round_trips(port: int) -> int:
    """Commands clients sent since the last reset (the script's own commands excluded)."""
    from tests.redis.conftest import redis_command

    stats = redis_command(port, "INFO", "commandstats").decode()
    sent = 0
    for line in stats.splitlines():
        if line.startswith("cmdstat_"):
            name, calls = line[len("cmdstat_") :].split(":calls=")
            if name not in _INSIDE_THE_SCRIPT and name.split("|")[0] not in ("info", "config"):
                sent += int(calls.split(",")[0])
    return sent


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def _run_fleet(kind: str, size: dict[str, Any], redis: Any) -> dict[str, Any]:
    from clerk_sessions.testing import FakeClerk, Quota
    from tests.redis.conftest import redis_command

    fake = FakeClerk(quota=Quota(size["requests"], size["per_seconds"]))
    session_id = fake.add_session(user_id="user_bench")["id"]
    duration = size["windows"] * size["per_seconds"]
    with fake.serve() as url:
        config = {
            "kind": kind,
            "server_url": url,
            "secret_key": fake.secret_key,
            "session_id": session_id,
            "redis_url": redis.url,
            "requests": size["requests"],
            "per_seconds": size["per_seconds"],
            "duration": duration,
            "callers": size["callers"],
        }
        redis_command(redis.port, "CONFIG", "RESETSTAT")
        results = _fleet([config] * size["processes"])
        round_trips = _round_trips(redis.port)
    log = fake.requests
    accepted = [r.time for r in log if r.status == 200]
    return {
        "results": results,
        "sent": len(log),
        "refused": sum(r.status == 429 for r in log),
        "accepted_share": len(accepted) / len(log),
        "used_share": _used_share(accepted, size),
        "round_trips": round_trips / len(log),
    }


def _run_solo(calls: int, redis_url: str) -> tuple[list[float], list[float]]:
    """In this process, one caller: the limiter's acquire+finished under a quota far above
    it, and whole raw httpx2 GETs to the fake on loopback, each ``calls`` times."""
    import anyio
    import httpx2

    from clerk_sessions.redis import RedisRateLimit
    from clerk_sessions.testing import FakeClerk

    fake = FakeClerk()
    session_id = fake.add_session(user_id="user_bench")["id"]
    binding = RedisRateLimit(redis_url, 1_000_000, 1.0)._bind(fake.secret_key)

    async def measure(url: str) -> tuple[list[float], list[float]]:
        costs: list[float] = []
        gets: list[float] = []
        # The first of each opens its connections: not a per-request cost.
        await binding.finished(await binding.acquire(anyio.sleep))
        for _ in range(calls):
            t0 = time.perf_counter()
            await binding.finished(await binding.acquire(anyio.sleep))
            costs.append(time.perf_counter() - t0)
        await binding.aclose()
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        async with httpx2.AsyncClient(headers=headers) as client:
            await client.get(f"{url}/sessions/{session_id}")
            for _ in range(calls):
                t0 = time.perf_counter()
                await client.get(f"{url}/sessions/{session_id}")
                gets.append(time.perf_counter() - t0)
        return costs, gets

    with fake.serve() as url:
        return anyio.run(measure, url)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Run the fleet with RedisRateLimit, then raw httpx2; return the benchmark's rows."""
    from tests._redis import RedisServer

    size = QUICK if quick else FULL
    scale = f"{size['requests']} per {size['per_seconds']:g} s"
    with tempfile.TemporaryDirectory() as directory:
        redis = RedisServer(Path(directory)).start()
        try:
            ours = _run_fleet("redis", size, redis)
            raw = _run_fleet("raw", size, redis)
            solo, solo_raw = _run_solo(size["solo_calls"], redis.url)
        finally:
            redis.stop()
    costs = [c for r in ours["results"] for c in r["costs"]]
    gets = [g for r in raw["results"] for g in r["gets"]]
    fleet = f"{size['processes']} processes x {size['callers']} callers, quota {scale}"
    rows = [
        row(
            "fleet: share of the quota used",
            ours["used_share"],
            raw["used_share"],
            None,
            "share of quota",
            better="higher",
            floor="raw httpx2 fleet, no limiter",
            notes=f"{fleet}; over {size['windows']} full windows of the fake's log; "
            "raw httpx2: the same fleet without a limiter",
        ),
        row(
            "fleet: requests answered without 429",
            ours["accepted_share"],
            raw["accepted_share"],
            None,
            "share of requests",
            better="higher",
            floor="raw httpx2 fleet, no limiter",
            notes=f"429s: ours {ours['refused']} of {ours['sent']}, "
            f"raw httpx2 {raw['refused']} of {raw['sent']}",
            refused=ours["refused"],
            refused_raw=raw["refused"],
        ),
        row(
            "fleet: limiter cost per request, one caller (p99)",
            _percentile(solo, 0.99) * 1e3,
            _percentile(solo_raw, 0.99) * 1e3,
            None,
            "ms",
            floor="a whole raw httpx2 GET",
            notes=f"p50 {statistics.median(solo) * 1e3:.2f} ms over {len(solo)} sequential "
            "acquire+finished of one caller (raw httpx2: a whole GET to the fake, the same "
            "way); under the "
            f"fleet's own load ({fleet}) the limiter's time was p50 "
            f"{statistics.median(costs) * 1e3:.1f} ms, p99 {_percentile(costs, 0.99) * 1e3:.1f} "
            f"ms, and a raw GET's p99 {_percentile(gets, 0.99) * 1e3:.1f} ms; "
            f"{ours['round_trips']:.2f} Redis round trips per request in the fleet (every "
            "command a client sent: connection set-up and script loads included)",
            p50_ms=statistics.median(solo) * 1e3,
            fleet_p50_ms=statistics.median(costs) * 1e3,
            fleet_p99_ms=_percentile(costs, 0.99) * 1e3,
            round_trips=ours["round_trips"],
        ),
    ]
    targets = [
        ("share of quota >= 0.95", ours["used_share"] >= 0.95),
        ("0 429s", ours["refused"] == 0),
        ("p99 < 5 ms; <= 3 round trips", rows[2]["ours"] < 5 and ours["round_trips"] <= 3),
    ]
    for r, (target, met) in zip(rows, targets, strict=True):
        r["target"], r["met"] = target, met
        r["extra"]["load_average"] = list(os.getloadavg())
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        _worker_main(sys.argv[2])
    else:
        for r in run(quick="--quick" in sys.argv):
            print(json.dumps(r))
