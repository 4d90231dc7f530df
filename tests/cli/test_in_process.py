"""The command line in-process (``run(argv)``), for the branches a process test would
make slow: usage errors, table output, the confirmation prompt, exit-code mapping.

The fake still runs on a real loopback port; only the CLI runs in the test process.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from starlette.types import Receive, Scope, Send

from clerk_sessions.cli import _demo, command
from clerk_sessions.cli import main as run
from clerk_sessions.testing import FakeClerk
from clerk_sessions.testing._server import BackgroundServer
from tests.cli.conftest import Served


class _Terminal(io.StringIO):
    """Typed answers on a stdin that says it is a terminal (so the command may ask)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CLERK_SECRET_KEY",
        "CLERK_API_URL",
        "CLERK_JWT_KEY",
        "NO_COLOR",
        "FORCE_COLOR",
        "TTY_COMPATIBLE",
        "COLUMNS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def env(served: Served, monkeypatch: pytest.MonkeyPatch) -> Served:
    """The CLI pointed at the served fake, through the environment."""
    monkeypatch.setenv("CLERK_API_URL", served.url)
    monkeypatch.setenv("CLERK_SECRET_KEY", served.fake.secret_key)
    return served


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        run(list(args))
    code = exited.value.code
    assert isinstance(code, int)
    return code


# ---------------------------------------------------------------------- usage


def test_help_lists_the_commands_by_task_not_alphabetically(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli("--help") == 0

    listing = capsys.readouterr().out.split("Commands:\n")[1].split("\n\n")[0]
    names = [line.split()[0] for line in listing.splitlines() if line.startswith("  ")]
    assert names == [
        "list",
        "get",
        "revoke",
        "revoke-all",
        "token",
        "verify-token",
        "mock",
        "demo",
        "job",
    ]


def test_an_api_url_that_is_no_http_url_is_a_usage_error_naming_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli("--secret-key", "sk_test_x", "--api-url", "ftp://example.com", "get", "sess_1")

    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: --api-url / CLERK_API_URL: server_url must be an absolute")


def test_a_secret_key_with_whitespace_is_a_usage_error_naming_the_key_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli("--secret-key", " sk_test_x ", "--api-url", "http://127.0.0.1:9/v1", "get", "s")

    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: --secret-key / CLERK_SECRET_KEY: the secret key has whitespace")
    assert "sk_test_x" not in line


def test_list_all_refuses_limit_and_offset_before_any_request(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli("list", "--user-id", "user_a", "--all", "--limit", "5")

    assert code == 2
    assert "--all fetches every page itself; drop --limit/--offset" in capsys.readouterr().err
    assert env.fake.requests == []


# ---------------------------------------------------------------------- tables


def test_list_all_as_a_table_shows_every_session_and_counts_them(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [env.fake.add_session(user_id="user_a")["id"] for _ in range(12)]

    assert cli("list", "--user-id", "user_a", "--all") == 0

    captured = capsys.readouterr()
    assert all(session_id in captured.out for session_id in ids)
    assert captured.err.strip() == "12 session(s)"


def test_list_without_matches_prints_no_table_only_the_note(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("list", "--user-id", "user_nobody") == 0

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "no sessions of 0"


def test_get_as_a_table_shows_the_session_field_by_field(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    session = env.fake.add_session(user_id="user_a", active_organization_id="org_1")

    assert cli("get", session["id"]) == 0

    out = capsys.readouterr().out
    assert session["id"] in out
    assert "organization" in out and "org_1" in out
    assert "latest activity" in out


def test_revoke_as_a_table_lists_the_revoked_sessions_and_says_how_many(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [env.fake.add_session(user_id="user_a")["id"] for _ in range(2)]

    assert cli("revoke", *ids) == 0

    captured = capsys.readouterr()
    assert all(session_id in captured.out for session_id in ids)
    assert "revoked" in captured.out
    assert captured.err.strip() == "revoked 2 session(s)"


def test_revoke_json_success_prints_only_the_lines(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = env.fake.add_session(user_id="user_a")["id"]

    assert cli("revoke", session_id, "--json") == 0

    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "session_id": session_id,
        "revoked": True,
        "status": "revoked",
    }
    assert captured.err == ""


# ---------------------------------------------------------------------- revoke-all


def test_revoke_all_with_yes_and_nothing_to_revoke_says_so(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("revoke-all", "--user-id", "user_nobody", "--yes") == 0

    assert capsys.readouterr().err.strip() == (
        "nothing to revoke: user user_nobody has no active session"
    )


def test_revoke_all_does_not_ask_when_there_is_nothing_to_revoke(
    env: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal(""))  # answering would hit end of input

    assert cli("revoke-all", "--client-id", "client_nobody") == 0

    err = capsys.readouterr().err
    assert err.strip() == "nothing to revoke: client client_nobody has no active session"


def test_revoke_all_end_of_input_at_the_prompt_revokes_nothing_and_exits_1(
    env: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    session_id = env.fake.add_session(user_id="user_a")["id"]
    monkeypatch.setattr("sys.stdin", _Terminal(""))

    assert cli("revoke-all", "--user-id", "user_a") == 1

    [line] = capsys.readouterr().err.splitlines()
    # The prompt ends without a newline, so the error follows it on the same line.
    assert line == (
        "Revoke 1 active session(s) of user user_a? [y/N]: "
        "error: aborted: end of input at the confirmation prompt"
    )
    assert env.fake.get_session(session_id)["status"] == "active"


def test_revoke_all_counts_page_by_page_when_the_server_gives_no_total(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClerk()
    ids = [fake.add_session(user_id="user_a")["id"] for _ in range(12)]
    fake.add_session(user_id="user_b")

    async def without_totals(scope: Scope, receive: Receive, send: Send) -> None:
        # An API that ignores `paginated=true` answers the spec's bare array.
        if scope["type"] == "http":
            query = scope["query_string"].replace(b"paginated=true", b"")
            scope = {**scope, "query_string": query}
        await fake.app(scope, receive, send)

    server = BackgroundServer(without_totals, host="127.0.0.1", port=0)
    server.start()
    try:
        monkeypatch.setenv("CLERK_API_URL", f"http://127.0.0.1:{server.port}/v1")
        monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
        monkeypatch.setattr("sys.stdin", _Terminal("y\n"))

        code = cli("revoke-all", "--user-id", "user_a")
    finally:
        server.stop()

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Revoke 12 active session(s) of user user_a?" in captured.err  # more than a page
    assert {fake.get_session(i)["status"] for i in ids} == {"revoked"}


def test_revoke_all_on_a_terminal_shows_a_progress_bar(
    env: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        env.fake.add_session(user_id="user_a")
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr counts as a terminal

    assert cli("revoke-all", "--user-id", "user_a", "--yes") == 0

    err = capsys.readouterr().err
    assert "revoking sessions of user user_a" in err
    assert "3/3" in err
    assert "revoked 3 session(s)" in err


# ---------------------------------------------------------------------- token


def test_token_with_a_template_and_json_prints_a_document(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    env.fake.add_template("backend", claims={"role": "reader"})
    session_id = env.fake.add_session(user_id="user_a")["id"]

    assert cli("token", session_id, "--template", "backend", "--json") == 0

    document = json.loads(capsys.readouterr().out)
    assert document["object"] == "token"
    assert document["jwt"].count(".") == 2
    last = env.fake.requests[-1]
    assert last.raw_path.endswith(f"/sessions/{session_id}/tokens/backend")


# ---------------------------------------------------------------------- failures


def test_an_unexpected_error_names_its_type_and_suggests_debug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(b"\xff\xfe not utf-8")

    assert cli("verify-token", "a.b.c", "--jwt-key", str(key_file)) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: unexpected UnicodeDecodeError: ")
    assert line.endswith(" (run again with --debug for the traceback)")


def test_an_unexpected_error_with_debug_prints_the_traceback_instead_of_the_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(b"\xff\xfe not utf-8")

    assert cli("--debug", "verify-token", "a.b.c", "--jwt-key", str(key_file)) == 1

    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    last = err.splitlines()[-1]
    assert last.startswith("error: unexpected UnicodeDecodeError: ")
    assert "--debug" not in last


@pytest.fixture
def interrupted_demo(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BaseException]]:
    """``demo`` raises whatever the test puts in the list."""
    raised: list[BaseException] = []

    def run_demo() -> int:
        raise raised[0]

    monkeypatch.setattr(_demo, "run_demo", run_demo)
    yield raised


def test_a_cancelled_main_task_counts_as_an_interrupt(
    interrupted_demo: list[BaseException], capsys: pytest.CaptureFixture[str]
) -> None:
    # What Python 3.10's anyio.run lets out on Ctrl-C instead of KeyboardInterrupt.
    interrupted_demo.append(asyncio.CancelledError())

    assert cli("demo") == 130
    assert capsys.readouterr().err.strip() == "error: interrupted"


def test_an_interrupt_outside_clicks_handler_still_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # click turns Ctrl-C inside a command into Abort; one arriving as click returns
    # (its own teardown) comes out as KeyboardInterrupt.
    def interrupted(*_args: object, **_kwargs: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(command(), "main", interrupted)

    assert cli("list") == 130
    assert capsys.readouterr().err.strip() == "error: interrupted"


# ---------------------------------------------------------------------- demo


def test_demo_names_the_failing_step_in_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken_flow(*_args: object) -> None:
        raise RuntimeError("the SDK broke")

    monkeypatch.setattr(_demo, "_flow", broken_flow)

    assert cli("demo") == 1

    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "error: demo failed at step 1 (Start a fake Clerk on a loopback port (no key, no "
        "network)): RuntimeError: the SDK broke"
    )


def test_demo_fails_when_an_answer_of_the_fake_broke_the_spec() -> None:
    records = [SimpleNamespace(violation=v) for v in (None, "$.id: missing", "$.x: bad")]
    fake = cast("FakeClerk", SimpleNamespace(requests=records))

    with pytest.raises(RuntimeError) as failed:
        _demo._check_conformance(fake)

    assert str(failed.value) == (
        "2 answer(s) of the fake broke Clerk's spec, the first: $.id: missing"
    )
