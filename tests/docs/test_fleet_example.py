"""examples/fleet_quota.py runs as a script: several processes on one Redis quota,
against FakeClerk on a real port with its quota on."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from clerk_sessions.testing import FakeClerk, Quota
from tests.redis.conftest import max_in_window

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "fleet_quota.py"


def run_script(url: str, key: str, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLERK_SECRET_KEY": key, "CLERK_API_URL": url, "REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.fleet
def test_three_processes_list_every_user_without_exceeding_the_quota(redis_url: str) -> None:
    fake = FakeClerk(quota=Quota(20, 2))
    users = [f"user_{i}" for i in range(30)]
    for user in users:
        fake.add_session(user_id=user)
    fake.add_session(user_id="user_0", status="ended")
    with fake.serve() as url:
        result = run_script(
            url, fake.secret_key, redis_url, "--workers", "3", "--quota", "20/2", *users
        )
    assert result.returncode == 0, result.stderr
    assert "30 users, 30 active sessions" in result.stdout
    assert result.stdout.count("10 users, 10 active sessions") == 3
    log = fake.requests
    assert len(log) == 30 and all(r.status == 200 for r in log)
    assert max_in_window([r.time for r in log], 2.0) <= 20


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_quota_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "args",
    [["--quota", "many", "user_1"], ["--share", "bulk", "user_1"], ["--workers", "0", "u"], []],
)
def test_bad_arguments_exit_with_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _example().parse_args(args)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err
