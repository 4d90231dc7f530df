"""The command line is tested as a process: ``python -m clerk_sessions.cli`` against a
FakeClerk served on a real loopback port by the test process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping

import attrs
import pytest

from clerk_sessions.testing import FakeClerk

# Variables that would change what the CLI does if the developer running the suite
# happens to have them set.
_SCRUBBED = ("CLERK_SECRET_KEY", "CLERK_API_URL", "CLERK_JWT_KEY", "NO_COLOR", "FORCE_COLOR")


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and k != "COLUMNS"}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, stdin: str = "", timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run ``clerk-sessions ARGS``; stdin is a pipe (never a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "clerk_sessions.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else base_env(),
        timeout=timeout,
    )


@attrs.frozen
class Served:
    """A fake on a real port, and the environment that points the CLI at it."""

    fake: FakeClerk
    url: str

    @property
    def env(self) -> dict[str, str]:
        return base_env(CLERK_API_URL=self.url, CLERK_SECRET_KEY=self.fake.secret_key)

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env, stdin=stdin)


@pytest.fixture
def served() -> Iterator[Served]:
    fake = FakeClerk()
    with fake.serve() as url:
        yield Served(fake, url)
