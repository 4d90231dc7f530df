"""Helpers shared by the integration tests: loading the examples, free loopback sockets,
waiting for a server, and tokens the fake cannot mint by itself."""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
from types import ModuleType
from typing import Any

import httpx2

from clerk_sessions.testing import FakeClerk
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


def load_example(relative: str, name: str) -> ModuleType:
    """Import ``examples/<relative>`` as module ``name`` (examples are not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def listening_socket() -> socket.socket:
    """A socket bound to a free loopback port and listening: handing it to a server
    (``--fd``, ``sockets=``) leaves no window for another process to take the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def wait_until_up(url: str, *, process: Any = None, timeout: float = 20.0) -> None:
    """Poll ``url`` until it answers at all; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was up")
        try:
            httpx2.get(url, timeout=1.0)
            return
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def expired_token(fake: FakeClerk, session_id: str) -> str:
    """A token of ``session_id`` that expired a minute ago (past any leeway)."""
    now = int(fake.clock())
    return fake.mint_token(
        session_id, extra_claims={"iat": now - 120, "nbf": now - 130, "exp": now - 60}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


__all__ = [
    "EXAMPLES",
    "bearer",
    "expired_token",
    "listening_socket",
    "load_example",
    "wait_until_up",
]
