"""``clerk-sessions mock``: the fake Clerk on a real port, until told to stop.

The URL and key lines are printed (and flushed) as soon as the port accepts connections,
so a person can copy them and a test or script can read them from a pipe. Stopping:
Ctrl-C (SIGINT) exits 130, the shell's code for an interrupted command; SIGTERM (what
supervisors, ``docker stop`` and ``kill`` send to end a service) exits 0. Both stop the
server cleanly: in-flight requests get up to two seconds, the thread is joined. With
``--webhook-url``, session events still being delivered then get two seconds more.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from clerk_sessions.cli._exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CommandError
from clerk_sessions.cli._output import Output, sessions_table

if TYPE_CHECKING:
    from clerk_sessions.testing import FakeClerk, RequestRecord, WebhookDelivery

__all__ = ["serve"]

# How often the main thread wakes to log requests and notice SIGTERM.
_TICK_S = 0.2
# A request without a status after this long (a client that vanished mid-request) is
# logged anyway, so it does not hold back the lines after it.
_STUCK_S = 5.0
# How long stopping waits for session events still on their way to the webhook URL.
_WEBHOOK_GRACE_S = 2.0


def serve(
    out: Output,
    *,
    host: str,
    port: int,
    rate_limit: tuple[int, float] | None,
    seed_users: int,
    sessions_per_user: int,
    secret_key: str | None,
    log_requests: bool,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> int:
    """Serve a seeded fake until SIGINT/SIGTERM; return the exit code."""
    fake = _fake(secret_key, rate_limit, webhook_url, webhook_secret)
    for _ in range(seed_users):
        user_id = fake.add_user()
        for _ in range(sessions_per_user):
            fake.add_session(user_id=user_id)

    terminated = threading.Event()

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        terminated.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with contextlib.ExitStack() as stack:
            deliveries = _DeliveryLog(fake, out) if log_requests and webhook_url else None
            if deliveries is not None:
                stack.callback(deliveries.flush)
            # Called once the server stopped (the stack unwinds in reverse), when no more
            # events can come, and before the last attempts are logged.
            stack.callback(_stop_webhooks, fake, out)
            url = _listen(stack, fake, host, port)
            # The log exists before the announcement: a client that reads the URL and is
            # done before the seeded table is printed (then Ctrl-C) is still logged.
            log = _RequestLog(fake, out) if log_requests else None
            try:
                _announce(out, fake, url, rate_limit)
                while not terminated.wait(_TICK_S):
                    if log is not None:
                        log.flush()
                    if deliveries is not None:
                        deliveries.flush()
            finally:
                # The requests of the last tick are logged too, on Ctrl-C as well.
                if log is not None:
                    log.flush(final=True)
    except KeyboardInterrupt:
        # Leaving the `with` above stopped the server before we get here.
        out.note("stopped (Ctrl-C)")
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    out.note("stopped (SIGTERM)")
    return EXIT_OK


def _fake(
    secret_key: str | None,
    rate_limit: tuple[int, float] | None,
    webhook_url: str | None,
    webhook_secret: str | None,
) -> FakeClerk:
    from clerk_sessions.errors import ConfigurationError
    from clerk_sessions.testing import FakeClerk, Quota

    try:
        # Response validation is a test-suite aid (it needs the spec files, and is slow);
        # a developer's local Clerk runs without it even if the suite's variable is set.
        return FakeClerk(
            secret_key=secret_key,
            quota=Quota(*rate_limit) if rate_limit is not None else None,
            validate_responses=False,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
    except ConfigurationError as exc:  # the message names no part of the secret
        raise CommandError(f"--webhook-secret: {exc}", EXIT_USAGE) from exc
    except (ValueError, ImportError) as exc:
        raise CommandError(f"--webhook-url: {exc}", EXIT_USAGE) from exc


def _stop_webhooks(fake: FakeClerk, out: Output) -> None:
    try:
        fake.close(timeout=_WEBHOOK_GRACE_S)
    except TimeoutError as exc:
        out.note(f"stopped before every session event was delivered: {exc}")


def _listen(stack: contextlib.ExitStack, fake: FakeClerk, host: str, port: int) -> str:
    try:
        return stack.enter_context(fake.serve(host=host, port=port))
    except OSError as exc:  # the port is taken, or the host is not ours
        raise CommandError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "pick another --port (0 for any free one)"
        ) from exc


def _announce(out: Output, fake: FakeClerk, url: str, rate_limit: tuple[int, float] | None) -> None:
    if out.json:
        # One line, so that a script can read it with a single readline().
        out.line(
            {
                "url": url,
                "secret_key": fake.secret_key,
                "jwks_url": f"{url}/jwks",
                "sessions": fake.sessions,
                **(
                    {"webhook_url": fake.webhook_url, "webhook_secret": fake.webhook_secret}
                    if fake.webhook_url is not None
                    else {}
                ),
            }
        )
    else:
        out.plain(f"Fake Clerk listening on {url}")
        out.plain(f"export CLERK_API_URL={url}")
        out.plain(f"export CLERK_SECRET_KEY={fake.secret_key}")
        if fake.webhook_url is not None:
            # The receiver's secret, printed on purpose: it exists only for this fake.
            out.plain(f"export CLERK_WEBHOOK_SIGNING_SECRET={fake.webhook_secret}")
        sessions = fake.sessions
        if sessions:
            from clerk_sessions.models import Session

            seeded = [Session.from_json(session) for session in sessions]
            out.table(sessions_table(seeded, title="Seeded sessions"))
    limit = "no quota" if rate_limit is None else f"quota {rate_limit[0]}/{rate_limit[1]:g}s"
    out.note(
        f"{limit}; public key at {url}/jwks; state is in memory only. "
        "Ctrl-C to stop (exit 130), SIGTERM exits 0."
    )
    if fake.webhook_url is not None:
        out.note(f"session events are POSTed to {fake.webhook_url}")


class _RequestLog:
    """Prints each finished request on stderr, once, in arrival order."""

    def __init__(self, fake: FakeClerk, out: Output) -> None:
        self._fake = fake
        self._out = out
        self._logged = 0
        self._clock: Callable[[], float] = time.time

    def flush(self, *, final: bool = False) -> None:
        records = self._fake.requests
        now = self._clock()
        while self._logged < len(records):
            record = records[self._logged]
            unfinished = record.status is None and record.fault is None
            if unfinished and not final and now - record.time < _STUCK_S:
                break  # keep the order: wait for this one
            self._out.note(_describe(record))
            self._logged += 1


def _describe(record: RequestRecord) -> str:
    path = record.raw_path + (f"?{record.query}" if record.query else "")
    status = "-" if record.status is None else str(record.status)
    stamp = time.strftime("%H:%M:%S", time.localtime(record.time))
    return f"{stamp} {record.method} {path} {status}"


class _DeliveryLog:
    """Prints each attempt to deliver a session event on stderr, once, as they end."""

    def __init__(self, fake: FakeClerk, out: Output) -> None:
        self._fake = fake
        self._out = out
        self._logged = 0

    def flush(self) -> None:
        attempts = self._fake.webhook_deliveries
        for attempt in attempts[self._logged :]:
            self._out.note(_describe_delivery(attempt))
        self._logged = len(attempts)


def _describe_delivery(attempt: WebhookDelivery) -> str:
    outcome = str(attempt.status) if attempt.status is not None else attempt.error or "no answer"
    if not attempt.ok:
        outcome += " (gave up)" if attempt.final else f" (attempt {attempt.attempt}, retrying)"
    stamp = time.strftime("%H:%M:%S", time.localtime(attempt.time))
    return f"{stamp} webhook {attempt.type} {attempt.session_id} -> {outcome}"
