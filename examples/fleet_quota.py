"""Several processes, one Clerk quota: count the active sessions of many users in parallel.

Usage::

    export CLERK_SECRET_KEY=sk_live_... REDIS_URL=redis://127.0.0.1:6379/0
    python examples/fleet_quota.py --workers 4 user_123 user_456 ...
    python examples/fleet_quota.py --workers 4 --quota 1000/10 --share bulk=800 --file ids.txt

The user ids are dealt out to ``--workers`` processes (as a batch job spread over hosts
would be). Each process has its own client, and all of them share one quota in Redis
(``RedisRateLimit``): together they never start more than ``--quota`` requests per
window, however many processes there are. ``--share NAME=REQUESTS`` runs them on a
share of the quota instead, leaving the rest to the other users of the secret key (the
web app). Without Redis the processes still finish: each falls back to the same limit
on its own, with a warning.

Exit codes: 0 when every user was listed, 1 when a listing failed (each failure is
printed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

import anyio

from clerk_sessions import AsyncClerk, QueryParamStatus, errors
from clerk_sessions.redis import RedisRateLimit

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Count active sessions from several processes.")
    parser.add_argument("user_ids", nargs="*", metavar="USER_ID")
    parser.add_argument("--file", help="a file with one user id per line")
    parser.add_argument("--workers", type=int, default=4, help="processes (default 4)")
    parser.add_argument(
        "--quota",
        default="90/10",
        help="REQUESTS/SECONDS for all processes together (default 90/10: safe on a "
        "development instance, whose quota is 100 per 10 s)",
    )
    parser.add_argument("--share", help="NAME=REQUESTS: run on a share of the quota")
    args = parser.parse_args(argv)
    try:
        requests, seconds = args.quota.split("/")
        args.quota = (int(requests), float(seconds))
        if args.share is not None:
            name, share = args.share.split("=")
            args.share = (name, int(share))
    except ValueError:
        parser.error("--quota is REQUESTS/SECONDS and --share is NAME=REQUESTS")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.file:
        with open(args.file, encoding="utf-8") as lines:
            args.user_ids += [line.strip() for line in lines if line.strip()]
    if not args.user_ids:
        parser.error("give user ids as arguments or with --file")
    return args


def limiter(args: argparse.Namespace) -> RedisRateLimit:
    quota = RedisRateLimit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), *args.quota)
    return quota if args.share is None else quota.share(*args.share)


async def count_sessions(args: argparse.Namespace, user_ids: list[str]) -> tuple[int, list[str]]:
    """The active sessions of ``user_ids``, and the failures, on the shared quota."""
    active = 0
    failures: list[str] = []
    async with AsyncClerk(rate_limit=limiter(args)) as clerk:
        for user_id in user_ids:
            try:
                sessions = await clerk.sessions.list(
                    user_id=user_id, status=QueryParamStatus.ACTIVE
                )
            except errors.ClerkSessionsError as exc:
                failures.append(f"{user_id}: {exc}")
            else:
                active += len(sessions)
    return active, failures


def worker(index: int, args: argparse.Namespace, results: multiprocessing.Queue[object]) -> None:
    mine = args.user_ids[index :: args.workers]
    active, failures = anyio.run(count_sessions, args, mine)
    results.put((index, len(mine), active, failures))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[object] = context.Queue()
    processes = [
        context.Process(target=worker, args=(i, args, results)) for i in range(args.workers)
    ]
    for process in processes:
        process.start()
    reports = sorted(results.get() for _ in processes)  # type: ignore[type-var]
    for process in processes:
        process.join()
    users = active = 0
    failed = False
    for index, listed, found, failures in reports:  # type: ignore[misc]
        print(f"worker {index}: {listed} users, {found} active sessions")
        users, active = users + listed, active + found
        for failure in failures:
            print(f"  failed: {failure}", file=sys.stderr)
            failed = True
    requests, seconds = args.quota
    print(
        f"{users} users, {active} active sessions in {time.monotonic() - started:.1f} s "
        f"on one quota of {requests} requests per {seconds:g} s"
    )
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
