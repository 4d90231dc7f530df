"""What durability costs: a `RevocationJob` worked from a store vs plain ``revoke_many``.

Against the shared precomputed server (not a quota), every contender in a process of its
own, all at the same concurrency:

- ``revoke_many`` of N ids in one process (on httpx2, as the SDK runs): the baseline, in
  the "raw" column of the rows (their ``floor``);
- a job of the same N ids in an SQLite file, one worker process;
- the same job in Redis, one worker process, then two worker processes at once (this
  machine has few cores: the two-worker row is reported, not promised to scale);
- the peak RSS of ``create`` for 1,000,000 ids from a generator, per store, beside the
  RSS of the same process before it (imports done).

Workers start together: each child imports, says it is ready and waits for the go, so
process start-up is not measured; ids/s is N over the time from the go to the last
worker's end. A job's ``create`` is timed on its own (reported in the notes). Each
contender runs in 3 rounds, in rotated order (the machine is shared: load from elsewhere
hits all alike), and reports its median.

Redis runs as a child ``redis-server`` with an append-only file synced every second
(``appendfsync everysec``), the persistence a job store should have.

    python -m benchmarks.bench_jobs            # full: 100,000 ids, create of 1,000,000
    python -m benchmarks.bench_jobs --quick    # 300 ids, create of 2,000 (a smoke run)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._common import SECRET_KEY, ServerHandle, row, running_server

CONCURRENCY = 8
CHUNK_SIZE = 100
ROOT = Path(__file__).resolve().parents[1]


def _ids(n: int) -> Iterator[str]:
    return (f"sess_2bBnmXaAaMHPOXoCaKQd{i:07d}" for i in range(n))


async def _async_ids(n: int) -> AsyncIterator[str]:
    for session_id in _ids(n):
        yield session_id


def _peak_rss_mb() -> float:
    """This process's peak RSS (``VmHWM``: its own, not inherited from the parent)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# ---------------------------------------------------------------------------- children


def _wait_for_go() -> None:
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no go")


async def _baseline(base_url: str, n: int) -> None:
    from clerk_sessions import AsyncClerk

    async with AsyncClerk(SECRET_KEY, server_url=base_url) as clerk:
        _wait_for_go()
        started = time.time()
        result = await clerk.sessions.revoke_many(_ids(n), concurrency=CONCURRENCY)
        ended = time.time()
    assert len(result.revoked) == n, (len(result.revoked), n)
    print(json.dumps({"started": started, "ended": ended, "rss_mb": _peak_rss_mb()}))


async def _work(base_url: str, store: str, name: str) -> None:
    from clerk_sessions import AsyncClerk
    from clerk_sessions.jobs import RevocationJob

    async with (
        AsyncClerk(SECRET_KEY, server_url=base_url) as clerk,
        await RevocationJob.open(store, name) as job,
    ):
        _wait_for_go()
        started = time.time()
        status = await job.work(clerk, concurrency=CONCURRENCY)
        ended = time.time()
    assert status.done and status.failed == 0, status
    print(json.dumps({"started": started, "ended": ended, "rss_mb": _peak_rss_mb()}))


async def _create(store: str, name: str, n: int) -> None:
    from clerk_sessions.jobs import RevocationJob
    from clerk_sessions.jobs._store_url import open_store

    # The store's module imported (coredis for Redis) before the baseline is read: what
    # is measured is what the ids cost.
    await open_store(store).aclose()
    before = _peak_rss_mb()
    started = time.time()
    async with await RevocationJob.create(
        store, name, session_ids=_async_ids(n), chunk_size=CHUNK_SIZE
    ) as job:
        assert job.total == n, (job.total, n)
    ended = time.time()
    print(
        json.dumps(
            {"started": started, "ended": ended, "rss_mb": _peak_rss_mb(), "before_mb": before}
        )
    )


def _child(argv: Sequence[str]) -> None:
    import anyio

    mode, *args = argv
    if mode == "baseline":
        anyio.run(_baseline, args[0], int(args[1]))
    elif mode == "work":
        anyio.run(_work, *args)
    else:
        anyio.run(_create, args[0], args[1], int(args[2]))


# ---------------------------------------------------------------------------- parent


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_jobs", "--child", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        text=True,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = process.communicate(timeout=3600)
    if process.returncode != 0:
        raise RuntimeError(f"benchmark child failed with exit code {process.returncode}")
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _together(*commands: Sequence[str]) -> tuple[float, list[dict[str, float]]]:
    """Start one child per command, let them all go at once; the seconds from the
    first start to the last end, and each child's result."""
    processes = [_spawn(*command) for command in commands]
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("a benchmark child did not start")
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [_result(process) for process in processes]
    seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return seconds, results


def _create_in_child(store: str, name: str, n: int) -> dict[str, float]:
    return _result(_spawn("create", store, name, str(n)))


@contextmanager
def _redis(directory: Path) -> Iterator[str]:
    """A redis-server child with an append-only file (fsync every second)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--dir", str(directory),
            "--logfile", str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """The benchmark runner's entry point: the rows of this benchmark."""
    if server is None:
        with running_server() as own:
            return run(quick, own)
    n = 300 if quick else 100_000
    big = 2_000 if quick else 1_000_000
    rounds = 1 if quick else 3
    base = server.base_url
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {"baseline": [], "sqlite": [], "redis": [], "redis2": []}
    create_s: dict[str, list[float]] = {"sqlite": [], "redis": [], "redis2": []}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp, _redis(Path(tmp)) as redis:
        stores = {
            "sqlite": (f"sqlite:///{tmp}/jobs.db", 1),
            "redis": (redis, 1),
            "redis2": (redis, 2),
        }
        for r in range(rounds):
            # Rotate the order so that load from other processes hits everyone alike.
            order = list(seconds)
            for label in order[r % len(order) :] + order[: r % len(order)]:
                if label == "baseline":
                    seconds[label].append(_together(("baseline", base, str(n)))[0])
                    continue
                store, workers = stores[label]
                name = f"bench-{label}-{r}"
                created = _create_in_child(store, name, n)
                create_s[label].append(created["ended"] - created["started"])
                seconds[label].append(_together(*[("work", base, store, name)] * workers)[0])
        rss = {
            label: _create_in_child(stores[label][0], f"rss-{label}", big)
            for label in ("sqlite", "redis")
        }
    work_s = {label: statistics.median(values) for label, values in seconds.items()}
    baseline = n / work_s.pop("baseline")
    rate = {label: n / value for label, value in work_s.items()}
    create_rate = {label: n / statistics.median(values) for label, values in create_s.items()}
    with_create = {
        label: n / (work_s[label] + statistics.median(create_s[label])) for label in work_s
    }
    load = (
        f"{', '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} after"
    )

    def notes(label: str) -> str:
        return (
            f"raw column: plain revoke_many ({baseline:.0f} ids/s); create {create_rate[label]:.0f}"
            f" ids/s; with create counted: {with_create[label]:.0f} ids/s "
            f"({with_create[label] / baseline:.2f}x); median of {rounds} rotated rounds; "
            f"load average {load}"
        )

    rows = [
        row(
            f"job of {n} ids, 1 worker, SQLite (vs revoke_many), concurrency {CONCURRENCY}",
            rate["sqlite"],
            baseline,
            None,
            "ids/s",
            floor="plain revoke_many",
            target="raw >= 0.8",
            better="higher",
            notes=notes("sqlite"),
        ),
        row(
            f"job of {n} ids, 1 worker, Redis (vs revoke_many), concurrency {CONCURRENCY}",
            rate["redis"],
            baseline,
            None,
            "ids/s",
            floor="plain revoke_many",
            target="raw >= 0.7",
            better="higher",
            notes=notes("redis"),
        ),
        row(
            f"job of {n} ids, 2 workers, Redis (vs revoke_many in 1 process)",
            rate["redis2"],
            baseline,
            None,
            "ids/s",
            floor="plain revoke_many",
            better="higher",
            notes=notes("redis2") + f"; {os.cpu_count()} cores: reported, not a target",
        ),
    ]
    for label, title in (("sqlite", "SQLite"), ("redis", "Redis")):
        peak = rss[label]
        memory = row(
            f"peak RSS of create, {big} ids, {title} (vs the process before it)",
            peak["rss_mb"],
            peak["before_mb"],
            None,
            "MB",
            floor="the process before create",
            notes=f"create {big / (peak['ended'] - peak['started']):.0f} ids/s; "
            f"load average {load}",
        )
        if not quick:
            # An absolute target, which the ratio-based `row` cannot express.
            memory.update(target="< 60 MB", met=peak["rss_mb"] < 60)
        rows.append(memory)
    for item in rows:
        # The plot's bars are "vs raw httpx2" and "vs raw httpx": these rows compare with
        # something else (their `floor`).
        item["plot"] = False
    return rows


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        _child(argv[1:])
        return
    for result in run(quick="--quick" in argv):
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
