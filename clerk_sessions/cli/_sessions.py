"""The commands on an instance's sessions: ``list``, ``get``, ``revoke``, ``revoke-all``,
``token``, ``verify-token``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from clerk_sessions.cli._exits import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    CommandError,
)
from clerk_sessions.cli._root import RATE_LIMIT, State, cli, output_options, with_client
from clerk_sessions.models import QueryParamStatus

if TYPE_CHECKING:
    from clerk_sessions import AsyncClerk
    from clerk_sessions.cli._output import Output
    from clerk_sessions.models import BulkRevokeResult

__all__ = ["bulk_exit_code"]

_STATUSES = tuple(status.value for status in QueryParamStatus)


def bulk_exit_code(result: BulkRevokeResult) -> int:
    """0 all revoked, 3 some, 1 none (the bulk commands' exit codes)."""
    if not result.failed:
        return EXIT_OK
    return EXIT_PARTIAL if result.revoked else EXIT_FAILURE


@cli.command("list")
@click.option("--user-id", metavar="USER_ID", help="Sessions of this user (user_...).")
@click.option(
    "--client-id", metavar="CLIENT_ID", help="Sessions on this client (a browser or device)."
)
@click.option(
    "--status", type=click.Choice(_STATUSES, case_sensitive=False), help="Only this status."
)
@click.option(
    "--limit", type=click.IntRange(1, 500), help="At most this many (Clerk's default: 10)."
)
@click.option("--offset", type=click.IntRange(min=0), help="Skip this many (the next page).")
@click.option(
    "--all", "every", is_flag=True, help="Every match, page after page, not just the first 10."
)
@output_options
@click.pass_obj
def list_command(
    state: State,
    user_id: str | None,
    client_id: str | None,
    status: str | None,
    limit: int | None,
    offset: int | None,
    every: bool,
) -> int:
    """List sessions of a user or client, newest first."""
    if every and (limit is not None or offset is not None):
        raise click.UsageError("--all fetches every page itself; drop --limit/--offset")
    filters: dict[str, Any] = {"user_id": user_id, "client_id": client_id, "status": status}

    async def body(clerk: AsyncClerk, out: Output) -> int:
        if every:
            count = await out.sessions_async(clerk.sessions.iterate(**filters, page_size=500))
            if not out.json:
                out.note(f"{count} session(s)")
            return EXIT_OK
        page = await clerk.sessions.list_page(**filters, limit=limit, offset=offset)
        count = out.sessions(page.data)
        if not out.json:
            start = (offset or 0) + 1
            of = "" if page.total_count is None else f" of {page.total_count}"
            note = f"{start}-{start + count - 1}{of}" if count else f"no sessions{of}"
            if page.total_count is not None and start - 1 + count < page.total_count:
                note += f"; --offset {start - 1 + count} for more, or --all"
            out.note(note)
        return EXIT_OK

    return with_client(state, body)


@cli.command("get")
@click.argument("session_id")
@output_options
@click.pass_obj
def get_command(state: State, session_id: str) -> int:
    """Show one session in full: status, user, client, times, device."""

    async def body(clerk: AsyncClerk, out: Output) -> int:
        out.session(await clerk.sessions.get(session_id))
        return EXIT_OK

    return with_client(state, body)


@cli.command("revoke")
@click.argument("session_ids", metavar="SESSION_ID...", nargs=-1, required=True)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Requests in flight at once.",
)
@output_options
@click.pass_obj
def revoke_command(state: State, session_ids: tuple[str, ...], concurrency: int) -> int:
    """Revoke sessions by id (already revoked ones count as done).

    Exit 3 when some were revoked and others failed.
    """

    async def body(clerk: AsyncClerk, out: Output) -> int:
        from clerk_sessions.cli._progress import counting_failures

        enabled = len(session_ids) > 1 and out.err.is_terminal
        with out.progress("revoking", enabled=enabled) as bar, counting_failures(bar):
            result = await clerk.sessions.revoke_many(
                session_ids, concurrency=concurrency, on_progress=bar
            )
        return _report_bulk(out, result, revoked_table=True)

    return with_client(state, body)


def _report_bulk(out: Output, result: BulkRevokeResult, *, revoked_table: bool) -> int:
    if out.json:
        out.bulk_lines(result)
    elif revoked_table and result.revoked:
        out.sessions(result.revoked.values())
    out.failures(result.failed)
    if result.failed:
        out.error(
            f"{len(result.failed)} of {result.total} session(s) NOT revoked"
            + (f"; {len(result.revoked)} revoked" if result.revoked else "")
        )
    elif not out.json:
        out.success(f"revoked {len(result.revoked)} session(s)")
    return bulk_exit_code(result)


@cli.command("revoke-all")
@click.option("--user-id", metavar="USER_ID", help="Sign this user out everywhere.")
@click.option("--client-id", metavar="CLIENT_ID", help="Sign out every session on this client.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--dry-run", is_flag=True, help="List what would be revoked; change nothing.")
@click.option(
    "--rate-limit",
    type=RATE_LIMIT,
    metavar="REQ/SECONDS",
    help="Stay under this many requests per window, e.g. 100/10 (Clerk's development "
    "quota; production allows 1000/10). Default: none; a 429 is retried after its Retry-After.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Revocations in flight at once.",
)
@output_options
@click.pass_obj
def revoke_all_command(
    state: State,
    user_id: str | None,
    client_id: str | None,
    yes: bool,
    dry_run: bool,
    rate_limit: tuple[int, float] | None,
    concurrency: int,
) -> int:
    """Revoke every active session of a user (or of a client).

    Lists the active sessions, asks, then revokes them CONCURRENCY at a time, listing
    again until none is left. Without a terminal to ask on, it needs --yes. Exit 3 when
    some sessions could not be revoked: they are listed; run it again to retry them.
    """
    if (user_id is None) == (client_id is None):
        raise click.UsageError("pass exactly one of --user-id or --client-id")
    if not (yes or dry_run) and not sys.stdin.isatty():
        raise CommandError(
            "refusing to revoke without confirmation: stdin is not a terminal; "
            "pass --yes (or --dry-run to look first)",
            EXIT_USAGE,
        )
    who = f"user {user_id}" if user_id else f"client {client_id}"
    filters: dict[str, Any] = {"user_id": user_id, "client_id": client_id}
    limiter = None
    if rate_limit is not None:
        from clerk_sessions import RateLimit

        limiter = RateLimit(*rate_limit)

    async def body(clerk: AsyncClerk, out: Output) -> int:
        if dry_run:
            listing = clerk.sessions.iterate(**filters, status="active", page_size=500)
            count = await out.sessions_async(listing)
            out.note(f"dry run: would revoke {count} active session(s) of {who}; nothing changed")
            return EXIT_OK
        if not yes:
            page = await clerk.sessions.list_page(**filters, status="active", limit=1)
            count = page.total_count or 0
            if page.total_count is None:  # a server that does not say: count the hard way
                count = 0
                async for _ in clerk.sessions.iterate(**filters, status="active"):
                    count += 1
            if count == 0:
                out.note(f"nothing to revoke: {who} has no active session")
                return EXIT_OK
            if not click.confirm(f"Revoke {count} active session(s) of {who}?", err=True):
                raise CommandError("not confirmed: nothing was revoked")

        def on_interrupt(done: int, total: int | None) -> None:
            state.interrupt_note = (
                f"{done} of {total} session(s) handled before the interrupt; "
                "run the same command again to revoke the rest"
            )

        from clerk_sessions.cli._progress import counting_failures

        progress = out.progress(f"revoking sessions of {who}", enabled=out.err.is_terminal)
        with progress as bar, counting_failures(bar):

            def on_progress(done: int, total: int | None) -> None:
                on_interrupt(done, total)
                if bar is not None:
                    bar(done, total)

            result = await clerk.sessions.revoke_all(
                **filters, concurrency=concurrency, on_progress=on_progress
            )
        state.interrupt_note = None
        if not result.total and not out.json:
            out.note(f"nothing to revoke: {who} has no active session")
            return EXIT_OK
        return _report_bulk(out, result, revoked_table=False)

    return with_client(state, body, rate_limit=limiter)


@cli.command("token")
@click.argument("session_id")
@click.option(
    "--template", metavar="NAME", help="Use this JWT template (Dashboard > JWT templates)."
)
@click.option(
    "--expires-in",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Token lifetime (Clerk's default: 60 s for session tokens).",
)
@output_options
@click.pass_obj
def token_command(
    state: State, session_id: str, template: str | None, expires_in: int | None
) -> int:
    """Mint a session token (a JWT) for an active session.

    Prints the bare JWT, so TOKEN=$(clerk-sessions token sess_...) works.
    """

    async def body(clerk: AsyncClerk, out: Output) -> int:
        if template is None:
            token = await clerk.sessions.create_token(session_id, expires_in_seconds=expires_in)
        else:
            token = await clerk.sessions.create_token_from_template(
                session_id, template, expires_in_seconds=expires_in
            )
        if out.json:
            out.document({"object": token.object, "jwt": token.jwt})
        else:
            out.plain(token.jwt)
        return EXIT_OK

    return with_client(state, body)


@cli.command("verify-token")
@click.argument("token")
@click.option(
    "--jwt-key",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM file with the instance's public key (Dashboard > API Keys). Default: "
    "$CLERK_JWT_KEY, else the instance's /jwks (needs the secret key).",
)
@click.option(
    "--authorized-party",
    "parties",
    multiple=True,
    metavar="ORIGIN",
    help="Accept only tokens whose azp is this origin (repeatable).",
)
@output_options
@click.pass_obj
def verify_token_command(
    state: State, token: str, jwt_key: str | None, parties: tuple[str, ...]
) -> int:
    """Verify a session token offline and print its claims.

    TOKEN may be - to read it from stdin (keeps it out of shell history). Checks the
    RS256 signature, expiry (5 s leeway), azp and the session claims; exit 1 with the
    reason (token_expired, invalid_signature, ...) when it does not hold.
    """
    import anyio

    if token == "-":
        token = sys.stdin.read().strip()
    pem: str | None = None
    source = "CLERK_JWT_KEY"
    if jwt_key is not None:
        with open(jwt_key, encoding="utf-8") as file:
            pem = file.read()
        source = f"--jwt-key {jwt_key}"
    elif os.environ.get("CLERK_JWT_KEY"):
        pem = os.environ["CLERK_JWT_KEY"]
    out = state.output

    async def verify_with_pem(key: str) -> int:
        from clerk_sessions.verification import verify_token

        claims = await verify_token(token, jwt_key=key, authorized_parties=parties or None)
        out.claims(claims, key_source=source)
        return EXIT_OK

    if pem is not None:
        return anyio.run(verify_with_pem, pem)

    async def body(clerk: AsyncClerk, out: Output) -> int:
        claims = await clerk.verify_token(token, authorized_parties=parties or None)
        out.claims(claims, key_source=f"{clerk.server_url}/jwks")
        return EXIT_OK

    return with_client(state, body)
