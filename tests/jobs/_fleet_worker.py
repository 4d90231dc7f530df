"""One worker of a fleet test, run as its own process: ``python _fleet_worker.py ARGS``.

Works job NAME of STORE against the Clerk at SERVER_URL with its own `AsyncClerk`, then
prints the final status as one JSON line. Exit code 0 when it returned, 1 on an error
(printed as one JSON line with its type and message).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import anyio

from clerk_sessions import AsyncClerk, RetryConfig
from clerk_sessions._config import BackoffStrategy
from clerk_sessions.jobs import RevocationJob

# Retries as a test wants them: the same attempts as the default, without the long waits.
FAST_RETRIES = RetryConfig(
    backoff=BackoffStrategy(
        initial_interval_ms=5, max_interval_ms=50, exponent=2, max_elapsed_time_ms=5_000
    ),
    max_attempts=3,
)


def start_together(directory: Path) -> None:
    """Say this process is ready (imports take seconds on a loaded machine), then wait
    for the test's go: the fleet starts working at one moment."""
    (directory / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not (directory / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no go from the test within 60 s")
        time.sleep(0.005)


async def main(arguments: argparse.Namespace) -> None:
    async with (
        AsyncClerk(
            arguments.secret_key, server_url=arguments.server_url, retry_config=FAST_RETRIES
        ) as clerk,
        await RevocationJob.open(arguments.store, arguments.name) as job,
    ):
        status = await job.work(clerk, concurrency=arguments.concurrency, lease_s=arguments.lease)
    print(json.dumps({"revoked": status.revoked, "failed": status.failed, "done": status.done}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("name")
    parser.add_argument("server_url")
    parser.add_argument("secret_key")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--ready-dir")
    arguments = parser.parse_args()
    # The job's warnings (a lost lease, a failed heartbeat) go to stderr, for the test.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if arguments.ready_dir:
            start_together(Path(arguments.ready_dir))
        anyio.run(main, arguments)
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        sys.exit(1)
