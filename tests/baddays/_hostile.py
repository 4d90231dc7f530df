"""A hostile HTTP server on a loopback port, made of raw sockets.

httpx-level fakes hand the client whole, well-formed responses; the bad days this suite
is about (an endless body, a gzip bomb, a server that drips a byte at a time, an answer
meant for another request) happen below that, on the wire. Each connection runs a
handler in its own thread with a blocking socket, so the server behaves the same whether
the client under test runs on asyncio, trio or the sync facade's portal.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tests.core._support import session_json

__all__ = ["Conn", "HostileServer", "Request", "response_head", "send_json"]

SECRET = "sk_test_baddays_0123456789"


class Request:
    """One parsed request: method, path (with query), lowercased headers, body."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def session_id(self) -> str:
        """The id in ``/v1/sessions/{id}[/...]``."""
        return self.path.split("?")[0].split("/")[3]


class Conn:
    """One accepted connection, from the handler's side."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self._buffer = b""

    def read_request(self) -> Request | None:
        """The next request on this connection, or None when the client closed it."""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return Request(method, path, headers, body)

    def send(self, data: bytes) -> bool:
        """Send ``data``; False once the client has gone."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True


def response_head(status: int = 200, headers: Mapping[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def send_json(conn: Conn, data: Any, status: int = 200, **headers: str) -> bool:
    """A complete, well-formed JSON answer (keep-alive)."""
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    head = response_head(
        status,
        {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers},
    )
    return conn.send(head + body)


def serve_sessions(conn: Conn) -> None:
    """A well-behaved handler: every request answers with the session it names."""
    while (request := conn.read_request()) is not None:
        if not send_json(conn, session_json(request.session_id)):
            return


Handler = Callable[[Conn], None]


class HostileServer:
    """Accepts connections on 127.0.0.1 and runs ``handler(conn)`` for each in a thread.

    ``connections`` counts the connections accepted, which is how a test sees that the
    client did not reuse one. The handler may be swapped at any time (``handler = ...``).
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[Request] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
                self._socks.append(sock)
            thread = threading.Thread(target=self._run, args=(sock, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket, number: int) -> None:
        conn = _RecordingConn(sock, number, self)
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            sock.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _RecordingConn(Conn):
    def __init__(self, sock: socket.socket, number: int, server: HostileServer) -> None:
        super().__init__(sock, number)
        self._server = server

    def read_request(self) -> Request | None:
        request = super().read_request()
        if request is not None:
            self._server.requests.append(request)
        return request


def drip(conn: Conn, data: bytes, every_s: float) -> None:
    """Send ``data`` one byte at a time, ``every_s`` apart, until done or the client goes."""
    for byte in data:
        if not conn.send(bytes([byte])):
            return
        time.sleep(every_s)


def endless(conn: Conn, chunk: bytes, *, limit_bytes: int) -> int:
    """Send ``chunk`` again and again until the client goes (or ``limit_bytes``, a
    backstop so a broken client cannot keep the test's server busy forever); returns how
    many bytes went out."""
    sent = 0
    while sent < limit_bytes and conn.send(chunk):
        sent += len(chunk)
    return sent


def chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Pieces framed as HTTP/1.1 chunks (never terminated: the iterator decides)."""
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
