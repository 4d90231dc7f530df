"""The HTTP library of this test run, for the tests of the core and the sync facade.

``hx`` is httpx2, the SDK's engine; with ``CLERK_SESSIONS_TEST_ENGINE=httpx`` (the nox
session that runs those tests on the legacy engine) it is httpx. Tests build their
transports, responses and expected exceptions with ``hx``, so an SDK client built on one
of them runs on that library; `legacy_engine` also makes it the engine of the clients the
SDK builds on its own (tests/core/conftest.py and tests/sync/conftest.py).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["ENGINE", "LEGACY", "hx"]

#: "httpx2", or "httpx" in the legacy-engine run.
ENGINE = os.environ.get("CLERK_SESSIONS_TEST_ENGINE", "httpx2")
if ENGINE not in ("httpx2", "httpx"):  # pragma: no cover - a typo in a nox session
    raise RuntimeError(f"CLERK_SESSIONS_TEST_ENGINE must be httpx2 or httpx, not {ENGINE!r}")
LEGACY = ENGINE == "httpx"
hx: ModuleType = importlib.import_module(ENGINE)


def legacy_fake_transport(app: object) -> object:
    """The fake's in-process transport (``FakeClerk.transport()``) as an httpx transport,
    for the legacy-engine run: the same app and the same dropped connections."""
    from clerk_sessions.testing._asgi import ConnectionDropped

    class LegacyFakeTransport(hx.AsyncBaseTransport):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self._inner = hx.ASGITransport(app=app)

        async def handle_async_request(self, request: object) -> object:
            try:
                return await self._inner.handle_async_request(request)
            except ConnectionDropped as exc:
                raise hx.RemoteProtocolError(str(exc), request=request) from None

        async def aclose(self) -> None:
            await self._inner.aclose()

    return LegacyFakeTransport()
