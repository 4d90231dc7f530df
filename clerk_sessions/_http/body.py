"""A request's body encoded the same on every engine, and an answer's body read within
``max_response_bytes``, on either engine.

The SDK encodes JSON itself (`encode_json`) rather than pass ``json=`` to the engine:
httpx 0.27, the legacy engine's floor, spaces its JSON where httpx2 and httpx 0.28 do
not, and a call sends the same bytes on every engine. It is encoded once per call, not
once per attempt.

The body is read raw from the stream and inflated here with a bounded output, so no
read ever produces more than what is left of the limit: a gzip bomb costs no more memory
than an honest answer of that size. httpx (and httpx2) would inflate a whole 64 KiB read
at once, turning a bomb into 64 MB, and would stack decoders for "gzip, gzip"; so the SDK
asks only for what it can inflate this way (`ACCEPT_ENCODING`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import zlib
from typing import Any

from clerk_sessions._errors import SDKError
from clerk_sessions._http.pool import is_own_stream

__all__ = ["ACCEPT_ENCODING", "discard_connection", "encode_json", "read_body"]

ACCEPT_ENCODING = "gzip, deflate"
# zlib's header detection: a gzip or a zlib stream (what servers send as "deflate").
_INFLATE_WBITS = zlib.MAX_WBITS | 32
# How much of a too-large answer is kept on the error, to show what it was.
_EXCERPT_BYTES = 1024


def encode_json(body: object) -> bytes:
    """``body`` as httpx2 encodes ``json=``: compact, UTF-8, no NaN or infinity."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _too_large(limit: int, response: Any, excerpt: bytes) -> SDKError:
    return SDKError(
        f"the answer is larger than max_response_bytes={limit:,} bytes (after "
        "decompression) and was abandoned unread; Clerk's largest answers are well under "
        "1 MiB, so a proxy or server on the way probably sent something else (raise "
        "max_response_bytes only if this answer is legitimate)",
        status_code=response.status_code,
        headers=response.headers,
        body=excerpt[:_EXCERPT_BYTES],
    )


async def read_body(response: Any, limit: int) -> bytes:
    """The whole (decoded) body of an engine's streamed ``Response``, or `SDKError` as
    soon as it passes ``limit`` bytes."""
    if response.is_stream_consumed:
        # Built in memory, not read from a connection (MockTransport and the like hand
        # over responses that hold their decoded content already).
        if len(response.content) > limit:
            raise _too_large(limit, response, response.content)
        content: bytes = response.content
        return content
    headers = response.headers
    encoding = headers.get("content-encoding", "identity").strip().lower()
    chunks: list[bytes] = []
    size = 0
    if encoding == "identity":
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(limit, response, b"")
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, response, chunks[0] if chunks else chunk)
            chunks.append(chunk)
        return b"".join(chunks)
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise SDKError(
            f"the answer came with Content-Encoding {encoding!r}, which was not asked for "
            f"(Accept-Encoding: {ACCEPT_ENCODING})",
            status_code=response.status_code,
            headers=headers,
            body=b"",
        )
    inflate = zlib.decompressobj(_INFLATE_WBITS)
    try:
        async for chunk in response.aiter_raw():
            # One byte over the limit is enough to know it is too large.
            data = inflate.decompress(chunk, limit - size + 1)
            size += len(data)
            if size > limit:
                raise _too_large(limit, response, chunks[0] if chunks else data)
            chunks.append(data)
        # All input was consumed below max_length, so nothing is left to inflate: this
        # only checks that the stream is complete.
        chunks.append(inflate.flush())
        if not inflate.eof:
            raise zlib.error("the compressed stream ends early")
    except zlib.error as exc:
        raise SDKError(
            f"the answer's {encoding} encoding is corrupt ({exc})",
            status_code=response.status_code,
            headers=headers,
            body=b"".join(chunks),
        ) from None
    return b"".join(chunks)


async def discard_connection(response: Any) -> None:
    """Make sure the pool never reuses the connection that carried ``response``.

    Used when an answer shows the connection is out of step with its requests. The
    connection sits idle in the pool by now; it must look to the pool's next check like
    one the server closed. The SDK's asyncio streams close at once and say so. Others
    (httpcore's and httpcore2's anyio and trio streams) ask the kernel whether an idle
    socket is readable, and trio's refuses to look at a closed one: shutting the socket
    down makes it read as closed for both, and the pool then closes it properly. The
    network stream and its socket are public extensions of both engines.
    """
    stream = response.extensions.get("network_stream")
    if stream is None:
        return
    if is_own_stream(stream):
        await stream.aclose()
        return
    sock = stream.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
