"""Fail unless every distribution pinned in a requirements file is installed at its pin.

Usage: python scripts/check_pins.py PINS.txt

The lowest-versions session installs the test tools after the package's pinned lowest
versions; this proves that nothing the tools needed moved a pin (the suite would then
pass on versions other than the ones it claims to test).
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    wrong: list[str] = []
    pinned = 0
    with open(sys.argv[1], encoding="utf-8") as pins:
        for line in pins:
            match = _PIN.match(line.strip())
            if match is None:
                continue
            name, wanted = match.groups()
            pinned += 1
            try:
                found = version(name)
            except PackageNotFoundError:
                wrong.append(f"{name}: pinned {wanted}, not installed")
                continue
            if _normal(found) != _normal(wanted):
                wrong.append(f"{name}: pinned {wanted}, installed {found}")
    if pinned == 0:
        print(f"no pins found in {sys.argv[1]}", file=sys.stderr)
        return 1
    for problem in wrong:
        print(problem, file=sys.stderr)
    print(f"{pinned - len(wrong)} of {pinned} pins installed as pinned")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
