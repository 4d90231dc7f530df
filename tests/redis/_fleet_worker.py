"""One process of a test fleet: calls Clerk in a loop on a given limiter, then reports.

Run as ``python tests/redis/_fleet_worker.py CONFIG_JSON``. It prints ``ready`` once its
client is built, waits for a ``go`` line on stdin (so that every process of the fleet
starts at once), calls ``sessions.get`` from ``concurrency`` tasks (or threads, for the
sync facade) until ``duration`` seconds have passed or ``calls`` calls were made, and
prints one JSON line: calls that succeeded, the errors, and what the SDK logged.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import Any

import anyio

from clerk_sessions import AsyncClerk, Clerk, RateLimit, RetryConfig
from clerk_sessions.redis import RedisRateLimit, _binding


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.warnings: list[str] = []
        self.infos: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.warnings.append(record.getMessage())
        elif record.levelno == logging.INFO:
            self.infos.append(record.getMessage())


def _limiter(spec: dict[str, Any]) -> Any:
    if spec.get("probe_every"):
        # Tests shorten the wait before Redis is tried again after a failure.
        _binding._PROBE_EVERY_S = spec["probe_every"]
    if spec["kind"] == "local":
        return RateLimit(spec["requests"], spec["per_seconds"])
    quota = RedisRateLimit(spec["redis_url"], spec["requests"], spec["per_seconds"])
    if spec.get("share"):
        name, requests = spec["share"]
        return quota.share(name, requests)
    return quota


class _Budget:
    """Stop at the deadline or after ``calls`` calls, whichever comes first."""

    def __init__(self, duration: float | None, calls: int | None) -> None:
        self.deadline = time.monotonic() + duration if duration else float("inf")
        self.left = calls if calls is not None else -1
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if time.monotonic() >= self.deadline or self.left == 0:
                return False
            self.left -= 1
            return True


def main() -> None:
    config = json.loads(sys.argv[1])
    counter = _Count()
    logging.getLogger("clerk_sessions").addHandler(counter)
    logging.getLogger("clerk_sessions").setLevel(logging.INFO)
    limiter = _limiter(config["limiter"])
    kwargs: dict[str, Any] = {"server_url": config["server_url"], "rate_limit": limiter}
    if not config.get("retries", True):
        kwargs["retry_config"] = None
    elif config.get("max_attempts"):
        kwargs["retry_config"] = RetryConfig(max_attempts=config["max_attempts"])
    ok = 0
    errors: list[str] = []
    session_id = config["session_id"]
    concurrency = config["concurrency"]

    def record(error: BaseException | None) -> None:
        nonlocal ok
        if error is None:
            ok += 1
        else:
            errors.append(f"{type(error).__name__}: {error}")

    print("ready", flush=True)
    sys.stdin.readline()
    budget = _Budget(config.get("duration"), config.get("calls"))

    if config["backend"] == "sync":
        with Clerk(config["secret_key"], **kwargs) as clerk:

            def loop() -> None:
                while budget.take():
                    try:
                        clerk.sessions.get(session_id)
                    except Exception as exc:
                        record(exc)
                    else:
                        record(None)

            threads = [threading.Thread(target=loop) for _ in range(concurrency)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    else:

        async def run() -> None:
            async with AsyncClerk(config["secret_key"], **kwargs) as clerk:

                async def loop() -> None:
                    while budget.take():
                        try:
                            await clerk.sessions.get(session_id)
                        except Exception as exc:
                            record(exc)
                        else:
                            record(None)

                async with anyio.create_task_group() as tg:
                    for _ in range(concurrency):
                        tg.start_soon(loop)

        anyio.run(run, backend=config["backend"])
    report = {"ok": ok, "errors": errors, "warnings": counter.warnings, "infos": counter.infos}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
