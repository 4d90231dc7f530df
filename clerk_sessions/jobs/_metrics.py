"""The metric ``clerk.jobs.items``: each item of a durable job a worker worked, by
outcome (`clerk_sessions._telemetry`, where it is a no-op while OpenTelemetry is not
loaded).

``clerk.job.outcome`` is ``revoked``, ``already_revoked`` (the session was no longer
active: the API refused the revoke, or answered with a session that had ended; a user
with no active session left), ``not_found`` (404) or ``failed`` (anything else). An
item is counted when its worker has its outcome, before the chunk is recorded: a chunk
that another worker takes over (a lease that ran out) is worked, and counted, by both.
"""

from __future__ import annotations

from clerk_sessions._telemetry import job_item
from clerk_sessions.models import ItemOutcome

__all__ = ["counted"]


def counted(outcome: ItemOutcome, *, already: bool = False) -> ItemOutcome:
    """Count ``outcome`` (``already``: a revoked item that was revoked before) and return
    it."""
    if outcome.ok:
        label = "already_revoked" if already else "revoked"
    elif outcome.status_code == 404:
        label = "not_found"
    else:
        label = "failed"
    job_item(label)
    return outcome
