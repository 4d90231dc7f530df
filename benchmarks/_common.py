"""Shared pieces of the benchmark suite: the local server, the row format, timing, env.

Every benchmark module (``bench_async``, ``bench_sync``, ``bench_bulk``, ...) exposes
``run(quick: bool, server: ServerHandle | None = None) -> list[dict]`` and returns rows
made with `row()`, so the runner can print one table and write one JSON file.

The server runs in its own process (``python -m benchmarks._common serve``) and answers
from precomputed bytes, so it costs a few microseconds per request and the client under
test, not the server, is what gets measured. `ServerHandle.cpu_seconds()` reads the
server process's CPU time from ``/proc`` so a benchmark can report the server's CPU%
during its own run (below 100% of one core means the server was waiting on the client).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "LIST_SIZE",
    "SECRET_KEY",
    "ServerHandle",
    "environment",
    "fresh_processes",
    "importable",
    "interleave",
    "interleave_async",
    "list_body",
    "median_of",
    "row",
    "serve",
    "session_dict",
    "start_server",
]

SECRET_KEY = "sk_test_benchmarks"
LIST_SIZE = 500
# Sessions and ids look like Clerk's so that string lengths, and so JSON sizes, are real.
SESSION_ID = "sess_2bBnmXaAaMHPOXoCaKQd5mJ2T1M"


# ---------------------------------------------------------------------------- data


def session_dict(i: int = 0, *, status: str = "active") -> dict[str, Any]:
    """One session as the API sends it (every field the spec documents, realistic sizes)."""
    base = 1_700_000_000_000 + i * 1000
    return {
        "object": "session",
        "id": f"sess_2bBnmXaAaMHPOXoCaKQd{i:07d}",
        "user_id": f"user_2bBnmTL0bHxl9ZbKsGk{i:07d}",
        "client_id": f"client_2bBnmTL0bHxl9ZbKs{i:07d}",
        "actor": None,
        "status": status,
        "last_active_organization_id": None,
        "last_active_at": base + 500,
        "latest_activity": {
            "object": "session_activity",
            "id": f"sess_activity_2bBnmXaAaMHPOX{i:07d}",
            "device_type": "Macintosh",
            "is_mobile": False,
            "browser_name": "Chrome",
            "browser_version": "124.0.0.0",
            "ip_address": "203.0.113.7",
            "city": "Berlin",
            "country": "DE",
        },
        "expire_at": base + 7 * 86_400_000,
        "abandon_at": base + 30 * 86_400_000,
        "updated_at": base + 500,
        "created_at": base,
        "tasks": None,
    }


def list_body(n: int = LIST_SIZE) -> bytes:
    """The JSON body of ``GET /sessions``: a bare array of ``n`` sessions."""
    return json.dumps([session_dict(i) for i in range(n)], separators=(",", ":")).encode()


# ---------------------------------------------------------------------------- server


def _response(body: bytes, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


class _Protocol(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive server: route on the request line, answer bytes.

    Parsing only what routing needs (method, path, Content-Length) keeps a request at a
    few microseconds; a general server (uvicorn + an app) would cost more than httpx
    does and benchmark itself.
    """

    def __init__(self, answers: Mapping[str, bytes]) -> None:
        self.answers = answers
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            lower = head.lower()
            at = lower.find(b"content-length:")
            if at >= 0:
                line_end = lower.find(b"\r\n", at)
                length = int(lower[at + 15 : line_end if line_end >= 0 else None])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            self.buffer = self.buffer[total:]
            line = head[: head.find(b"\r\n")]
            method, target = line.split(b" ", 2)[:2]
            assert self.transport is not None
            self.transport.write(self._route(method, target))

    def _route(self, method: bytes, target: bytes) -> bytes:
        path = target.split(b"?", 1)[0]
        if method == b"GET":
            if path == b"/v1/sessions":
                return self.answers["list"]
            if path == b"/v1/jwks":
                return self.answers["jwks"]
            if path.startswith(b"/v1/sessions/"):
                return self.answers["get"]
        elif method == b"POST" and path.startswith(b"/v1/sessions/") and path.endswith(b"/revoke"):
            # The answer names the id that was asked for, so clients that check see it;
            # splicing one id into precomputed halves costs well under a microsecond.
            session_id = path[len(b"/v1/sessions/") : -len(b"/revoke")]
            head, tail = self.answers["revoke_head"], self.answers["revoke_tail"]
            body = head + session_id + tail
            return _response(body)
        return self.answers["not_found"]


def _answers(list_size: int, jwks: bytes) -> dict[str, bytes]:
    revoked = session_dict(0, status="revoked")
    marker = "@@ID@@"
    revoked["id"] = marker
    revoked_text = json.dumps(revoked, separators=(",", ":")).encode()
    head, tail = revoked_text.split(marker.encode())
    not_found = json.dumps(
        {
            "errors": [{"message": "not found", "long_message": "not found", "code": "not_found"}],
            "clerk_trace_id": "bench",
        }
    ).encode()
    get = dict(session_dict(0))
    get["id"] = SESSION_ID
    return {
        "get": _response(json.dumps(get, separators=(",", ":")).encode()),
        "list": _response(list_body(list_size)),
        "jwks": _response(jwks),
        "revoke_head": head,
        "revoke_tail": tail,
        "not_found": _response(not_found, "404 Not Found"),
    }


def serve(port: int = 0, list_size: int = LIST_SIZE, jwks: bytes = b'{"keys":[]}') -> None:
    """Run the server in this process until killed; print ``PORT <n>`` once listening."""
    answers = _answers(list_size, jwks)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Protocol(answers), "127.0.0.1", port, backlog=1024, reuse_address=True
        )
        bound = server.sockets[0].getsockname()[1]
        print(f"PORT {bound}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass
class ServerHandle:
    """A running benchmark server: its base URL (with ``/v1``) and its process."""

    process: subprocess.Popen[bytes]
    port: int
    list_size: int

    @property
    def base_url(self) -> str:
        """The URL to pass as ``server_url`` (the API version prefix included)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        # Fields 14 and 15 of /proc/PID/stat (utime, stime), counted after "comm".
        return (int(fields[11]) + int(fields[12])) / ticks

    @contextmanager
    def cpu_meter(self) -> Iterator[dict[str, float]]:
        """Measure the server's CPU% (of one core) over a block: ``meter["cpu_pct"]``."""
        meter: dict[str, float] = {}
        cpu0, t0 = self.cpu_seconds(), time.perf_counter()
        try:
            yield meter
        finally:
            wall = time.perf_counter() - t0
            meter["cpu_pct"] = 100 * (self.cpu_seconds() - cpu0) / wall if wall else 0.0

    def stop(self) -> None:
        """Stop the server process (only the one this handle started)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(list_size: int = LIST_SIZE, jwks: bytes | None = None) -> ServerHandle:
    """Start the server in a child process and wait until it listens."""
    args = [sys.executable, "-m", "benchmarks._common", "serve", str(list_size)]
    if jwks is not None:
        args.append(jwks.decode())
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=root, env=env)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"benchmark server did not start: {line!r}")
    return ServerHandle(process=process, port=int(line.split()[1]), list_size=list_size)


async def _hammer(port: int, seconds: float, connections: int) -> int:
    """Send ``GET /v1/sessions/{id}`` back to back on raw sockets; count the answers.

    The client here does nothing but write fixed bytes and read a known number of bytes,
    so the rate it reaches is (close to) the server's ceiling for that route.
    """
    request = (f"GET /v1/sessions/{SESSION_ID} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    size = len(head) + length
    writer.close()
    deadline = time.perf_counter() + seconds
    count = 0

    async def one_connection() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            writer.write(request)
            await reader.readexactly(size)
            count += 1
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return count


def server_capacity(
    server: ServerHandle, seconds: float = 1.0, connections: int = 4
) -> dict[str, float]:
    """The server's ceiling for single-session GETs, and its CPU% while at it.

    Compare ``requests_per_s`` with a client's calls per second: when the server can
    answer several times faster than the fastest client asks, it is not the bottleneck.
    """
    with server.cpu_meter() as meter:
        t0 = time.perf_counter()
        count = asyncio.run(_hammer(server.port, seconds, connections))
        wall = time.perf_counter() - t0
    return {"requests_per_s": count / wall, "server_cpu_pct": meter["cpu_pct"]}


@contextmanager
def running_server(list_size: int = LIST_SIZE, jwks: bytes | None = None) -> Iterator[ServerHandle]:
    """`start_server` as a context manager that always stops it."""
    handle = start_server(list_size, jwks)
    try:
        yield handle
    finally:
        handle.stop()


# ---------------------------------------------------------------------------- rows


@dataclass
class Row:
    """One line of the results table.

    ``ours``, ``raw_httpx`` and ``official`` are in ``unit``. The ratios are
    ``ours / other`` in that unit, so for a time (``us/call``) below 1 means we are
    faster, and for a rate (``ids/s``) above 1 means we are faster; ``better`` says which.
    ``target`` is the issue's goal as text (``"raw <= 1.15"``), ``met`` whether this run
    meets it (None when there is no target), ``notes`` anything a reader needs (server
    CPU%, why a column is missing).
    """

    name: str
    ours: float
    raw_httpx: float | None
    official: float | None
    unit: str
    ratio_vs_raw: float | None = None
    ratio_vs_official: float | None = None
    target: str = ""
    better: str = "lower"
    met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _ratio(ours: float, other: float | None) -> float | None:
    if other is None or other == 0:
        return None
    return ours / other


def _check(target: str, ratio_raw: float | None, ratio_official: float | None) -> bool | None:
    """Evaluate targets written as ``"raw <= 1.15; official < 1"`` against the ratios."""
    if not target:
        return None
    ok = True
    for clause in target.split(";"):
        who, op, value = clause.split()
        ratio = ratio_raw if who == "raw" else ratio_official
        if ratio is None:
            return None
        limit = float(value)
        ok &= {
            "<=": ratio <= limit,
            "<": ratio < limit,
            ">=": ratio >= limit,
            ">": ratio > limit,
        }[op]
    return ok


def row(
    name: str,
    ours: float,
    raw_httpx: float | None,
    official: float | None,
    unit: str,
    *,
    target: str = "",
    better: str = "lower",
    notes: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """Build one result row as a plain dict (the common format; see `Row`)."""
    ratio_raw = _ratio(ours, raw_httpx)
    ratio_official = _ratio(ours, official)
    return asdict(
        Row(
            name=name,
            ours=ours,
            raw_httpx=raw_httpx,
            official=official,
            unit=unit,
            ratio_vs_raw=ratio_raw,
            ratio_vs_official=ratio_official,
            target=target,
            better=better,
            met=_check(target, ratio_raw, ratio_official),
            notes=notes,
            extra=dict(extra),
        )
    )


# ---------------------------------------------------------------------------- timing


def median_of(fn: Callable[[], Any], n: int, *, inner: int = 1) -> float:
    """Median seconds per call of ``fn`` over ``n`` samples of ``inner`` calls each."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def interleave(
    contenders: Mapping[str, Callable[[], Any]], rounds: int, *, inner: int = 1
) -> dict[str, float]:
    """Median seconds per call for each contender, measured in alternating rounds.

    Round r runs every contender once (``inner`` calls each), in an order that rotates
    each round, so a burst of noise from other processes hits all of them alike instead
    of whichever happened to run then.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = contenders[name]
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}


async def interleave_async(
    contenders: Mapping[str, Callable[[], Awaitable[Any]]], rounds: int, *, inner: int = 1
) -> dict[str, float]:
    """`interleave` for coroutine functions, awaited on the running loop."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn = contenders[name]
            t0 = time.perf_counter()
            for _ in range(inner):
                await fn()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}


def fresh_processes(
    scripts: Mapping[str, str],
    rounds: int,
    *,
    interpreters: Mapping[str, str | os.PathLike[str]] | None = None,
) -> dict[str, list[float]]:
    """Wall seconds of a fresh ``python -c SCRIPT`` per contender, ``rounds`` each.

    Round r starts every script once, in an order that rotates each round (as
    `interleave` does), so load from elsewhere hits every contender alike. The
    interpreters run as a user's would, with one exception made for fairness: bytecode
    caching is on and points to a fresh private directory (``PYTHONPYCACHEPREFIX``),
    warmed by two runs of each script first. Otherwise whether a package's ``.pyc``
    files exist depends on how it was installed (uv writes none by default) and on
    ``PYTHONDONTWRITEBYTECODE``, and a package without them recompiles its source on
    every start.

    A contender named in ``interpreters`` runs with that interpreter instead of this
    one (an environment of its own, `benchmarks._bare_env`), started in an empty
    working directory and without ``PYTHONPATH`` or ``PYTHONHOME``, so that neither the
    checkout nor this environment's paths reach it.
    """
    names = list(scripts)
    own = dict(interpreters or {})
    samples: dict[str, list[float]] = {name: [] for name in names}
    with (
        tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache,
        tempfile.TemporaryDirectory(prefix="bench-cwd-") as empty,
    ):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        bare_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

        def wall(name: str) -> float:
            if name in own:
                args, cwd, environ = [os.fspath(own[name])], empty, bare_env
            else:
                args, cwd, environ = [sys.executable], None, env
            t0 = time.perf_counter()
            subprocess.run([*args, "-c", scripts[name]], check=True, env=environ, cwd=cwd)
            return time.perf_counter() - t0

        for name in names:  # write the .pyc files, warm the OS file cache
            wall(name)
            wall(name)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                samples[name].append(wall(name))
    return samples


def importable(module: str) -> bool:
    """Whether a fresh interpreter can import ``module`` (without importing it here)."""
    return subprocess.run([sys.executable, "-c", f"import {module}"]).returncode == 0


# ---------------------------------------------------------------------------- env


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def event_loop_name() -> str:
    """The event loop the async benchmarks run on (what ``asyncio.run`` creates here)."""
    policy = asyncio.get_event_loop_policy()
    loop = policy.new_event_loop()
    try:
        return f"asyncio ({type(loop).__module__}.{type(loop).__name__})"
    finally:
        loop.close()


def environment() -> dict[str, Any]:
    """What a reader needs to judge the numbers: interpreter, loop, libraries, machine."""
    try:
        import sniffio  # noqa: F401

        sniffio_ok = True
    except ImportError:
        sniffio_ok = False
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "event_loop": event_loop_name(),
        "sniffio_importable": sniffio_ok,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": list(load) if load else None,
        "versions": {
            dist: _version(dist)
            for dist in (
                "clerk-sessions",
                "clerk-backend-api",
                "httpx",
                "httpcore",
                "anyio",
                "sniffio",
                "attrs",
                "cattrs",
                "orjson",
                "pydantic",
                "PyJWT",
                "cryptography",
            )
        },
    }


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        size = int(sys.argv[2]) if len(sys.argv) > 2 else LIST_SIZE
        jwks_arg = sys.argv[3].encode() if len(sys.argv) > 3 else b'{"keys":[]}'
        with suppress(KeyboardInterrupt):
            serve(list_size=size, jwks=jwks_arg)
    else:
        print(json.dumps(environment(), indent=2))
