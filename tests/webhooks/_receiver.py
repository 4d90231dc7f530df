"""A webhook receiver as an app would write it: FastAPI, verifying with the SDK, served by
uvicorn on a loopback port. It records what it accepted, and can fail or stall on cue."""

# No `from __future__ import annotations`: FastAPI must resolve the endpoint's annotations.
import collections
import contextlib
import threading
from collections.abc import Iterator
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from clerk_sessions.fastapi import ClerkWebhook
from clerk_sessions.testing._server import BackgroundServer
from clerk_sessions.webhooks import WebhookEvent


class Receiver:
    """A FastAPI app that verifies deliveries with ``ClerkWebhook(secret=secret)``.

    ``events`` holds the verified events it answered 2XX, in arrival order. The first
    ``fail_first`` attempts of each event get a 503. While ``gate`` is clear, every
    delivery waits for it before being answered.
    """

    def __init__(self, secret: str, *, fail_first: int = 0) -> None:
        self.events: list[WebhookEvent] = []
        self.attempts: collections.Counter[str] = collections.Counter()
        self.fail_first = fail_first
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()
        self.app = FastAPI()
        verified = ClerkWebhook(secret=secret)

        @self.app.post("/hooks/clerk")
        async def clerk_events(event: Annotated[WebhookEvent, Depends(verified)]) -> JSONResponse:
            await anyio.to_thread.run_sync(self.gate.wait, 10.0)
            with self._lock:
                self.attempts[event.id] += 1
                if self.attempts[event.id] <= self.fail_first:
                    return JSONResponse({"detail": "try again"}, status_code=503)
                self.events.append(event)
            return JSONResponse({"received": event.id})

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free loopback port; yields the endpoint's URL."""
        server = BackgroundServer(self.app, host="127.0.0.1", port=0)
        server.start()
        try:
            yield f"http://127.0.0.1:{server.port}/hooks/clerk"
        finally:
            self.gate.set()
            server.stop()
