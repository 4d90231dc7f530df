"""``clerk-sessions job status NAME --watch`` refreshes until the job is done (as a
process: it ends when another process finishes the job, and Ctrl-C exits 130), and
``job work`` on a terminal shows the rate, the time left and the failures so far."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clerk_sessions.cli import main as run
from clerk_sessions.testing import FakeClerk
from tests.cli.conftest import Served, base_env


@pytest.fixture
def served() -> Iterator[Served]:
    fake = FakeClerk()
    with fake.serve() as url:
        yield Served(fake, url)


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/jobs.db"


def create(served: Served, store: str, *ids: str, chunk_size: int = 100) -> None:
    created = served.run(
        "job",
        "create",
        "j",
        "--store",
        store,
        "--chunk-size",
        str(chunk_size),
        "--session-ids",
        "-",
        stdin="\n".join(ids),
    )
    assert created.returncode == 0, created.stderr


def start_watch(served: Served, store: str, err: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``job status j --watch`` in a process of its own, its stderr into ``err``."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clerk_sessions.cli",
            "job",
            "status",
            "j",
            "--store",
            store,
            "--watch",
            *extra,
        ],
        env={**served.env, "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=err.open("wb"),
    )


def wait_for(path: Path, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} never appeared: {path.read_text()!r}"
        time.sleep(0.05)


def test_watch_refreshes_until_another_process_finishes_the_job(
    served: Served, store: str, tmp_path: Path
) -> None:
    ids = [served.fake.add_session()["id"] for _ in range(20)]
    create(served, store, *ids, "sess_unknown")
    err = tmp_path / "watch.err"
    watcher = start_watch(served, store, err, "--interval", "0.2")
    try:
        wait_for(err, "0 revoked, 0 failed, 21 pending")

        worked = served.run("job", "work", "j", "--store", store)

        assert watcher.wait(timeout=30) == 1  # done, with one failure
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert worked.returncode == 1, worked.stderr
    assert "job j: 21 sessions: 20 revoked, 1 failed, 0 pending" in err.read_text()


def test_ctrl_c_stops_watching_with_exit_130_and_the_job_goes_on(
    served: Served, store: str, tmp_path: Path
) -> None:
    create(served, store, served.fake.add_session()["id"])
    err = tmp_path / "watch.err"
    watcher = start_watch(served, store, err, "--interval", "0.2")
    try:
        wait_for(err, "1 pending")
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()

    assert code == 130
    assert "interrupted: stopped watching job j; the job itself goes on" in err.read_text()
    assert served.run("job", "status", "j", "--store", store).returncode == 1  # still pending


def job(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``clerk-sessions job ARGS`` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run(["job", *args])
    code = exited.value.code
    assert isinstance(code, int)
    captured = capsys.readouterr()
    return code, captured.out, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", captured.err)


@pytest.fixture
def env(served: Served, monkeypatch: pytest.MonkeyPatch) -> Served:
    for name, value in base_env(
        CLERK_API_URL=served.url, CLERK_SECRET_KEY=served.fake.secret_key
    ).items():
        monkeypatch.setenv(name, value)
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return served


def test_watching_stops_at_its_timeout_when_nobody_works_the_job(
    env: Served, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create(env, store, env.fake.add_session()["id"])

    code, _, err = job(
        capsys, "status", "j", "--store", store, "--watch", "--interval", "0.1", "--timeout", "0.3"
    )

    assert code == 1
    assert "0 revoked, 0 failed, 1 pending (not done: run `job work`)" in err


def test_watching_with_json_prints_a_json_line_per_change(
    env: Served, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create(env, store, env.fake.add_session()["id"])
    assert job(capsys, "work", "j", "--store", store)[0] == 0

    code, out, _ = job(capsys, "status", "j", "--store", store, "--watch", "--json")

    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "name": "j",
            "kind": "session",
            "total": 1,
            "revoked": 1,
            "failed": 0,
            "pending": 0,
            "done": True,
        }
    ]


def test_job_work_on_a_terminal_shows_the_rate_the_time_left_and_the_failures(
    env: Served, store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [env.fake.add_session()["id"] for _ in range(5)]
    create(env, store, *ids, "sess_unknown", chunk_size=1)  # a rate needs a few updates
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr counts as a terminal

    code, _, err = job(capsys, "work", "j", "--store", store, "--concurrency", "2")

    assert code == 1
    assert "6/6" in err
    assert re.search(r"[\d.,]+/s", err)
    assert "eta" in err
    assert "1 failed" in err


def test_watching_on_a_terminal_shows_a_bar_then_the_status(
    env: Served, store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create(env, store, env.fake.add_session()["id"], "sess_unknown")
    assert job(capsys, "work", "j", "--store", store)[0] == 1
    monkeypatch.setenv("FORCE_COLOR", "1")

    code, _, err = job(capsys, "status", "j", "--store", store, "--watch")

    assert code == 1
    assert "2/2" in err and "1 failed" in err
    assert "job j: 2 sessions: 1 revoked, 1 failed, 0 pending" in err


def test_job_work_on_a_terminal_with_a_refused_key_says_so_and_exits_3(
    env: Served, store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    create(env, store, env.fake.add_session()["id"])
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("CLERK_SECRET_KEY", "sk_test_not_the_fakes")

    code, _, err = job(capsys, "work", "j", "--store", store)

    assert code == 3
    assert "check CLERK_SECRET_KEY" in err


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_following_a_job_shows_its_counts_on_the_bar(
    env: Served, store: str, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    import io

    import anyio
    from rich.console import Console

    from clerk_sessions.cli._progress import Bar, progress_bar
    from clerk_sessions.cli._watch import follow
    from clerk_sessions.jobs import RevocationJob

    create(env, store, env.fake.add_session()["id"], "sess_unknown")
    assert job(capsys, "work", "j", "--store", store)[0] == 1
    stream = io.StringIO()

    async def main() -> Bar:
        async with await RevocationJob.open(store, "j") as opened:
            with progress_bar(Console(file=stream, force_terminal=True, width=200), "j") as bar:
                with anyio.move_on_after(0.5):
                    await follow(opened, bar, interval_s=0.05)
        return bar

    bar = anyio.run(main, backend=backend)

    assert bar.failed == 1
    assert "2/2" in stream.getvalue()
