"""The xdist schedule (tests/_schedule.py) reorders and never drops or repeats a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests._schedule import LONG_TESTS_FILE, _slice_sizes, read_long_tests, spread_long_tests


def _ids(n: int) -> list[str]:
    return [f"t{i}" for i in range(n)]


def test_every_test_is_kept_once_and_the_short_ones_keep_their_order() -> None:
    ids = _ids(20)
    seconds = {"t17": 9.0, "t18": 5.0, "t19": 4.0, "t3": 1.0}
    order = spread_long_tests(ids, seconds, workers=3, node_id=str)
    assert sorted(order) == sorted(ids)
    short = [i for i in order if i not in seconds]
    assert short == [i for i in ids if i not in seconds]


def test_each_workers_starting_slice_opens_with_its_share_of_the_long_tests() -> None:
    ids = _ids(30)
    seconds = {"t29": 10.0, "t28": 9.0, "t27": 8.0, "t26": 1.0}
    order = spread_long_tests(ids, seconds, workers=3, node_id=str)
    sizes = _slice_sizes(len(ids), 3)
    assert sizes == [10, 10, 10]
    slices = [order[0:10], order[10:20], order[20:30]]
    # The three longest open one slice each; the fourth joins the least loaded (t27's).
    assert [s[0] for s in slices] == ["t29", "t28", "t27"]
    assert slices[2][1] == "t26"


def test_slice_sizes_match_how_worksteal_splits_the_collection() -> None:
    # xdist's worksteal: len(pending) // nodes_remaining for each idle node in turn.
    for total, workers in [(3227, 6), (745, 6), (10, 3), (5, 8), (1, 1)]:
        sizes = _slice_sizes(total, workers)
        assert sum(sizes) == total and len(sizes) == workers
        assert max(sizes) - min(sizes) <= 1


def test_without_long_tests_or_xdist_the_order_is_kept_or_long_first() -> None:
    ids = _ids(6)
    assert spread_long_tests(ids, {}, workers=4, node_id=str) == ids
    assert spread_long_tests(ids, {"t4": 3.0}, workers=1, node_id=str) == [
        "t4",
        "t0",
        "t1",
        "t2",
        "t3",
        "t5",
    ]


def test_more_workers_than_tests() -> None:
    ids = _ids(3)
    assert sorted(spread_long_tests(ids, {"t2": 1.0}, workers=8, node_id=str)) == ids


def test_the_committed_list_parses_and_names_tests_that_exist() -> None:
    seconds = read_long_tests()
    assert seconds, LONG_TESTS_FILE
    root = Path(__file__).resolve().parents[1]
    for node_id in seconds:
        assert (root / node_id.split("::")[0]).is_file(), node_id


def test_the_list_is_written_from_several_duration_logs_taking_the_longer(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    parallel = tmp_path / "parallel.log"
    parallel.write_text(
        "3.00s call     tests/a.py::t_long\n"
        "0.50s setup    tests/a.py::t_long\n"
        "1.00s call     tests/a.py::t_short\n"
        "4.00s setup    tests/b.py::t_in_both\n",
        encoding="utf-8",
    )
    serial = tmp_path / "serial.log"
    serial.write_text(
        "0.01s setup    tests/b.py::t_in_both\n5.00s call     tests/b.py::t_once\n",
        encoding="utf-8",
    )
    out = tmp_path / "long.txt"
    script = root / "scripts" / "long_tests.py"
    run = [sys.executable, str(script), str(parallel), str(serial), "--out", str(out)]
    subprocess.run(run, check=True, capture_output=True)
    assert read_long_tests(out) == {
        "tests/b.py::t_once": 5.0,
        "tests/b.py::t_in_both": 4.0,
        "tests/a.py::t_long": 3.5,
    }
    empty = tmp_path / "empty.log"
    empty.write_text("3233 passed\n", encoding="utf-8")
    refused = subprocess.run([*run[:2], str(empty)], capture_output=True, text=True)
    assert refused.returncode == 1 and "no durations in" in refused.stderr
