"""Networkless verification's public names (extra ``jwt`` for the functions).

- `Reason`: every code a failed verification reports, as
  ``TokenVerificationError.reason`` and ``RequestState.reason``. Members are strings
  equal to their codes, so ``exc.reason == "token_expired"`` and
  ``exc.reason is Reason.TOKEN_EXPIRED`` both hold.
- `UNAVAILABLE_REASONS`: the reasons that mean the server cannot verify anything right
  now (no keys, a broken configured key), not that the token is bad. The FastAPI and
  Django integrations answer 503 for these and 401 for the others; do the same in your
  own middleware, or clients will drop tokens that are fine.
- `load_pem`: the PEM loader ``jwt_key`` goes through, to check a key at startup.
- `verify_token`: verification against a PEM key, without a client.
- `MAX_TOKEN_LENGTH`: tokens longer than this are refused unread.

Verify tokens through ``AsyncClerk.verify_token`` / ``authenticate_request`` (or the
sync ``Clerk``); see the how-to guide "Verify session tokens without a network call".
"""

from clerk_sessions._verification import (
    MAX_TOKEN_LENGTH,
    UNAVAILABLE_REASONS,
    Reason,
    load_pem,
    verify_token,
)

__all__ = ["MAX_TOKEN_LENGTH", "UNAVAILABLE_REASONS", "Reason", "load_pem", "verify_token"]
