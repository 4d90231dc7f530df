"""The progress of bulk work on a terminal: done of total, the rate, the time left and the
failures so far (``revoke``, ``revoke-all``; ``job work`` in tests/jobs/test_cli_watch.py).

In process, with ``FORCE_COLOR`` (rich then treats stderr as a terminal); the fake runs
on a real loopback port.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from clerk_sessions.cli import main as run
from clerk_sessions.cli._progress import progress_bar
from tests.cli.conftest import Served


@pytest.fixture(autouse=True)
def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLERK_SECRET_KEY", "CLERK_API_URL", "NO_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr counts as a terminal
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def env(served: Served, monkeypatch: pytest.MonkeyPatch) -> Served:
    monkeypatch.setenv("CLERK_API_URL", served.url)
    monkeypatch.setenv("CLERK_SECRET_KEY", served.fake.secret_key)
    return served


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit code and stderr (without colour codes) of ``clerk-sessions ARGS``."""
    with pytest.raises(SystemExit) as exited:
        run(list(args))
    code = exited.value.code
    assert isinstance(code, int)
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", capsys.readouterr().err)


def test_revoking_many_ids_shows_the_rate_the_time_left_and_the_failures(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [env.fake.add_session(user_id="user_a")["id"] for _ in range(4)]

    code, err = cli(capsys, "revoke", *ids, "sess_unknown", "sess_gone")

    assert code == 3  # some revoked, some not
    assert "6/6" in err
    assert re.search(r"[\d.,]+/s", err)  # the rate
    assert "eta" in err
    assert "2 failed" in err


def test_revoke_all_shows_its_progress_with_no_failure(
    env: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        env.fake.add_session(user_id="user_a")

    code, err = cli(capsys, "revoke-all", "--user-id", "user_a", "--yes")

    assert code == 0
    assert "3/3" in err
    assert "0 failed" in err
    assert "eta" in err


def test_a_bar_counts_failures_one_by_one_or_from_a_jobs_counts() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=200)
    with progress_bar(console, "job j") as bar:
        bar(500, 1000)
        bar.failure()
        bar.failure()
        after_two = bar.failed
        bar.update(510, 1000, 7)

    assert after_two == 2
    assert "510/1000" in stream.getvalue()
    assert "7 failed" in stream.getvalue()
