"""Bounded memory: no answer is read past max_response_bytes, counted after decompression,
on every path (sessions, errors, /jwks); past it the call raises SDKError at once and the
connection is not reused."""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Iterator

import httpx2
import pytest

from clerk_sessions import AsyncClerk, Clerk, errors
from tests.core._support import session_json
from tests.verification.conftest import mint

from ._hostile import (
    SECRET,
    Conn,
    HostileServer,
    chunked,
    endless,
    response_head,
    serve_sessions,
)
from .conftest import run_capped

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

SMALL_CAP = 64 * 1024
# The server stops pushing after this much whatever the client does (a broken client
# would read it all): far above what any socket buffers hold.
BACKSTOP = 2 * 1024**3


def _zeros(size: int) -> Iterator[bytes]:
    piece = b"\0" * (1024 * 1024)
    for _ in range(size // len(piece)):
        yield piece


@functools.cache
def gzip_bomb(decompressed_mb: int) -> bytes:
    """``decompressed_mb`` MiB of zeros, gzipped (about a thousandth of that)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [packer.compress(piece) for piece in _zeros(decompressed_mb * 1024 * 1024)]
    return b"".join([*parts, packer.flush()])


def endless_chunked(status: int = 200) -> object:
    def handler(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        conn.send(response_head(status, head))
        frame = next(chunked(iter([b" " * 65536])))
        endless(conn, frame, limit_bytes=BACKSTOP)

    return handler


def huge_content_length(conn: Conn) -> None:
    if conn.read_request() is None:
        return
    head = {"Content-Type": "application/json", "Content-Length": str(10**12)}
    conn.send(response_head(200, head))
    endless(conn, b" " * 65536, limit_bytes=BACKSTOP)


def gzip_bomb_handler(decompressed_mb: int) -> object:
    bomb = gzip_bomb(decompressed_mb)

    def handler(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        head = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Content-Length": str(len(bomb)),
        }
        conn.send(response_head(200, head) + bomb)

    return handler


def assert_too_large(exc: BaseException) -> None:
    assert isinstance(exc, errors.SDKError)
    message = str(exc)
    assert "max_response_bytes" in message and "raise max_response_bytes" in message
    assert len(exc.body) <= 1024  # an excerpt at most, never the answer


@pytest.mark.parametrize("status", [200, 500], ids=["answer", "error"])
async def test_an_endless_body_stops_at_the_cap_and_its_connection_is_closed(
    server: HostileServer, status: int
) -> None:
    server.handler = endless_chunked(status)  # type: ignore[assignment]
    async with AsyncClerk(
        SECRET, server_url=server.url, max_response_bytes=SMALL_CAP, retry_config=None
    ) as clerk:
        with pytest.raises(errors.SDKError) as info:
            await clerk.sessions.get("sess_1")
        assert_too_large(info.value)
        assert info.value.status_code == status
        server.handler = serve_sessions
        session = await clerk.sessions.get("sess_1")
    assert session.id == "sess_1"
    # The abandoned connection was closed, not handed back to the pool.
    assert server.connections == 2


async def test_a_huge_content_length_is_refused_before_reading_the_body(
    server: HostileServer,
) -> None:
    server.handler = huge_content_length
    async with AsyncClerk(
        SECRET, server_url=server.url, max_response_bytes=SMALL_CAP, retry_config=None
    ) as clerk:
        with pytest.raises(errors.SDKError) as info:
            await clerk.sessions.list(user_id="user_1")
        server.handler = serve_sessions
        await clerk.sessions.get("sess_1")
    assert_too_large(info.value)
    assert info.value.body == b""
    assert server.connections == 2


async def test_a_gzip_bomb_is_counted_after_decompression(server: HostileServer) -> None:
    server.handler = gzip_bomb_handler(8)  # type: ignore[assignment]
    assert len(gzip_bomb(8)) < SMALL_CAP  # small on the wire, large once inflated
    async with AsyncClerk(
        SECRET, server_url=server.url, max_response_bytes=SMALL_CAP, retry_config=None
    ) as clerk:
        with pytest.raises(errors.SDKError) as info:
            await clerk.sessions.get("sess_1")
    assert_too_large(info.value)


async def test_a_well_formed_gzip_answer_is_decoded(server: HostileServer) -> None:
    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            assert "gzip" in request.headers["accept-encoding"]
            packer = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
            session = json.dumps(session_json(request.session_id)).encode()
            body = packer.compress(session) + packer.flush()
            head = {
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Content-Length": str(len(body)),
            }
            conn.send(response_head(200, head) + body)

    server.handler = handler
    async with AsyncClerk(SECRET, server_url=server.url, max_response_bytes=SMALL_CAP) as clerk:
        session = await clerk.sessions.get("sess_gz")
    assert session.id == "sess_gz"


@pytest.mark.parametrize(
    ("encoding", "body", "expected"),
    [
        ("gzip", b"\x1f\x8b\x08\x00garbage", "encoding is corrupt"),
        ("br", b"\x0b\x02\x80{}\x03", "which was not asked for"),
        ("gzip, gzip", b"", "which was not asked for"),
    ],
)
async def test_an_encoding_that_cannot_be_inflated_safely_is_an_sdkerror(
    server: HostileServer, encoding: str, body: bytes, expected: str
) -> None:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            head = {
                "Content-Type": "application/json",
                "Content-Encoding": encoding,
                "Content-Length": str(len(body)),
            }
            conn.send(response_head(200, head) + body)

    server.handler = handler
    async with AsyncClerk(SECRET, server_url=server.url, retry_config=None) as clerk:
        with pytest.raises(errors.SDKError, match=expected):
            await clerk.sessions.get("sess_1")


async def test_a_jwks_answer_past_the_cap_fails_verification_with_the_reason(
    server: HostileServer,
) -> None:
    server.handler = endless_chunked()  # type: ignore[assignment]
    async with AsyncClerk(SECRET, server_url=server.url, max_response_bytes=SMALL_CAP) as clerk:
        with pytest.raises(errors.TokenVerificationError) as info:
            await clerk.verify_token(mint())
    assert info.value.reason == "jwks_unavailable"
    assert_too_large(info.value.__cause__)  # type: ignore[arg-type]


def test_the_sync_client_has_the_same_cap(server: HostileServer) -> None:
    server.handler = endless_chunked()  # type: ignore[assignment]
    with Clerk(SECRET, server_url=server.url, max_response_bytes=SMALL_CAP) as clerk:
        with pytest.raises(errors.SDKError) as info:
            clerk.sessions.get("sess_1")
        server.handler = serve_sessions
        assert clerk.sessions.get("sess_1").id == "sess_1"
    assert_too_large(info.value)
    assert server.connections == 2


def test_max_response_bytes_must_be_a_positive_integer() -> None:
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(errors.ConfigurationError, match="max_response_bytes"):
            AsyncClerk(SECRET, max_response_bytes=bad)  # type: ignore[arg-type]


# The default cap, against attacks that would take gigabytes, in a child process whose
# address space is capped: without the cap, the child dies of MemoryError.
_CHILD_CLIENTS = """
import anyio
from clerk_sessions import AsyncClerk, Clerk, errors

url = sys.argv[1]

async def attack():
    async with AsyncClerk("sk_test_x", server_url=url, retry_config=None) as clerk:
        try:
            await clerk.sessions.get("sess_1")
        except errors.SDKError as exc:
            return "too large" if "max_response_bytes" in str(exc) else repr(exc)
        return "no error"

for backend in ("asyncio", "trio"):
    print(backend, anyio.run(attack, backend=backend))
with Clerk("sk_test_x", server_url=url, retry_config=None) as clerk:
    try:
        clerk.sessions.get("sess_1")
    except errors.SDKError as exc:
        print("sync", "too large" if "max_response_bytes" in str(exc) else repr(exc))
"""


@pytest.mark.parametrize(
    "attack",
    ["endless chunked", "huge content-length", "gzip bomb"],
)
def test_the_default_cap_holds_memory_in_a_capped_process(
    server: HostileServer, attack: str
) -> None:
    server.handler = {  # type: ignore[assignment]
        "endless chunked": endless_chunked(),
        "huge content-length": huge_content_length,
        # 400 MiB inflated from about 400 KB: httpx's own decoder would inflate each
        # 64 KiB read at once, about 64 MB, and all of it would be kept.
        "gzip bomb": gzip_bomb_handler(400),
    }[attack]
    output = run_capped(_CHILD_CLIENTS, server.url)
    assert output.split("\n")[:3] == [
        "asyncio too large",
        "trio too large",
        "sync too large",
    ]


async def test_an_in_memory_answer_past_the_cap_is_refused_too() -> None:
    # httpx2.MockTransport hands over answers already read: the cap still applies.
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, content=b" " * 100))
    async with AsyncClerk(SECRET, transport=transport, max_response_bytes=99) as clerk:
        with pytest.raises(errors.SDKError) as info:
            await clerk.sessions.get("sess_1")
    assert_too_large(info.value)
