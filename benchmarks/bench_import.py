"""Import time: a fresh interpreter running ``import X``, wall time, median of N.

Whole-process wall time is what a CLI user or a cold serverless start pays, so it is
what is compared: ``import clerk_sessions`` against ``import httpx`` (the floor: we
import it too) and ``import clerk_backend_api``. ``python -c pass`` is measured in the
same rounds and reported in ``extra`` so a reader can subtract interpreter start-up.
The imports run in ``-I``-free, ``-S``-free normal mode, as a user would run them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks._common import row

__all__ = ["run"]


def _wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def _importable(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"]).returncode == 0


def run(quick: bool, server: object = None) -> list[dict[str, Any]]:
    """One row: median wall time of a process that imports each package."""
    n = 3 if quick else 21
    contenders = {
        "ours": "import clerk_sessions",
        "raw_httpx": "import httpx",
        "official": "import clerk_backend_api",
        "python": "pass",
    }
    notes = ""
    if not _importable("clerk_backend_api"):
        del contenders["official"]
        notes = "official column skipped: clerk_backend_api not importable"
    for code in contenders.values():  # warm the OS file cache and the .pyc files
        _wall(code)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(n):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(_wall(contenders[name]))
    ms = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    return [
        row(
            "import (whole process)",
            ms["ours"],
            ms["raw_httpx"],
            ms.get("official"),
            "ms",
            target="official <= 0.5",
            notes=f"python -c pass alone: {ms['python']:.0f} ms. {notes}".strip(),
            bare_interpreter_ms=ms["python"],
        )
    ]
