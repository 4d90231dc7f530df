"""A real ``redis-server`` for the tests, on a free loopback port.

The fleet features (the shared quota, the Redis job store) are tested against the real
engine, never a stand-in: each server is started from the ``redis-server`` binary
(Debian's package, 7.x; ``nox`` installs it when it is missing), with persistence off and
its own directory, and can be killed (SIGKILL), frozen (SIGSTOP) and started again on the
same port, the way an outage looks to a client. ``config`` passes more configuration on
the command line (``--maxmemory-policy allkeys-lru``, ``--requirepass ...``), as a
production server's redis.conf would have it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")
MISSING = (
    "redis-server is not installed: the Redis tests need a real one. Install Debian's "
    "package (`apt-get install redis-server`), or run the suite with `python3 -m nox`, "
    "which installs it when missing."
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            # A server with a password answers, but only to say so.
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1; ``url`` is what clients connect to."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        persistent: bool = False,
        config: Sequence[str] = (),
    ) -> None:
        """``persistent``: an append-only file synced at every write, so a server killed
        and restarted comes back with its data (as a production one configured for it).
        ``config``: more command-line configuration, e.g. ``("--maxmemory", "2mb")``."""
        if REDIS_SERVER is None:
            raise RuntimeError(MISSING)
        self.directory = directory
        self.port = port or _free_port()
        self.persistent = persistent
        self.config = tuple(config)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server (again, after a kill, on the same port) and wait until it answers."""
        assert REDIS_SERVER is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--save", "",
                    *(
                        ("--appendonly", "yes", "--appendfsync", "always")
                        if self.persistent
                        else ("--appendonly", "no")
                    ),
                    "--dir", str(self.directory),
                    "--logfile", str(self.directory / "redis.log"),
                    *self.config,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break  # it exited: most likely the port was taken meanwhile
                if _ping(self.port, 0.2):
                    return self
                time.sleep(0.02)
            else:
                self.kill()
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            if time.monotonic() >= deadline:
                raise RuntimeError(f"redis-server could not start on port {self.port}")
            # The port was taken between choosing it and binding it: take another one,
            # unless this is a restart, which must come back on the same port.
            if self._restarting:
                time.sleep(0.05)
            else:
                self.port = _free_port()

    _restarting = False

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Start a server that was killed, on the same port: empty, or with the data it
        had if it is ``persistent``."""
        self._restarting = True
        try:
            return self.start(timeout)
        finally:
            self._restarting = False

    def kill(self) -> None:
        """SIGKILL: the server is gone at once, as in a crash (its memory is lost)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            assert sock.recv(64).startswith(b"+OK")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()  # a frozen server cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
