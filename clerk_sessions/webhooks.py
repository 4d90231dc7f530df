"""Session events: Clerk's webhooks, verified (extra ``webhooks``).

Clerk delivers events through Svix: a POST with a JSON body and three headers,
``svix-id``, ``svix-timestamp`` and ``svix-signature`` (an HMAC-SHA256 keyed by the
endpoint's ``whsec_...`` signing secret)::

    from clerk_sessions.webhooks import verify_webhook

    event = verify_webhook(body, request.headers)   # secret: $CLERK_WEBHOOK_SIGNING_SECRET
    if event.type == "session.revoked":
        forget_device(event.session.id)

- `verify_webhook`: checks the headers, the timestamp (five minutes either way by
  default), the size and the signature, and returns a `WebhookEvent`; a failure raises
  ``errors.WebhookVerificationError`` with a ``reason``.
- `WebhookEvent`: the verified event; ``session`` is a `models.Session` for
  ``session.*`` events.
- `sign_webhook`: the headers Clerk would send, for testing an endpoint.
- `MAX_WEBHOOK_BYTES`: larger bodies are refused unread by the HMAC.

The FastAPI dependency ``clerk_sessions.fastapi.clerk_webhook`` and the Django decorator
``clerk_sessions.django.webhook_view`` answer 400 with the reason for a bad delivery.
See the how-to guide "Keep your app in step with session events".
"""

from clerk_sessions._webhooks import MAX_WEBHOOK_BYTES, WebhookEvent, sign_webhook, verify_webhook

__all__ = ["MAX_WEBHOOK_BYTES", "WebhookEvent", "sign_webhook", "verify_webhook"]
