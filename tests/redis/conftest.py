"""Helpers for the shared-quota tests: a real redis-server (tests/conftest.py) and the
fake Clerk with its quota on."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence

import pytest

from clerk_sessions.redis import _binding


def max_in_window(times: Iterable[float], per_seconds: float) -> int:
    """The most times any half-open window ``[t, t + per_seconds)`` holds."""
    ordered = sorted(times)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while ordered[lo] + per_seconds <= t:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def accepted_times(records: Sequence[object]) -> list[float]:
    """When the fake received each request it did not answer with 429."""
    return [r.time for r in records if r.status != 429]  # type: ignore[attr-defined]


@pytest.fixture
def fast_probe(monkeypatch: pytest.MonkeyPatch) -> float:
    """Redis is tried again 0.2 s after a failure (instead of 2 s), to keep tests short."""
    monkeypatch.setattr(_binding, "_PROBE_EVERY_S", 0.2)
    return 0.2


def redis_command(port: int, *args: str) -> bytes:
    """One command to the test Redis on 127.0.0.1 (RESP by hand: works from sync code)."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(arg.encode())}\r\n{arg}\r\n".encode() for arg in args
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(65536)
