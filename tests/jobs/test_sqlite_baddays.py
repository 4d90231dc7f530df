"""The SQLite job store on a bad day: its file deleted, replaced or truncated under a
job that is open, and the disk filling up (a real 1 MiB tmpfs, mounted for the test).

A connection keeps reading its cache and writing to the file it opened after that file
is gone, so without a check a job would go on "making progress" in a file nobody will
ever read again. Whatever happens, a caller gets a `JobStoreError` in the SDK's own words
(never SQLite's), and a job whose data vanished is reported as lost with the count of
its items unaccounted for.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clerk_sessions.errors import ConfigurationError
from clerk_sessions.jobs import JobStoreError, RevocationJob
from clerk_sessions.testing import FakeClerk
from tests.cli.conftest import Served
from tests.jobs.conftest import FAST_RETRIES, revoke_counts

pytestmark = pytest.mark.anyio

# SQLite's own words, which must never reach a caller.
RAW = ("database or disk is full", "disk I/O error", "malformed", "no such table", "locked")


def assert_own_words(message: str) -> None:
    assert "\n" not in message
    for text in RAW:
        assert text not in message, message


def fake_with_sessions(count: int) -> tuple[FakeClerk, list[str]]:
    fake = FakeClerk()
    return fake, [fake.add_session()["id"] for _ in range(count)]


async def work(job: RevocationJob, fake: FakeClerk, lease_s: float = 5.0) -> object:
    async with fake.async_client(retry_config=FAST_RETRIES) as clerk:
        return await job.work(clerk, concurrency=4, lease_s=lease_s)


def checkpoint(path: Path) -> None:
    """Move everything from the write-ahead log into the file itself."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def remove_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# ------------------------------------------------------------------ the file under a job


async def test_a_store_file_deleted_under_an_open_job_is_lost_and_not_made_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    fake, ids = fake_with_sessions(12)
    job = await RevocationJob.create(str(path), "j", session_ids=ids)
    remove_store(path)
    lost = "the data of job 'j' was lost in the store: 12 of its 12 items are unaccounted for"
    with pytest.raises(JobStoreError, match=lost) as caught:
        await job.status()
    assert "the file was deleted while in use" in str(caught.value)
    with pytest.raises(JobStoreError, match=lost):
        [pair async for pair in job.outcomes()]
    with pytest.raises(JobStoreError, match=lost):
        await work(job, fake)
    assert fake.requests == []
    assert not path.exists()  # the store did not come back empty
    await job.aclose()


async def test_a_store_file_truncated_under_an_open_job_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    fake, ids = fake_with_sessions(30)
    job = await RevocationJob.create(str(path), "j", session_ids=ids, chunk_size=10)
    await work(job, fake)
    checkpoint(path)
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(JobStoreError, match="30 of its 30 items are unaccounted for") as caught:
        await job.status()
    assert "the file was truncated while in use" in str(caught.value)
    # Every call after that reads the file as it is now: damaged.
    with pytest.raises(JobStoreError, match="30 of its 30 items") as again:
        await job.status()
    assert_own_words(str(again.value))
    await job.aclose()


async def test_a_truncated_store_file_is_refused_by_a_process_that_opens_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    async with await RevocationJob.create(str(path), "j", session_ids=["sess_1"]):
        pass
    checkpoint(path)
    os.truncate(path, 5000)
    with pytest.raises(ConfigurationError) as caught:
        await RevocationJob.open(str(path), "j")
    assert "is not a job store (not an SQLite database, or a damaged one)" in str(caught.value)
    assert_own_words(str(caught.value))


async def test_a_backup_restored_over_the_store_is_read_from_then_on_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    fake, ids = fake_with_sessions(20)
    job = await RevocationJob.create(str(path), "j", session_ids=ids, chunk_size=5)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(path) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    live.close()
    copy.close()
    await work(job, fake)
    assert (await job.status()).revoked == 20
    caplog.set_level(logging.WARNING, logger="clerk_sessions.jobs")
    remove_store(path)
    os.replace(backup, path)  # the operator restores last night's copy
    # The copy is older: nothing revoked in it. The job carries on from there.
    status = await job.status()
    assert (status.revoked, status.pending) == (0, 20)
    final = await work(job, fake)
    assert final.revoked == 20  # type: ignore[attr-defined]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "the file was replaced while in use" in warnings[0]
    await job.aclose()


@pytest.mark.parametrize("replacement", ["another store", "not a database"])
async def test_a_store_file_replaced_by_one_without_the_job_loses_it(
    tmp_path: Path, replacement: str
) -> None:
    path = tmp_path / "jobs.db"
    job = await RevocationJob.create(str(path), "j", session_ids=["sess_1", "sess_2"])
    other = tmp_path / "other.db"
    if replacement == "another store":
        async with await RevocationJob.create(str(other), "k", session_ids=["sess_9"]):
            pass
        checkpoint(other)
    else:
        other.write_bytes(b"id\nsess_1\n" * 1000)
    remove_store(path)
    os.replace(other, path)
    with pytest.raises(JobStoreError, match="2 of its 2 items are unaccounted for") as caught:
        await job.status()
    assert_own_words(str(caught.value))
    await job.aclose()


# ------------------------------------------------------------------ a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of this test's own (the suite runs as root, in CI too). A machine
    where it cannot be mounted fails the test, saying so: it never passes unchecked."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"cannot mount a 1 MiB tmpfs at {mount} for the disk-full tests (they need "
            f"root, or CAP_SYS_ADMIN in a container): {mounted.stderr.strip()}",
            pytrace=False,
        )
    try:
        yield mount
    finally:
        # Lazy: a store left open by a failing test must not keep the mount alive.
        subprocess.run(["umount", "--lazy", str(mount)], timeout=30, check=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; it holds every free byte left."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    assert shutil.disk_usage(disk).free < 8192
    return filler


async def test_a_create_on_a_full_disk_fails_in_one_sentence_and_leaves_no_job(
    small_disk: Path,
) -> None:
    store = str(small_disk / "jobs.db")
    async with await RevocationJob.create(store, "first", session_ids=["sess_1"]):
        pass
    filler = fill(small_disk)
    with pytest.raises(JobStoreError) as caught:
        await RevocationJob.create(store, "j", session_ids=(f"sess_{i:08d}" for i in range(9000)))
    message = str(caught.value)
    assert "the disk is full; nothing of this operation was recorded" in message
    assert_own_words(message)
    filler.unlink()
    with pytest.raises(LookupError):
        await RevocationJob.open(store, "j")
    async with await RevocationJob.create(store, "j", session_ids=["sess_1", "sess_2"]) as job:
        assert job.total == 2


async def test_work_on_a_full_disk_stops_records_nothing_half_and_resumes_once_freed(
    small_disk: Path,
) -> None:
    store = str(small_disk / "jobs.db")
    fake, ids = fake_with_sessions(300)
    job = await RevocationJob.create(store, "j", session_ids=ids, chunk_size=10)
    filler = fill(small_disk)
    with pytest.raises(JobStoreError) as caught:
        await work(job, fake, lease_s=0.5)
    message = str(caught.value)
    assert "the disk is full" in message and "run it again" in message
    assert_own_words(message)
    stopped = await job.status()  # reading works on a full disk
    assert stopped.revoked < 300
    filler.unlink()
    final = await work(job, fake, lease_s=0.5)
    assert (final.revoked, final.failed, final.done) == (300, 0, True)  # type: ignore[attr-defined]
    recorded = [item async for item, _ in job.outcomes()]
    assert sorted(recorded) == sorted(ids)  # exactly one outcome per id
    # At least once: only the chunks in flight when the disk filled were sent twice.
    assert sum(count - 1 for count in revoke_counts(fake).values()) <= 2 * 10
    await job.aclose()


def test_the_cli_on_a_full_disk_exits_3_with_one_line_and_resumes(
    small_disk: Path, tmp_path: Path
) -> None:
    fake = FakeClerk()
    ids = [fake.add_session()["id"] for _ in range(60)]
    id_file = tmp_path / "ids.txt"
    id_file.write_text("\n".join(ids) + "\n")
    store = f"sqlite://{small_disk}/jobs.db"
    with fake.serve() as url:
        served = Served(fake, url)
        created = served.run("job", "create", "j", "--store", store, "--session-ids", str(id_file))
        assert created.returncode == 0, created.stderr
        filler = fill(small_disk)
        stopped = served.run("job", "work", "j", "--store", store, "--lease", "0.5")
        assert stopped.returncode == 3, stopped.stderr
        lines = stopped.stderr.strip().splitlines()
        assert len(lines) == 1 and "the disk is full" in lines[0], stopped.stderr
        assert_own_words(lines[0])
        filler.unlink()
        resumed = served.run("job", "work", "j", "--store", store, "--lease", "0.5")
        assert resumed.returncode == 0, resumed.stderr
        assert "60 revoked, 0 failed, 0 pending" in resumed.stderr
