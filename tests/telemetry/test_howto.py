"""The OpenTelemetry how-to's set-up example, run as its page says: in a process of its
own (it sets the global providers), against the fake, printing what the page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from clerk_sessions.testing import FakeClerk
from tests.conftest import REPO_ROOT
from tests.docs._blocks import Block, blocks

PAGE = REPO_ROOT / "docs" / "how-to" / "opentelemetry.md"


def setup_example() -> tuple[Block, list[str]]:
    """The block the page says this test runs, and the output the page shows for it."""
    (block,) = [b for b in blocks(PAGE) if b.not_run and "test_howto.py" in b.not_run]
    text = PAGE.read_text(encoding="utf-8")
    after = text[text.index(block.code.splitlines()[-1]) :]
    console = re.search(r"```console\n(?P<out>.*?)```", after, re.DOTALL)
    assert console is not None, "the example's output follows it in a console block"
    return block, console.group("out").splitlines()


@pytest.fixture
def served() -> Iterator[tuple[FakeClerk, str]]:
    fake = FakeClerk()
    user_id = fake.add_user("user_123")
    for session_id in ("sess_1234567890abcdef", "sess_1"):
        fake.add_session(user_id=user_id, session_id=session_id)
    with fake.serve() as url:
        yield fake, url


def test_the_set_up_example_prints_what_the_page_shows(served: tuple[FakeClerk, str]) -> None:
    fake, url = served
    block, shown = setup_example()
    env = {**os.environ, "CLERK_SECRET_KEY": fake.secret_key, "CLERK_API_URL": url}

    result = subprocess.run(
        [sys.executable, "-c", block.code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env=env,
    )

    assert result.returncode == 0, result.stderr
    assert [line.rstrip() for line in result.stdout.splitlines()] == shown
    assert {s["status"] for s in fake.sessions} == {"revoked"}
