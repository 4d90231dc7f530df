"""The order in which pytest-xdist hands out the tests: the long ones first, spread.

Scheduling only: every collected test still runs, once. A few dozen of the suite's
3,000-odd tests take about half its time (crash tests, fleets, a Redis slower than the
lease; tests/long_tests.txt lists them), and xdist's ``worksteal`` gives each worker a
contiguous slice of the collection to start with and lets idle workers steal from the
*end* of the longest queue. In collection order, most long tests sit in the last
directories (jobs, redis, sync), so they started late and the run ended with one or two
workers finishing a 20-second test while the others idled. Here each worker's slice
starts with its share of the long tests (longest first, each given to the slice with the
least long work so far), so they all start in the first minute and the short tests fill
in around them.

``tests/long_tests.txt`` lists the long tests with their measured seconds; regenerate it
with ``scripts/long_tests.py`` from ``pytest --durations=0`` runs (its docstring says
which). A stale or missing entry only makes the schedule a little worse.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["LONG_TESTS_FILE", "read_long_tests", "spread_long_tests", "xdist_workers"]

LONG_TESTS_FILE = Path(__file__).with_name("long_tests.txt")

T = TypeVar("T")


def read_long_tests(path: Path = LONG_TESTS_FILE) -> dict[str, float]:
    """Node id -> measured seconds, from lines of ``SECONDS NODEID`` (``#`` comments)."""
    if not path.is_file():
        return {}
    seconds: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        value, node_id = line.split(maxsplit=1)
        seconds[node_id] = float(value)
    return seconds


def xdist_workers() -> int:
    """How many workers share the collection (xdist tells its workers; 1 without it)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)


def _slice_sizes(total: int, workers: int) -> list[int]:
    # What xdist's worksteal sends each idle worker at the start (check_schedule):
    # len(pending) // nodes_remaining, node by node.
    sizes = []
    remaining = total
    for i in range(workers):
        size = remaining // (workers - i)
        sizes.append(size)
        remaining -= size
    return sizes


def spread_long_tests(
    items: Sequence[T], seconds: dict[str, float], workers: int, node_id: Callable[[T], str]
) -> list[T]:
    """``items`` reordered: each worker's starting slice opens with its long tests.

    ``node_id(item)`` names an item as ``seconds`` does. The short tests keep their
    relative order.
    """
    node_ids = [node_id(item) for item in items]
    long = [i for i, name in enumerate(node_ids) if name in seconds]
    if not long:
        return list(items)
    workers = max(1, min(workers, len(items)))
    sizes = _slice_sizes(len(items), workers)
    buckets: list[list[int]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for i in sorted(long, key=lambda i: -seconds[node_ids[i]]):
        # The slice with the least long work so far, among those with room for it.
        open_slices = [k for k in range(workers) if len(buckets[k]) < sizes[k]]
        k = min(open_slices, key=lambda k: loads[k])
        buckets[k].append(i)
        loads[k] += seconds[node_ids[i]]
    long_set = set(long)
    short = iter(i for i in range(len(items)) if i not in long_set)
    order: list[int] = []
    for k in range(workers):
        order.extend(buckets[k])
        order.extend(next(short) for _ in range(sizes[k] - len(buckets[k])))
    return [items[i] for i in order]
