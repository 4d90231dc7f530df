"""The SQLite job store: the JobStore contract, leases on an injected clock, fencing,
all-or-nothing creates, and what the file holds afterwards."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import anyio.from_thread
import pytest

from clerk_sessions.errors import ConfigurationError
from clerk_sessions.jobs import JobStoreError, _sqlite_create, _sqlite_schema
from clerk_sessions.jobs import _sqlite_store as sqlite_store
from clerk_sessions.jobs._sqlite_store import SQLiteStore
from clerk_sessions.jobs._store import Claim, ItemKind, JobStore
from clerk_sessions.jobs._store_url import open_store
from clerk_sessions.models import CONNECTION_ERROR_CODE, ItemOutcome

pytestmark = pytest.mark.anyio

OK = ItemOutcome(ok=True)
GONE = ItemOutcome(ok=False, status_code=404, error_code="resource_not_found", message="nope")
BUSY = ItemOutcome(ok=False, status_code=503, error_code="server_error", message="later")
LIMITED = ItemOutcome(ok=False, status_code=429, error_code="too_many_requests", message="slow")
NO_ANSWER = ItemOutcome(ok=False, error_code=CONNECTION_ERROR_CODE, message="reset")
USER_OK = ItemOutcome(ok=True, sessions_revoked=3)


class Clock:
    """A settable clock for leases and staging heartbeats."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def chunks(*lists: Sequence[str]) -> AsyncIterator[Sequence[str]]:
    for chunk in lists:
        yield chunk


def numbered(count: int, size: int, prefix: str = "sess_") -> list[list[str]]:
    ids = [f"{prefix}{i:05d}" for i in range(count)]
    return [ids[i : i + size] for i in range(0, count, size)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(str(tmp_path / "jobs.db"), clock=clock)
    yield store
    await store.aclose()


async def drain(store: JobStore, name: str, worker: str = "w") -> dict[str, ItemOutcome]:
    """Claim and complete every chunk with OK; the outcomes written."""
    written: dict[str, ItemOutcome] = {}
    while (claim := await store.claim(name, worker, 30)) is not None:
        outcomes = dict.fromkeys(claim.items, OK)
        assert await store.complete(name, claim, outcomes)
        written.update(outcomes)
    return written


def test_the_sqlite_store_satisfies_the_protocol(tmp_path: Path) -> None:
    store: JobStore = open_store(f"sqlite://{tmp_path}/x.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == f"{tmp_path}/x.db"
    assert repr(store) == f"SQLiteStore('{tmp_path}/x.db')"


# ---------------------------------------------------------------------- create / open


async def test_create_dedups_across_the_whole_job_and_skips_emptied_chunks(
    store: SQLiteStore,
) -> None:
    info = await store.create(
        "j", ItemKind.SESSION, chunks(["a", "b", "a"], ["b", "c"], ["a", "c"], ["d"])
    )
    assert (info.name, info.kind, info.total) == ("j", ItemKind.SESSION, 4)
    claims = []
    while (claim := await store.claim("j", "w", 30)) is not None:
        claims.append(claim.items)
    assert claims == [("a", "b"), ("c",), ("d",)]


async def test_open_returns_what_create_made(store: SQLiteStore) -> None:
    await store.create("users", ItemKind.USER, chunks(["u1", "u2"]))
    info = await store.open("users")
    assert (info.name, info.kind, info.total) == ("users", ItemKind.USER, 2)


async def test_a_job_with_no_ids_is_done_at_once(store: SQLiteStore) -> None:
    assert (await store.create("empty", ItemKind.SESSION, chunks())).total == 0
    assert (await store.status("empty")).done
    assert await store.claim("empty", "w", 30) is None


async def test_a_second_create_of_a_name_is_a_value_error_before_reading_ids(
    store: SQLiteStore,
) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    drawn = []

    async def ids() -> AsyncIterator[Sequence[str]]:
        drawn.append(1)
        yield ["b"]

    with pytest.raises(ValueError, match="exists already"):
        await store.create("j", ItemKind.SESSION, ids())
    assert drawn == []
    assert (await store.open("j")).total == 1


async def test_of_two_stores_creating_one_name_at_once_exactly_one_wins(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.db")
    first, second = SQLiteStore(path), SQLiteStore(path)
    results: list[object] = []

    async def create(store: SQLiteStore, prefix: str) -> None:
        try:
            results.append(
                await store.create("j", ItemKind.SESSION, chunks(*numbered(30, 5, prefix)))
            )
        except ValueError as exc:
            results.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(create, first, "a")
        tg.start_soon(create, second, "b")
    assert sorted(type(r).__name__ for r in results) == ["JobInfo", "ValueError"]
    assert (await first.status("j")).total == 30
    await first.aclose()
    await second.aclose()


def test_stores_that_first_open_a_new_file_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    # SQLite refuses a switch to WAL at once ("database is locked", no busy wait) while
    # another connection is switching the same new file: before the store retried it,
    # about a third of these pairs failed (and two workers starting a fleet together
    # on a new file could hit it). Threads, as two processes' first opens would race.
    failures: list[BaseException] = []

    def first_open(path: str, barrier: threading.Barrier) -> None:
        store = SQLiteStore(path)
        barrier.wait()
        try:
            store._call(lambda conn: conn.execute("SELECT count(*) FROM jobs").fetchone())
        except BaseException as exc:
            failures.append(exc)
        finally:
            if store._conn is not None:
                store._conn.close()

    for attempt in range(60):
        path = str(tmp_path / f"{attempt}.db")
        barrier = threading.Barrier(3)
        threads = [threading.Thread(target=first_open, args=(path, barrier)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not failures, failures[0]
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


async def test_missing_jobs_are_lookup_errors_everywhere(store: SQLiteStore) -> None:
    claim = Claim(chunk_id="0", items=("a",), fence=1)
    for call in (
        lambda: store.open("nope"),
        lambda: store.status("nope"),
        lambda: store.claim("nope", "w", 30),
        lambda: store.heartbeat("nope", claim, 30),
        lambda: store.complete("nope", claim, {"a": OK}),
        lambda: store.release("nope", claim),
        lambda: store.retry_failed("nope"),
    ):
        with pytest.raises(LookupError, match="no job named 'nope'"):
            await call()
    with pytest.raises(LookupError):
        async for _ in store.outcomes("nope"):
            pass


async def test_a_create_whose_ids_raise_leaves_no_job_and_can_run_again(
    store: SQLiteStore,
) -> None:
    async def broken() -> AsyncIterator[Sequence[str]]:
        for chunk in numbered(20_000, 100):  # several create batches are committed first
            yield chunk
        raise OSError("the id file went away")

    with pytest.raises(OSError, match="went away"):
        await store.create("j", ItemKind.SESSION, broken())
    with pytest.raises(LookupError):
        await store.status("j")
    assert await rows(store, "SELECT count(*) FROM items") == 0
    assert await rows(store, "SELECT count(*) FROM chunks") == 0
    assert (await store.create("j", ItemKind.SESSION, chunks(["a"]))).total == 1


async def test_a_cancelled_create_leaves_no_job(store: SQLiteStore) -> None:
    async def endless() -> AsyncIterator[Sequence[str]]:
        number = 0
        while True:
            number += 1
            yield [f"sess_{number}"]
            if number == 12_000:
                scope.cancel()

    with anyio.CancelScope() as scope:
        await store.create("j", ItemKind.SESSION, endless())
    assert scope.cancelled_caught
    with pytest.raises(LookupError):
        await store.open("j")
    assert await rows(store, "SELECT count(*) FROM jobs") == 0


async def test_a_dead_creates_leftovers_are_collected_by_the_next_create(
    store: SQLiteStore, clock: Clock
) -> None:
    await store.create("warmup", ItemKind.SESSION, chunks(["w"]))
    # What a killed create leaves: its staging row and items, which nobody renews.
    await run_sql(
        store,
        "INSERT INTO jobs (id, staging_name, kind, heartbeat_at) VALUES (99, 'j', 'session', ?)",
        (clock.now,),
    )
    await run_sql(
        store, "INSERT INTO items (job, chunk, item) VALUES (99, 0, 'orphan1'), (99, 0, 'orphan2')"
    )
    await run_sql(store, "INSERT INTO chunks (job, chunk, pending) VALUES (99, 0, 2)")
    # Still alive (recent heartbeat): a create of the same name neither sees nor removes it.
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    assert await rows(store, "SELECT count(*) FROM items WHERE job = 99") == 2
    clock.now += _sqlite_create.STALE_S + 1
    await store.create("k", ItemKind.SESSION, chunks(["b"]))
    assert await rows(store, "SELECT count(*) FROM items WHERE job = 99") == 0
    assert await rows(store, "SELECT count(*) FROM jobs WHERE id = 99") == 0
    assert await rows(store, "SELECT count(*) FROM chunks WHERE job = 99") == 0


async def test_a_create_frozen_past_the_stale_time_fails_instead_of_resurrecting(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "jobs.db")
    frozen, other = SQLiteStore(path, clock=clock), SQLiteStore(path, clock=clock)
    monkeypatch.setattr(sqlite_store, "_CREATE_BATCH", 2)
    woken = anyio.Event()
    reaped = anyio.Event()

    async def slow() -> AsyncIterator[Sequence[str]]:
        yield ["a", "b"]
        woken.set()
        await reaped.wait()  # "frozen" while the other create collects it
        yield ["c", "d"]

    async def reap() -> None:
        await woken.wait()
        clock.now += _sqlite_create.STALE_S + 1
        await other.create("other", ItemKind.SESSION, chunks(["x"]))
        reaped.set()

    failures: list[Exception] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(reap)
        try:
            await frozen.create("j", ItemKind.SESSION, slow())
        except JobStoreError as exc:
            failures.append(exc)
    assert len(failures) == 1 and "run it again" in str(failures[0])
    with pytest.raises(LookupError):
        await other.open("j")
    assert await rows(other, "SELECT count(*) FROM items") == 1  # only "other"'s
    await frozen.aclose()
    await other.aclose()


async def test_a_slow_input_keeps_its_staging_row_alive(
    store: SQLiteStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "_HEARTBEAT_S", 0.01)
    renewed = anyio.Event()
    renew = _sqlite_create.renew_staging

    def renew_and_tell(conn: sqlite3.Connection, job: int, now: float) -> None:
        renew(conn, job, now)
        if now > 1_000_000.0:
            anyio.from_thread.run_sync(renewed.set)

    monkeypatch.setattr(sqlite_store, "renew_staging", renew_and_tell)

    async def slow() -> AsyncIterator[Sequence[str]]:
        yield ["a"]
        clock.now += 10
        with anyio.fail_after(5):
            await renewed.wait()  # no id comes, yet the row is renewed
        assert await rows(store, "SELECT heartbeat_at FROM jobs WHERE name IS NULL") == clock.now
        yield ["b"]

    assert (await store.create("j", ItemKind.SESSION, slow())).total == 2


async def test_a_staging_row_reaped_while_its_create_waits_for_ids_fails_the_renewal(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "_HEARTBEAT_S", 0.01)

    async def stuck() -> AsyncIterator[Sequence[str]]:
        yield ["a"]
        await run_sql(store, "UPDATE jobs SET heartbeat_at = 0 WHERE name IS NULL")
        await anyio.sleep_forever()
        yield ["never"]  # pragma: no cover

    with anyio.fail_after(5), pytest.raises(JobStoreError, match="run it again"):
        await store.create("j", ItemKind.SESSION, stuck())


# ---------------------------------------------------------------------- claims and leases


async def test_claims_are_exclusive_until_the_lease_expires(
    store: SQLiteStore, clock: Clock
) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a", "b"], ["c"]))
    first = await store.claim("j", "w1", 10)
    second = await store.claim("j", "w2", 10)
    assert first is not None and second is not None
    assert (first.items, second.items) == (("a", "b"), ("c",))
    assert await store.claim("j", "w3", 10) is None
    clock.now += 10.5
    taken = await store.claim("j", "w3", 10)
    assert taken is not None and taken.chunk_id == first.chunk_id
    assert taken.fence > first.fence


async def test_a_claim_lost_to_a_takeover_records_nothing(store: SQLiteStore, clock: Clock) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a", "b"]))
    old = await store.claim("j", "frozen", 1)
    assert old is not None
    clock.now += 2
    new = await store.claim("j", "w2", 1)
    assert new is not None
    assert not await store.heartbeat("j", old, 1)
    assert not await store.complete("j", old, {"a": OK, "b": OK})
    assert (await store.status("j")).revoked == 0
    assert await store.complete("j", new, {"a": GONE, "b": OK})
    assert [(i, o) async for i, o in store.outcomes("j")] == [("a", GONE), ("b", OK)]
    # The holder of the old claim waking up later changes nothing either.
    assert not await store.complete("j", old, {"a": OK, "b": OK})
    assert (await store.status("j")).failed == 1


async def test_an_expired_lease_nobody_took_over_still_holds(
    store: SQLiteStore, clock: Clock
) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    claim = await store.claim("j", "slow", 1)
    assert claim is not None
    clock.now += 5
    assert await store.heartbeat("j", claim, 1)
    assert await store.claim("j", "other", 1) is None  # extended again
    assert await store.complete("j", claim, {"a": OK})


async def test_heartbeat_extends_the_lease(store: SQLiteStore, clock: Clock) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    claim = await store.claim("j", "w", 10)
    assert claim is not None
    clock.now += 8
    assert await store.heartbeat("j", claim, 10)
    clock.now += 8
    assert await store.claim("j", "other", 10) is None


async def test_a_completed_claim_cannot_be_renewed_or_recorded_again(store: SQLiteStore) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    claim = await store.claim("j", "w", 10)
    assert claim is not None
    assert await store.complete("j", claim, {"a": OK})
    assert not await store.heartbeat("j", claim, 10)
    assert not await store.complete("j", claim, {"a": GONE})
    assert (await store.status("j")).revoked == 1


async def test_release_makes_a_chunk_claimable_at_once(store: SQLiteStore) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    claim = await store.claim("j", "w", 60)
    assert claim is not None
    await store.release("j", claim)
    again = await store.claim("j", "w2", 60)
    assert again is not None and again.items == ("a",)
    await store.release("j", claim)  # a stale release does not free the new holder's claim
    assert await store.claim("j", "w3", 60) is None
    assert not await store.heartbeat("j", claim, 60)


async def test_complete_needs_exactly_the_claims_items(store: SQLiteStore) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a", "b"]))
    claim = await store.claim("j", "w", 10)
    assert claim is not None
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        await store.complete("j", claim, {"a": OK})
    with pytest.raises(ValueError, match=r"not in the claim \['z'\]"):
        await store.complete("j", claim, {"a": OK, "z": OK})
    assert (await store.status("j")).pending == 2


async def test_a_file_changed_behind_the_stores_back_records_nothing(store: SQLiteStore) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a", "b"]))
    claim = await store.claim("j", "w", 10)
    assert claim is not None
    await run_sql(store, "UPDATE items SET state = 1 WHERE item = 'a'")
    with pytest.raises(JobStoreError, match="modified outside"):
        await store.complete("j", claim, {"a": OK, "b": OK})
    assert await rows(store, "SELECT count(*) FROM items WHERE state = 1") == 1


# ---------------------------------------------------------------------- status, outcomes, retry


async def test_status_counts_and_outcomes_filter(store: SQLiteStore) -> None:
    await store.create("j", ItemKind.USER, chunks(["u1", "u2", "u3"], ["u4"]))
    claim = await store.claim("j", "w", 10)
    assert claim is not None
    await store.complete("j", claim, {"u1": USER_OK, "u2": GONE, "u3": OK})
    status = await store.status("j")
    assert (status.total, status.revoked, status.failed, status.pending) == (4, 2, 1, 1)
    assert not status.done
    assert [i async for i, _ in store.outcomes("j")] == ["u1", "u2", "u3"]
    assert [(i, o) async for i, o in store.outcomes("j", "revoked")] == [
        ("u1", USER_OK),
        ("u3", OK),
    ]
    assert [(i, o) async for i, o in store.outcomes("j", "failed")] == [("u2", GONE)]


async def test_outcomes_stream_in_batches(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "_READ_BATCH", 7)
    await store.create("j", ItemKind.SESSION, chunks(*numbered(50, 10)))
    written = await drain(store, "j")
    assert [i async for i, _ in store.outcomes("j")] == list(written)
    assert len(written) == 50


async def test_retry_failed_requeues_only_retryable_failures(store: SQLiteStore) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a", "b", "c"], ["d", "e"]))
    first = await store.claim("j", "w", 10)
    second = await store.claim("j", "w", 10)
    assert first is not None and second is not None
    await store.complete("j", first, {"a": BUSY, "b": GONE, "c": OK})
    await store.complete("j", second, {"d": LIMITED, "e": NO_ANSWER})
    assert await store.retry_failed("j") == 3
    status = await store.status("j")
    assert (status.revoked, status.failed, status.pending) == (1, 1, 3)
    again = [await store.claim("j", "w", 10), await store.claim("j", "w", 10)]
    assert [c.items for c in again if c is not None] == [("a",), ("d", "e")]
    assert await store.claim("j", "w", 10) is None
    assert await store.retry_failed("j") == 0


async def test_retry_failed_on_a_chunk_in_flight_adds_to_it_after_its_claim(
    store: SQLiteStore,
) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a", "b"]))
    claim = await store.claim("j", "w", 10)
    assert claim is not None
    await store.complete("j", claim, {"a": BUSY, "b": OK})
    again = await store.claim("j", "w", 10)
    assert again is None
    assert await store.retry_failed("j") == 1
    retry = await store.claim("j", "w", 10)
    assert retry is not None and retry.items == ("a",)
    assert await store.complete("j", retry, {"a": OK})
    assert (await store.status("j")).done


# ---------------------------------------------------------------------- the file


async def test_the_file_is_in_wal_mode_with_the_schema_version(
    store: SQLiteStore, tmp_path: Path
) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    with sqlite3.connect(tmp_path / "jobs.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == _sqlite_schema.SCHEMA_VERSION


async def test_a_file_that_is_not_a_database_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not SQLite\n" * 100)
    store = SQLiteStore(str(path))
    with pytest.raises(ConfigurationError, match="not a job store"):
        await store.open("j")
    await store.aclose()


async def test_another_applications_database_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id TEXT)")
    store = SQLiteStore(str(path))
    with pytest.raises(ConfigurationError, match="not a job store"):
        await store.status("j")
    await store.aclose()


async def test_a_newer_schema_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    store = SQLiteStore(str(path))
    with pytest.raises(ConfigurationError, match="schema version 99"):
        await store.status("j")
    await store.aclose()


async def test_a_path_in_a_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "missing" / "jobs.db"))
    with pytest.raises(ConfigurationError, match="cannot open the job store"):
        await store.status("j")
    await store.aclose()


async def test_a_locked_file_is_a_job_store_error_after_the_busy_timeout(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 0.05)
    waiting = SQLiteStore(str(tmp_path / "jobs.db"))
    blocker = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(JobStoreError, match="locked"):
            await waiting.claim("j", "w", 10)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    claim = await waiting.claim("j", "w", 10)  # the connection is usable again
    assert claim is not None
    await waiting.aclose()


async def test_a_closed_store_says_so_and_closing_twice_is_fine(store: SQLiteStore) -> None:
    await store.create("j", ItemKind.SESSION, chunks(["a"]))
    await store.aclose()
    await store.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await store.status("j")


# ---------------------------------------------------------------------- helpers


async def run_sql(store: SQLiteStore, sql: str, params: tuple[object, ...] = ()) -> None:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute(sql, params)

    await store._run(run)


async def rows(store: SQLiteStore, sql: str) -> object:
    def read(conn: sqlite3.Connection) -> object:
        return conn.execute(sql).fetchone()[0]

    return await store._run(read)
