"""``create`` streams its ids: a million of them cost a few MB, measured in a child
process (VmHWM, the peak resident set) so nothing else of the test run counts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import json, sys
    import anyio
    from clerk_sessions.jobs import RevocationJob

    def kib(field):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])

    async def main(path):
        # Everything the create needs is imported and warmed up first.
        warm = await RevocationJob.create(path, "warm", session_ids=["sess_0"])
        await warm.aclose()
        before = kib("VmRSS")
        ids = (f"sess_{n:027d}" for n in range(1_000_000))  # ~33 characters, as Clerk's
        job = await RevocationJob.create(path, "big", session_ids=ids)
        status = await job.status()
        await job.aclose()
        print(json.dumps({"before": before, "peak": kib("VmHWM"), "total": status.total}))

    anyio.run(main, sys.argv[1])
    """
)


def test_a_create_of_a_million_ids_costs_a_few_megabytes(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "jobs.db")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    measured = json.loads(child.stdout)
    assert measured["total"] == 1_000_000
    # Held whole, a million such ids would take over 60 MB as str objects alone.
    growth_mib = (measured["peak"] - measured["before"]) / 1024
    assert growth_mib < 20, measured
