"""The interface between `RevocationJob` and the places that keep a job: `JobStore`.

A store keeps, per job name: the kind of ids (session or user ids), the items (distinct
ids), the chunks they are claimed in, each chunk's lease and fence token, and each item's
outcome. Everything that must hold whatever crashes is the store's: a create is all or
nothing, a claim is exclusive until its lease expires, and a chunk's outcomes are recorded
once, by the holder of its latest claim only (fencing).

Conventions shared by every store:

- Every method is a coroutine (or, for `JobStore.outcomes`, an async iterator) that never
  blocks the event loop: blocking I/O runs on a worker thread. Methods work on asyncio and
  trio.
- A job name is a non-empty string; the store may restrict it further (it is validated by
  `RevocationJob` before it reaches a store: at most 200 printable characters).
- ``worker`` is an opaque string naming one `work` call (host, pid and a random part), for
  diagnostics and for stores whose engine names consumers (Redis).
- Leases are timed by one clock that all workers share: the host's wall clock for SQLite
  (one host), the server's clock for Redis (never the hosts').
- Outcomes are `ItemOutcome` values; a store that serialises them uses `outcome_to_json` and
  `outcome_from_json`, so every store keeps the same fields.
- Failures are `JobStoreError` with a sentence of the SDK's own, never the driver's text
  (which may hold a password, and tells an operator nothing). A store that finds a job's
  data gone, in whole or in part, raises `JobDataLost`; a job missing altogether is a
  `LookupError`, which `RevocationJob` reports as lost too once it has seen the job.
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from clerk_sessions.errors import ClerkSessionsError
from clerk_sessions.models import ItemOutcome, JobStatus

__all__ = [
    "Claim",
    "ItemKind",
    "JobDataLost",
    "JobInfo",
    "JobStore",
    "JobStoreError",
    "gone",
    "outcome_from_json",
    "outcome_to_json",
]


class JobStoreError(ClerkSessionsError):
    """The job store failed: unreachable for too long, its data is not what this SDK
    wrote, or it refused an operation. Nothing was recorded by the failed operation."""


class JobDataLost(JobStoreError):
    """A store found a job's data gone, in whole or in part: keys evicted, a server that
    restarted without persistence or failed over to a stale replica, a file deleted,
    replaced or truncated while in use.

    ``unaccounted`` is how many of the job's items the store can no longer account for
    (neither pending nor recorded), None when the store cannot tell (it lost the count
    itself). `RevocationJob` turns it into the `JobStoreError` its callers see, with the
    count filled in from what it knows of the job.
    """

    def __init__(self, message: str, *, unaccounted: int | None = None) -> None:
        super().__init__(message)
        self.unaccounted = unaccounted


def gone(exc: Exception) -> bool:
    """Whether ``exc`` says that the store lost the job's data, or no longer has the job
    (a store's `LookupError`; a `KeyError` or `IndexError` is a bug, not that)."""
    return isinstance(exc, JobDataLost) or (
        isinstance(exc, LookupError) and not isinstance(exc, (KeyError, IndexError))
    )


class ItemKind(str, enum.Enum):
    """What the ids of a job are."""

    SESSION = "session"
    USER = "user"


@attrs.frozen(kw_only=True)
class JobInfo:
    """What a store knows about a job apart from its items."""

    name: str
    kind: ItemKind
    total: int
    """How many distinct ids the job holds (fixed at create)."""


@attrs.frozen(kw_only=True)
class Claim:
    """One claimed chunk: its items that have no outcome yet, under a lease.

    ``chunk_id`` is opaque to callers (each store picks its form). ``fence`` is the
    chunk's fence token at this claim: every claim of a chunk gets a larger one, so a
    worker holding an older claim can be told apart from the current holder.
    """

    chunk_id: str
    items: tuple[str, ...]
    fence: int


class JobStore(Protocol):
    """A place that keeps durable jobs: an SQLite file, or Redis.

    One store object may hold any number of jobs and be used by many tasks of one event
    loop at once; each process opens its own (`_store_url.open_store`).
    """

    async def create(
        self, name: str, kind: ItemKind, chunks: AsyncIterable[Sequence[str]]
    ) -> JobInfo:
        """Create job ``name`` from ``chunks``, all or nothing, and return its info.

        ``chunks`` yields lists of ids (already checked to be non-empty strings); each
        list becomes one chunk, minus the ids the job already holds: an id listed twice,
        in the same list or in two lists, is one item (dedup across the whole job), and a
        list left empty by that makes no chunk. ``chunks`` is consumed once, as it comes;
        the store never holds more than one list in memory (a million ids must cost tens
        of MB at most). A job with no ids at all is valid (total 0, done at once).

        All or nothing: until ``create`` returns, no ``open``, ``claim`` or ``status``
        sees the job. If ``chunks`` raises, the task is cancelled or the process dies at
        any point, no job of that name exists afterwards, nothing the attempt wrote stays
        visible, and a later ``create`` of the same name works (leftovers of a killed
        attempt are cleaned up or ignored by it).

        Raises `ValueError` if a job named ``name`` exists already (checked before
        ``chunks`` is drawn, and again at commit: of two concurrent creates of one name,
        exactly one succeeds). An exception raised by ``chunks`` propagates unchanged.
        """
        ...

    async def open(self, name: str) -> JobInfo:
        """The info of the existing job ``name``; `LookupError` if there is none."""
        ...

    async def claim(self, name: str, worker: str, lease_s: float) -> Claim | None:
        """Claim one chunk of job ``name`` for ``lease_s`` seconds, or return None.

        A chunk is claimable when some of its items have no outcome and it is not under
        a live lease: never claimed, released, put back by ``retry_failed``, or its last
        lease expired (its holder was killed, frozen or cut off). The claim holds the
        chunk's items that have no outcome, in the order they were created, and a fence
        token larger than any earlier claim of that chunk. Two claims that overlap in
        time never get the same chunk. None means nothing is claimable now: the job may
        be done, or every remaining chunk may be held by a live lease (the caller tells
        them apart with ``status`` and polls). `LookupError` if the job does not exist,
        `JobDataLost` if part of it is gone.
        """
        ...

    async def heartbeat(self, name: str, claim: Claim, lease_s: float) -> bool:
        """Extend ``claim``'s lease to ``lease_s`` seconds from now, if it still holds.

        Returns False when the claim is lost: the chunk was claimed again since (its
        fence moved on) or its outcomes are recorded. A claim whose lease expired but
        that nobody took over still holds, and is extended. The caller stops working on
        a lost claim; it could not record anything anyway.
        """
        ...

    async def complete(self, name: str, claim: Claim, outcomes: Mapping[str, ItemOutcome]) -> bool:
        """Record the outcomes of ``claim``'s chunk, iff the claim still holds.

        ``outcomes`` has exactly one entry per item of ``claim.items`` (`ValueError`
        otherwise, before anything is written). In one atomic step the store checks that
        the chunk's fence is still ``claim.fence`` (nobody claimed it since) and, only
        then, writes every outcome and ends the claim (the chunk has no pending item
        left). Returns True when recorded, False when the claim was lost: then nothing
        is written. So each item gets exactly one recorded outcome, whoever crashes.
        """
        ...

    async def release(self, name: str, claim: Claim) -> None:
        """Give ``claim``'s chunk back unrecorded, claimable at once, if it still holds.

        For a worker that stops early (cancelled, interrupted): the next worker does not
        have to wait for the lease to expire. Does nothing for a lost claim.
        """
        ...

    async def status(self, name: str) -> JobStatus:
        """Counts of job ``name``'s items by outcome; `LookupError` if it does not exist.

        The counts are one consistent snapshot (revoked + failed never exceeds total),
        checked against what backs them: `JobDataLost`, with the items unaccounted for,
        when the store finds part of the job gone (never counts that look like progress).
        """
        ...

    def outcomes(
        self, name: str, kind: Literal["revoked", "failed"] | None = None
    ) -> AsyncIterator[tuple[str, ItemOutcome]]:
        """Every recorded ``(item_id, outcome)`` of job ``name``, ``kind`` only if given.

        Streams in batches (memory bounded whatever the job's size); items without an
        outcome are not listed. The order is the store's; each batch is read on its own,
        so an item recorded (or re-queued) while the iteration runs may or may not be
        listed. Raises `LookupError` (on first iteration) if the job does not exist, and
        `JobDataLost` rather than ending quietly short when part of it is gone.
        """
        ...

    async def retry_failed(self, name: str) -> int:
        """Put the job's failed items whose outcome is retryable back to pending.

        Retryable is `ItemOutcome.retryable` (429, 5XX, no answer). Their outcomes are
        dropped and their chunks become claimable again, holding those items only.
        Returns how many items were put back. `LookupError` if the job does not exist.
        """
        ...

    async def aclose(self) -> None:
        """Release the store's connections and threads. Idempotent."""
        ...


def outcome_to_json(outcome: ItemOutcome) -> str:
    """``outcome`` as compact JSON (the fields of `ItemOutcome`, None ones left out)."""
    data: dict[str, Any] = {"ok": outcome.ok}
    if outcome.status_code is not None:
        data["status_code"] = outcome.status_code
    if outcome.error_code is not None:
        data["error_code"] = outcome.error_code
    if outcome.message:
        data["message"] = outcome.message
    if outcome.sessions_revoked is not None:
        data["sessions_revoked"] = outcome.sessions_revoked
    return json.dumps(data, separators=(",", ":"))


def outcome_from_json(text: str | bytes) -> ItemOutcome:
    """The `ItemOutcome` that `outcome_to_json` wrote."""
    data = json.loads(text)
    return ItemOutcome(
        ok=bool(data["ok"]),
        status_code=data.get("status_code"),
        error_code=data.get("error_code"),
        message=data.get("message", ""),
        sessions_revoked=data.get("sessions_revoked"),
    )
