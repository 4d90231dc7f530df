"""A job worker (or creator) as a process, for the crash tests: run from the repository root
as ``python -m tests.jobs._fleet ...``.

    work STORE NAME API_URL SECRET_KEY [--concurrency N] [--lease S] [--retry-failed]
    create STORE NAME FILE [--users] [--chunk-size N]

``work`` prints the final status as one JSON line and logs warnings (lost leases) to
stderr; with ``--retry-failed`` it re-queues retryable failures and works again until
none is left. Retries are fast so that faults do not slow the tests down.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import AsyncIterator

import anyio

from clerk_sessions import AsyncClerk
from clerk_sessions.jobs import RevocationJob
from tests.jobs.conftest import FAST_RETRIES


async def work(args: argparse.Namespace) -> None:
    async with (
        AsyncClerk(args.key, server_url=args.url, retry_config=FAST_RETRIES) as clerk,
        await RevocationJob.open(args.store, args.name) as job,
    ):
        status = await job.work(clerk, concurrency=args.concurrency, lease_s=args.lease)
        while args.retry_failed and any(
            [outcome.retryable async for _, outcome in job.outcomes("failed")]
        ):
            await job.retry_failed()
            status = await job.work(clerk, concurrency=args.concurrency, lease_s=args.lease)
    print(json.dumps({"revoked": status.revoked, "failed": status.failed, "total": status.total}))


async def lines(path: str) -> AsyncIterator[str]:
    async with await anyio.open_file(path, encoding="utf-8") as file:
        async for line in file:
            yield line.strip()


async def create(args: argparse.Namespace) -> None:
    ids = lines(args.file)
    kind = {"user_ids": ids} if args.users else {"session_ids": ids}
    job = await RevocationJob.create(args.store, args.name, chunk_size=args.chunk_size, **kind)
    print(json.dumps({"total": job.total}))
    await job.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("work")
    worker.add_argument("store")
    worker.add_argument("name")
    worker.add_argument("url")
    worker.add_argument("key")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--lease", type=float, default=1.0)
    worker.add_argument("--retry-failed", action="store_true")
    creator = commands.add_parser("create")
    creator.add_argument("store")
    creator.add_argument("name")
    creator.add_argument("file")
    creator.add_argument("--users", action="store_true")
    creator.add_argument("--chunk-size", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    anyio.run(work if args.command == "work" else create, args)


if __name__ == "__main__":
    main()
