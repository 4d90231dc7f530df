"""Opt-in checking of every response the fake sends against Clerk's OpenAPI spec.

Enable it per fake (``FakeClerk(validate_responses=<spec dir or file>)``) or for a
whole test run with the environment variable ``CLERK_SESSIONS_FAKE_VALIDATE=<dir of
specs>``. Each response is checked against the spec whose version matches the
request's ``Clerk-API-Version`` (the oldest one at or after it; the newest when the
header is absent or newer than every spec). Problems are kept on the request record
and in a process-wide registry (:func:`response_violations`) that a test suite can
fail on.

Needs PyYAML and openapi-schema-validator (both in the ``dev`` extra), imported only
when validation is on.

The spec subset is known to differ from what Clerk's live API does in a few places;
the fake follows the live API there and :data:`KNOWN_DEVIATIONS` lists each case.
:func:`spec_with_known_deviations` returns a copy of a spec that documents them, and
is what both this validator and the schemathesis conformance tests use.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import attrs

ENV_VAR = "CLERK_SESSIONS_FAKE_VALIDATE"

#: Where the fake knowingly answers something the spec subset does not document.
KNOWN_DEVIATIONS: Mapping[str, str] = {
    "GetSessionList 200": (
        "with paginated=true the live API answers {'data': [...], 'total_count': N} "
        "(what Clerk's JS and Go SDKs decode), not the bare array the spec documents"
    ),
    "CreateSessionToken 422, CreateSessionTokenFromTemplate 422": (
        "an invalid body (expires_in_seconds out of 30..315360000, not an integer) is "
        "rejected with 422 and Clerk's error JSON, as every other Clerk form; the spec "
        "lists only 200/401/404 for the token endpoints"
    ),
    "createSession and RefreshSession bodies": (
        "the spec leaves these request bodies optional although they have required "
        "fields; without a body the fake answers as without those fields (422 "
        "form_param_missing for user_id, 400 for refresh), so the patched spec marks "
        "the bodies required"
    ),
    "GetJWKS 401": (
        "/jwks needs the secret key like every path (the spec's global bearerAuth) and "
        "answers 401 without it; the spec lists only 200"
    ),
    "every operation 429": (
        "Clerk's quota answers 429 with Retry-After and Clerk's error JSON; "
        "the spec subset omits it"
    ),
}

_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}},
        "total_count": {"type": "integer", "format": "int64"},
    },
    "required": ["data", "total_count"],
}
_CLERK_ERRORS_RESPONSE: dict[str, Any] = {
    "description": "Clerk's error JSON",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClerkErrors"}}},
}
_BODY_REQUIRED = {("/sessions", "post"), ("/sessions/{session_id}/refresh", "post")}
_METHODS = ("get", "post", "put", "patch", "delete")


def spec_with_known_deviations(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``spec`` that also documents :data:`KNOWN_DEVIATIONS`."""
    patched: dict[str, Any] = copy.deepcopy(dict(spec))
    for path, item in patched.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", _CLERK_ERRORS_RESPONSE)
            responses.setdefault("429", _CLERK_ERRORS_RESPONSE)
            if path.startswith("/sessions/{session_id}/tokens"):
                responses.setdefault("422", _CLERK_ERRORS_RESPONSE)
            body = operation.get("requestBody")
            if body is not None and (path, method) in _BODY_REQUIRED:
                body["required"] = True
            if path == "/sessions" and method == "get":
                responses["200"] = {
                    "description": "A bare array, or a page when paginated=true",
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Session"},
                                    },
                                    _PAGE_SCHEMA,
                                ]
                            }
                        }
                    },
                }
    return patched


@attrs.frozen(kw_only=True)
class ResponseViolation:
    """A response of the fake that does not match the spec."""

    spec_version: str
    method: str
    raw_path: str
    status: int
    problems: tuple[str, ...]
    body: bytes

    def __str__(self) -> str:
        problems = "; ".join(self.problems)
        return (
            f"{self.method} {self.raw_path} -> {self.status} (spec {self.spec_version}): "
            f"{problems}; body={self.body[:300]!r}"
        )


_registry_lock = threading.Lock()
_registry: list[ResponseViolation] = []


def response_violations() -> list[ResponseViolation]:
    """Every violation recorded in this process so far (a copy)."""
    with _registry_lock:
        return list(_registry)


def take_response_violations() -> list[ResponseViolation]:
    """Return the recorded violations and clear the registry."""
    with _registry_lock:
        taken = list(_registry)
        _registry.clear()
        return taken


def _record(violation: ResponseViolation) -> None:
    with _registry_lock:
        _registry.append(violation)


def resolve_validation_source(option: bool | str | os.PathLike[str] | None) -> Path | None:
    """Where the specs come from: the option, else the environment variable, else nowhere."""
    if option is False:
        return None
    if option is None or option is True:
        env = os.environ.get(ENV_VAR)
        if env:
            return Path(env)
        if option is True:
            raise ValueError(f"validate_responses=True needs the spec location in ${ENV_VAR}")
        return None
    return Path(option)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Spec:
    """One spec version, with its schemas dereferenced and validators compiled lazily."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        from openapi_schema_validator import OAS30Validator

        self._validator_class = OAS30Validator
        self.raw = spec_with_known_deviations(raw)
        self.version = str(self.raw["info"]["version"])
        self._validators: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    def _deref(self, node: Any) -> Any:
        # The sessions subset has no recursive schemas, so inlining every $ref terminates.
        if isinstance(node, dict):
            mapping = cast("dict[str, Any]", node)
            ref = mapping.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                target: Any = self.raw
                for part in ref[2:].split("/"):
                    target = target[part]
                return self._deref(target)
            return {key: self._deref(value) for key, value in mapping.items()}
        if isinstance(node, list):
            return [self._deref(item) for item in cast("list[object]", node)]
        return node

    def _validator(self, key: tuple[str, str, str], schema: Any) -> Any:
        with self._lock:
            validator = self._validators.get(key)
            if validator is None:
                validator = self._validator_class(self._deref(schema))
                self._validators[key] = validator
            return validator

    def check(
        self,
        method: str,
        template: str | None,
        status: int,
        content_type: str,
        body: bytes,
        injected: bool = False,
    ) -> list[str]:
        operation = None
        if template is not None:
            operation = self.raw.get("paths", {}).get(template, {}).get(method.lower())
        if injected:
            # A deliberately injected 5XX: no spec documents it, but its body must
            # still be Clerk's error JSON.
            response: Any = self._deref(_CLERK_ERRORS_RESPONSE)
            key = ("*", "*", "error")
        elif operation is None:
            # A path or method this version does not have: any answer must be an error.
            if not 400 <= status < 500:
                return [f"status {status} for an operation that spec {self.version} does not have"]
            response = self._deref(_CLERK_ERRORS_RESPONSE)
            key = ("*", "*", "error")
        else:
            responses = operation.get("responses", {})
            response = (
                responses.get(str(status))
                or responses.get(f"{status // 100}XX")
                or responses.get("default")
            )
            if response is None:
                documented = ", ".join(sorted(responses))
                return [f"status {status} not documented (documented: {documented})"]
            response = self._deref(response)
            key = (method, template or "", str(status))
        content: dict[str, Any] = response.get("content") or {}
        if not content:
            return [] if not body else ["a body where the spec documents none"]
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in content:
            return [
                f"content type {content_type!r} not documented (documented: {', '.join(content)})"
            ]
        schema = content[media].get("schema")
        if schema is None:
            return []
        try:
            document = json.loads(body)
        except ValueError as exc:
            return [f"body is not JSON: {exc}"]
        validator = self._validator(key, schema)
        problems: list[str] = []
        for error in validator.iter_errors(document):
            where = "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
            )
            problems.append(f"{error.message} @ ${where}")
        return problems


@functools.lru_cache(maxsize=8)
def _load_specs(source: Path) -> tuple[_Spec, ...]:
    import yaml  # type: ignore[import-untyped, unused-ignore]

    files = (
        sorted(source.glob("*.y*ml")) + sorted(source.glob("*.json"))
        if source.is_dir()
        else [source]
    )
    # libyaml's loader where PyYAML was built with it: the same documents, six times faster
    # (a FakeClerk starts sooner).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    specs: list[_Spec] = []
    for file in files:
        with file.open(encoding="utf-8") as handle:
            raw = yaml.load(handle, Loader=loader)  # a safe loader, C when built
        if isinstance(raw, dict) and "openapi" in raw:
            specs.append(_Spec(cast("dict[str, Any]", raw)))
    if not specs:
        raise ValueError(f"no OpenAPI spec found at {source}")
    return tuple(sorted(specs, key=lambda spec: spec.version))


class ResponseValidator:
    """Checks responses against the spec version a request asked for."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self._specs = _load_specs(source.resolve())

    def spec_for(self, api_version: str | None) -> _Spec:
        """The oldest spec at or after ``api_version``; the newest when none is, or no header.

        The two specs bracket the one change that matters here (``verify`` removed in
        2025-04-10): a version between them behaves like the newer one.
        """
        if api_version is None or not _DATE.match(api_version):
            return self._specs[-1]
        for spec in self._specs:
            if spec.version >= api_version:
                return spec
        return self._specs[-1]

    def check(
        self,
        *,
        api_version: str | None,
        method: str,
        raw_path: str,
        template: str | None,
        status: int,
        content_type: str,
        body: bytes,
        injected: bool = False,
    ) -> ResponseViolation | None:
        """Validate one response; record and return the violation, if any.

        ``injected``: a deliberately injected 5XX, whose status no spec documents; only
        its body is checked (Clerk's error JSON).
        """
        spec = self.spec_for(api_version)
        problems = spec.check(method, template, status, content_type, body, injected)
        if not problems:
            return None
        violation = ResponseViolation(
            spec_version=spec.version,
            method=method,
            raw_path=raw_path,
            status=status,
            problems=tuple(problems),
            body=body,
        )
        _record(violation)
        return violation
