"""The file under an SQLite connection, watched: a connection keeps reading its page
cache, and writing, after its file was deleted, replaced or truncated, so the SQLite
store asks `FileWatch` before every call whether the file at the path is still the one
its connection opened, whole.

A store file never shrinks (nothing here vacuums it): a file smaller than the largest
size seen, or than the page count its header promises, was truncated.
"""

from __future__ import annotations

import os
from typing import Literal

__all__ = ["Change", "FileWatch"]

Change = Literal["same", "truncated", "deleted", "replaced"]


def _header_bytes(path: str) -> int:
    """How long the SQLite file at ``path`` must be, as its header says (0 when the
    header does not say: https://sqlite.org/fileformat.html#in_header_database_size)."""
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except OSError:
        return 0
    if len(header) < 100 or header[24:28] != header[92:96]:
        return 0
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    return page_size * int.from_bytes(header[28:32], "big")


class FileWatch:
    """The file a connection opened at ``path``: its device and inode, and the largest
    size seen. Not thread-safe: the store calls it under its lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: tuple[int, int] | None = None
        self._size = 0

    @property
    def opened(self) -> bool:
        """Whether a connection opened a file here before (it must not be made anew)."""
        return self._file is not None

    def _stat(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except OSError:
            return None

    def open(self) -> None:
        """Remember the file now at the path: a connection just opened it."""
        stat = self._stat()
        self._file = None if stat is None else (stat.st_dev, stat.st_ino)
        self._size = 0 if stat is None else stat.st_size

    def note(self) -> None:
        """Remember the file's size after a call (it grows at checkpoints)."""
        stat = self._stat()
        if stat is not None and (stat.st_dev, stat.st_ino) == self._file:
            self._size = max(self._size, stat.st_size)

    def change(self) -> Change:
        """What became of the file since the last call."""
        if self._file is None:
            return "same"  # not a file that could be watched (":memory:")
        stat = self._stat()
        if stat is None:
            return "deleted"
        if (stat.st_dev, stat.st_ino) != self._file:
            return "replaced"
        if stat.st_size == self._size or (
            stat.st_size > self._size and stat.st_size >= _header_bytes(self.path)
        ):
            return "same"
        return "truncated"
