"""Failures: exit codes, one-line messages, --debug, and what is printed where."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

from clerk_sessions.testing import FakeClerk, FaultConfig
from tests.cli.conftest import Served, base_env, run_cli

_COLOR = re.compile(r"\x1b\[[0-9;]*m")
_FOREGROUND = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|38;[0-9;]+|9[0-7])m")


def test_unknown_session_exits_1_with_one_line_naming_the_code_and_trace_id(
    served: Served,
) -> None:
    result = served.run("get", "sess_unknown")

    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: 404 Not Found - resource_not_found: ")
    assert re.search(r"\[clerk_trace_id=[0-9a-f]+\]", line)


def test_debug_adds_the_traceback_before_the_error_line(served: Served) -> None:
    result = served.run("get", "sess_unknown", "--debug")

    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "NotFoundError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: 404 Not Found")


def test_a_wrong_secret_key_exits_1_with_clerks_authentication_code(served: Served) -> None:
    env = base_env(CLERK_API_URL=served.url)

    result = run_cli("--secret-key", "sk_test_wrong", "list", "--user-id", "u", env=env)

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: 401 Unauthorized - authentication_invalid: ")
    assert "sk_test_wrong" not in result.stderr


def test_no_secret_key_is_a_usage_error_naming_the_variable() -> None:
    result = run_cli("get", "sess_1", env=base_env(CLERK_API_URL="http://127.0.0.1:9/v1"))

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: no Clerk secret key: set CLERK_SECRET_KEY")


def test_usage_errors_exit_2_before_any_request(served: Served) -> None:
    both = served.run("revoke-all", "--user-id", "u", "--client-id", "c", "--yes")
    bad_limit = served.run("revoke-all", "--user-id", "u", "--rate-limit", "fast")

    assert (both.returncode, bad_limit.returncode) == (2, 2)
    assert "pass exactly one of --user-id or --client-id" in both.stderr
    assert "'fast' is not REQUESTS/SECONDS such as 100/10" in bad_limit.stderr
    assert served.fake.requests == []


def test_no_answer_exits_1_with_one_line() -> None:
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
    env = base_env(CLERK_API_URL="http://127.0.0.1:9/v1", CLERK_SECRET_KEY="sk_test_x")

    result = run_cli("get", "sess_1", env=env, timeout=60)

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_color_only_when_asked_and_never_with_no_color(served: Served) -> None:
    served.fake.add_session(user_id="user_a")
    args = ("list", "--user-id", "user_a")

    piped = run_cli(*args, env=served.env)
    forced = run_cli(*args, env={**served.env, "FORCE_COLOR": "1"})
    no_color = run_cli(*args, env={**served.env, "FORCE_COLOR": "1", "NO_COLOR": "1"})

    assert not _COLOR.search(piped.stdout)  # not a terminal: plain text
    assert _FOREGROUND.search(forced.stdout)  # the status is coloured
    assert not _FOREGROUND.search(no_color.stdout)  # NO_COLOR wins
    assert "active" in no_color.stdout


def test_ctrl_c_during_revoke_all_exits_130_saying_how_far_it_got() -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.05, 0.05)))
    ids = [fake.add_session(user_id="user_a")["id"] for _ in range(40)]
    with fake.serve() as url:
        env = base_env(CLERK_API_URL=url, CLERK_SECRET_KEY=fake.secret_key)
        args = ["revoke-all", "--user-id=user_a", "--yes", "--concurrency=1"]
        process = subprocess.Popen(
            [sys.executable, "-m", "clerk_sessions.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 20
        while sum(fake.get_session(i)["status"] == "revoked" for i in ids) < 3:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)

    assert process.returncode == 130
    # click starts a new line first, so that the message does not follow a "^C".
    [line] = stderr.strip().splitlines()
    assert re.fullmatch(
        r"error: interrupted: \d+ of 40 session\(s\) handled before the interrupt; "
        r"run the same command again to revoke the rest",
        line,
    )
    assert any(fake.get_session(i)["status"] == "active" for i in ids)
