"""Run by test_logging.py in a child process with ``CLERK_SESSIONS_LOG=debug``: every
operation of both clients, with retries, verification (networkless and by JWKS), and a
bulk job, against a FakeClerk on a loopback port that injects faults. Every log record
of every logger is written, fully formatted (tracebacks included), to the file named by
argv[1]; the secrets that were in play are printed to stdout as JSON at the end.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from typing import Any

import anyio

from clerk_sessions import AsyncClerk, BackoffStrategy, Clerk, RetryConfig
from clerk_sessions.testing import FakeClerk, FaultConfig
from tests.conventions._ops import ALL_OPS, call_async, call_sync, seed

RETRIES = RetryConfig(backoff=BackoffStrategy(1, 5, 2.0, 20_000), max_attempts=8)
secrets: set[str] = set()


def keep_secrets(result: Any) -> None:
    """Remember every token an answer carried."""
    for item in result if isinstance(result, list) else [result]:
        for name in ("jwt",):
            value = getattr(item, name, None)
            if isinstance(value, str):
                secrets.add(value)


async def run_async(fake: FakeClerk, url: str) -> None:
    async with AsyncClerk(fake.secret_key, server_url=url, retry_config=RETRIES) as clerk:
        for op in ALL_OPS:
            seeded = seed(fake)
            secrets.update((seeded.token, seeded.refresh_token))
            try:
                keep_secrets(await call_async(clerk.sessions, op, seeded))
                keep_secrets(await call_async(clerk.sessions.with_raw_response, op, seeded))
            except Exception as exc:  # faults may exhaust retries: the log is the point
                logging.getLogger("probe").info("%s failed: %r", op, exc, exc_info=True)
        seeded = seed(fake)
        secrets.update((seeded.token, seeded.refresh_token))
        await clerk.verify_token(seeded.token)
        state = await clerk.authenticate_request({"Authorization": f"Bearer {seeded.token}"})
        assert state.is_signed_in, state.reason
        bad = seeded.token[:-4] + "AAAA"
        secrets.add(bad)
        state = await clerk.authenticate_request({"cookie": f"__session={bad}"})
        assert not state.is_signed_in
        networkless = AsyncClerk(fake.secret_key, server_url=url, jwt_key=fake.public_key_pem)
        await networkless.verify_token(seeded.token)
        ids = [seed(fake).session_id for _ in range(20)] + ["sess_missing"]
        result = await clerk.sessions.revoke_many(ids, concurrency=4)
        assert "sess_missing" in result.failed


def run_sync(fake: FakeClerk, url: str) -> None:
    with Clerk(fake.secret_key, server_url=url, retry_config=RETRIES) as clerk:
        for op in ALL_OPS:
            seeded = seed(fake)
            secrets.update((seeded.token, seeded.refresh_token))
            try:
                keep_secrets(call_sync(clerk.sessions, op, seeded))
            except Exception as exc:
                logging.getLogger("probe").info("%s failed: %r", op, exc, exc_info=True)
        seeded = seed(fake)
        secrets.add(seeded.token)
        clerk.verify_token(seeded.token)


def main() -> None:
    records = open(sys.argv[1], "w")  # noqa: SIM115 (closed at exit)
    handler = logging.StreamHandler(records)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    warnings.simplefilter("ignore", DeprecationWarning)
    fake = FakeClerk(faults=FaultConfig(error_rate=0.25, drop_before_rate=0.1, seed=7))
    secrets.add(fake.secret_key)
    with fake.serve() as url:
        anyio.run(run_async, fake, url)
        run_sync(fake, url)
    # Tokens the fake minted for create_token, refresh and templates, as it stored them.
    print(json.dumps(sorted(secrets)))


if __name__ == "__main__":
    main()
