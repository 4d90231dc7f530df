"""Write tests/long_tests.txt from the output of ``pytest --durations=0`` runs.

    pytest -n auto --dist worksteal -m "not once" --durations=0 tests > durations.log
    pytest -p no:xdist -m once --durations=0 tests > once.log
    python scripts/long_tests.py durations.log once.log

Every test whose setup, call and teardown together took at least ``--min`` seconds
(default 2.5) is listed, longest first. The file only orders the tests for xdist
(tests/_schedule.py); it never selects or skips one.

The ``once`` tests are timed in a run of their own, serially: most of them share one
quick benchmark run (a session fixture behind a file lock), and in parallel each of
them would show that run's time as its own set-up while it waited on the lock. Listed
so, all of them would be started first, each blocking a worker. Serially, the first to
ask pays for it, and only that one is listed as long.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LINE = re.compile(r"^([0-9.]+)s (?:setup|call|teardown)\s+(\S+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "logs",
        type=Path,
        nargs="+",
        help="outputs of pytest --durations=0 (a test in two: the longer)",
    )
    parser.add_argument("--min", type=float, default=2.5, help="seconds (default 2.5)")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "long_tests.txt")
    args = parser.parse_args()
    seconds: dict[str, float] = {}
    for log in args.logs:
        in_log: Counter[str] = Counter()
        for line in log.read_text(encoding="utf-8").splitlines():
            match = _LINE.match(line)
            if match:
                in_log[match.group(2)] += float(match.group(1))
        if not in_log:
            raise SystemExit(f"no durations in {log}: is it the output of --durations=0?")
        for node_id, spent in in_log.items():
            seconds[node_id] = max(spent, seconds.get(node_id, 0.0))
    long = sorted(((s, n) for n, s in seconds.items() if s >= args.min), reverse=True)
    if not long:
        raise SystemExit(f"no test took {args.min} s or more in {', '.join(map(str, args.logs))}")
    lines = [
        "# Tests that take long, with their measured seconds (setup + call + teardown), for",
        "# tests/_schedule.py: it starts them first, spread over the xdist workers. Scheduling",
        "# only: a test missing here still runs. Regenerate: scripts/long_tests.py.",
        *(f"{s:.1f} {n}" for s, n in long),
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(long)} tests, {sum(s for s, _ in long):.0f} s, written to {args.out}")


if __name__ == "__main__":
    main()
