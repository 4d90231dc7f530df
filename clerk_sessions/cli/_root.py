"""The root of the ``clerk-sessions`` command: the click group, its global options, the
one way a command gets a client, and the entry point that turns every outcome into an
exit code. Every command module imports this one; it imports none of them
(`clerk_sessions.cli.command` gathers them).

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
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from clerk_sessions.cli._exits import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
)

if TYPE_CHECKING:
    from clerk_sessions import AsyncClerk, RateLimit
    from clerk_sessions.cli._output import Output
    from clerk_sessions.redis import RedisRateLimit

__all__ = [
    "RATE_LIMIT",
    "State",
    "cli",
    "make_client",
    "output_options",
    "run",
    "with_client",
]

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


# The order ``--help`` lists the commands in: by task, not alphabetically (the commands
# are defined in several modules, which may load in any order).
_HELP_ORDER = (
    "list",
    "get",
    "revoke",
    "revoke-all",
    "token",
    "verify-token",
    "mock",
    "demo",
    "job",
)


class _Group(click.Group):
    """Lists commands by task (`_HELP_ORDER`), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        known = {name: place for place, name in enumerate(_HELP_ORDER)}
        return sorted(self.commands, key=lambda name: known.get(name, len(known)))


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


# ---------------------------------------------------------------------- clients


def make_client(
    state: State,
    *,
    config_exit: int,
    rate_limit: RateLimit | RedisRateLimit | None = None,
) -> AsyncClerk:
    """The client of the configured instance, for any command.

    A missing or unusable setting (no key, a bad key or URL) is a `CommandError` naming
    the flag and the variable, with ``config_exit``: the session commands exit 2 (usage),
    the job commands 3 (configuration), as each family documents.
    """
    from clerk_sessions import AsyncClerk
    from clerk_sessions.errors import ConfigurationError

    if not state.secret_key:
        raise CommandError(
            "no Clerk secret key: set CLERK_SECRET_KEY (or pass --secret-key); it is "
            "under API Keys in the Clerk Dashboard",
            config_exit,
        )
    try:
        return AsyncClerk(state.secret_key, server_url=state.api_url, rate_limit=rate_limit)
    except ConfigurationError as exc:
        # The SDK names its own parameters; the operator typed a flag or a variable.
        source = (
            "--api-url / CLERK_API_URL"
            if "server_url" in str(exc)
            else "--secret-key / CLERK_SECRET_KEY"
        )
        raise CommandError(f"{source}: {exc}", config_exit) from exc


def with_client(
    state: State,
    body: Callable[[AsyncClerk, Output], Awaitable[int]],
    *,
    rate_limit: RateLimit | None = None,
) -> int:
    """Run ``body`` with a client for the configured instance; return its exit code."""
    import anyio

    client = make_client(state, config_exit=EXIT_USAGE, rate_limit=rate_limit)
    output = state.output

    async def main() -> int:
        async with client:
            return await body(client, output)

    return anyio.run(main)


if TYPE_CHECKING:
    _ParamType = click.ParamType[tuple[int, float], object]
else:  # generic only in recent clicks: subscripting it at run time fails on older ones
    _ParamType = click.ParamType


class _RateLimit(_ParamType):
    """``REQUESTS/SECONDS``, e.g. ``100/10`` (Clerk's development quota).

    A parameter type of its own so the message reaches the user on every click the
    metadata allows (click before 8.2 printed only the value a plain function refused).
    """

    name = "REQUESTS/SECONDS"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, float]:
        if isinstance(value, tuple):  # click's contract: a value may come converted already
            return cast("tuple[int, float]", value)
        requests, slash, seconds = str(value).partition("/")
        try:
            parsed = (int(requests), float(seconds))
        except ValueError:
            parsed = (0, 0.0)
        if not slash or parsed[0] < 1 or not 0 < parsed[1] < float("inf"):
            self.fail(f"{value!r} is not REQUESTS/SECONDS such as 100/10", param, ctx)
        return parsed


RATE_LIMIT = _RateLimit()


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
            # The prompt is left without its answer's newline: end its line, as a shell
            # does at Ctrl-D, so the error starts one of its own.
            click.echo(err=True)
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
