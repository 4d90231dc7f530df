"""A Redis that takes a second to answer every command, while the workers' leases run:
worker processes reach the real redis-server through a proxy that holds each answer back
(tests/_slowproxy.py), against a fake Clerk on a real port.

Slowness never costs the ledger (one outcome per id, counters equal to the records): at
worst, a lease too short for the store's answer time lets chunks be taken over from
healthy workers and their requests sent again, and the workers say so, naming a lease
that would do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests._redis import RedisServer
from tests._slowproxy import SlowProxy
from tests.jobs.test_redis_fleet import (
    Fleet,
    assert_exact_ledger,
    create,
    fake_with_sessions,
    fleet_parts,  # noqa: F401 - the fixture
    outcomes,
    revokes,
    status,
)

pytestmark = pytest.mark.fleet

ANSWER_S = 1.0
SLOW = "the store took"


@pytest.fixture
def slow_redis(own_redis_server: RedisServer) -> Iterator[SlowProxy]:
    proxy = SlowProxy(own_redis_server.port, delay=ANSWER_S).start()
    yield proxy
    proxy.stop()


def test_a_slow_redis_slows_a_fleet_with_a_long_enough_lease_and_changes_nothing_else(
    fleet_parts: Callable[..., Fleet],  # noqa: F811
    own_redis_server: RedisServer,
    slow_redis: SlowProxy,
) -> None:
    fake, ids = fake_with_sessions(60)
    with fake.serve() as url:
        fleet = fleet_parts(fake, url, name="slow", store_url=slow_redis.url)
        create(own_redis_server.url, fleet.name, session_ids=ids)
        workers = fleet.start(2, lease_s=20 * ANSWER_S)
        results = [fleet.finished(process) for process in workers]
    assert all(r == {"revoked": 60, "failed": 0, "done": True, "exit": 0} for r in results)
    # No chunk changed hands: not one request was repeated.
    assert_exact_ledger(fake, own_redis_server.url, fleet.name, ids, crashed_workers=0)
    assert not any(SLOW in err for err in fleet.stderr.values())


def test_a_redis_slower_than_the_lease_allows_repeats_requests_but_never_the_ledger(
    fleet_parts: Callable[..., Fleet],  # noqa: F811
    own_redis_server: RedisServer,
    slow_redis: SlowProxy,
) -> None:
    fake, ids = fake_with_sessions(60)
    with fake.serve() as url:
        fleet = fleet_parts(fake, url, name="slow", store_url=slow_redis.url)
        create(own_redis_server.url, fleet.name, session_ids=ids)
        workers = fleet.start(2, lease_s=2 * ANSWER_S)
        results = [fleet.finished(process) for process in workers]
    assert all(r == {"revoked": 60, "failed": 0, "done": True, "exit": 0} for r in results)
    recorded = outcomes(own_redis_server.url, fleet.name)
    assert sorted(item for item, _ in recorded) == sorted(ids)  # one outcome per id
    final = status(own_redis_server.url, fleet.name)
    assert (final.revoked, final.failed) == (60, 0)
    assert all(fake.get_session(i)["status"] == "revoked" for i in ids)
    assert set(revokes(fake)) == set(ids)
    # Every worker found the store too slow for its lease, and said what would do.
    for err in fleet.stderr.values():
        assert SLOW in err and "more than a third of the 2 s lease" in err, err
        assert "give a lease of at least" in err
