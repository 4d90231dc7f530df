"""Files of ids for ``job create`` (clerk_sessions/cli/_idfile.py): what is tolerated, what
is a usage error naming its line, and that the file's rule for an id is the job's."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clerk_sessions.cli._idfile import MAX_ID_LENGTH, IdFileError, read_ids
from clerk_sessions.jobs import _job
from clerk_sessions.jobs._store import ItemKind
from clerk_sessions.testing import FakeClerk
from tests.cli.conftest import Served

BOM = b"\xef\xbb\xbf"


def ids(data: bytes) -> list[str]:
    return list(read_ids(io.BytesIO(data), "ids.txt"))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"sess_1\nsess_2\n", ["sess_1", "sess_2"]),
        (b"sess_1\nsess_2", ["sess_1", "sess_2"]),  # no newline at the end
        (BOM + b"sess_1\r\nsess_2\r\n", ["sess_1", "sess_2"]),  # a spreadsheet's export
        (b"\n\nsess_1\n\n\r\n  \nsess_2\n\n", ["sess_1", "sess_2"]),  # blank lines
        (b"  sess_1 \n\tsess_2\t\r\n", ["sess_1", "sess_2"]),  # spaces and tabs around
        ("sess_1\u00a0\n".encode(), ["sess_1"]),  # a no-break space around
        (BOM + b"\r\n", []),
        (b"", []),
        ("sess_é☃\n".encode(), ["sess_é☃"]),
        (b"sess_1\r\r\nsess_2\n", ["sess_1", "sess_2"]),  # a doubled CR is space around
    ],
    ids=[
        "lf",
        "no-final-newline",
        "bom-crlf",
        "blank",
        "spaces",
        "nbsp",
        "bom-only",
        "empty",
        "utf8",
        "double-cr",
    ],
)
def test_tolerated_lines(data: bytes, expected: list[str]) -> None:
    assert ids(data) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"sess_1\nsess 2\n", "ids.txt, line 2: 'sess 2' is not an id"),
        (b"sess_1\n\n\nsess_\x002\n", "ids.txt, line 4: 'sess_\\x002' is not an id"),
        (b"sess_1\nsess_\xff\n", "ids.txt, line 2: is not UTF-8 text"),
        ("sess_1\n\ufeffsess_2\n".encode(), "ids.txt, line 2: '\\ufeffsess_2' is not an id"),
        (b"\xff\xfes\x00e\x00s\x00s\x00", "ids.txt, line 1: the file is UTF-16 text"),
        (b"sess_1\rsess_2\n", "line 1: 'sess_1\\rsess_2' is not an id"),  # old Mac ends
        (b"a" * (MAX_ID_LENGTH + 1) + b"\n", f"line 1: '{'a' * 50}' is not an id"),
        (b"sess_1, sess_2\n", "line 1: 'sess_1, sess_2' is not an id"),
    ],
    ids=["space", "nul", "latin-1", "bom-later", "utf16", "cr-inside", "too-long", "csv"],
)
def test_any_other_bad_line_is_an_error_naming_its_number(data: bytes, message: str) -> None:
    with pytest.raises(IdFileError) as caught:
        ids(data)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)  # a usage error for the command


def test_a_huge_line_is_refused_without_being_read_whole() -> None:
    huge = io.BytesIO(b"sess_1\n" + b"x" * 5_000_000)
    with pytest.raises(IdFileError, match="line 2: is longer than any id"):
        ids_read = read_ids(huge, "ids.txt")
        next(ids_read)
        next(ids_read)
    assert huge.tell() < 10_000


def test_ids_are_read_as_they_are_asked_for() -> None:
    file = io.BytesIO(b"sess_1\nsess_2\n" + b"sess 3\n")
    read = read_ids(file, "ids.txt")
    assert next(read) == "sess_1"
    assert next(read) == "sess_2"  # the bad third line is not read yet
    with pytest.raises(IdFileError, match="line 3"):
        next(read)


def _job_accepts(text: str) -> bool:
    try:
        _job._check_id(text, 0, ItemKind.SESSION)
    except ValueError:
        return False
    return True


@given(st.text(max_size=300).map(lambda line: line.replace("\n", "")))
def test_a_line_is_an_id_exactly_when_the_job_takes_it_as_one(line: str) -> None:
    text = line.strip()
    try:
        read = ids(line.encode("utf-8", "surrogatepass"))
    except IdFileError:
        read = None
    if not text:
        assert read == []
    else:
        assert (read == [text]) == _job_accepts(text)


@given(
    st.lists(st.text(st.characters(categories=["L", "N", "Pc", "Pd"]), min_size=1, max_size=40)),
    st.booleans(),
    st.sampled_from([b"\n", b"\r\n"]),
    st.sampled_from([b"", b" ", b"\t", b"  \t "]),
)
def test_any_list_of_ids_written_as_spreadsheets_do_reads_back_the_same(
    written: list[str], bom: bool, newline: bytes, padding: bytes
) -> None:
    data = (BOM if bom else b"") + b"".join(
        padding + item.encode() + padding + newline + (newline if n % 3 == 0 else b"")
        for n, item in enumerate(written)
    )
    assert ids(data) == written


@pytest.fixture
def served() -> Iterator[Served]:
    fake = FakeClerk()
    with fake.serve() as url:
        yield Served(fake, url)


def test_the_cli_creates_a_job_from_a_spreadsheet_export(served: Served, tmp_path: Path) -> None:
    exported = tmp_path / "ids.csv"
    exported.write_bytes(BOM + b"sess_1\r\n  sess_2  \r\n\r\nsess_3\r\n")
    store = f"sqlite://{tmp_path}/jobs.db"
    created = served.run("job", "create", "j", "--store", store, "--session-ids", str(exported))
    assert created.returncode == 0, created.stderr
    assert "created job j: 3 session id(s)" in created.stderr
    from_stdin = served.run(
        "job", "create", "k", "--store", store, "--user-ids", "-", stdin="\ufeffuser_1\r\n"
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert "created job k: 1 user id(s)" in from_stdin.stderr


def test_the_cli_refuses_a_bad_line_with_exit_2_naming_it_and_creates_nothing(
    served: Served, tmp_path: Path
) -> None:
    bad = tmp_path / "ids.txt"
    bad.write_bytes(b"sess_1\r\nsess_2\r\n\r\nsess 4\r\n")
    store = f"sqlite://{tmp_path}/jobs.db"
    refused = served.run("job", "create", "j", "--store", store, "--session-ids", str(bad))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: --session-ids {bad}, line 4: 'sess 4' is not an id (ids are 1 to "
        f"{MAX_ID_LENGTH} printable characters without spaces)"
    ]
    piped = served.run("job", "create", "j", "--store", store, "--user-ids", "-", stdin="u 1\n")
    assert piped.returncode == 2
    assert "--user-ids -, line 1: 'u 1' is not an id" in piped.stderr
    assert served.run("job", "status", "j", "--store", store).returncode == 2  # no such job
