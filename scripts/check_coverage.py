"""Fail when any module of the package is covered below the bar.

Usage: python scripts/check_coverage.py COVERAGE.json [--min 90]
The JSON comes from ``pytest --cov-report=json``. A total can hide a weak module; this
checks each one and prints the weakest first.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("report")
    parser.add_argument("--min", type=float, default=90.0)
    args = parser.parse_args()
    with open(args.report) as fh:
        files = json.load(fh)["files"]
    rows = sorted((data["summary"]["percent_covered"], path) for path, data in files.items())
    low = [(pct, path) for pct, path in rows if pct < args.min]
    for pct, path in rows[:5]:
        print(f"{pct:6.1f}%  {path}")
    if low:
        print(f"\n{len(low)} module(s) below {args.min:g}%:", file=sys.stderr)
        for pct, path in low:
            print(f"  {pct:6.1f}%  {path}", file=sys.stderr)
        return 1
    print(f"every module is covered at {args.min:g}% or more")
    return 0


if __name__ == "__main__":
    sys.exit(main())
