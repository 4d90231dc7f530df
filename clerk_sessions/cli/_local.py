"""The commands that need no key and no network: ``mock`` (serve a fake Clerk) and
``demo`` (the whole SDK against one)."""

from __future__ import annotations

import click

from clerk_sessions.cli._root import State, cli, output_options, parse_rate_limit

__all__: list[str] = []


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
