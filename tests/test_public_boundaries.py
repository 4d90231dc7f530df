"""The clients of the core (the integrations, the command line, the fake, the durable
jobs and the shared quota) use it through its public names, as a user's code would, and
through the few private parts each one's allow-list names with the reason; the core
imports none of them, not even lazily.

The core is ``clerk_sessions/__init__.py``, its private modules (``_x``) and its public
faces (`errors`, `models`, `verification`, `webhooks`), which re-export them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import clerk_sessions

PACKAGE = Path(clerk_sessions.__file__).parent
# The core's public modules: what they hold is defined in its private ones.
CORE_FACES = {"__init__.py", "errors.py", "models.py", "verification.py", "webhooks.py"}
# Each client (a module or a subpackage, by its own name) may import its own private
# modules, and of the core's private parts only those named here, each for a reason.
ALLOWED: dict[str, dict[str, str]] = {
    "fastapi.py": {},
    "starlette.py": {},
    "django": {
        "clerk_sessions._eventloop.PerLoop": (
            "async views run on whatever loop the server gives them: one AsyncClerk per "
            "event loop, closed with it"
        ),
    },
    "cli": {
        "clerk_sessions._revocation.failure_listener": (
            "the progress bar counts a bulk call's failures as they happen, which "
            "on_progress(done, total) cannot say (a context variable, so the public "
            "methods keep their signatures)"
        ),
    },
    "testing": {},
    "jobs": {
        "clerk_sessions._revocation": (
            "an item is revoked by the rules of revoke_many and revoke_all (revoke_telling, "
            "revoke_all, the argument checks), written once on the Sessions protocol"
        ),
        "clerk_sessions._urls.redact_url": "store URLs are shown without their password",
        "clerk_sessions._telemetry.job_item": (
            "each item's outcome counted in clerk.jobs.items, by the one module that "
            "records the SDK's metrics (a no-op while OpenTelemetry is not loaded)"
        ),
        "clerk_sessions._redis.loop_clients": (
            "one Redis client per event loop, the one mechanism the shared quota has too"
        ),
        "clerk_sessions._redis.eviction_policy": (
            "the store refuses a Redis that may evict keys, read as the quota reads it"
        ),
        "clerk_sessions._redis.SAFE_POLICY": "the one policy that evicts nothing",
        "clerk_sessions._redis.describe": (
            "a Redis failure told in the SDK's own sentence, shared with the quota"
        ),
        "clerk_sessions._redis.is_transient": (
            "which Redis failures the store retries through an outage"
        ),
    },
    "redis": {
        "clerk_sessions._ratelimit.SharedLimiter": (
            "the protocol the transport calls a limiter held outside the process through "
            "(for the type checker only)"
        ),
        "clerk_sessions._urls.redact_url": "Redis URLs are shown without their password",
        "clerk_sessions._redis.loop_clients": (
            "one Redis client per event loop, the one mechanism the job store has too"
        ),
        "clerk_sessions._redis.eviction_policy": (
            "a Redis that may evict the quota's keys is named in a warning"
        ),
        "clerk_sessions._redis.SAFE_POLICY": "the one policy that evicts nothing",
        "clerk_sessions._redis.describe": (
            "a Redis failure told in the SDK's own sentence, shared with the job store"
        ),
    },
}
_CLIENT_PARTS = [[name.removesuffix(".py")] for name in ALLOWED]


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _imports(tree: ast.AST, *, type_checking: bool = True) -> list[str]:
    """The dotted names ``tree`` imports absolutely (``module.name`` for a from-import);
    without those under ``if TYPE_CHECKING:`` unless ``type_checking``."""
    found: list[str] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and not type_checking and _is_type_checking(node.test):
            for child in node.orelse:
                found += _imports(ast.Module(body=[child], type_ignores=[]), type_checking=False)
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [f"{node.module}.{alias.name}" for alias in node.names]
        found += _imports(node, type_checking=type_checking)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def private_core_imports(path: Path, own: str, allowed: dict[str, str]) -> list[str]:
    """The names of the core's private parts that ``path`` (in client ``own``) imports
    and ``allowed`` does not name."""
    found: list[str] = []
    for dotted in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        parts = dotted.split(".")
        if parts[0] != "clerk_sessions" or parts[1:2] == [own]:
            continue
        if _private(".".join(parts[1:])) and dotted not in allowed:
            found.append(f"{path.name}: {dotted}")
    return found


def _files(name: str) -> list[Path]:
    root = PACKAGE / name
    return [root] if root.is_file() else sorted(root.rglob("*.py"))


def test_every_module_of_the_package_is_the_core_or_a_client() -> None:
    # A new subpackage or public module must say which it is, and so be checked.
    unclassified = [
        path.name
        for path in PACKAGE.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py"
        if not path.name.startswith("_")
        and path.name not in CORE_FACES
        and path.name not in ALLOWED
    ]
    assert unclassified == []


def test_the_clients_import_only_public_names_and_their_allowed_private_parts() -> None:
    offenders: list[str] = []
    for name, allowed in ALLOWED.items():
        paths = _files(name)
        assert paths, name
        for path in paths:
            offenders += private_core_imports(path, name.removesuffix(".py"), allowed)
    assert offenders == []


def test_every_allowed_private_part_is_still_used() -> None:
    # An allowance nobody needs any more is a door left open.
    unused: list[str] = []
    for name, allowed in ALLOWED.items():
        imported = {
            dotted
            for path in _files(name)
            for dotted in _imports(ast.parse(path.read_text(encoding="utf-8")))
        }
        unused += [f"{name}: {dotted}" for dotted in allowed if dotted not in imported]
    assert unused == []


def test_the_core_imports_no_client_not_even_lazily() -> None:
    core = [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] in CORE_FACES
        or path.relative_to(PACKAGE).parts[0].startswith("_")
    ]
    assert len(core) > 20
    offenders = [
        f"{path.relative_to(PACKAGE)}: {dotted}"
        for path in core
        for dotted in _imports(ast.parse(path.read_text(encoding="utf-8")), type_checking=False)
        if dotted.split(".")[0] == "clerk_sessions" and dotted.split(".")[1:2] in _CLIENT_PARTS
    ]
    assert offenders == []


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from clerk_sessions._verification import TokenVerifier\n"
        "from clerk_sessions import models\nfrom clerk_sessions._codec import converter\n"
        "import clerk_sessions._portal\n"
        "from clerk_sessions.cli._output import Output\n"
        "from clerk_sessions.verification import Reason\n"
        "from clerk_sessions._urls import redact_url\n"
        "from . import _neighbour\n"
        "def later():\n    from clerk_sessions._redis import loop_clients\n",
        encoding="utf-8",
    )
    found = private_core_imports(module, "cli", {"clerk_sessions._urls.redact_url": "why"})
    assert [entry.split(": ")[1] for entry in found] == [
        "clerk_sessions._verification.TokenVerifier",
        "clerk_sessions._codec.converter",
        "clerk_sessions._portal",
        "clerk_sessions._redis.loop_clients",
    ]


def test_the_check_sees_a_lazy_import_of_a_client_but_not_one_for_annotations() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from clerk_sessions.redis import RedisRateLimit\n"
        "else:\n    import json\n"
        "def later():\n    from clerk_sessions.jobs import RevocationJob\n"
    )
    assert _imports(tree, type_checking=False) == [
        "typing.TYPE_CHECKING",
        "json",
        "clerk_sessions.jobs.RevocationJob",
    ]
