"""A typing test of the public API: mypy --strict and pyright check this file.

It is never run and never collected by pytest (no ``test_`` prefix). Each
``assert_type`` states the type a user's editor and type checker see; a change to the
public signatures that alters one fails ``nox -s typecheck``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
import httpx2

import clerk_sessions
from clerk_sessions import (
    UNSET,
    AsyncClerk,
    BackoffStrategy,
    Clerk,
    QueryParamStatus,
    RateLimit,
    RetryConfig,
    SessionStatus,
    errors,
    models,
)

if TYPE_CHECKING:
    # typing.assert_type is 3.11+; the type checkers bundle typing_extensions' stubs.
    from typing import assert_type

    async def async_client() -> None:
        retry = RetryConfig("backoff", BackoffStrategy(500, 8_000, 2.0, 60_000), True)
        retry = RetryConfig(max_attempts=5, jitter=0.2, max_retry_after_ms=10_000)
        async with AsyncClerk(
            "sk_test_x",
            server_url="https://api.clerk.com/v1",
            timeout_ms=5_000,
            retry_config=retry,
            rate_limit=RateLimit(100, 10),
            api_version="2026-05-12",
        ) as clerk:
            assert_type(clerk, AsyncClerk)
            sessions = clerk.sessions

            listed = await sessions.list(user_id="user_1", status=QueryParamStatus.ACTIVE)
            assert_type(listed, list[models.Session])
            listed = await sessions.list(client_id="client_1", status="active", paginated=False)
            page = await sessions.list_page(user_id="user_1", limit=10, offset=0)
            assert_type(page, models.SessionPage)
            assert_type(page.data, list[models.Session])
            assert_type(page.total_count, int | None)

            iterator = sessions.iterate(user_id="user_1", page_size=50)
            assert_type(aiter(iterator), AsyncIterator[models.Session])
            async for each in iterator:
                assert_type(each, models.Session)

            created = await sessions.create(request={"user_id": "user_1"})
            created = await sessions.create(models.CreateSessionRequestBody(user_id="user_1"))
            created = await sessions.create(user_id="user_1", active_organization_id="org_1")
            assert_type(created, models.Session)

            session = await sessions.get("sess_1", retries=None)
            session = await sessions.get(session_id="sess_1", retries=retry)
            session = await sessions.revoke(session_id="sess_1", retries=UNSET)
            session = await sessions.verify("sess_1", token="eyJ...")
            assert_type(session, models.Session)

            token = await sessions.create_token("sess_1", expires_in_seconds=60)
            assert_type(token, models.SessionToken)
            assert_type(token.jwt, str)
            token = await sessions.create_token_from_template(
                session_id="sess_1", template_name="custom_hasura", expires_in_seconds=2299.84
            )
            assert_type(token, models.CreateSessionTokenFromTemplateResponseBody)

            refreshed = await sessions.refresh(
                "sess_1",
                models.RefreshSessionRequestBody(
                    expired_token="a", refresh_token="b", request_origin="https://x"
                ),
            )
            assert_type(refreshed, models.SessionRefresh)
            assert_type(refreshed.jwt, str | None)

            def progress(done: int, total: int | None) -> None: ...

            bulk = await sessions.revoke_many(["sess_1", "sess_2"], on_progress=progress)
            bulk = await sessions.revoke_all(user_id="user_1", concurrency=16)
            assert_type(bulk, models.BulkRevokeResult)
            assert_type(bulk.revoked, dict[str, models.Session])
            assert_type(bulk.failed, dict[str, Exception])
            assert_type(bulk.ok, bool)
            assert_type(bulk.total, int)

            claims = await clerk.verify_token("eyJ...", authorized_parties=["https://x"])
            assert_type(claims, models.SessionClaims)
            state = await clerk.authenticate_request({"Authorization": "Bearer eyJ..."})
            assert_type(state, models.RequestState)
            assert_type(state.is_signed_in, bool)
            assert_type(state.reason, str | None)
            assert_type(state.claims, models.SessionClaims | None)

            derived = clerk.with_options(timeout_ms=5_000, http_headers={"X-Job": "nightly"})
            assert_type(derived, AsyncClerk)
            session = await derived.sessions.get(
                "sess_1", server_url="https://x/v1", timeout_ms=1_000, http_headers={"X": "y"}
            )
            raw = await clerk.sessions.with_raw_response.get("sess_1")
            assert_type(raw, models.RawResponse[models.Session])
            assert_type(raw.status_code, int)
            assert_type(raw.headers, httpx2.Headers | httpx.Headers)
            assert_type(raw.clerk_trace_id, str | None)
            assert_type(raw.content, bytes)
            assert_type(raw.parse(), models.Session)
            raw_page = await clerk.sessions.with_raw_response.list_page(user_id="user_1")
            assert_type(raw_page.parse(), models.SessionPage)
        await clerk.aclose()

    def sync_client() -> None:
        with Clerk(rate_limit=RateLimit(90, 10), retry_config=None) as clerk:
            assert_type(clerk, Clerk)
            sessions = clerk.sessions
            assert_type(sessions.list(user_id="user_1"), list[models.Session])
            assert_type(sessions.list_page(user_id="user_1"), models.SessionPage)
            assert_type(sessions.iterate(user_id="user_1"), Iterator[models.Session])
            assert_type(sessions.create(request={"user_id": "user_1"}), models.Session)
            assert_type(sessions.get(session_id="sess_1"), models.Session)
            assert_type(sessions.revoke(session_id="sess_1"), models.Session)
            assert_type(sessions.verify(session_id="sess_1"), models.Session)
            assert_type(sessions.create_token(session_id="sess_1"), models.SessionToken)
            assert_type(
                sessions.create_token_from_template("sess_1", "custom_hasura"),
                models.SessionToken,
            )
            assert_type(
                sessions.refresh(
                    "sess_1", expired_token="a", refresh_token="b", request_origin="https://x"
                ),
                models.SessionRefresh,
            )
            assert_type(sessions.revoke_many(iter(["sess_1"])), models.BulkRevokeResult)
            assert_type(sessions.revoke_all(client_id="client_1"), models.BulkRevokeResult)
            assert_type(clerk.verify_token("eyJ..."), models.SessionClaims)
            assert_type(clerk.authenticate_request({}), models.RequestState)
            derived = clerk.with_options(retry_config=None, rate_limit=None)
            assert_type(derived, Clerk)
            raw = derived.sessions.with_raw_response.create_token("sess_1", timeout_ms=500)
            assert_type(raw, models.RawResponse[models.SessionToken])
            assert_type(raw.parse(), models.SessionToken)
        clerk.close()

    def session_model(session: models.Session) -> None:
        assert_type(session.id, str)
        assert_type(session.user_id, str)
        assert_type(session.client_id, str)
        assert_type(session.status, SessionStatus)
        assert_type(session.status.is_known, bool)
        assert_type(session.last_active_at, int)
        assert_type(session.expire_at, int)
        assert_type(session.expire_at_dt, datetime)
        assert_type(session.created_at_dt, datetime)
        assert_type(session.last_active_organization_id, str | None)
        assert_type(session.latest_activity, models.SessionActivity | None)
        assert_type(session.tasks, tuple[models.SessionTask, ...] | None)
        if session.latest_activity is not None:
            assert_type(session.latest_activity.is_mobile, bool)
            assert_type(session.latest_activity.city, str | None)
        assert_type(models.SessionActivityResponse, type[models.SessionActivity])
        assert_type(models.CreateSessionTokenResponseBody, type[models.SessionToken])

    def claims_model(claims: models.SessionClaims) -> None:
        assert_type(claims.session_id, str)
        assert_type(claims.user_id, str)
        assert_type(claims.session_status, str | None)
        assert_type(claims.expires_at, int)
        assert_type(claims.expires_at_dt, datetime)
        assert_type(claims.org_id, str | None)
        assert_type(claims.org_permissions, tuple[str, ...])
        assert_type(claims.version, int)
        assert_type(claims.raw, dict[str, Any])

    def error_handling(clerk: Clerk) -> None:
        try:
            clerk.sessions.get("sess_1")
        except errors.RateLimitError as exc:
            assert_type(exc.retry_after, float | None)
        except errors.ClerkErrors as exc:
            assert_type(exc.status_code, int)
            assert_type(exc.clerk_trace_id, str | None)
            first = exc.errors[0]
            assert_type(first, errors.ClerkError)
            assert_type(first.code, str)
            assert_type(first.long_message, str)
        except errors.SDKError as exc:
            assert_type(exc.status_code, int)
            assert_type(exc.body, bytes)
        except errors.ResponseValidationError as exc:
            assert_type(exc.body, bytes)
        except errors.TokenVerificationError as exc:
            assert_type(exc.reason, str)
        except errors.ClerkSessionsError:
            pass
        assert issubclass(errors.NotFoundError, errors.ClerkErrors)
        assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
        assert issubclass(errors.ConfigurationError, ValueError)
        assert_type(models.ClerkErrors, type[errors.ClerkErrors])

    async def misuse_is_caught(clerk: AsyncClerk, sync: Clerk) -> None:
        # mypy --strict reports an unused ignore, so each line must stay an error.
        await clerk.sessions.get(123)  # type: ignore[arg-type]
        await clerk.sessions.list("user_1")  # type: ignore[call-arg]
        await clerk.sessions.create_token("sess_1", expires_in_seconds="60")  # type: ignore[arg-type]
        print(sync.sessions.get("sess_1").missing)  # type: ignore[attr-defined]
        AsyncClerk(retry_config=BackoffStrategy())  # type: ignore[arg-type]

    def enums_and_version() -> None:
        assert_type(SessionStatus("a_status_from_the_future"), SessionStatus)
        assert_type(clerk_sessions.QueryParamStatus("revoked"), QueryParamStatus)
        assert_type(clerk_sessions.__version__, str)

    async def durable_jobs(clerk: AsyncClerk, ids: list[str]) -> None:
        from clerk_sessions.jobs import JobStoreError, RevocationJob

        job = await RevocationJob.create("sqlite:///var/tmp/jobs.db", "j", session_ids=ids)
        job = await RevocationJob.create("jobs.db", "u", user_ids=iter(ids), chunk_size=50)
        job = await RevocationJob.open("redis://127.0.0.1:6379/0", "j")
        assert_type(job, RevocationJob)
        assert_type(job.kind, Literal["session", "user"])
        status = await job.work(clerk, concurrency=8, lease_s=60.0, on_progress=print)
        assert_type(status, models.JobStatus)
        assert_type(status.pending, int)
        assert_type(status.done, bool)
        async for item, outcome in job.outcomes("failed"):
            assert_type(item, str)
            assert_type(outcome, models.ItemOutcome)
            assert_type(outcome.status_code, int | None)
            assert_type(outcome.retryable, bool)
        assert_type(await job.retry_failed(), int)
        assert issubclass(JobStoreError, errors.ClerkSessionsError)
        async with job:
            await job.work(clerk, lease_s=1)
        await job.work(clerk, concurrency="8")  # type: ignore[arg-type]
        await RevocationJob.create("jobs.db", "j", session_ids=[1])  # type: ignore[list-item]

    async def shared_quota() -> None:
        from clerk_sessions.redis import RedisRateLimit

        quota = RedisRateLimit("redis://127.0.0.1:6379/0", requests=1000, per_seconds=10)
        bulk = quota.share("bulk", requests=800)
        assert_type(bulk, RedisRateLimit)
        assert_type(bulk.requests, int)
        assert_type(bulk.per_seconds, float)
        assert_type(bulk.name, str)
        async with AsyncClerk(rate_limit=quota) as web, AsyncClerk(rate_limit=bulk) as job:
            await web.sessions.get("sess_1")
            await job.sessions.get("sess_1")
        with Clerk(rate_limit=RedisRateLimit("unix:///run/redis.sock", 100, 10, key="q")):
            pass
        RedisRateLimit("redis://h/0", 1000, 10, key=5)  # type: ignore[arg-type]
        AsyncClerk(rate_limit=quota.share)  # type: ignore[arg-type]

    def session_events(body: bytes, headers: httpx2.Headers) -> None:
        from clerk_sessions.webhooks import WebhookEvent, sign_webhook, verify_webhook

        event = verify_webhook(body, headers, tolerance_s=60, now=datetime.now())
        assert_type(event, WebhookEvent)
        assert_type(event.type, str)
        assert_type(event.timestamp, datetime)
        assert_type(event.session, models.Session | None)
        assert_type(event.data, dict[str, Any])
        assert_type(sign_webhook(body, secret="whsec_x"), dict[str, str])
        try:
            verify_webhook(body.decode(), {"svix-id": "msg_1"}, secret="whsec_x", now=1.0)
        except errors.WebhookVerificationError as exc:
            assert_type(exc.reason, str)
        verify_webhook({"type": "session.created"}, headers)  # type: ignore[arg-type]
        sign_webhook(body)  # type: ignore[call-arg]

    async def web_frameworks() -> None:
        from fastapi import FastAPI
        from starlette.requests import HTTPConnection

        from clerk_sessions.django import ClerkUser as DjangoUser
        from clerk_sessions.django import aget_client
        from clerk_sessions.fastapi import ClaimsDep, ClerkDep, OptionalClaimsDep
        from clerk_sessions.starlette import ClerkAuthBackend, ClerkUser, on_auth_error

        assert_type(await aget_client(), AsyncClerk)
        app = FastAPI()

        @app.get("/")
        async def endpoint(claims: ClaimsDep, maybe: OptionalClaimsDep, clerk: ClerkDep) -> None:
            assert_type(claims, models.SessionClaims)
            assert_type(maybe, models.SessionClaims | None)
            assert_type(clerk, AsyncClerk)

        backend = ClerkAuthBackend(["https://app.example.com"], clerk=AsyncClerk())
        connection = HTTPConnection({"type": "http", "headers": []})
        result = await backend.authenticate(connection)
        if result is not None:
            credentials, user = result
            assert_type(credentials.scopes, list[str])
            assert isinstance(user, ClerkUser)
            assert_type(user.claims, models.SessionClaims)
            assert_type(DjangoUser(user.claims).pk, str)
        on_auth_error(connection, ValueError("x"))  # type: ignore[arg-type]
