"""In-process checks: option parsing, exit-code rules, and import boundaries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import clerk_sessions
from clerk_sessions.cli._root import parse_rate_limit
from clerk_sessions.cli._sessions import bulk_exit_code as _bulk_exit_code
from clerk_sessions.errors import ClerkSessionsError
from clerk_sessions.models import BulkRevokeResult

PACKAGE = Path(clerk_sessions.__file__).parent


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("100/10", (100, 10.0)), ("1000/10", (1000, 10.0)), ("5/0.5", (5, 0.5))],
)
def test_rate_limit_reads_requests_per_seconds(text: str, parsed: tuple[int, float]) -> None:
    assert parse_rate_limit(text) == parsed


@pytest.mark.parametrize("text", ["100", "/10", "100/", "0/10", "10/0", "10/-1", "a/b", "1/inf"])
def test_rate_limit_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="is not REQUESTS/SECONDS"):
        parse_rate_limit(text)


@pytest.mark.parametrize(
    ("revoked", "failed", "code"),
    [(2, 0, 0), (0, 0, 0), (1, 1, 3), (0, 2, 1)],
    ids=["all-revoked", "nothing-to-do", "partial", "all-failed"],
)
def test_bulk_exit_code(revoked: int, failed: int, code: int) -> None:
    result = BulkRevokeResult(
        revoked={f"r{i}": None for i in range(revoked)},  # type: ignore[misc]
        failed={f"f{i}": ClerkSessionsError("x") for i in range(failed)},
    )
    assert _bulk_exit_code(result) == code


def test_core_never_imports_the_cli() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts
        and "clerk_sessions.cli" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_the_command_definitions_load_without_jwt_or_the_fake() -> None:
    # Every invocation pays this startup; --help must not load the heavy parts.
    # (The SDK core is loaded, as clerk_sessions/__init__ imports it; and with it rich,
    # because httpx imports its own command line when rich and click are installed.)
    code = (
        "import sys\n"
        "from clerk_sessions.cli import command\ncommand()\n"
        "heavy = ['jwt', 'uvicorn', 'starlette', 'clerk_sessions.testing']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"
