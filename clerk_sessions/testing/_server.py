"""Serving the fake on a real loopback port: uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._asgi import TRANSPORT_STATE_KEY


class _DroppingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, handing each request its connection's transport.

    uvicorn gives an app no way to close a connection without answering (when the app
    raises before ``http.response.start`` it answers 500, which is not a drop). The app
    state is copied into every request's ``scope["state"]``; giving each connection its
    own copy holding the transport lets the fake close the socket itself.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, TRANSPORT_STATE_KEY: transport}


class BackgroundServer:
    """A uvicorn server on ``host:port`` (0: a free port) in a thread with its own loop."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on accepted connections
        # only when the listening socket says it is TCP; without it Nagle's algorithm and
        # delayed ACKs cost every request ~40 ms.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            log_level="warning",
            http=_DroppingH11Protocol,
            ws="none",
            timeout_graceful_shutdown=2,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self._server = uvicorn.Server(config)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"FakeClerk:{self.port}", daemon=True
        )

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # a SystemExit from a failed startup included
            self._error = exc

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; return once the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._socket.close()
                raise RuntimeError(f"the fake's server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake's server did not start in time")
            time.sleep(0.002)

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __repr__(self) -> str:
        state: dict[str, Any] = {"port": self.port, "started": self._server.started}
        return f"BackgroundServer({state})"
