"""Fixtures for the bad-days suite: a hostile server per test, and a memory-capped child.

Every test here is bounded in time (a short pytest timeout on top of the SDK's own
deadlines) and the memory cases run in a child process under ``RLIMIT_AS``, so a
regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from tests.conftest import REPO_ROOT

from ._hostile import HostileServer, serve_sessions


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer(serve_sessions) as hostile:
        yield hostile


# What the child may allocate beyond its size once everything is imported. Generous for
# a correct client (a 10 MiB answer is held at most about twice), and far below what any
# of the attacks costs without the caps (hundreds of MB to GB).
CHILD_HEADROOM_MB = 120

_CHILD_PRELUDE = """
import resource, sys
import anyio, httpx2, clerk_sessions, clerk_sessions._sync, trio

def _vm_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")

HEADROOM = {headroom} * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (_vm_bytes() + HEADROOM, resource.RLIM_INFINITY))
"""


def run_capped(code: str, *args: str, timeout_s: float = 60) -> str:
    """Run ``code`` in a fresh interpreter whose address space is capped at its size
    after imports plus `CHILD_HEADROOM_MB`; return its stdout, failing on any error."""
    env = {
        **os.environ,
        # One malloc arena: every thread would otherwise reserve 64 MB of address space.
        "MALLOC_ARENA_MAX": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    source = _CHILD_PRELUDE.format(headroom=CHILD_HEADROOM_MB) + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", source, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
