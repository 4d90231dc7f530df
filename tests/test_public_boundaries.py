"""The integrations, the command line and the fake use the core only through its public
names, as a user's code would (``tests/cli/test_structure.py`` checks that the core never
imports the command line)."""

from __future__ import annotations

import ast
from pathlib import Path

import clerk_sessions

PACKAGE = Path(clerk_sessions.__file__).parent
# Each of these may import its own private modules, and nothing private of the core.
CLIENTS = {
    "fastapi.py": "fastapi",
    "starlette.py": "starlette",
    "django": "django",
    "cli": "cli",
    "testing": "testing",
}
# Private machinery made for the integrations (and the Redis clients), not a part of the
# client that a user's code would otherwise reach: one object per event loop.
SHARED = {"clerk_sessions._eventloop.PerLoop"}


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def private_core_imports(path: Path, own: str) -> list[str]:
    """The names of the core's private parts that ``path`` (in subpackage ``own``) imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue  # relative imports stay inside the subpackage
        for dotted in modules:
            parts = dotted.split(".")
            if parts[0] != "clerk_sessions" or parts[1:2] == [own]:
                continue
            if _private(".".join(parts[1:])) and dotted not in SHARED:
                found.append(f"{path.name}: {dotted}")
    return found


def test_integrations_cli_and_fake_import_only_public_names_of_the_core() -> None:
    offenders: list[str] = []
    for name, own in CLIENTS.items():
        root = PACKAGE / name
        paths = [root] if root.is_file() else sorted(root.rglob("*.py"))
        assert paths, name
        for path in paths:
            offenders += private_core_imports(path, own)
    assert offenders == []


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from clerk_sessions._verification import TokenVerifier\n"
        "from clerk_sessions import models\nfrom clerk_sessions._codec import converter\n"
        "import clerk_sessions._portal\n"
        "from clerk_sessions.cli._output import Output\n"
        "from clerk_sessions.verification import Reason\n"
        "from . import _neighbour\n",
        encoding="utf-8",
    )
    found = private_core_imports(module, "cli")
    assert [entry.split(": ")[1] for entry in found] == [
        "clerk_sessions._verification.TokenVerifier",
        "clerk_sessions._codec.converter",
        "clerk_sessions._portal",
    ]
