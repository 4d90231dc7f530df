"""Import time: a fresh interpreter running ``import X``, wall time, median of N.

Whole-process wall time is what a CLI user or a cold serverless start pays, so it is
what is compared: ``import clerk_sessions`` against ``import httpx`` (the floor: we
import it too) and ``import clerk_backend_api``. ``python -c pass`` is measured in the
same rounds and reported in ``extra`` so a reader can subtract interpreter start-up.
The interpreters run as a user's would, with one exception made for fairness: bytecode
caching is on and points to a fresh private directory (``PYTHONPYCACHEPREFIX``), warmed
by a first run of each. Otherwise whether a package's ``.pyc`` files exist depends on how
it was installed (uv writes none by default) and on ``PYTHONDONTWRITEBYTECODE`` in the
environment, and a package without them recompiles its source on every import.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks._common import row

__all__ = ["run"]


def _wall(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
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
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for code in contenders.values():  # write the .pyc files, warm the OS file cache
            _wall(code, env)
            _wall(code, env)
        for r in range(n):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                samples[name].append(_wall(contenders[name], env))
    ms = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    return [
        row(
            "import (whole process)",
            ms["ours"],
            ms["raw_httpx"],
            ms.get("official"),
            "ms",
            target="official <= 0.5",
            notes=(
                f"python -c pass alone: {ms['python']:.0f} ms; bytecode cached for every "
                f"package alike. {notes}"
            ).strip(),
            bare_interpreter_ms=ms["python"],
        )
    ]
