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
import importlib.util
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

from benchmarks import _bare_env

__all__ = [
    "COLUMNS",
    "LIST_SIZE",
    "OPTIONAL_MODULES",
    "RAW_HTTPX2",
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

#: What each column of a row holds: written into every report, so the JSON says what
#: its numbers are without this code at hand.
COLUMNS = {
    "ours": "clerk-sessions (the SDK of this checkout, on httpx2)",
    "raw": "the floor: raw httpx2 (httpx2.AsyncClient.get + json.loads, httpx2.Client for "
    "sync, a bare env of only what `pip install httpx2` gives for cold start), or what the "
    "row's `floor` names where the row compares with something else",
    "raw_httpx": "raw httpx, the legacy library, doing what raw httpx2 does in that row "
    "(null where the row has no HTTP client to compare)",
    "official": "clerk-backend-api, Clerk's official SDK (on httpx), with its defaults",
    "ratio_vs_raw": "ours / raw",
    "ratio_vs_raw_httpx": "ours / raw_httpx",
    "ratio_vs_official": "ours / official",
    "floor": "what the raw column measures in this row",
    "target": "the goal, as clauses like 'raw <= 1.0; official <= 0.5' on the ratios",
    "better": "'lower' for costs (times, memory), 'higher' for rates and shares",
    "met": "whether this run meets the target (null: no target, or a ratio missing)",
}
#: The floor of a row that does not name one.
RAW_HTTPX2 = "raw httpx2"


@dataclass
class Row:
    """One line of the results table.

    ``ours``, ``raw``, ``raw_httpx`` and ``official`` are in ``unit`` (`COLUMNS` says
    what each is); ``raw`` is the floor, raw httpx2 unless ``floor`` names something
    else. The ratios are ``ours / other`` in that unit, so for a time (``us/call``)
    below 1 means we are faster, and for a rate (``ids/s``) above 1 means we are faster;
    ``better`` says which. ``target`` is the issue's goal as text (``"raw <= 1.1"``),
    ``met`` whether this run meets it (None when there is no target), ``notes`` anything
    a reader needs (server CPU%, why a column is missing).
    """

    name: str
    ours: float
    raw: float | None
    official: float | None
    unit: str
    raw_httpx: float | None = None
    ratio_vs_raw: float | None = None
    ratio_vs_raw_httpx: float | None = None
    ratio_vs_official: float | None = None
    floor: str = RAW_HTTPX2
    target: str = ""
    better: str = "lower"
    met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _ratio(ours: float, other: float | None) -> float | None:
    if other is None or other == 0:
        return None
    return ours / other


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def _check(target: str, ratios: Mapping[str, float | None]) -> bool | None:
    """Evaluate targets written as ``"raw <= 1.2; official <= 0.5"`` against the ratios
    (``ratios`` maps ``raw``, ``raw_httpx`` and ``official`` to ours / that column)."""
    if not target:
        return None
    ok = True
    for clause in target.split(";"):
        words = clause.split()
        if len(words) != 3 or words[0] not in ratios or words[1] not in _OPERATORS:
            raise ValueError(
                f"unreadable target clause {clause.strip()!r} in {target!r}: write "
                f"'<{' | '.join(ratios)}> <{' | '.join(_OPERATORS)}> <number>'"
            )
        who, op, value = words
        ratio = ratios[who]
        if ratio is None:
            return None
        ok &= _OPERATORS[op](ratio, float(value))
    return ok


def row(
    name: str,
    ours: float,
    raw: float | None,
    official: float | None,
    unit: str,
    *,
    raw_httpx: float | None = None,
    floor: str = RAW_HTTPX2,
    target: str = "",
    better: str = "lower",
    notes: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """Build one result row as a plain dict (the common format; see `Row`).

    ``raw`` is the floor (raw httpx2, or what ``floor`` names); ``raw_httpx`` is the
    legacy library beside it, where the row has an HTTP client to compare.
    """
    ratios = {
        "raw": _ratio(ours, raw),
        "raw_httpx": _ratio(ours, raw_httpx),
        "official": _ratio(ours, official),
    }
    return asdict(
        Row(
            name=name,
            ours=ours,
            raw=raw,
            official=official,
            unit=unit,
            raw_httpx=raw_httpx,
            ratio_vs_raw=ratios["raw"],
            ratio_vs_raw_httpx=ratios["raw_httpx"],
            ratio_vs_official=ratios["official"],
            floor=floor,
            target=target,
            better=better,
            met=_check(target, ratios),
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
    warmups: int = 2,
) -> dict[str, list[float]]:
    """Wall seconds of a fresh ``python -c SCRIPT`` per contender, ``rounds`` each.

    Round r starts every script once, in an order that rotates each round (as
    `interleave` does), so load from elsewhere hits every contender alike. ``warmups``
    runs of each script (at least one) come first, unmeasured: they write whatever
    bytecode is missing, and warm the OS file cache.

    Bytecode is read from compiled files for every contender alike, however the
    machine's environment sets ``PYTHONDONTWRITEBYTECODE`` and ``PYTHONPYCACHEPREFIX``:

    - a contender named in ``interpreters`` runs with that interpreter instead of this
      one (an environment of its own, `benchmarks._bare_env`, whose bytecode was compiled
      when it was built, as ``pip install`` does), reading and writing bytecode where a
      user's interpreter would (``__pycache__`` beside the sources); it starts in an
      empty working directory, without ``PYTHONPATH`` or ``PYTHONHOME``, so that neither
      the checkout nor this environment's paths reach it;
    - the others run with this interpreter, bytecode caching on and pointed at a fresh
      private directory (``PYTHONPYCACHEPREFIX``) that the warm-up runs fill: whether
      this environment's packages have ``.pyc`` files depends on how each was installed
      (uv writes none by default), and a package without them would recompile its
      source on every start.
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
        bare_env = _bare_env.environ()

        def wall(name: str) -> float:
            if name in own:
                args, cwd, environ = [os.fspath(own[name])], empty, bare_env
            else:
                args, cwd, environ = [sys.executable], None, env
            t0 = time.perf_counter()
            subprocess.run([*args, "-c", scripts[name]], check=True, env=environ, cwd=cwd)
            return time.perf_counter() - t0

        for name in names:
            for _ in range(max(1, warmups)):
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


#: Modules that change what a contender does when they are importable, and how.
OPTIONAL_MODULES = {
    "sniffio": "httpcore and httpcore2 ask it which async library runs (httpcore tries the "
    "import on every async request); neither anyio nor httpx2 requires it",
    "trio": "httpcore and httpcore2 import it when installed",
    "orjson": "ours parses bodies with it (the fast extra)",
    "click": "httpx imports its command line (click, rich) when installed; httpx2 does not",
}


def environment() -> dict[str, Any]:
    """What a reader needs to judge the numbers: interpreter, loop, libraries, machine."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "event_loop": event_loop_name(),
        # Where a contender runs in this environment (every row but the bare-install
        # cold start, whose note says what each of its environments holds).
        "importable": {
            module: importlib.util.find_spec(module) is not None for module in OPTIONAL_MODULES
        },
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": list(load) if load else None,
        "versions": {
            dist: _version(dist)
            for dist in (
                "clerk-sessions",
                "clerk-backend-api",
                "httpx2",
                "httpcore2",
                "httpx",
                "httpcore",
                "anyio",
                "sniffio",
                "h11",
                "truststore",
                "certifi",
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
