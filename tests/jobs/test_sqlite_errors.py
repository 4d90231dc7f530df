"""What the SQLite job store says for each kind of SQLite failure.

Each failure real SQLite can be made to raise here is raised for real (a read-only
connection, a lock held by another connection, a file deleted while open, garbage where
the database was, a missing table, a missing directory). The rest (a full disk, an I/O
error, a permission refused, a code this store has no sentence for) are errors carrying
the result code SQLite would give them, since a test cannot fill the disk of the machine
it runs on; the full-disk and bad-days tests cover those end to end on a tiny file system.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from clerk_sessions.jobs import _sqlite_errors
from clerk_sessions.jobs._store import JobDataLost, JobStoreError


def _raised(action: Callable[[], object]) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as info:
        action()
    return info.value


@contextlib.contextmanager
def _store(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("CREATE TABLE IF NOT EXISTS t (x)")
    try:
        yield connection
    finally:
        connection.close()


def _coded(code: int, name: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError("from SQLite")
    exc.sqlite_errorcode = code  # type: ignore[misc]  # as SQLite's module sets them
    exc.sqlite_errorname = name  # type: ignore[misc]
    return exc


def test_a_read_only_connection_is_a_read_only_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with _store(path), contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as ro:
        exc = _raised(lambda: ro.execute("INSERT INTO t VALUES (1)"))

    error = _sqlite_errors.failure(exc, str(path), 5)

    assert type(error) is JobStoreError
    assert "is read-only to this process; nothing of this operation was recorded" in str(error)


def test_a_lock_held_past_the_busy_timeout_says_to_run_it_again(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with _store(path) as holder, contextlib.closing(sqlite3.connect(path, timeout=0)) as other:
        holder.execute("BEGIN EXCLUSIVE")
        exc = _raised(lambda: other.execute("INSERT INTO t VALUES (1)"))

    error = _sqlite_errors.failure(exc, str(path), 2.5)

    assert type(error) is JobStoreError
    assert "stayed locked by another process for 2.5 s (the busy timeout)" in str(error)
    assert str(error).endswith("run it again")


def test_a_file_deleted_while_open_lost_the_job(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with _store(path) as connection:
        path.unlink()
        exc = _raised(lambda: connection.execute("INSERT INTO t VALUES (1)"))

    error = _sqlite_errors.failure(exc, str(path), 5)

    assert isinstance(error, JobDataLost)
    assert "the file was deleted or moved while in use" in str(error)


def test_garbage_in_place_of_the_file_is_not_a_database_and_lost(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    path.write_bytes(b"not sqlite " * 100)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        exc = _raised(lambda: connection.execute("SELECT * FROM sqlite_master"))

    error = _sqlite_errors.failure(exc, str(path), 5)

    assert _sqlite_errors.not_a_database(exc)
    assert isinstance(error, JobDataLost)
    assert "damaged or no longer a job store" in str(error)


def test_a_file_without_the_tables_lost_the_job(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with _store(path) as connection:
        exc = _raised(lambda: connection.execute("SELECT * FROM jobs"))

    error = _sqlite_errors.failure(exc, str(path), 5)

    assert not _sqlite_errors.not_a_database(exc)
    assert isinstance(error, JobDataLost)
    assert "no longer holds the job store's tables" in str(error)


def test_a_file_in_a_missing_directory_names_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "jobs.db"
    exc = _raised(lambda: sqlite3.connect(path).execute("SELECT 1"))

    error = _sqlite_errors.failure(exc, str(path), 5)

    assert type(error) is JobStoreError
    assert str(error) == (
        f"cannot open the job store {str(path)!r}: its directory {str(tmp_path / 'gone')!r} "
        "does not exist; nothing of this operation was recorded"
    )


@pytest.mark.parametrize(
    ("code", "name", "said"),
    [
        (13, "SQLITE_FULL", "the disk is full; nothing of this operation was recorded: free"),
        (10, "SQLITE_IOERR", "the disk failed to read or write (SQLITE_IOERR)"),
        (3850, "SQLITE_IOERR_LOCK", "the disk failed to read or write (SQLITE_IOERR_LOCK)"),
        (3, "SQLITE_PERM", "is read-only to this process"),
        (2, "SQLITE_INTERNAL", "SQLite failed (SQLITE_INTERNAL); nothing of this operation"),
    ],
)
def test_failures_a_test_cannot_cause_have_a_sentence_each(
    tmp_path: Path, code: int, name: str, said: str
) -> None:
    error = _sqlite_errors.failure(_coded(code, name), str(tmp_path / "jobs.db"), 5)

    assert type(error) is JobStoreError
    assert said in str(error)


def test_an_error_without_a_result_code_is_named_by_its_class(tmp_path: Path) -> None:
    error = _sqlite_errors.failure(sqlite3.InterfaceError("no code"), str(tmp_path / "j.db"), 5)

    assert str(error).endswith(
        "SQLite failed (InterfaceError); nothing of this operation was recorded"
    )


def test_an_io_error_on_a_nearly_full_disk_is_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite reports ENOSPC on its shared-memory file as a plain I/O error.
    full = types.SimpleNamespace(total=10**9, used=10**9, free=0)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: full)

    error = _sqlite_errors.failure(_coded(10, "SQLITE_IOERR"), str(tmp_path / "jobs.db"), 5)

    assert "the disk is full" in str(error)


def test_an_io_error_where_the_disk_cannot_be_asked_is_an_io_error(tmp_path: Path) -> None:
    where = tmp_path / "no" / "such" / "jobs.db"  # disk_usage raises for a missing directory

    error = _sqlite_errors.failure(_coded(10, "SQLITE_IOERR"), str(where), 5)

    assert "the disk failed to read or write" in str(error)


def test_cannot_open_says_which_permission_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run as root here, where every access check passes: the checks are answered for it.
    path = tmp_path / "jobs.db"
    path.write_bytes(b"")
    refused: set[tuple[str, int]] = set()
    monkeypatch.setattr(os, "access", lambda p, mode: (os.fspath(p), mode) not in refused)

    refused.add((str(tmp_path), os.W_OK))
    directory = _sqlite_errors.cannot_open(str(path))
    refused.clear()
    refused.add((str(path), os.R_OK | os.W_OK))
    file = _sqlite_errors.cannot_open(str(path))
    refused.clear()
    neither = _sqlite_errors.cannot_open(str(path))

    assert directory.endswith(f"its directory {str(tmp_path)!r} is not writable")
    assert file.endswith("this process may not read and write it")
    assert neither.endswith("SQLite cannot open it")
