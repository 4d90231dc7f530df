"""The ``clerk-sessions`` command: one click group, one function per command.

Startup cost matters (``--help`` and every test start a process), so this module imports
only click; the SDK, rich, anyio and the fake are imported by the commands that use them.

Exit codes: see `clerk_sessions.cli._exits` (and ``clerk-sessions --help``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from clerk_sessions.cli._exits import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    CommandError,
)
from clerk_sessions.models import QueryParamStatus

if TYPE_CHECKING:
    from clerk_sessions import AsyncClerk, RateLimit
    from clerk_sessions.cli._output import Output
    from clerk_sessions.models import BulkRevokeResult

__all__ = ["cli", "run"]

_F = TypeVar("_F", bound=Callable[..., Any])

_EPILOG = """\b
Exit codes: 0 ok, 1 failure (one line with Clerk's code and trace id), 2 usage
(bad option, no secret key, confirmation needed), 3 partial failure of a bulk
command (some sessions revoked, some not), 130 interrupted.
\b
Output: tables on stdout for people; --json prints one JSON document for a single
result and JSON lines (one object per session) for lists and bulk results.
Progress, notes and errors go to stderr. NO_COLOR is honoured.
"""


class State:
    """What the global and per-command options decided, shared through click's ``obj``."""

    def __init__(self) -> None:
        self.secret_key: str | None = None
        self.api_url: str | None = None
        self.json = False
        self.debug = False
        # Said after "interrupted" on Ctrl-C: how far a bulk command got.
        self.interrupt_note: str | None = None
        self._output: Output | None = None

    @property
    def output(self) -> Output:
        if self._output is None:
            from clerk_sessions.cli._output import Output

            self._output = Output(json_mode=self.json)
        return self._output


class _Group(click.Group):
    """Lists commands in the order they are defined (by task), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def _set_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and param.name:
        setattr(ctx.ensure_object(State), param.name, True)


def output_options(function: _F) -> _F:
    """``--json`` and ``--debug``, accepted after the command as well as before it."""
    function = click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        callback=_set_flag,
        help="On failure, print the full traceback.",
    )(function)
    function = click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_flag,
        help="Machine-readable output on stdout: JSON lines for lists, one document otherwise.",
    )(function)
    return function


@click.group(cls=_Group, epilog=_EPILOG, context_settings={"max_content_width": 100})
@click.option(
    "--secret-key",
    envvar="CLERK_SECRET_KEY",
    show_envvar=True,
    metavar="KEY",
    help="The instance's secret key (sk_live_... / sk_test_...). Prefer the environment "
    "variable: a flag shows up in `ps` and in shell history.",
)
@click.option(
    "--api-url",
    envvar="CLERK_API_URL",
    show_envvar=True,
    metavar="URL",
    help="Backend API base URL. Default: https://api.clerk.com/v1 (set it to a `mock` URL "
    "to practise).",
)
@output_options
@click.version_option(package_name="clerk-sessions", prog_name="clerk-sessions")
@click.pass_context
def cli(ctx: click.Context, secret_key: str | None, api_url: str | None) -> None:
    """Find, inspect and revoke Clerk sessions; run a local fake Clerk.

    \b
    Sign a user out everywhere (asks first; --dry-run to look):
      clerk-sessions revoke-all --user-id user_123
    Against your instance (set CLERK_SECRET_KEY): list, get, revoke,
    revoke-all, token, verify-token, job (durable bulk revocation, resumable,
    many workers). Locally, without a key or network:
    mock (serve a fake Clerk), demo (the whole SDK in one command).
    """
    state = ctx.ensure_object(State)
    state.secret_key = secret_key or None
    state.api_url = api_url or None


# ---------------------------------------------------------------------- running commands


def _require_key(state: State) -> str:
    if not state.secret_key:
        raise CommandError(
            "no Clerk secret key: set CLERK_SECRET_KEY (or pass --secret-key); it is "
            "under API Keys in the Clerk Dashboard",
            EXIT_USAGE,
        )
    return state.secret_key


def _with_client(
    state: State,
    body: Callable[[AsyncClerk, Output], Awaitable[int]],
    *,
    rate_limit: RateLimit | None = None,
) -> int:
    """Run ``body`` with a client for the configured instance; return its exit code."""
    import anyio

    from clerk_sessions import AsyncClerk
    from clerk_sessions.errors import ConfigurationError

    key = _require_key(state)
    output = state.output
    try:
        client = AsyncClerk(key, server_url=state.api_url, rate_limit=rate_limit)
    except ConfigurationError as exc:
        # The SDK names its own parameters; the operator typed a flag or a variable.
        source = (
            "--api-url / CLERK_API_URL"
            if "server_url" in str(exc)
            else ("--secret-key / CLERK_SECRET_KEY")
        )
        raise CommandError(f"{source}: {exc}", EXIT_USAGE) from exc

    async def main() -> int:
        async with client:
            return await body(client, output)

    return anyio.run(main)


def _bulk_exit_code(result: BulkRevokeResult) -> int:
    if not result.failed:
        return EXIT_OK
    return EXIT_PARTIAL if result.revoked else EXIT_FAILURE


def parse_rate_limit(value: str) -> tuple[int, float]:
    """``REQUESTS/SECONDS``, e.g. ``100/10`` (Clerk's development quota)."""
    requests, slash, seconds = value.partition("/")
    try:
        parsed = (int(requests), float(seconds))
    except ValueError:
        parsed = (0, 0.0)
    if not slash or parsed[0] < 1 or not 0 < parsed[1] < float("inf"):
        raise ValueError(f"{value!r} is not REQUESTS/SECONDS such as 100/10")
    return parsed


_STATUSES = tuple(status.value for status in QueryParamStatus)


# ---------------------------------------------------------------------- commands


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

    return _with_client(state, body)


@cli.command("get")
@click.argument("session_id")
@output_options
@click.pass_obj
def get_command(state: State, session_id: str) -> int:
    """Show one session in full: status, user, client, times, device."""

    async def body(clerk: AsyncClerk, out: Output) -> int:
        out.session(await clerk.sessions.get(session_id))
        return EXIT_OK

    return _with_client(state, body)


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

    return _with_client(state, body)


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
    return _bulk_exit_code(result)


@cli.command("revoke-all")
@click.option("--user-id", metavar="USER_ID", help="Sign this user out everywhere.")
@click.option("--client-id", metavar="CLIENT_ID", help="Sign out every session on this client.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--dry-run", is_flag=True, help="List what would be revoked; change nothing.")
@click.option(
    "--rate-limit",
    type=parse_rate_limit,
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

    return _with_client(state, body, rate_limit=limiter)


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

    return _with_client(state, body)


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

    return _with_client(state, body)


@cli.command("mock")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8790,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.option(
    "--rate-limit",
    type=parse_rate_limit,
    metavar="REQ/SECONDS",
    help="Answer 429 + Retry-After beyond this quota, e.g. 100/10 (a development instance).",
)
@click.option(
    "--seed-users",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Users to create at start, each with --sessions-per-user active sessions.",
)
@click.option(
    "--sessions-per-user",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Active sessions per seeded user.",
)
@click.option(
    "--secret-key",
    "mock_key",
    metavar="KEY",
    help="The one key the fake accepts. Default: a new sk_test_... (CLERK_SECRET_KEY is "
    "deliberately not read here: the fake must never print your real key).",
)
@click.option(
    "--webhook-url",
    metavar="URL",
    help="POST each session event (session.created, .revoked, .ended, .removed) to this "
    "URL, signed as Clerk signs it; the signing secret is printed. Needs the webhooks extra.",
)
@click.option(
    "--webhook-secret",
    metavar="WHSEC",
    help="The signing secret of those events. Default: a new whsec_... (pass one to keep it "
    "across restarts; CLERK_WEBHOOK_SIGNING_SECRET is deliberately not read here).",
)
@click.option("--quiet", "-q", is_flag=True, help="Do not log each request on stderr.")
@output_options
@click.pass_obj
def mock_command(
    state: State,
    host: str,
    port: int,
    rate_limit: tuple[int, float] | None,
    seed_users: int,
    sessions_per_user: int,
    mock_key: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    quiet: bool,
) -> int:
    """Serve a fake Clerk Backend API locally until Ctrl-C.

    In-memory sessions API and /jwks, faithful to Clerk's OpenAPI spec. Prints the
    URL and key to export for your app. With --webhook-url, session events go to your
    app's webhook endpoint, with no tunnel. Ctrl-C exits 130; SIGTERM exits 0.
    """
    from clerk_sessions.cli._mock import serve

    return serve(
        state.output,
        host=host,
        port=port,
        rate_limit=rate_limit,
        seed_users=seed_users,
        sessions_per_user=sessions_per_user,
        secret_key=mock_key,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        log_requests=not quiet,
    )


@cli.command("demo")
@output_options
@click.pass_obj
def demo_command(state: State) -> int:
    """The whole SDK in one command: no key, no network (runs a fake Clerk)."""
    from clerk_sessions.cli._demo import run_demo

    return run_demo()


# ---------------------------------------------------------------------- the entry point


def run(argv: list[str] | None = None) -> NoReturn:
    """Run the command line and exit with its code (see the module docstring)."""
    state = State()
    try:
        code = _invoke(state, argv)
    except BrokenPipeError:
        # The reader (`| head`) went away: say nothing, and keep Python from complaining
        # again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    sys.exit(code)


def _invoke(state: State, argv: list[str] | None) -> int:
    from clerk_sessions.errors import ClerkSessionsError

    try:
        result = cli.main(args=argv, prog_name="clerk-sessions", standalone_mode=False, obj=state)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort as exc:
        # click turns Ctrl-C and end of input (at a prompt, or anywhere in a command)
        # into Abort; the chained exception says which.
        if isinstance(exc.__cause__ or exc.__context__, EOFError):
            return _fail(state, exc, "aborted: end of input at the confirmation prompt")
        return _interrupted(state)
    except KeyboardInterrupt:
        return _interrupted(state)
    except asyncio.CancelledError:
        # On Python 3.10, anyio.run answers Ctrl-C by cancelling the main task and then
        # lets the CancelledError out instead of a KeyboardInterrupt (3.11's Runner
        # re-raises the interrupt). Nothing else cancels the main task of this process.
        return _interrupted(state)
    except BrokenPipeError:
        raise
    except CommandError as exc:
        return _fail(state, exc, str(exc), exc.exit_code)
    except ClerkSessionsError as exc:
        return _fail(state, exc, str(exc))
    except Exception as exc:
        text = f"unexpected {type(exc).__name__}: {exc}"
        if not state.debug:
            text += " (run again with --debug for the traceback)"
        return _fail(state, exc, text)
    return result if isinstance(result, int) else EXIT_OK


def _fail(state: State, exc: BaseException, message: str, code: int = EXIT_FAILURE) -> int:
    if state.debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    state.output.error(" ".join(message.split()))
    return code


def _interrupted(state: State) -> int:
    message = "interrupted"
    if state.interrupt_note:
        message += f": {state.interrupt_note}"
    state.output.error(message)
    return EXIT_INTERRUPTED


# Imported last: the job commands use this module's helpers, and add themselves to `cli`
# (whichever of the two modules is imported first).
import clerk_sessions.cli._jobs  # noqa: E402, F401  # pyright: ignore[reportUnusedImport]
