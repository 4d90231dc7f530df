"""The fake's webhooks: session events, signed as Clerk signs them, POSTed to one URL.

Why the sender has a thread and an event loop of its own: the state changes on whatever
thread changes it (a test's event loop, asyncio or trio, through the in-process client;
the sync client's portal thread; uvicorn's thread when the fake is served; plain test
code seeding it), and a delivery must neither hold up that answer nor depend on that
loop living on. So one daemon thread, started at the first event, runs an asyncio loop
with one ``httpx2.AsyncClient``. Events reach it through ``call_soon_threadsafe``,
whose callbacks run in the order they were scheduled, and the state schedules them
under its lock: the queues hold the events in the order the changes happened.

The events are spread over a few workers by session id, and each worker delivers its
queue one event at a time, so one session's events arrive in order while different
sessions' go out side by side. A non-2XX answer or no answer at all is retried after
each of the retry delays in turn (Svix waits minutes to hours; a test cannot). Every
attempt is recorded as a `WebhookDelivery`.
"""

from __future__ import annotations

import asyncio
import base64
import math
import secrets
import threading
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio.to_thread
import attrs

from clerk_sessions.webhooks import sign_webhook

if TYPE_CHECKING:
    import httpx2

#: Svix's schedule squeezed for tests: four attempts within about 1.3 s.
DEFAULT_RETRY_DELAYS = (0.05, 0.25, 1.0)
_WORKERS = 8
_TIMEOUT_S = 5.0
_USER_AGENT = "clerk-sessions FakeClerk (Svix-style webhooks)"


def new_webhook_secret() -> str:
    """A signing secret in the Clerk Dashboard's shape: ``whsec_`` and 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@attrs.frozen(kw_only=True)
class WebhookDelivery:
    """One attempt to deliver one event, as ``FakeClerk.webhook_deliveries`` lists it.

    ``event_id`` is the ``svix-id`` (the same on every attempt of one event). ``status``
    is the receiver's HTTP status, None when there was no answer; ``error`` then says
    why (a refused connection, a timeout). ``final`` is True on the last attempt of an
    event: the one that succeeded, or the one after which the fake gave up. ``time`` is
    on the fake's clock.
    """

    event_id: str
    type: str
    session_id: str
    attempt: int
    status: int | None
    error: str | None
    final: bool
    time: float

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2XX."""
        return self.status is not None and 200 <= self.status < 300


@attrs.frozen(kw_only=True)
class OutgoingEvent:
    """One event to deliver, its body serialised when the change happened."""

    event_id: str
    type: str
    session_id: str
    body: bytes = attrs.field(repr=False)


class _Run:
    """One life of the sender's thread: its loop, queues and stop signal.

    A closed sender that gets another event starts a new one; events and counts of an
    old one never reach the new one.
    """

    def __init__(self) -> None:
        # Queues and events bind to the loop on first use (Python 3.10+), so they can be
        # made before it runs, when the first `enqueue` may already be scheduled.
        self.loop = asyncio.new_event_loop()
        self.queues: list[asyncio.Queue[OutgoingEvent]] = [asyncio.Queue() for _ in range(_WORKERS)]
        self.stop = asyncio.Event()
        self.thread: threading.Thread | None = None

    def enqueue(self, event: OutgoingEvent) -> None:
        """On the loop: hand ``event`` to the worker that owns its session."""
        worker = zlib.crc32(event.session_id.encode()) % len(self.queues)
        self.queues[worker].put_nowait(event)


class WebhookSender:
    """Delivers `OutgoingEvent` s to ``url`` from a thread of its own (see the module doc).

    Args:
        url: the receiver (``http://`` or ``https://``).
        secret: the signing secret (``whsec_...``).
        retry_delays: seconds to wait before each retry; one attempt more than delays.
        clock: the time recorded on each `WebhookDelivery`.
        sleep: how the workers wait between attempts (tests record instead).
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"webhook_url must be an http:// or https:// URL, got {url!r}")
        delays = tuple(retry_delays)
        if not all(isinstance(d, (int, float)) and math.isfinite(d) and d >= 0 for d in delays):
            raise ValueError("webhook retry delays must be finite numbers of seconds >= 0")
        # Signing once now makes a missing extra or an unusable secret fail here, in the
        # caller's thread, rather than in every delivery.
        sign_webhook(b"", secret=secret)
        self.url = url
        self._secret = secret
        self._delays = delays
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Condition()
        self._pending = 0
        self._deliveries: list[WebhookDelivery] = []
        self._run: _Run | None = None

    def __repr__(self) -> str:
        return f"WebhookSender(url={self.url!r}, pending={self._pending})"

    # ---------------------------------------------------------------- any thread

    def submit(self, event: OutgoingEvent) -> None:
        """Queue ``event`` for delivery; returns at once."""
        with self._lock:
            run = self._run
            if run is None:
                run = self._run = self._start()
            self._pending += 1
            run.loop.call_soon_threadsafe(run.enqueue, event)

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        """Every attempt so far, in the order they ended."""
        with self._lock:
            return list(self._deliveries)

    @property
    def pending(self) -> int:
        """Events not yet delivered or given up on."""
        return self._pending

    def forget_deliveries(self) -> None:
        """Empty the attempt log (attempts in flight are still recorded when they end)."""
        with self._lock:
            self._deliveries.clear()

    def wait(self, timeout: float) -> None:
        """Block until every queued event was delivered or given up on.

        Raises `TimeoutError` when some are still pending after ``timeout`` seconds.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(
                    f"{self._pending} webhook event(s) still pending after {timeout:g} s "
                    f"(receiver {self.url})"
                )

    async def wait_async(self, timeout: float) -> None:  # noqa: ASYNC109
        """`wait` for async code, on asyncio or trio, without blocking the event loop."""
        await anyio.to_thread.run_sync(self.wait, timeout, abandon_on_cancel=True)

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for pending events, then stop the thread.

        Events still pending then are dropped (and `wait` no longer waits for them).
        A later event starts a new thread.
        """
        try:
            self.wait(timeout)
        finally:
            with self._lock:
                run, self._run = self._run, None
                self._pending = 0
                self._lock.notify_all()
            if run is not None and run.thread is not None:
                run.loop.call_soon_threadsafe(run.stop.set)
                run.thread.join()

    def _start(self) -> _Run:
        run = _Run()
        run.thread = threading.Thread(
            target=self._serve, args=(run,), name="FakeClerk-webhooks", daemon=True
        )
        run.thread.start()
        return run

    def _serve(self, run: _Run) -> None:
        try:
            run.loop.run_until_complete(self._main(run))
            run.loop.run_until_complete(run.loop.shutdown_asyncgens())
        finally:
            run.loop.close()

    # ---------------------------------------------------------------- the sender's loop

    async def _main(self, run: _Run) -> None:
        # Imported here: a fake that sends no webhooks needs no HTTP client.
        import httpx2

        client = httpx2.AsyncClient(timeout=_TIMEOUT_S)
        async with client:
            workers = [asyncio.create_task(self._work(run, queue, client)) for queue in run.queues]
            try:
                await run.stop.wait()
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def _work(
        self, run: _Run, queue: asyncio.Queue[OutgoingEvent], client: httpx2.AsyncClient
    ) -> None:
        while True:
            event = await queue.get()
            try:
                await self._deliver(event, client)
            finally:
                with self._lock:
                    if self._run is run:  # a closed run's events were written off
                        self._pending -= 1
                        self._lock.notify_all()

    async def _deliver(self, event: OutgoingEvent, client: httpx2.AsyncClient) -> None:
        attempts = len(self._delays) + 1
        for attempt in range(1, attempts + 1):
            status, error = await self._attempt(event, client)
            ok = status is not None and 200 <= status < 300
            final = ok or attempt == attempts
            self._record(event, attempt, status, error, final=final)
            if final:
                return
            await self._sleep(self._delays[attempt - 1])

    async def _attempt(
        self, event: OutgoingEvent, client: httpx2.AsyncClient
    ) -> tuple[int | None, str | None]:
        # Signed at each attempt, as Svix does: a retry an hour later is not a replay.
        headers = sign_webhook(event.body, secret=self._secret, msg_id=event.event_id)
        headers["content-type"] = "application/json"
        headers["user-agent"] = _USER_AGENT
        try:
            response = await client.post(self.url, content=event.body, headers=headers)
        except Exception as exc:  # any failure is this attempt's, and retried
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return response.status_code, None

    def _record(
        self,
        event: OutgoingEvent,
        attempt: int,
        status: int | None,
        error: str | None,
        *,
        final: bool,
    ) -> None:
        delivery = WebhookDelivery(
            event_id=event.event_id,
            type=event.type,
            session_id=event.session_id,
            attempt=attempt,
            status=status,
            error=error,
            final=final,
            time=self._clock(),
        )
        with self._lock:
            self._deliveries.append(delivery)
