"""Import time: a fresh interpreter running ``import X``, wall time, median of N.

``import clerk_sessions`` against ``import httpx2`` (the floor: we import it too),
``import httpx`` (the legacy library, beside it) and ``import clerk_backend_api``, in
the dev environment. ``python -c pass`` is measured in the same rounds and reported in
``extra`` so a reader can subtract interpreter start-up. What a CLI or a serverless
function pays is the import *and* the first call: `bench_cold` measures that, and
decides where the import row only explains.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks._common import fresh_processes, importable, row

__all__ = ["run"]


def run(quick: bool, server: object = None) -> list[dict[str, Any]]:
    """One row: median wall time of a process that imports each package."""
    contenders = {
        "ours": "import clerk_sessions",
        "raw": "import httpx2",
        "raw_httpx": "import httpx",
        "official": "import clerk_backend_api",
        "python": "pass",
    }
    notes = ""
    if not importable("clerk_backend_api"):
        del contenders["official"]
        notes = "official column skipped: clerk_backend_api not importable"
    samples = fresh_processes(contenders, 3 if quick else 21, warmups=1 if quick else 2)
    ms = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    return [
        row(
            "import (whole process)",
            ms["ours"],
            ms["raw"],
            ms.get("official"),
            "ms",
            raw_httpx=ms["raw_httpx"],
            notes=(
                f"python -c pass alone: {ms['python']:.0f} ms; in the dev environment, "
                "bytecode cached for every package alike; the bare-install cold start row "
                f"is what decides. {notes}"
            ).strip(),
            bare_interpreter_ms=ms["python"],
        )
    ]
