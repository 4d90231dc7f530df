"""A fake Clerk Backend API for tests: ``FakeClerk`` (extra ``testing``).

In-memory and stateful, for the sessions paths and ``/jwks``, faithful to Clerk's
OpenAPI spec, with fault injection and an attempt log::

    fake = FakeClerk()
    session = fake.add_session(user_id="user_123")
    async with fake.async_client() as clerk:
        await clerk.sessions.revoke(session["id"])
    assert fake.get_session(session["id"])["status"] == "revoked"

    with fake.serve() as url:            # a real loopback port
        ...  # AsyncClerk(fake.secret_key, server_url=url)

Names are imported lazily, so importing this package (as the pytest plugin does)
costs nothing until a fake is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._asgi import ConnectionDropped
    from ._fake import FakeClerk
    from ._faults import FaultConfig, FaultName, Quota
    from ._records import ManualClock, RequestRecord
    from ._validation import (
        ENV_VAR,
        KNOWN_DEVIATIONS,
        ResponseViolation,
        response_violations,
        spec_with_known_deviations,
        take_response_violations,
    )
    from ._webhooks import WebhookDelivery

__all__ = [
    "ENV_VAR",
    "KNOWN_DEVIATIONS",
    "ConnectionDropped",
    "FakeClerk",
    "FaultConfig",
    "FaultName",
    "ManualClock",
    "Quota",
    "RequestRecord",
    "ResponseViolation",
    "WebhookDelivery",
    "response_violations",
    "spec_with_known_deviations",
    "take_response_violations",
]

_HOMES = {
    "ConnectionDropped": "._asgi",
    "FakeClerk": "._fake",
    "FaultConfig": "._faults",
    "FaultName": "._faults",
    "Quota": "._faults",
    "ManualClock": "._records",
    "RequestRecord": "._records",
    "ENV_VAR": "._validation",
    "KNOWN_DEVIATIONS": "._validation",
    "ResponseViolation": "._validation",
    "response_violations": "._validation",
    "spec_with_known_deviations": "._validation",
    "take_response_violations": "._validation",
    "WebhookDelivery": "._webhooks",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
