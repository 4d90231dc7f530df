"""examples/batch_revoke.py runs as a script against FakeClerk on a real port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clerk_sessions.testing import FakeClerk, FaultConfig

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "batch_revoke.py"


def run_script(
    fake: FakeClerk, url: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLERK_SECRET_KEY": fake.secret_key, "CLERK_API_URL": url}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture
def fake() -> FakeClerk:
    fake = FakeClerk()
    for _ in range(3):
        fake.add_session(user_id="user_a")
    fake.add_session(user_id="user_a", status="ended")
    for _ in range(2):
        fake.add_session(user_id="user_b")
    fake.add_session(user_id="user_untouched")
    return fake


@pytest.fixture
def served(fake: FakeClerk) -> Iterator[str]:
    with fake.serve() as url:
        yield url


def statuses(fake: FakeClerk, user_id: str) -> list[str]:
    return sorted(s["status"] for s in fake.sessions if s["user_id"] == user_id)


@pytest.mark.slow
def test_revokes_every_active_session_of_the_listed_users(
    fake: FakeClerk, served: str, tmp_path: Path
) -> None:
    users_file = tmp_path / "users.txt"
    users_file.write_text("# users to sign out\nuser_b\n\nuser_a\n", encoding="utf-8")
    done = run_script(fake, served, "user_a", "--file", str(users_file), "--rate", "50")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "revoked 5 sessions of 2 users" in done.stdout
    assert statuses(fake, "user_a") == ["ended", "revoked", "revoked", "revoked"]
    assert statuses(fake, "user_b") == ["revoked", "revoked"]
    assert statuses(fake, "user_untouched") == ["active"]


@pytest.mark.slow
def test_reads_user_ids_from_standard_input(fake: FakeClerk, served: str) -> None:
    done = run_script(fake, served, "--file", "-", stdin="user_b\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert statuses(fake, "user_b") == ["revoked", "revoked"]


@pytest.mark.slow
def test_failures_are_printed_and_exit_1(tmp_path: Path) -> None:
    # One request at a time, so the seeded faults fall on the same requests every run.
    fake = FakeClerk(faults=FaultConfig(error_rate=0.3, seed=2))
    for user in ("user_a", "user_b", "user_c"):
        for _ in range(4):
            fake.add_session(user_id=user)
    with fake.serve() as url:
        done = run_script(
            fake, url, "user_a", "user_b", "user_c", "--max-attempts", "1", "--concurrency", "1"
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED to revoke" in done.stdout
    # Whatever the script reports as revoked really is revoked.
    reported = int(done.stdout.split("revoked ")[1].split()[0])
    assert reported == sum(s["status"] == "revoked" for s in fake.sessions)


def test_no_user_ids_is_a_usage_error(fake: FakeClerk) -> None:
    done = run_script(fake, "http://127.0.0.1:9/v1")
    assert done.returncode == 2
    assert "no user ids" in done.stderr


def test_no_secret_key_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CLERK_SECRET_KEY"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "user_a"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert "CLERK_SECRET_KEY" in done.stderr
