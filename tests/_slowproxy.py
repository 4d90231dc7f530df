"""A slow link to a real server: a TCP proxy on 127.0.0.1 that holds every byte the
server sends for ``delay`` seconds before passing it on (in order), the way a Redis that
takes seconds per command looks to its clients (a busy server, a saturated link).

It runs an asyncio loop on a thread of its own; ``delay`` may change while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

__all__ = ["SlowProxy"]


class SlowProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target_port``, answers ``delay`` s late."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._started = threading.Event()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> SlowProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(listener,), daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the slow proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)

    def _run(self, listener: socket.socket) -> None:
        asyncio.run(self._serve(listener))

    async def _serve(self, listener: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=listener)
        self._started.set()
        async with server:
            await self._stopped.wait()
            server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            client_writer.close()
            return
        pending: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                server_writer.write(data)
                await server_writer.drain()

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                pending.put_nowait((time.monotonic() + self.delay, data))
            pending.put_nowait((0.0, b""))

        async def deliver() -> None:
            while True:
                due, data = await pending.get()
                if not data:
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.create_task(pump()) for pump in (upstream, downstream, deliver)]
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_writer, server_writer):
            writer.close()
