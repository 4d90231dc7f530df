"""``clerk-sessions demo``: the whole SDK against a fake Clerk, in one command.

Nothing here talks to the SDK in a way a user would not: the fake runs on a real
loopback port and every step goes through ``AsyncClerk`` over HTTP, exactly as an app
pointed at ``clerk-sessions mock`` would. Each step prints the call it makes, so the
output doubles as a tour of the API. A failing step ends the demo with one line naming
the step, and exit 1.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from clerk_sessions.cli._exits import EXIT_FAILURE, EXIT_OK
from clerk_sessions.cli._output import Output, sessions_table

if TYPE_CHECKING:
    from clerk_sessions import AsyncClerk
    from clerk_sessions.testing import FakeClerk

__all__ = ["run_demo"]

# Readable ids, so the tables are easy to follow; alice is the one who gets signed out.
_USERS = {"user_alice": 4, "user_bob": 2, "user_carol": 1}
_SIGNED_OUT = "user_alice"


class _Steps:
    """Numbered headings; remembers the current step for the failure message."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.number = 0
        self.current = "start"

    def start(self, title: str, call: str | None = None) -> None:
        self.number += 1
        self.current = f"step {self.number} ({title})"
        self.out.out.print()
        self.out.out.print(Text(f"{self.number}. {title}", style="bold"))
        if call:
            self.out.out.print(Text(f"   {call}", style="cyan"), soft_wrap=True)

    def say(self, text: str) -> None:
        self.out.out.print(Text(f"   {text}"), soft_wrap=True)


def run_demo() -> int:
    """Run the demo; return the exit code. Always for people: ``--json`` does not apply."""
    import anyio

    from clerk_sessions.testing import FakeClerk

    out = Output(json_mode=False)
    steps = _Steps(out)
    started = time.perf_counter()
    # Validation follows CLERK_SESSIONS_FAKE_VALIDATE: off for a user, on in our test
    # suite, where the demo then proves every answer it got was within Clerk's spec.
    fake = FakeClerk()
    for user_id in _USERS:
        fake.add_user(user_id)
    try:
        with fake.serve() as url:
            steps.start(
                "Start a fake Clerk on a loopback port (no key, no network)",
                "with FakeClerk().serve() as url:",
            )
            steps.say(f"listening on {url}, accepting one secret key: {fake.secret_key}")
            anyio.run(_flow, fake, url, steps)
            steps.start("What the server saw (fake.requests)")
            out.table(_requests_table(fake))
            _check_conformance(fake)
            steps.current = "stopping the server"
        steps.start("Stop the server")
        steps.say(f"stopped; the whole demo took {time.perf_counter() - started:.2f} s")
    except Exception as exc:
        out.error(f"demo failed at {steps.current}: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE
    return EXIT_OK


def _check_conformance(fake: FakeClerk) -> None:
    violations = [r.violation for r in fake.requests if r.violation is not None]
    if violations:
        raise RuntimeError(
            f"{len(violations)} answer(s) of the fake broke Clerk's spec, the first: "
            f"{violations[0]}"
        )


async def _flow(fake: FakeClerk, url: str, steps: _Steps) -> None:
    from clerk_sessions import AsyncClerk

    out = steps.out
    async with AsyncClerk(fake.secret_key, server_url=url) as clerk:
        steps.start(
            "Create sessions for three users over HTTP",
            f'clerk = AsyncClerk(secret_key, server_url="{url}")\n'
            '   await clerk.sessions.create(user_id="user_alice")',
        )
        for user_id, count in _USERS.items():
            for _ in range(count):
                await clerk.sessions.create(user_id=user_id)
        steps.say(", ".join(f"{user}: {n}" for user, n in _USERS.items()))

        steps.start("List them", 'await clerk.sessions.list(user_id="user_alice") # per user')
        everyone = [s for user in _USERS for s in await clerk.sessions.list(user_id=user)]
        out.table(sessions_table(everyone))

        await _token_step(clerk, fake, everyone[0].id, steps)

        steps.start(
            f"Sign {_SIGNED_OUT} out everywhere, with a progress bar",
            f'await clerk.sessions.revoke_all(user_id="{_SIGNED_OUT}", on_progress=bar)',
        )
        with out.progress(f"revoking {_SIGNED_OUT}", enabled=True) as on_progress:
            result = await clerk.sessions.revoke_all(user_id=_SIGNED_OUT, on_progress=on_progress)
        if not result.ok:
            raise RuntimeError(f"{len(result.failed)} session(s) not revoked")
        active = await clerk.sessions.list(user_id=_SIGNED_OUT, status="active")
        steps.say(
            f"revoked {len(result.revoked)}, failed {len(result.failed)}; "
            f"{_SIGNED_OUT} now has {len(active)} active session(s), the others keep theirs"
        )


async def _token_step(clerk: AsyncClerk, fake: FakeClerk, session_id: str, steps: _Steps) -> None:
    steps.start(
        "Mint a session token and verify it networklessly",
        f'token = await clerk.sessions.create_token("{session_id}")\n'
        "   claims = await clerk.verify_token(token.jwt)",
    )
    token = await clerk.sessions.create_token(session_id)
    steps.say(f"jwt: {token.jwt[:32]}... ({len(token.jwt)} chars)")
    claims = await clerk.verify_token(token.jwt)
    # The same token again: the key is cached now, so this one sends nothing at all.
    await clerk.verify_token(token.jwt)
    steps.say(
        f"verified with the public key from GET /jwks (kid {fake.kid}), fetched once and "
        "cached: the second verify_token sent no request"
    )
    steps.say(
        f"claims: sid={claims.session_id} sub={claims.user_id} sts={claims.session_status} "
        f"azp={claims.authorized_party} expires in {claims.expires_at - int(time.time())} s"
    )


def _requests_table(fake: FakeClerk) -> Table:
    """Requests counted by method, route and status: the SDK's traffic at a glance."""
    counts = Counter(
        (record.method, record.operation or record.raw_path, record.status)
        for record in fake.requests
    )
    table = Table()
    table.add_column("method")
    table.add_column("path")
    table.add_column("status", justify="right")
    table.add_column("requests", justify="right")
    for (method, path, status), count in counts.items():
        table.add_row(method, path, "-" if status is None else str(status), str(count))
    return table
