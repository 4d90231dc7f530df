"""Files of ids for ``job create``: one id a line, read as a stream, never whole.

Tolerated, as spreadsheets and editors write them: a UTF-8 byte-order mark at the start,
CRLF line ends, blank lines, and spaces (or tabs) around an id. Any other line that is
not an id is an `IdFileError` naming its line number: text that is not UTF-8 (a UTF-16
export says so), an id with a space or a control character inside, a line longer than
any id. An id is what `RevocationJob.create` accepts: 1 to `MAX_ID_LENGTH` printable
characters without spaces (a test holds the two rules together).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["MAX_ID_LENGTH", "IdFileError", "read_ids"]

#: The longest id, as `RevocationJob.create` accepts it.
MAX_ID_LENGTH = 256
# The most bytes read for one line: an id of MAX_ID_LENGTH characters of 4 UTF-8 bytes,
# with room for the spaces around it. A longer line is an error without being read whole.
_MAX_LINE_BYTES = 4 * MAX_ID_LENGTH + 1024
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class IdFileError(ValueError):
    """A line of a file of ids that is not an id (a usage error: exit code 2)."""

    def __init__(self, file_name: str, line: int, problem: str) -> None:
        super().__init__(f"{file_name}, line {line}: {problem}")
        self.line = line


def _problem(text: str) -> str | None:
    """Why ``text`` (stripped, not empty) is not an id, or None if it is one."""
    if len(text) > MAX_ID_LENGTH or not text.isprintable() or " " in text:
        return (
            f"{text[:50]!r} is not an id (ids are 1 to {MAX_ID_LENGTH} printable "
            "characters without spaces)"
        )
    return None


def read_ids(file: BinaryIO, file_name: str) -> Iterator[str]:
    """The ids of ``file`` (opened in binary mode), in order, as they are read."""
    number = 0
    while True:
        raw = file.readline(_MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > _MAX_LINE_BYTES:
            raise IdFileError(file_name, number, f"is longer than any id ({len(raw)}+ bytes)")
        if number == 1:
            if raw.startswith(_UTF16_BOMS):
                raise IdFileError(file_name, 1, "the file is UTF-16 text: save it as UTF-8")
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise IdFileError(file_name, number, "is not UTF-8 text") from None
        if not text:
            continue
        problem = _problem(text)
        if problem is not None:
            raise IdFileError(file_name, number, problem)
        yield text
