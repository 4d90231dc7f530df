"""`webhook_view`: a view decorator that verifies Clerk's webhook deliveries (session events).

The signing secret is the setting ``CLERK_WEBHOOK_SIGNING_SECRET``, else the environment
variable of that name, read at each delivery (so ``override_settings`` works in tests).
Needs the ``webhooks`` extra.
"""

# Django ships no type information: its names are unknown to pyright.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
# pyright: reportUnknownVariableType=false

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponseNotAllowed, JsonResponse, UnreadablePostError
from django.views.decorators.csrf import csrf_exempt

from clerk_sessions.errors import ConfigurationError, WebhookVerificationError
from clerk_sessions.webhooks import MAX_WEBHOOK_BYTES, WebhookEvent, verify_webhook

__all__ = ["webhook_view"]

ViewT = TypeVar("ViewT", bound=Callable[..., Any])

_SETTING = "CLERK_WEBHOOK_SIGNING_SECRET"
_logger = logging.getLogger("clerk_sessions")


def _secret() -> str | None:
    value: object = getattr(settings, _SETTING, None)
    if value is None or value == "":
        return None  # verify_webhook then reads the environment variable
    if not isinstance(value, str):
        raise ConfigurationError(
            f"settings.{_SETTING} must be a string (whsec_...), got {type(value).__name__}"
        )
    return value


def _refused(reason: str) -> JsonResponse:
    return JsonResponse({"detail": reason}, status=400)


def _verified(request: Any) -> WebhookEvent | JsonResponse:
    """The delivery's event, or the answer that refuses it."""
    secret = _secret()
    declared = str(request.META.get("CONTENT_LENGTH") or "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        # Refused unread, like any body over the limit.
        _logger.info("refused a webhook delivery: payload: %s bytes, over 1 MiB", declared)
        return _refused("payload")
    try:
        body = request.body
    except (RequestDataTooBig, UnreadablePostError):
        return _refused("payload")
    try:
        return verify_webhook(body, request.headers, secret=secret)
    except WebhookVerificationError as exc:
        # The answer says only the reason; the operator's log says what was wrong.
        _logger.info("refused a webhook delivery: %s", exc)
        return _refused(exc.reason)


def webhook_view(view: ViewT) -> ViewT:
    """Turn ``view(request, event, ...)`` into a webhook endpoint for Clerk's deliveries.

    The wrapped view is CSRF exempt (Clerk cannot send a CSRF token) and takes POST only
    (405 otherwise). Each delivery is verified with
    `clerk_sessions.webhooks.verify_webhook` before the view runs, and the view gets
    the `WebhookEvent` as its second argument. A bad delivery (forged, replayed, unsigned, over
    1 MiB, not a Clerk event) gets a 400 whose JSON ``detail`` is the reason
    (``missing_headers``, ``timestamp``, ``signature``, ``payload``), never a 500; no
    secret configured at all raises `ConfigurationError` (a 500: the server's fault,
    which Clerk retries later). Works on sync and async views::

        @webhook_view
        def clerk_events(request, event):
            if event.type == "session.revoked":
                ...
            return HttpResponse(status=204)
    """
    # asgiref's, which also sees its markcoroutinefunction on 3.11 (pyright reads that
    # branch as asyncio's, deprecated only from 3.14).
    if iscoroutinefunction(view):  # pyright: ignore[reportDeprecated]

        @functools.wraps(view)
        async def async_wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            event = _verified(request)
            if isinstance(event, JsonResponse):
                return event
            return await view(request, event, *args, **kwargs)

        return csrf_exempt(async_wrapper)  # type: ignore[no-any-return]

    @functools.wraps(view)
    def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        event = _verified(request)
        if isinstance(event, JsonResponse):
            return event
        return view(request, event, *args, **kwargs)

    return csrf_exempt(wrapper)  # type: ignore[no-any-return]
