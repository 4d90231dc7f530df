"""The ledger stays small: revoke_many keeps each failure without its traceback, body or
headers, so 20,000 failures cost under 50 MB, and the result pickles."""

from __future__ import annotations

import pickle

import httpx2
import pytest

from clerk_sessions import AsyncClerk, errors

from ._hostile import SECRET
from .conftest import run_capped

pytestmark = pytest.mark.timeout(120)

# 20,000 ids that all fail with a 404 as Clerk sends it (through a CDN: a dozen headers),
# in a child whose address space is capped (at its size plus 120 MB): at the 15 KB an id
# the ledger cost before, it would need 300 MB and die of MemoryError.
_CHILD = """
import gc, json, pickle
import anyio, httpx2
from clerk_sessions import AsyncClerk

TRACE = "1b6f3c5e2a9d4b7f8c0e1a2b3c4d5e6f"
BODY = json.dumps({"errors": [{"code": "resource_not_found", "message": "not found",
    "long_message": "No session was found with id sess_000001 in this instance; it may "
    "have been removed or never existed.", "meta": {}}], "clerk_trace_id": TRACE}).encode()
HEADERS = {
    "content-type": "application/json", "date": "Wed, 02 Dec 2026 06:00:00 GMT",
    "cf-ray": "8f0a1b2c3d4e5f60-FRA", "cf-cache-status": "DYNAMIC", "server": "cloudflare",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "vary": "Origin, Accept-Encoding", "x-clerk-trace-id": TRACE,
    "x-cloud-trace-context": TRACE + "/1234567890123456789;o=1",
    "alt-svc": 'h3=":443"; ma=86400',
}

def handler(request):
    return httpx2.Response(404, content=BODY, headers=HEADERS)

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

async def main():
    ids = [f"sess_{n:06d}" for n in range(20_000)]
    async with AsyncClerk("sk_test_x", transport=httpx2.MockTransport(handler),
                          retry_config=None) as clerk:
        await clerk.sessions.revoke_many(ids[:100])  # warm up: hooks, pools, imports
        gc.collect()
        before = rss()
        result = await clerk.sessions.revoke_many(ids, concurrency=16)
        gc.collect()
        after = rss()
    print(len(result.failed), (after - before) / 2**20, len(pickle.dumps(result)) / 2**20)

anyio.run(main)
"""


def test_twenty_thousand_failures_cost_under_50_mb() -> None:
    failed, grown_mb, pickled_mb = run_capped(_CHILD, timeout_s=100).split()
    assert int(failed) == 20_000
    assert float(grown_mb) < 50
    assert float(pickled_mb) < 50


@pytest.mark.anyio
async def test_a_failure_keeps_its_type_status_and_message_but_no_traceback_or_body() -> None:
    body = b'{"errors": [{"code": "resource_not_found", "message": "gone", "long_message": "x"}]}'

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(404, content=body, headers={"content-type": "application/json"})

    async with AsyncClerk(
        SECRET, transport=httpx2.MockTransport(handler), retry_config=None
    ) as clerk:
        result = await clerk.sessions.revoke_many(["sess_1", "sess_2"])
    failure = result.failed["sess_1"]
    assert isinstance(failure, errors.NotFoundError)
    assert failure.status_code == 404 and failure.errors[0].code == "resource_not_found"
    assert "resource_not_found" in str(failure)
    assert failure.__traceback__ is None and failure.__context__ is None
    assert failure.body == b"" and failure.headers == {}
    clone = pickle.loads(pickle.dumps(result))
    assert type(clone.failed["sess_2"]) is errors.NotFoundError
