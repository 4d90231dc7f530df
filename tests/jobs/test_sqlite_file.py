"""`FileWatch`, on real files: what became of the file a connection opened.

The store-level tests (test_sqlite_baddays.py) delete, truncate and replace a store's
file under a running job; these pin down the watch's own answers, including the files
that are not SQLite files at all.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from clerk_sessions.jobs._sqlite_file import FileWatch


def _database(path: Path, rows: int = 50) -> None:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE t (x)")
        connection.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * rows)
        connection.commit()


def _watching(path: Path) -> FileWatch:
    watch = FileWatch(str(path))
    watch.open()
    watch.note()
    return watch


def test_an_untouched_or_grown_file_is_the_same(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    _database(path, rows=5)
    watch = _watching(path)

    untouched = watch.change()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executemany("INSERT INTO t VALUES (?)", [("y" * 500,)] * 50)
        connection.commit()

    assert watch.opened
    assert (untouched, watch.change()) == ("same", "same")


def test_a_file_cut_short_of_what_its_header_promises_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    _database(path)
    watch = FileWatch(str(path))
    watch.open()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # same inode, never noted at its full size
    watch._size = 0  # pyright: ignore[reportPrivateUsage]  # as if first seen smaller

    assert watch.change() == "truncated"


def test_a_file_smaller_than_seen_is_truncated_even_without_a_header(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    path.write_bytes(b"x" * 4096)  # not SQLite: its header promises nothing
    watch = _watching(path)

    path.write_bytes(b"x" * 10)

    assert watch.change() == "truncated"


def test_a_file_that_grew_without_an_sqlite_header_is_the_same(tmp_path: Path) -> None:
    # The header says nothing (too short, or its two copies of the version disagree):
    # growing is all that can be judged.
    short, mismatched = tmp_path / "short.db", tmp_path / "mismatched.db"
    short.write_bytes(b"SQLite format 3\x00")
    header = bytearray(b"\x00" * 100)
    header[24:28], header[92:96] = b"\x00\x00\x00\x01", b"\x00\x00\x00\x02"
    mismatched.write_bytes(bytes(header))
    watches = [_watching(short), _watching(mismatched)]

    for path in (short, mismatched):
        with path.open("ab") as file:
            file.write(b"\x00" * 4096)

    assert [w.change() for w in watches] == ["same", "same"]


def test_a_deleted_or_replaced_file_is_told_apart(tmp_path: Path) -> None:
    deleted, replaced = tmp_path / "deleted.db", tmp_path / "replaced.db"
    _database(deleted)
    _database(replaced)
    watches = [_watching(deleted), _watching(replaced)]

    deleted.unlink()
    # Moved away, not deleted: the store's open connection keeps its file's inode in use,
    # which here nothing would, and a new file could be given the same inode number.
    replaced.rename(tmp_path / "moved-away.db")
    _database(replaced)  # a new file (a new inode) at the same path

    assert [w.change() for w in watches] == ["deleted", "replaced"]


def test_a_size_noted_after_the_file_changed_is_not_taken(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    _database(path, rows=5)
    watch = _watching(path)

    path.rename(tmp_path / "moved-away.db")  # its inode stays in use, as under a store
    watch.note()  # nothing at the path: nothing to note
    _database(path, rows=200)
    watch.note()  # another file: its size is not this file's

    assert watch.change() == "replaced"


def test_a_path_without_a_file_is_not_watched(tmp_path: Path) -> None:
    memory = FileWatch(":memory:")
    memory.open()
    missing = FileWatch(str(tmp_path / "never-made.db"))
    missing.open()

    assert not memory.opened and not missing.opened
    assert (memory.change(), missing.change()) == ("same", "same")
