"""Freezing a worker process (SIGSTOP) at a moment it holds a chunk, for the lease tests.

A chunk seen held a moment before the signal may be completed before the signal lands: the
worker's last store call is then already answered and the worker, woken, has no lease to
lose. So the test checks again after the stop has taken effect and the store has applied
whatever the worker sent before it, and tries again (SIGCONT, wait, SIGSTOP) when the chunk
got away.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

ATTEMPTS = 20
# Time for the store to apply a command the worker wrote just before it stopped (Redis
# reads it on its next loop turn; SQLite's commit is done before the write call returns).
SETTLE_S = 0.05


def stopped(pid: int) -> bool:
    """Whether the kernel has stopped ``pid`` (Linux: state ``T`` in /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # no procfs (macOS): give the signal time to land
        time.sleep(SETTLE_S)
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def freeze_holding_a_chunk(
    pid: int, holds: Callable[[], bool], wait_until_holding: Callable[[], object]
) -> None:
    """SIGSTOP ``pid`` so that it stays stopped holding a chunk; ``holds`` reads the store
    once, ``wait_until_holding`` polls it until the worker holds a chunk (bounded)."""
    for _ in range(ATTEMPTS):
        wait_until_holding()
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not stopped(pid):
            assert time.monotonic() < deadline, f"worker {pid} did not stop"
            time.sleep(0.001)
        time.sleep(SETTLE_S)
        # Twice, a settle apart: a command Redis had buffered from the worker may be applied
        # right after the first read.
        if holds():
            time.sleep(SETTLE_S)
            if holds():
                return
        os.kill(pid, signal.SIGCONT)
    raise AssertionError(f"worker {pid} never stayed stopped holding a chunk in {ATTEMPTS} tries")
