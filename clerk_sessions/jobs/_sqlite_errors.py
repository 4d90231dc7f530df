"""What the SQLite job store says when SQLite fails: one sentence of its own per kind of
failure (SQLite's primary result code says which), never SQLite's text.
"""

from __future__ import annotations

import os
import shutil
import sqlite3

from clerk_sessions.jobs._store import JobDataLost, JobStoreError

__all__ = ["cannot_open", "failure", "not_a_database"]

# SQLite's result codes (https://sqlite.org/rescode.html), stable across its versions; the
# primary code is the low byte of an extended one. (The sqlite3 module names them from
# Python 3.11 on only.)
_ERROR, _PERM, _BUSY, _LOCKED, _READONLY = 1, 3, 5, 6, 8
_IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 10, 11, 13, 14, 26
_READONLY_DBMOVED = _READONLY | (4 << 8)
# Less free space than this where the file lives is a full disk, whatever the error
# (SQLite reports ENOSPC on its shared-memory file as an I/O error).
_FULL_BELOW_BYTES = 64 * 1024


def _directory(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _disk_full(path: str) -> bool:
    try:
        return shutil.disk_usage(_directory(path)).free < _FULL_BELOW_BYTES
    except OSError:
        return False


def _lost(path: str, what: str) -> JobDataLost:
    return JobDataLost(f"SQLite job store {path!r}: {what}")


def _codes(exc: sqlite3.Error) -> tuple[int, int, str]:
    """The extended and primary result codes of ``exc`` and the extended one's name
    (-1 and the class name when the error carries none)."""
    code: int = getattr(exc, "sqlite_errorcode", None) or -1
    name: str = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    return code, code & 0xFF if code >= 0 else -1, name


def not_a_database(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says the file is not an SQLite database (or a damaged one)."""
    return _codes(exc)[1] in (_CORRUPT, _NOTADB)


def failure(exc: sqlite3.Error, path: str, busy_timeout_s: float) -> JobStoreError:
    """The `JobStoreError` (`JobDataLost` when the file lost the store's data) for
    ``exc``, raised by an operation on the store at ``path``."""
    code, primary, name = _codes(exc)
    where = f"SQLite job store {path!r}"
    nothing = "nothing of this operation was recorded"
    if code == _READONLY_DBMOVED:
        return _lost(path, "the file was deleted or moved while in use")
    if primary in (_CORRUPT, _NOTADB):
        return _lost(
            path, "the file is damaged or no longer a job store (truncated or overwritten?)"
        )
    if primary == _ERROR and "no such table" in str(exc):
        return _lost(path, "the file no longer holds the job store's tables (emptied or replaced)")
    if primary in (_BUSY, _LOCKED):
        return JobStoreError(
            f"{where}: the file stayed locked by another process for {busy_timeout_s:g} s "
            f"(the busy timeout); {nothing}: run it again"
        )
    if primary == _FULL or (primary == _IOERR and _disk_full(path)):
        return JobStoreError(
            f"{where}: the disk is full; {nothing}: free some space, then run it again "
            "(the job carries on where it stopped)"
        )
    if primary == _IOERR:
        return JobStoreError(f"{where}: the disk failed to read or write ({name}); {nothing}")
    if primary in (_READONLY, _PERM):
        return JobStoreError(
            f"{where}: the file or its directory is read-only to this process; {nothing}"
        )
    if primary == _CANTOPEN:
        return JobStoreError(f"{cannot_open(path)}; {nothing}")
    return JobStoreError(f"{where}: SQLite failed ({name}); {nothing}")


def cannot_open(path: str) -> str:
    """Why the file at ``path`` cannot be opened, as far as the file system tells."""
    directory = _directory(path)
    if not os.path.isdir(directory):
        why = f"its directory {directory!r} does not exist"
    elif not os.access(directory, os.W_OK):
        why = f"its directory {directory!r} is not writable"
    elif os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        why = "this process may not read and write it"
    else:
        why = "SQLite cannot open it"
    return f"cannot open the job store {path!r}: {why}"
