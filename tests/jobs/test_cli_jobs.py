"""``clerk-sessions job ...`` as a process, against a FakeClerk on a real loopback port.

Exit codes (API.md): 0 done with no failure, 1 done with failures or not done, 2 usage,
3 configuration, 130 interrupted.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import unittest.mock
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from clerk_sessions.cli import main as run
from clerk_sessions.cli._jobs import default_quota
from clerk_sessions.jobs import _sqlite_store as sqlite_store
from clerk_sessions.testing import FakeClerk, FaultConfig, ManualClock, Quota
from tests.cli.conftest import Served
from tests.jobs.conftest import revoke_counts, statuses


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLERK_SECRET_KEY", "CLERK_API_URL", "CLERK_SESSIONS_JOB_STORE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    fake = FakeClerk()
    with fake.serve() as url:
        monkeypatch.setenv("CLERK_API_URL", url)
        monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
        yield Served(fake, url)


class Ran:
    """What an in-process run printed, and its exit code."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


def job(capsys: pytest.CaptureFixture[str], *args: str) -> Ran:
    """``clerk-sessions job ARGS`` in this process (the process tests are below)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run(["job", *args])
    code = exited.value.code
    assert isinstance(code, int)
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)


def id_file(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / f"ids-{len(list(tmp_path.iterdir()))}.txt"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/jobs.db"


def test_a_job_from_a_file_of_session_ids_to_done(
    served: Served, store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [served.fake.add_session()["id"] for _ in range(30)]
    ids_path = id_file(tmp_path, *ids, "", "  sess_unknown  ", ids[0])

    created = job(capsys, "create", "incident", "--store", store, "--session-ids", ids_path)
    assert created.returncode == 0, created.stderr
    assert "created job incident: 31 session id(s)" in created.stderr

    pending = job(capsys, "status", "incident", "--store", store, "--json")
    assert pending.returncode == 1
    assert json.loads(pending.stdout) == {
        "name": "incident",
        "kind": "session",
        "total": 31,
        "revoked": 0,
        "failed": 0,
        "pending": 31,
        "done": False,
    }
    assert "not done: run `job work`" in job(capsys, "status", "incident", "--store", store).stderr

    worked = job(capsys, "work", "incident", "--store", store, "--concurrency", "4")
    assert worked.returncode == 1  # done, with one failure
    assert "30 revoked, 1 failed, 0 pending" in worked.stderr
    assert {statuses(served.fake)[i] for i in ids} == {"revoked"}
    assert revoke_counts(served.fake) == dict.fromkeys([*ids, "sess_unknown"], 1)

    failed = job(capsys, "failed", "incident", "--store", store, "--json")
    assert failed.returncode == 1
    lines = [json.loads(line) for line in failed.stdout.splitlines()]
    assert [(x["id"], x["status_code"], x["error_code"], x["retryable"]) for x in lines] == [
        ("sess_unknown", 404, "resource_not_found", False)
    ]
    table = job(capsys, "failed", "incident", "--store", store)
    assert "sess_unknown" in table.stdout
    assert "resource_not_found" in table.stdout

    retried = job(capsys, "retry-failed", "incident", "--store", store, "--json")
    assert retried.returncode == 0
    assert json.loads(retried.stdout) == {"name": "incident", "requeued": 0}
    quiet = job(capsys, "retry-failed", "incident", "--store", store)
    assert "no retryable failure" in quiet.stderr


def test_the_failed_table_shows_the_first_fifty(
    served: Served, store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = [f"sess_unknown_{n:02d}" for n in range(53)]
    job(capsys, "create", "j", "--store", store, "--session-ids", id_file(tmp_path, *unknown))
    assert job(capsys, "work", "j", "--store", store).returncode == 1
    table = job(capsys, "failed", "j", "--store", store)
    assert sum(item in table.stdout for item in unknown) == 50
    assert "... and 3 more (use --json for all)" in table.stderr


def test_a_user_job_from_stdin_in_a_process(served: Served, store: str) -> None:
    users = [served.fake.add_user() for _ in range(3)]
    sessions = [served.fake.add_session(user_id=u)["id"] for u in users for _ in range(2)]
    stdin = "\n".join(users)
    created = served.run(
        "job", "create", "users", "--store", store, "--user-ids", "-", "--json", stdin=stdin
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout) == {"name": "users", "kind": "user", "total": 3}
    worked = served.run("job", "work", "users", "--store", store, "--json", "--quota", "100/1")
    assert worked.returncode == 0, worked.stderr
    assert json.loads(worked.stdout)["revoked"] == 3
    assert {statuses(served.fake)[i] for i in sessions} == {"revoked"}


def test_a_finished_user_job_reads_as_done(
    served: Served, store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = [served.fake.add_user() for _ in range(3)]
    job(capsys, "create", "users", "--store", store, "--user-ids", id_file(tmp_path, *users))
    assert job(capsys, "work", "users", "--store", store, "--quota", "100/1").returncode == 0
    done = job(capsys, "status", "users", "--store", store)
    assert done.returncode == 0
    assert "3 users: 3 revoked, 0 failed, 0 pending (done)" in done.stderr
    assert "no failed item" in job(capsys, "failed", "users", "--store", store).stderr


def test_retryable_failures_are_listed_and_requeued(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = ManualClock()
    # One request an hour: the Retry-After is past the client's 60 s cap, so the 429s
    # are failures at once, and retryable ones.
    fake = FakeClerk(clock=clock, quota=Quota(requests=1, per_seconds=3600))
    ids = [fake.add_session()["id"] for _ in range(3)]
    with fake.serve() as url:
        monkeypatch.setenv("CLERK_API_URL", url)
        monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
        job(capsys, "create", "j", "--store", store, "--session-ids", id_file(tmp_path, *ids))
        worked = job(capsys, "work", "j", "--store", store, "--concurrency", "1")
        assert worked.returncode == 1
        assert "1 revoked, 2 failed" in worked.stderr
        listed = job(capsys, "failed", "j", "--store", store, "--json")
        assert [json.loads(line)["status_code"] for line in listed.stdout.splitlines()] == [429] * 2
        clock.advance(3600)
        requeued = job(capsys, "retry-failed", "j", "--store", store)
        assert requeued.returncode == 0
        assert "2 item(s) back to pending" in requeued.stderr
        first = job(capsys, "work", "j", "--store", store, "--concurrency", "1")
        assert "2 revoked, 1 failed" in first.stderr
        clock.advance(3600)
        job(capsys, "retry-failed", "j", "--store", store)
        assert job(capsys, "work", "j", "--store", store).returncode == 0
    assert {statuses(fake)[i] for i in ids} == {"revoked"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "j", "--session-ids", "IDS"], "exists already"),
        (["create", "k", "--session-ids", "IDS", "--user-ids", "IDS"], "exactly one of"),
        (["create", "k"], "exactly one of"),
        (["status", "nope"], "no job named 'nope'"),
        (["work", "nope"], "no job named 'nope'"),
        (["status", "bad\tname"], "job name"),
        (["work", "j", "--concurrency", "0"], "Invalid value for '--concurrency'"),
        (["work", "j", "--quota", "ten"], "is not REQUESTS/SECONDS"),
    ],
)
def test_usage_errors_exit_2(
    served: Served,
    store: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    ids = id_file(tmp_path, "sess_a")
    assert job(capsys, "create", "j", "--store", store, "--session-ids", ids).returncode == 0
    result = job(capsys, *[ids if a == "IDS" else a for a in args], "--store", store)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_a_bad_id_in_the_file_exits_2_and_leaves_no_job(
    served: Served, store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = id_file(tmp_path, "sess_1", "sess 2")
    result = job(capsys, "create", "j", "--store", store, "--session-ids", ids)
    assert result.returncode == 2
    assert f"--session-ids {ids}, line 2: 'sess 2' is not an id" in result.stderr
    assert job(capsys, "status", "j", "--store", store).returncode == 2


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("postgres://db/x", "unknown job store"),
        ("/nonexistent/dir/jobs.db", "cannot open the job store"),
        ("sqlite://relative.db", "is not sqlite:///ABSOLUTE/PATH"),
    ],
)
def test_an_unusable_store_exits_3(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str, message: str
) -> None:
    ids = id_file(tmp_path, "sess_a")
    for args in (["create", "j", "--session-ids", ids], ["status", "j"], ["work", "j"]):
        result = job(capsys, *args, "--store", store)
        assert result.returncode == 3, (args, result.stderr)
        assert message in result.stderr


def test_a_file_that_is_not_a_job_store_exits_3(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 50)
    result = job(capsys, "status", "j", "--store", str(path))
    assert result.returncode == 3
    assert "not a job store" in result.stderr


def test_a_store_failure_exits_3(
    served: Served, store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job(capsys, "create", "j", "--store", store, "--session-ids", id_file(tmp_path, "sess_a"))
    path = store.removeprefix("sqlite://")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with unittest.mock.patch.object(sqlite_store, "BUSY_TIMEOUT_S", 0.05):
            result = job(capsys, "retry-failed", "j", "--store", store)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert result.returncode == 3
    assert "the file stayed locked by another process for 0.05 s" in result.stderr


def test_no_key_or_a_wrong_key_exits_3(
    served: Served,
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job(capsys, "create", "j", "--store", store, "--session-ids", id_file(tmp_path, "sess_1"))
    monkeypatch.delenv("CLERK_SECRET_KEY")
    no_key = job(capsys, "work", "j", "--store", store)
    assert no_key.returncode == 3
    assert "no Clerk secret key" in no_key.stderr
    monkeypatch.setenv("CLERK_SECRET_KEY", "sk_test_wrong")
    wrong = job(capsys, "work", "j", "--store", store)
    assert wrong.returncode == 3
    assert "check CLERK_SECRET_KEY" in wrong.stderr
    monkeypatch.setenv("CLERK_SECRET_KEY", "sk_test_has spaces")
    bad = job(capsys, "work", "j", "--store", store)
    assert bad.returncode == 3
    assert json.loads(job(capsys, "status", "j", "--store", store, "--json").stdout)["pending"] == 1


def test_redis_quota_without_the_redis_module_or_a_usable_url_exits_3(
    served: Served, store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job(capsys, "create", "j", "--store", store, "--session-ids", id_file(tmp_path, "sess_1"))
    result = job(capsys, "work", "j", "--store", store, "--redis-quota", "http://not-redis")
    assert result.returncode == 3, result.stderr
    assert "--redis-quota" in result.stderr


def test_the_store_may_come_from_the_environment(
    served: Served,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLERK_SESSIONS_JOB_STORE", str(tmp_path / "env.db"))
    created = job(capsys, "create", "j", "--session-ids", id_file(tmp_path, "sess_1"))
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "env.db").exists()


def test_an_interrupted_worker_exits_130_and_the_next_one_finishes(store: str) -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.02, 0.02)))
    ids = [fake.add_session()["id"] for _ in range(200)]
    with fake.serve() as url:
        served = Served(fake, url)
        stdin = "\n".join(ids)
        served.run("job", "create", "j", "--store", store, "--session-ids", "-", stdin=stdin)
        worker = subprocess.Popen(
            [sys.executable, "-m", "clerk_sessions.cli", "job", "work", "j", "--store", store],
            env=served.env,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while len(revoke_counts(fake)) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.send_signal(signal.SIGINT)
        _, stderr = worker.communicate(timeout=30)
        assert worker.returncode == 130, stderr
        assert "interrupted: job j:" in stderr
        assert "run `job work j` again to resume" in stderr
        start = time.monotonic()
        finished = served.run("job", "work", "j", "--store", store)
        assert finished.returncode == 0, finished.stderr
        assert time.monotonic() - start < 30  # the chunks were given back: no 60 s lease
    assert {statuses(fake)[i] for i in ids} == {"revoked"}
    assert sum(revoke_counts(fake).values()) <= len(ids) + 2 * 100


@pytest.mark.parametrize(
    ("key", "quota"),
    [("sk_live_abc", (1000, 10.0)), ("sk_test_abc", (100, 10.0)), ("anything", (100, 10.0))],
)
def test_the_default_quota_follows_the_key(key: str, quota: tuple[int, float]) -> None:
    assert default_quota(key) == quota


def test_job_help_lists_the_commands_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    result = job(capsys, "--help")
    assert result.returncode == 0
    listed = [
        line.split()[0]
        for line in result.stdout.split("Commands:")[1].splitlines()
        if line.startswith("  ") and line.split()
    ]
    assert listed[:5] == ["create", "work", "status", "failed", "retry-failed"]
    assert "130 interrupted" in result.stdout


def starts_per_window(fake: FakeClerk, window_s: float) -> int:
    """The most revoke requests the fake saw start within any ``window_s``."""
    times = sorted(r.time for r in fake.requests if r.raw_path.endswith("/revoke"))
    return max(sum(1 for t in times[i:] if t < start + window_s) for i, start in enumerate(times))


def test_workers_join_the_shared_redis_quota(
    served: Served,
    store: str,
    tmp_path: Path,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = [served.fake.add_session()["id"] for _ in range(24)]
    job(capsys, "create", "j", "--store", store, "--session-ids", id_file(tmp_path, *ids))
    worked = job(
        capsys, "work", "j", "--store", store, "--redis-quota", redis_url, "--quota", "10/0.5"
    )
    assert worked.returncode == 0, worked.stderr
    assert "WARNING" not in worked.stderr  # Redis answered: no fallback to a local limit
    assert starts_per_window(served.fake, 0.5) <= 10
    assert {statuses(served.fake)[i] for i in ids} == {"revoked"}


def test_a_share_of_the_redis_quota_caps_the_workers(
    served: Served,
    store: str,
    tmp_path: Path,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = [served.fake.add_session()["id"] for _ in range(12)]
    job(capsys, "create", "j", "--store", store, "--session-ids", id_file(tmp_path, *ids))
    args = ["work", "j", "--store", store, "--redis-quota", redis_url, "--quota", "10/0.5"]
    worked = job(capsys, *args, "--share", "4")
    assert worked.returncode == 0, worked.stderr
    assert starts_per_window(served.fake, 0.5) <= 4
    too_big = job(capsys, *args, "--share", "11")
    assert too_big.returncode == 2
    assert "cannot allow more than its quota" in too_big.stderr
    alone = job(capsys, "work", "j", "--store", store, "--share", "4")
    assert alone.returncode == 2
    assert "--share takes a part of a --redis-quota" in alone.stderr


def test_an_interrupted_create_exits_130_and_says_no_job_was_made(
    served: Served, store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from clerk_sessions.cli import _jobs

    async def interrupted(file: object, option: str) -> AsyncIterator[str]:
        yield "sess_1"
        signal.raise_signal(signal.SIGINT)  # Ctrl-C, as the terminal sends it
        await anyio.sleep_forever()
        yield "never"  # pragma: no cover

    monkeypatch.setattr(_jobs, "_lines", interrupted)
    result = job(capsys, "create", "j", "--store", store, "--session-ids", "-")
    assert result.returncode == 130
    assert "interrupted: no job named j was created" in result.stderr
    assert job(capsys, "status", "j", "--store", store).returncode == 2
