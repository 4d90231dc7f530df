"""The example Django project under uvicorn, for test_django_aget_client: run from the
repository root as ``python -m tests.integrations._django_uvicorn FD``.

Serves ``clerk_example.asgi`` on the listening socket FD (the test holds the port) until
SIGTERM. Each HTTP request is followed by ``await aget_client()`` on the server's loop
(what an ASGI consumer would do), which records the clients handed out. Once uvicorn
returned, its event loop has ended; the last line printed is a JSON object: how many
clients were handed out, and what using each one now says (it must be closed).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

from clerk_sessions import AsyncClerk
from clerk_sessions.django import aget_client

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "django_project"

handed_out: list[AsyncClerk] = []


def asgi_app() -> Any:
    sys.path.insert(0, str(PROJECT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clerk_example.settings")
    from clerk_example.asgi import application

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await application(scope, receive, send)
        if scope["type"] == "http":
            handed_out.append(await aget_client())

    return app


async def use(client: AsyncClerk) -> str:
    try:
        await client.sessions.list(limit=1)
    except RuntimeError as exc:
        return str(exc)
    return "still open"


def main() -> None:
    listening = socket.socket(fileno=int(sys.argv[1]))
    # uvicorn re-raises the signal that stopped it once it returns, which by default would
    # end this process before the report: handled, the re-raised SIGTERM does nothing.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    config = uvicorn.Config(
        asgi_app(), lifespan="off", log_level="warning", timeout_graceful_shutdown=5
    )
    uvicorn.Server(config).run(sockets=[listening])
    clients = list({id(client): client for client in handed_out}.values())
    print(json.dumps({"clients": len(clients), "after": [asyncio.run(use(c)) for c in clients]}))


if __name__ == "__main__":
    main()
