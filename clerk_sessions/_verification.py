"""Networkless verification of Clerk session tokens (RS256 JWTs).

A ``TokenVerifier`` belongs to one client, so its key cache is scoped to that client's
server URL and secret key; there is no process-wide cache keyed by ``kid`` alone.

Checks run cheapest and least trusting first, and the first failure wins:

1. size (``token_too_large``), before any decoding;
2. structure: three canonical base64url parts, JSON objects for header and payload
   (``token_malformed``);
3. header: ``alg`` exactly ``RS256`` (``unsupported_algorithm``), no ``crit``
   (``unsupported_critical_header``);
4. key: ``jwt_key`` when given, else the JWKS entry named by ``kid``
   (``unknown_kid``, ``jwks_unavailable``, ``invalid_key``);
5. signature (``invalid_signature``);
6. claims: ``exp`` required, then ``exp``/``nbf``/``iat`` with leeway, ``azp``,
   ``sub`` and ``sid`` (``missing_claim``, ``token_expired``, ``token_not_active_yet``,
   ``token_iat_in_future``, ``invalid_authorized_party``);
7. session status: ``sts == "pending"`` fails unless accepted (``session_pending``).

Every failure is a ``TokenVerificationError`` whose ``reason`` is a `Reason`;
``missing_token`` is only reported by ``authenticate``. ``clerk_sessions.verification``
is the public face of this module.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

import anyio

from clerk_sessions._claims import RequestState, SessionClaims, claims_from_payload
from clerk_sessions._errors import TokenVerificationError
from clerk_sessions._request_token import extract_token

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = [
    "MAX_TOKEN_LENGTH",
    "UNAVAILABLE_REASONS",
    "Reason",
    "TokenVerifier",
    "load_pem",
    "verify_token",
]


class Reason(StrEnum):
    """Why a token did not verify: ``TokenVerificationError.reason`` and ``RequestState.reason``.

    Members are strings, equal to their codes (``Reason.TOKEN_EXPIRED == "token_expired"``).
    """

    TOKEN_MALFORMED = "token_malformed"
    """Not three base64url parts, or header/payload not JSON objects."""
    TOKEN_TOO_LARGE = "token_too_large"
    """Longer than ``MAX_TOKEN_LENGTH``; rejected before any decoding."""
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    """The header's ``alg`` is not ``RS256`` (``none``, ``HS256``, ``RS512``, ``ES256`` ...)."""
    UNKNOWN_KID = "unknown_kid"
    """The header names no ``kid``, or one the JWKS does not have (even after a refetch)."""
    INVALID_SIGNATURE = "invalid_signature"
    """The signature does not match the key."""
    TOKEN_EXPIRED = "token_expired"
    """``exp`` is more than the leeway in the past."""
    TOKEN_NOT_ACTIVE_YET = "token_not_active_yet"
    """``nbf`` is more than the leeway in the future."""
    TOKEN_IAT_IN_FUTURE = "token_iat_in_future"
    """``iat`` is more than the leeway in the future."""
    MISSING_CLAIM = "missing_claim"
    """``exp``, ``sub`` or ``sid`` is absent, or a time claim is not a number."""
    INVALID_AUTHORIZED_PARTY = "invalid_authorized_party"
    """``azp`` is not one of the authorized parties (or absent while parties are given)."""
    UNSUPPORTED_CRITICAL_HEADER = "unsupported_critical_header"
    """The header has a ``crit`` list: no extension is understood here (RFC 7515 4.1.11)."""
    JWKS_UNAVAILABLE = "jwks_unavailable"
    """No usable keys: the JWKS could not be fetched (or had none) and none are cached."""
    INVALID_KEY = "invalid_key"
    """``jwt_key`` is not an RSA public key in PEM form, or is too short."""
    SESSION_PENDING = "session_pending"
    """The token is valid but its session is ``pending`` (has tasks left), not signed in."""
    MISSING_TOKEN = "missing_token"
    """The request carried no session token (``authenticate`` only)."""


UNAVAILABLE_REASONS: frozenset[Reason] = frozenset({Reason.JWKS_UNAVAILABLE, Reason.INVALID_KEY})
"""The reasons that say the server cannot verify anything right now (no keys, a broken
configured key), not that the caller's token is bad. The integrations answer 503 for
them: a 401 would tell clients to drop tokens that are fine."""

MAX_TOKEN_LENGTH = 8 * 1024
"""Tokens longer than this (characters) are refused unread. Clerk's session tokens are
about 1 KiB; the cap bounds the work an attacker can make us do per request."""

# Below this an RSA key is breakable; Clerk's keys are 2048 bits.
_MIN_KEY_BITS = 2048
_PEM_KEY_CACHE_SIZE = 8
_MAX_NUMERIC_DATE = 2**53
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")

logger = logging.getLogger("clerk_sessions")

_JWT_EXTRA_HINT = 'networkless verification needs the jwt extra: pip install "clerk-sessions[jwt]"'


def _fail(reason: Reason, message: str) -> TokenVerificationError:
    return TokenVerificationError(message, reason=reason)


class _Crypto:
    """The few cryptography names the hot path needs, imported once on first use."""

    def __init__(self) -> None:
        try:
            from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ImportError as exc:
            raise ImportError(_JWT_EXTRA_HINT) from exc
        self.InvalidSignature = InvalidSignature
        self.UnsupportedAlgorithm = UnsupportedAlgorithm
        self.load_pem_public_key = serialization.load_pem_public_key
        self.RSAPublicKey = rsa.RSAPublicKey
        self.RSAPublicNumbers = rsa.RSAPublicNumbers
        # Both are stateless, so one instance serves every verification.
        self.padding = padding.PKCS1v15()
        self.sha256 = hashes.SHA256()


_crypto: _Crypto | None = None


def _get_crypto() -> _Crypto:
    global _crypto
    if _crypto is None:
        _crypto = _Crypto()
    return _crypto


def _b64decode(part: str) -> bytes:
    # JWS (RFC 7515 section 2) uses unpadded base64url. Python's decoder silently drops
    # foreign characters and ignores non-zero trailing bits, which would let many strings
    # stand for one token; the alphabet and length checks plus the round trip refuse all
    # but the canonical spelling.
    if len(part) % 4 == 1 or _BASE64URL.fullmatch(part) is None:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=") != part.encode("ascii"):
        raise ValueError("not canonical base64url")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every call: json.loads with any keyword argument builds a new one.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _json_object(data: bytes) -> dict[str, Any]:
    # JWS header and payload are UTF-8 (RFC 7515 section 5.1); no encoding sniffing.
    value: object = _JSON.decode(data.decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return cast("dict[str, Any]", value)


def _mapping(value: object) -> Mapping[str, Any] | None:
    return cast("Mapping[str, Any]", value) if isinstance(value, Mapping) else None


def _number(payload: Mapping[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    # Bounded so that arithmetic on it cannot overflow a float; the bound is far past
    # any real date.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not -_MAX_NUMERIC_DATE <= value <= _MAX_NUMERIC_DATE
    ):
        raise _fail(Reason.MISSING_CLAIM, f"claim {name!r} is not a usable number")
    return float(value)


def load_pem(jwt_key: str) -> RSAPublicKey:
    """The RSA public key in a PEM string, as ``jwt_key`` takes it.

    Tolerates the ways a PEM gets mangled on its way through an environment variable
    (line breaks lost, or written as a literal ``\\n``). Raises `TokenVerificationError`
    with reason ``invalid_key`` when it is not an RSA public key of 2048 bits or more.
    Needs the ``jwt`` extra.
    """
    if not isinstance(jwt_key, str):
        raise TypeError(f"jwt_key must be a PEM string, got {type(jwt_key).__name__}")
    crypto = _get_crypto()
    try:
        key = crypto.load_pem_public_key(_normalize_pem(jwt_key).encode("ascii"))
    except (ValueError, crypto.UnsupportedAlgorithm) as exc:
        raise _fail(Reason.INVALID_KEY, "jwt_key is not a PEM public key") from exc
    if not isinstance(key, crypto.RSAPublicKey):
        raise _fail(Reason.INVALID_KEY, "jwt_key is not an RSA public key")
    if key.key_size < _MIN_KEY_BITS:
        raise _fail(
            Reason.INVALID_KEY, f"jwt_key has {key.key_size} bits, fewer than {_MIN_KEY_BITS}"
        )
    return key


def _normalize_pem(jwt_key: str) -> str:
    # The key usually arrives through an environment variable (CLERK_JWT_KEY), where line
    # breaks get lost or turn into literal "\n": rebuild the PEM from its base64 body.
    text = jwt_key.replace("\\n", "\n")
    label = re.search(r"-----BEGIN ([A-Z ]+)-----", text)
    body = "".join(re.sub(r"-----(BEGIN|END) [A-Z ]+-----", "", text).split())
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    name = label.group(1) if label else "PUBLIC KEY"
    return f"-----BEGIN {name}-----\n{lines}\n-----END {name}-----\n"


def _b64url_uint(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return int.from_bytes(_b64decode(value), "big")


def _parse_jwks(jwks: object) -> dict[str, RSAPublicKey]:
    """Usable RS256 signing keys of a JWKS by ``kid``; other entries are skipped."""
    document = _mapping(jwks)
    entries: object = None if document is None else document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("the JWKS has no 'keys' list")
    crypto = _get_crypto()
    keys: dict[str, RSAPublicKey] = {}
    for entry in cast("list[object]", entries):
        jwk = _mapping(entry)
        if jwk is None:
            continue
        kid = jwk.get("kid")
        if (
            not isinstance(kid, str)
            or jwk.get("kty") != "RSA"
            or jwk.get("use", "sig") != "sig"
            or jwk.get("alg", "RS256") != "RS256"
        ):
            continue
        try:
            numbers = crypto.RSAPublicNumbers(
                _b64url_uint(jwk.get("e")), _b64url_uint(jwk.get("n"))
            )
            key = numbers.public_key()
        except ValueError:
            continue
        if key.key_size >= _MIN_KEY_BITS:
            keys[kid] = key
    return keys


class TokenVerifier:
    """Verifies Clerk session tokens without a network round trip per token.

    ``fetch_jwks`` returns the instance's JSON Web Key Set (``GET /jwks``, decoded). Keys
    are cached on the verifier for ``ttl_s`` (by ``clock``): the first verification after
    that fetches the set again, so a key Clerk retired stops verifying within the TTL.
    A token naming a ``kid`` the cache lacks also triggers a fetch. Fetches run one at a
    time however many callers wait for them, and at most one per ``cooldown_s``, so
    forged ``kid``s cannot make it fetch in a loop. A failed fetch keeps the last good
    keys (a rotation adds a key before it retires one) and logs a warning. ``now`` is the
    wall clock the time claims are checked against.

    Use a verifier from one event loop at a time (asyncio or trio).
    """

    def __init__(
        self,
        fetch_jwks: Callable[[], Awaitable[Mapping[str, Any]]],
        *,
        ttl_s: float = 300.0,
        cooldown_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self._ttl_s = ttl_s
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._now = now
        self._keys: dict[str, RSAPublicKey] = {}
        self._keys_fetched_at: float | None = None
        self._pem_keys: dict[str, RSAPublicKey] = {}
        self._last_fetch_at: float | None = None
        self._completed_fetches = 0
        self._last_fetch_error: BaseException | None = None
        # Set while a fetch runs; waiters block on it instead of starting their own.
        # One Event per fetch, created inside it, so no primitive outlives its loop.
        self._fetch_done: anyio.Event | None = None

    async def verify(
        self,
        token: str,
        *,
        authorized_parties: Collection[str] | None = None,
        leeway_s: float = 5,
        jwt_key: str | None = None,
        accept_pending: bool = False,
    ) -> SessionClaims:
        """Verify a session token and return its claims.

        ``authorized_parties``: the origins allowed in ``azp`` (None or empty: any; when
        given, a token without ``azp`` fails). ``leeway_s``: the clock skew tolerated on
        ``exp``, ``nbf`` and ``iat``. ``jwt_key``: the instance's PEM public key; when
        given, nothing is fetched. ``accept_pending``: also accept a ``pending`` session.

        Raises ``TokenVerificationError`` with a ``reason`` code on any failure.
        """
        claims = await self._verify(token, authorized_parties, leeway_s, jwt_key)
        if claims.session_status == "pending" and not accept_pending:
            raise _fail(Reason.SESSION_PENDING, "the session is pending")
        return claims

    async def authenticate(
        self,
        request: object,
        *,
        authorized_parties: Collection[str] | None = None,
        leeway_s: float = 5,
        jwt_key: str | None = None,
        accept_pending: bool = False,
    ) -> RequestState:
        """Authenticate a request by the session token it carries (see ``extract_token``).

        Never raises ``TokenVerificationError``: a failure is a signed-out state whose
        ``reason`` is the code. A pending session is signed out (``session_pending``, with
        its claims) unless ``accept_pending``.
        """
        token = extract_token(request)
        if token is None:
            return RequestState(is_signed_in=False, reason=Reason.MISSING_TOKEN)
        try:
            claims = await self._verify(token, authorized_parties, leeway_s, jwt_key)
        except TokenVerificationError as exc:
            return RequestState(is_signed_in=False, reason=exc.reason, token=token)
        if claims.session_status == "pending" and not accept_pending:
            return RequestState(
                is_signed_in=False, reason=Reason.SESSION_PENDING, token=token, claims=claims
            )
        return RequestState(is_signed_in=True, token=token, claims=claims)

    async def _verify(
        self,
        token: str,
        authorized_parties: Collection[str] | None,
        leeway_s: float,
        jwt_key: str | None,
    ) -> SessionClaims:
        # Caller mistakes, not token problems: fail loudly instead of letting a string be
        # matched by substring or a NaN leeway disable every time check.
        if isinstance(authorized_parties, str):
            raise TypeError("authorized_parties must be a collection of origins, not a str")
        if not leeway_s >= 0:
            raise ValueError("leeway_s must be a non-negative number")

        if not isinstance(token, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise _fail(Reason.TOKEN_MALFORMED, "the token is not a string")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _fail(
                Reason.TOKEN_TOO_LARGE, f"the token is longer than {MAX_TOKEN_LENGTH} characters"
            )

        parts = token.split(".")
        if len(parts) != 3:
            raise _fail(Reason.TOKEN_MALFORMED, "the token does not have three parts")
        try:
            header = _json_object(_b64decode(parts[0]))
            payload = _json_object(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except (ValueError, RecursionError) as exc:
            # ValueError covers binascii.Error, JSONDecodeError and UnicodeDecodeError.
            raise _fail(Reason.TOKEN_MALFORMED, "the token is not a JWS in compact form") from exc

        if header.get("alg") != "RS256":
            raise _fail(Reason.UNSUPPORTED_ALGORITHM, "only RS256 tokens are accepted")
        if "crit" in header:
            raise _fail(
                Reason.UNSUPPORTED_CRITICAL_HEADER, "the token has critical header parameters"
            )

        key = self._pem_key(jwt_key) if jwt_key is not None else await self._jwks_key(header)
        crypto = _get_crypto()
        signing_input = token[: len(parts[0]) + 1 + len(parts[1])].encode("ascii")
        try:
            key.verify(signature, signing_input, crypto.padding, crypto.sha256)
        except crypto.InvalidSignature as exc:
            raise _fail(Reason.INVALID_SIGNATURE, "the signature does not match") from exc

        self._check_claims(payload, authorized_parties, leeway_s)
        return claims_from_payload(payload)

    def _check_claims(
        self,
        payload: dict[str, Any],
        authorized_parties: Collection[str] | None,
        leeway_s: float,
    ) -> None:
        exp = _number(payload, "exp")
        if exp is None:
            raise _fail(Reason.MISSING_CLAIM, "the token has no 'exp' claim")
        nbf = _number(payload, "nbf")
        iat = _number(payload, "iat")
        now = self._now()
        if now > exp + leeway_s:
            raise _fail(Reason.TOKEN_EXPIRED, "the token has expired")
        if nbf is not None and now < nbf - leeway_s:
            raise _fail(Reason.TOKEN_NOT_ACTIVE_YET, "the token is not valid yet (nbf)")
        if iat is not None and iat > now + leeway_s:
            raise _fail(Reason.TOKEN_IAT_IN_FUTURE, "the token was issued in the future (iat)")

        if authorized_parties:
            azp = payload.get("azp")
            if not isinstance(azp, str) or azp not in authorized_parties:
                raise _fail(Reason.INVALID_AUTHORIZED_PARTY, "'azp' is not an authorized party")

        for name in ("sub", "sid"):
            value = payload.get(name)
            if not isinstance(value, str) or not value:
                raise _fail(Reason.MISSING_CLAIM, f"the token has no {name!r} claim")

    def _pem_key(self, jwt_key: str) -> RSAPublicKey:
        # Parsing a PEM costs more than verifying a signature, and the same key comes
        # with every call: keep the parsed key.
        key = self._pem_keys.get(jwt_key)
        if key is None:
            key = load_pem(jwt_key)
            if len(self._pem_keys) >= _PEM_KEY_CACHE_SIZE:
                self._pem_keys.clear()
            self._pem_keys[jwt_key] = key
        return key

    async def _jwks_key(self, header: Mapping[str, Any]) -> RSAPublicKey:
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _fail(Reason.UNKNOWN_KID, "the token names no 'kid' and no jwt_key was given")
        key = self._keys.get(kid)
        if key is not None and not self._expired():
            return key
        # Wait until some fetch completes after this call began: one already in flight,
        # or one this call runs. A cancelled fetch completes nothing, so a waiter then
        # runs its own. Within the cooldown no fetch is started: the keys at hand (stale
        # ones included, after a failed refresh) are all there is.
        seen = self._completed_fetches
        while self._completed_fetches == seen:
            if self._fetch_done is not None:
                await self._fetch_done.wait()
            elif self._cooling_down():
                break
            else:
                await self._refresh_keys()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not self._keys:
            raise _fail(Reason.JWKS_UNAVAILABLE, "no JWKS keys are available") from (
                self._last_fetch_error
            )
        raise _fail(Reason.UNKNOWN_KID, "the JWKS has no key with the token's 'kid'")

    def _expired(self) -> bool:
        return (
            self._keys_fetched_at is not None
            and self._clock() - self._keys_fetched_at >= self._ttl_s
        )

    def _cooling_down(self) -> bool:
        return (
            self._last_fetch_at is not None
            and self._clock() - self._last_fetch_at < self._cooldown_s
        )

    async def _refresh_keys(self) -> None:
        done = self._fetch_done = anyio.Event()
        previous_fetch_at = self._last_fetch_at
        self._last_fetch_at = self._clock()
        finished = False
        try:
            try:
                keys = _parse_jwks(await self._fetch_jwks())
                if not keys:
                    raise ValueError("the JWKS has no usable RS256 keys")
            except Exception as exc:
                # Whatever went wrong (network, HTTP status, bad document), the keys
                # we have stay valid: a rotation adds a key before it retires one.
                self._last_fetch_error = exc
                self._log_failed_fetch(exc)
            else:
                self._keys = keys
                self._keys_fetched_at = self._last_fetch_at
                self._last_fetch_error = None
            finished = True
            self._completed_fetches += 1
        finally:
            if not finished:
                # Cancelled mid-fetch: this was no attempt, so a waiter may start anew.
                self._last_fetch_at = previous_fetch_at
            self._fetch_done = None
            done.set()

    def _log_failed_fetch(self, exc: Exception) -> None:
        if not logger.isEnabledFor(logging.WARNING):
            return
        if self._keys_fetched_at is None:
            logger.warning("could not fetch the JWKS: %s", exc)
        else:
            logger.warning(
                "could not refresh the JWKS (%s); the %d keys fetched %.0f s ago stay in use",
                exc,
                len(self._keys),
                self._clock() - self._keys_fetched_at,
            )


async def verify_token(
    token: str,
    *,
    jwt_key: str,
    authorized_parties: Collection[str] | None = None,
    leeway_s: float = 5,
    accept_pending: bool = False,
) -> SessionClaims:
    """Verify a session token against the instance's PEM public key: no client, no request.

    The checks of ``AsyncClerk.verify_token`` with a ``jwt_key``, for code that holds the
    key but no secret key (the command line's ``verify-token --jwt-key``). Raises
    `TokenVerificationError` with a `Reason`. Needs the ``jwt`` extra.
    """
    if not isinstance(jwt_key, str):
        raise TypeError(f"jwt_key must be a PEM string, got {type(jwt_key).__name__}")
    return await TokenVerifier(_no_jwks).verify(
        token,
        authorized_parties=authorized_parties,
        leeway_s=leeway_s,
        jwt_key=jwt_key,
        accept_pending=accept_pending,
    )


async def _no_jwks() -> Mapping[str, Any]:
    # Unreachable: given a jwt_key (an empty or broken one fails as an invalid key), a
    # TokenVerifier never fetches the JWKS.
    raise AssertionError("no JWKS fetch with a PEM key")  # pragma: no cover
