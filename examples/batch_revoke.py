"""Sign a list of users out everywhere: revoke every active session of each of them.

Usage::

    export CLERK_SECRET_KEY=sk_live_...
    python examples/batch_revoke.py user_123 user_456
    python examples/batch_revoke.py --file users.txt            # one user id per line
    cat users.txt | python examples/batch_revoke.py --file -

The sessions of each user are listed page by page and fed to ``revoke_many`` as they
arrive, so memory stays flat however many users and sessions there are. A `RateLimit`
keeps every request (the listings and the revocations) under the instance's quota:
Clerk allows 1000 requests per 10 seconds in production and 100 per 10 seconds in
development, so the default here, 90 per 10 s, is safe on both.

Exit codes: 0 when every session was revoked, 1 when a listing or a revocation failed
(each failure is printed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import AsyncIterator, Iterable

import anyio

from clerk_sessions import AsyncClerk, QueryParamStatus, RateLimit, RetryConfig, errors

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def read_user_ids(args: argparse.Namespace) -> list[str]:
    """The user ids from the arguments and the ``--file`` (``-``: standard input)."""
    ids = list(args.user_ids)
    if args.file is not None:
        lines: Iterable[str]
        if args.file == "-":
            lines = sys.stdin
        else:
            with open(args.file, encoding="utf-8") as handle:
                lines = handle.readlines()
        ids.extend(line.strip() for line in lines)
    seen: dict[str, None] = {}
    for user_id in ids:
        if user_id and not user_id.startswith("#"):
            seen.setdefault(user_id, None)
    return list(seen)


class Progress:
    """Prints ``done`` every ``every`` sessions, and at most once a second."""

    def __init__(self, every: int = 100) -> None:
        self.every = every
        self.last = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if done % self.every == 0 or now - self.last >= 1.0:
            self.last = now
            print(f"  {done} sessions done", file=sys.stderr)


async def revoke_users(clerk: AsyncClerk, user_ids: list[str], concurrency: int) -> int:
    """Revoke every active session of each user; return the exit code."""
    listing_failures: dict[str, Exception] = {}

    async def active_session_ids() -> AsyncIterator[str]:
        for user_id in user_ids:
            try:
                async for session in clerk.sessions.iterate(
                    user_id=user_id, status=QueryParamStatus.ACTIVE
                ):
                    yield session.id
            except errors.ClerkSessionsError as exc:
                # One user's listing failing must not stop the others.
                listing_failures[user_id] = exc

    result = await clerk.sessions.revoke_many(
        active_session_ids(), concurrency=concurrency, on_progress=Progress()
    )

    print(f"revoked {len(result.revoked)} sessions of {len(user_ids)} users")
    for user_id, exc in listing_failures.items():
        print(f"FAILED to list the sessions of {user_id}: {exc}")
    for session_id, exc in result.failed.items():
        print(f"FAILED to revoke {session_id}: {exc}")
    return EXIT_OK if result.ok and not listing_failures else EXIT_FAILED


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Revoke every active session of the given users.")
    parser.add_argument("user_ids", nargs="*", metavar="USER_ID", help="users to sign out")
    parser.add_argument(
        "--file", metavar="PATH", help="a file of user ids, one a line; - for standard input"
    )
    parser.add_argument(
        "--rate",
        type=int,
        default=90,
        metavar="N",
        help="at most N requests per 10 seconds (default 90: under a development quota)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="revocations in flight")
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=4,
        help="attempts per request, the first included (1: no retries)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    user_ids = read_user_ids(args)
    if not user_ids:
        print("no user ids given (arguments or --file)", file=sys.stderr)
        return EXIT_USAGE
    if args.rate < 1 or args.concurrency < 1 or args.max_attempts < 1:
        print("--rate, --concurrency and --max-attempts must be at least 1", file=sys.stderr)
        return EXIT_USAGE

    async def run() -> int:
        async with AsyncClerk(
            rate_limit=RateLimit(args.rate, 10),
            retry_config=RetryConfig(max_attempts=args.max_attempts),
        ) as clerk:
            return await revoke_users(clerk, user_ids, args.concurrency)

    try:
        return anyio.run(run)
    except errors.ConfigurationError as exc:  # no CLERK_SECRET_KEY, a bad CLERK_API_URL
        print(exc, file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
