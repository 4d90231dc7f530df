"""Durable bulk revocation jobs: every item's outcome kept in a store (an SQLite file, or
Redis with the ``redis`` extra), resumable after any crash, workable by many processes at
once.

```python
from clerk_sessions.jobs import RevocationJob

job = await RevocationJob.create("sqlite:///var/lib/app/revoke.db", "incident-42",
                                 session_ids=ids)
status = await job.work(clerk, concurrency=8)
```
"""

from clerk_sessions.jobs._job import RevocationJob
from clerk_sessions.jobs._store import JobStoreError

__all__ = ["JobStoreError", "RevocationJob"]
